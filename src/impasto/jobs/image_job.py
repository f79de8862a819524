"""Jobs, declared once: what a front end asks for, as data.

A job holds everything one piece of work needs (inputs, the method, its :class:`impasto.methods.Request`,
where the result goes), each default written once -- here or in the settings it holds.  It checks
itself (:meth:`validate`; every error names its parameter), runs with progress callbacks and a stop
signal (:meth:`run`), and says which ``impasto`` command does the same (:meth:`command`).  The CLI
parses its flags into a job and prints; the studio maps its widgets to the same job; the history
keeps the job's command.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from impasto.core import images
from impasto.core.errors import ImpastoError
from impasto.core.fields import cluster_setting, workers_setting
from impasto.jobs.command import (changed_flags, flag, model_name, name, option_flags, painting_names,
                                  request_flags, request_settings)
from impasto.methods import Method, Progress, Request, Result

#: (method, device, size) painted by this process: the estimates tell a first painting from the next.
_PAINTED: set[tuple[str, str, tuple[int, int]]] = set()


def _own_size(item: Any) -> tuple[int, int] | None:
    """(height, width) of a photo: a tensor's, or a file's from its header (None: it cannot be read)."""
    if isinstance(item, torch.Tensor):
        return int(item.shape[-2]), int(item.shape[-1])
    import PIL.Image

    try:
        with PIL.Image.open(item) as image:
            return image.height, image.width
    except (OSError, ValueError, PIL.Image.DecompressionBombError):
        return None


def _pixels(item: Any, request: Request) -> tuple[int, int]:
    """(height, width) the painting of ``item`` will have: the photo's, brought to ``request.size``."""
    own = _own_size(item)
    if own is None:
        return (request.size or 512,) * 2
    height, width = own
    if request.size is None:
        return int(height), int(width)
    scale = request.size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass
class ImageJob:
    """Photos painted in the style of paintings: one photo into one image, or files and folders of
    photos into a folder.  ``photos``/``styles``/masks are files, built-in paintings' names (styles)
    or images in memory (the studio); with ``output`` None the result is returned, not written."""

    photos: Sequence[Any]
    styles: Sequence[Any] = ()
    output: str | os.PathLike | None = None
    method: str | None = None  # None: the model's kind decides, else the default method
    request: Request = field(default_factory=Request)
    save_every: int = 0  # iterative methods: write OUT_0002.png... every this many iterations
    skip_existing: bool = False
    overwrite_input: bool = False
    cluster: str | None = cluster_setting()
    workers: int | None = workers_setting()

    kind = "image"

    def chosen(self) -> Method:
        """The method that will paint (from ``method`` and the model's kind)."""
        from impasto import methods
        from impasto.core.modelfile import resolve_model

        if self.request.model is not None and not isinstance(self.request.model, Path):
            self.request.model = resolve_model(self.request.model)
        return methods.choose(self.method, self.request.model)

    def style_images(self, method: Method) -> list[Any]:
        from impasto.core.samples import resolve_style

        if not method.uses_styles:
            if self.styles:
                raise ImpastoError(f"the {method.name} method takes its styles from its model, not from style "
                                   "images", parameter="styles")
            return []
        if not self.styles:
            raise ImpastoError(f"give the content photo (or folder) and at least one style image "
                               f"(impasto stylize --method {method.name} CONTENT STYLE... -o OUT)", parameter="styles")
        return [style if isinstance(style, torch.Tensor) else resolve_style(style) for style in self.styles]

    def sources(self) -> tuple[list[Any], bool]:
        """Photo files from files and folders of photos (images in memory as they are); True when a
        folder was among them."""
        from impasto.networks.training import IMAGE_SUFFIXES

        found: list[Any] = []
        folder_input = False
        for item in self.photos:
            if isinstance(item, torch.Tensor):
                found.append(item)
                continue
            item = Path(item)
            if item.is_dir():
                folder_input = True
                inside = sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
                if not inside:
                    raise ImpastoError("no images in this folder", item)
                found.extend(inside)
            elif item.exists():
                found.append(item)
            else:
                raise ImpastoError("file not found", item)
        return found, folder_input

    def targets(self, sources: list[Any], folder_input: bool, styles: Sequence[Any]) -> list[Path] | None:
        """Where each photo's painting goes (None: returned, not written), after checking that no
        input would be overwritten and no two outputs collide."""
        from impasto.core.images import OUTPUT_FORMATS, check_output_path

        if self.output is None:
            if len(sources) != 1:
                raise ImpastoError("several photos need an output folder", parameter="output")
            return None
        guarded = [item for item in (*styles, *(self.request.masks or ()), self._init())
                   if item is not None and not isinstance(item, torch.Tensor)]
        output = Path(self.output)
        if len(sources) == 1 and not folder_input and output.suffix:
            target = check_output_path(output, (sources[0], *guarded), self.overwrite_input)
            if self.save_every:
                _check_intermediates(target, (sources[0], *guarded))
            return [target]
        if output.suffix.lower() in OUTPUT_FORMATS:
            raise ImpastoError("several inputs need a folder as output (no image extension)", output)
        output.mkdir(parents=True, exist_ok=True)
        found = []
        for source in sources:
            suffix = source.suffix.lower() if source.suffix.lower() in OUTPUT_FORMATS else ".png"
            found.append(check_output_path(output / (source.stem + suffix), (source, *guarded), self.overwrite_input))
        if len(set(found)) != len(found):
            raise ImpastoError("two inputs have the same name; their outputs would collide", output)
        return found

    def _init(self) -> Any:
        options = self.request.options
        init = getattr(options, "init", None) if options is not None else None
        return init if init not in (None, "content", "noise") else None

    def validate(self) -> tuple[Method, list[Any], list[Any], list[Path] | None]:
        """(method, styles, photos, targets), or the first problem as an error naming its parameter."""
        from impasto import methods

        method = self.chosen()
        styles = self.style_images(method)
        if self.save_every and method.one_pass:
            raise ImpastoError(f"--save-every shows the iterations of an iterative method; {method.name} has none",
                               parameter="save_every")
        if self.request.options is None and method.options is not None:
            self.request.options = method.options()
        methods.check(method, styles, self.request)
        sources, folder_input = self.sources()
        if self.request.masks:
            self.check_masks(sources)
        return method, styles, sources, self.targets(sources, folder_input, styles)

    def check_masks(self, sources: list[Any]) -> None:
        """Every mask has its photos' shape (read from the files' headers): a mask of another shape
        would be stretched, its regions landing elsewhere than where they were drawn."""
        from impasto.core.masks import check_masks_fit, shown_size

        limit = self.request.max_pixels
        sizes = [(source, (source.shape[-1], source.shape[-2]) if isinstance(source, torch.Tensor)
                  else shown_size(source, limit)) for source in sources]
        check_masks_fit(self.request.masks, sizes, limit)

    def work(self) -> tuple[str, int, int]:
        """(method, pixels of the paintings, iterations): what :mod:`impasto.jobs.estimate` prices."""
        method = self.chosen()
        pixels = sum(height * width for height, width in self.output_sizes())
        return method.name, pixels, _iterations(method, self.request)

    def output_sizes(self) -> list[tuple[int, int]]:
        """(height, width) of each painting, the photo's own size brought to ``request.size``."""
        sources, _ = self.sources()
        return [_pixels(source, self.request) for source in sources]

    def run(self, on_step: Callable[[Progress], None] | None = None,
            on_photo: Callable[[int, int], None] | None = None,
            on_error: Callable[[ImpastoError], None] | None = None,
            stop: threading.Event | None = None) -> "ImageReport":
        """Paint.  ``on_step`` sees an iterative method's steps (one photo), ``on_photo(done, total)``
        each photo of a batch, ``on_error`` each photo of a batch that failed; ``stop`` set ends the
        work at the next step (a batch: after the photo in hand), keeping what is finished."""
        method, styles, sources, targets = self.validate()
        started = time.perf_counter()
        report = ImageReport(method=method.name, total=len(sources), targets=targets or [])

        def check_stop() -> None:
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt

        if self.cluster is not None and targets is not None and len(targets) > 1:
            self._run_cluster(method, styles, sources, targets, report, on_photo, on_error)
            report.seconds = time.perf_counter() - started
            return report
        check_stop()
        painter = method.prepare(styles, self.request)  # the model, the styles and their statistics: once
        single = targets is None or len(targets) == 1
        own = _own_size(sources[0]) if single and hasattr(painter, "ready") else None
        if own is not None and own[0] * own[1] <= self.request.max_pixels:  # else loading refuses it: no set-up
            painter.ready(*_pixels(sources[0], self.request))  # what the photo would set up (a painting's code)
        report.prepare_seconds = time.perf_counter() - started
        if single:
            shape = (method.name, _device(self.request), _pixels(sources[0], self.request))
            report.cold = shape not in _PAINTED  # the first painting of its size in this process
            _PAINTED.add(shape)

            def step(progress: Progress) -> None:
                check_stop()
                if on_step is not None:
                    on_step(progress)
                if self.save_every and targets and progress.iteration % self.save_every == 0:
                    images.save_image(progress.image.clamp(0, 1), intermediate_path(targets[0], progress.iteration))

            report.result = painter.paint(sources[0], step)
            if targets:
                save_result(report.result.image, targets[0])
            report.done = 1
            report.interrupted = report.result.stop_reason == "interrupted"
        else:
            from impasto.jobs.batch import paint_files

            def photo(done: int) -> None:
                if on_photo is not None:
                    on_photo(done, len(sources))
                check_stop()

            batch = paint_files(method, painter, sources, targets, self.skip_existing, on_progress=photo,
                                on_error=on_error)
            report.done, report.skipped, report.failed = batch.done, batch.skipped, batch.failed
            report.interrupted = batch.interrupted
        report.seconds = time.perf_counter() - started
        return report

    def _run_cluster(self, method: Method, styles: list, sources: list[Path], targets: list[Path],
                     report: "ImageReport", on_photo, on_error) -> None:
        """A folder batch on a Ray cluster: the same outputs, skips and failure counts as on one machine."""
        from impasto.jobs import cluster

        jobs = [(s, t) for s, t in zip(sources, targets) if not (self.skip_existing and t.exists())]
        report.skipped = len(sources) - len(jobs)
        style_images = [images.as_tensor(style, self.request.max_pixels) for style in styles]  # they travel
        cluster.start(None if self.cluster == "local" else self.cluster)
        actors = cluster.workers(method.name, style_images, self.request, self.workers)
        report.workers = len(actors)
        if on_photo is not None:
            on_photo(report.skipped, len(sources))

        def on_done(source: Path, error: str | None) -> None:
            if error is None:
                report.done += 1
            else:
                report.failed += 1
                if on_error is not None:
                    on_error(ImpastoError(error))
            if on_photo is not None:
                on_photo(report.skipped + report.done + report.failed, len(sources))

        try:
            cluster.paint_folder(actors, jobs, on_done)
        except KeyboardInterrupt:
            report.interrupted = True

    def names(self, placeholders: bool = False) -> dict[str, str]:
        """Each input's name in :meth:`command`: a file's path (a built-in painting's name), or a
        placeholder (``{content}``, ``{style1}``, ``{mask1}``) for an image in memory -- for every
        input with ``placeholders`` (the history keeps the inputs as files of the run)."""
        def named(item: Any, placeholder: str) -> str:
            return "{" + placeholder + "}" if placeholders else name(item, placeholder)

        found = {f"photo{k}": named(p, "content" if len(self.photos) == 1 else f"content{k}")
                 for k, p in enumerate(self.photos, 1)}
        found.update({f"style{k}": named(s, f"style{k}") for k, s in enumerate(self.styles, 1)})
        found.update({f"mask{k}": named(m, f"mask{k}") for k, m in enumerate(self.request.masks or (), 1)})
        return found

    def command(self, output: bool = True, placeholders: bool = False) -> list[str]:
        """The ``impasto`` command's arguments that do this job (inputs named as :meth:`names` says;
        ``output``: with ``-o``)."""
        method = self.chosen()
        names = self.names(placeholders)
        parts = ["stylize"]
        if self.request.model is not None:
            parts += ["--model", model_name(self.request.model)]
        if self.method is not None or self.request.model is None:
            parts += ["--method", method.name]
        parts += [names[f"photo{k}"] for k in range(1, len(self.photos) + 1)]
        parts += [names[f"style{k}"] for k in range(1, len(self.styles) + 1)]
        parts += request_flags(self.request, names) + option_flags(method, self.request.options)
        flag(parts, "--save-every", self.save_every or None)
        flag(parts, "--skip-existing", self.skip_existing)
        parts += changed_flags(self)
        if output and self.output is not None:
            parts += ["-o", os.fsdecode(self.output)]
        return parts

    def record(self, report: "ImageReport", history: Any = None, paintings: Sequence[str] | None = None) -> Any:
        """Keep a finished one-photo run in the history (:class:`impasto.jobs.history.History`): the
        inputs as files of the run, the settings, the time it took and the command that does it again.
        ``paintings``: the styles' names for the run's caption (default: the style files' names, or
        the model's)."""
        from impasto.jobs.history import History

        history = history or History()
        method = self.chosen()
        limit = self.request.max_pixels
        inputs = [("content", images.as_tensor(self.photos[0], limit)),
                  *[("style", images.as_tensor(s, limit)) for s in self.style_images(method)],
                  *[("mask", images.as_tensor(m, limit).expand(1, 3, -1, -1)) for m in (self.request.masks or ())]]
        command = self.command(output=False, placeholders=True)
        result = report.result
        settings = {**self.settings(report), "paintings": painting_names(self.styles, self.request.model, paintings)}
        return history.record(method.name, result.image, inputs, settings, result.stop_reason, report.seconds,
                              command)

    def settings(self, report: "ImageReport | None" = None) -> dict[str, Any]:
        """The job's settings as plain data (the history keeps them; :func:`from_settings` reads them back)."""
        request, options = request_settings(self.request)
        kept = {"method": self.method, "request": request, "options": options,
                "masks": len(self.request.masks or ())}
        if report is not None:
            kept.update(prepare_seconds=round(report.prepare_seconds, 4), device=_device(self.request),
                        iterations=_iterations(self.chosen(), self.request), cold=report.cold)
        return kept


def nested_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Recorded settings as :meth:`ImageJob.settings` writes them (method, request, options), also
    those of runs recorded before jobs (the studio's flat settings) or before the style blend's name."""
    if "request" not in settings:
        settings = {"method": settings.get("method"), "options": {"iterations": settings["iterations"]}
                    if settings.get("iterations") else None,
                    "request": {"size": settings.get("size"), "strength": settings.get("strength"),
                                "style_blend": settings.get("blend"), "model": settings.get("model"),
                                "preserve_color": settings.get("preserve_color", "none")}}
    request = dict(settings["request"])
    if "weights" in request:
        request.setdefault("style_blend", request.pop("weights"))
    return {**settings, "request": request}


def from_settings(settings: dict[str, Any], photos: Sequence[Any], styles: Sequence[Any] = (),
                  masks: Sequence[Any] | None = None, output: Any = None) -> ImageJob:
    """The job that :meth:`ImageJob.settings` described, with its inputs given again."""
    settings = nested_settings(settings)
    given = dict(settings["request"])
    request = Request(**{k: v for k, v in given.items() if k in Request.__dataclass_fields__})
    request.masks = list(masks) if masks else None
    job = ImageJob(list(photos), list(styles), output, settings.get("method"), request)
    method = job.chosen()
    if method.options is not None and settings.get("options") is not None:
        known = {f.name for f in dataclasses.fields(method.options)}
        request.options = method.options(**{k: v for k, v in settings["options"].items() if k in known})
    return job


def _iterations(method: Method, request: Request) -> int:
    options = request.options
    if options is None and method.options is not None:
        options = method.options()
    return int(getattr(options, "iterations", 1) or 1) if not method.one_pass else 1


def _device(request: Request) -> str:
    from impasto.core.runtime import resolve_device

    return str(resolve_device(request.device))


@dataclass
class ImageReport:
    """How an image job ended: the painting (one photo), the files written, left, failed."""

    method: str
    total: int
    targets: list[Path] = field(default_factory=list)
    result: Result | None = None
    done: int = 0
    skipped: int = 0
    failed: int = 0
    interrupted: bool = False
    seconds: float = 0.0
    prepare_seconds: float = 0.0
    cold: bool = False  # the process's first painting of this method and size (slower: set-up on first use)
    workers: int = 0


def intermediate_path(output: Path, iteration: int) -> Path:
    return output.with_name(f"{output.stem}_{iteration:04d}{output.suffix}")


def _check_intermediates(output: Path, inputs: Sequence[object]) -> None:
    """--save-every writes OUT_0002.png, OUT_0004.png, ...: refuse up front if any input has such a name."""
    import re

    pattern = re.compile(rf"{re.escape(output.stem)}_\d{{4,}}{re.escape(output.suffix)}")
    folder = output.parent.resolve()
    for source in inputs:
        if source is None:
            continue
        path = Path(str(source))
        if pattern.fullmatch(path.name) and path.parent.resolve() == folder:
            raise ImpastoError(f"--save-every would overwrite this input with an intermediate image of {output.name}; "
                               "choose another output name", path)


def save_result(image: torch.Tensor, output: Path) -> Path:
    """Write the result; if that fails after the work (full disk, a vanished folder), save it under a
    fallback name -- beside the output, else in the system's temporary folder -- and say where."""
    import tempfile

    try:
        return images.save_image(image, output)
    except ImpastoError as exc:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for folder in (output.parent, Path(tempfile.gettempdir())):
            fallback = folder / f"{output.stem[:80]}.rescued-{stamp}.png"
            try:
                images.save_image(image, fallback)
            except ImpastoError:
                continue
            reason = str(exc).split(": ", 1)[-1] if str(exc).startswith(str(output)) else str(exc)
            raise ImpastoError(f"{reason}; the result was saved to {fallback} instead", output) from None
        raise
