"""``impasto stylize`` and ``impasto video``: the flags parsed into a job (:mod:`impasto.jobs.image_job`,
:mod:`impasto.jobs.clip_job`), its progress shown, its end in words."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from impasto.cli.output import EXIT_FAILED, EXIT_INTERRUPTED, Bar, progress_bar
from impasto.cli.options import request_from, settings_from
from impasto.core.errors import ImpastoError


def chosen(args: argparse.Namespace):
    """(the method, the model file) from --method and the kind of --model."""
    from impasto import methods
    from impasto.core.modelfile import resolve_model

    model = resolve_model(args.model) if args.model is not None else None
    return methods.choose(args.method, model), model


def image_job(args: argparse.Namespace):
    """The ``stylize`` command's flags as an :class:`impasto.jobs.image_job.ImageJob`."""
    from impasto.jobs.image_job import ImageJob

    method, model = chosen(args)
    photos, styles = args.inputs, []
    if method.uses_styles:
        if len(args.inputs) < 2:
            raise ImpastoError(f"give the content photo (or folder) and at least one style image "
                               f"(impasto stylize --method {method.name} CONTENT STYLE... -o OUT)")
        photos, styles = args.inputs[:1], args.inputs[1:]
    request = request_from(args, method, model, content_photo(photos, args.max_pixels))
    return ImageJob(photos=photos, styles=styles, output=Path(args.output), method=args.method,
                    request=request, save_every=args.save_every or 0,
                    skip_existing=args.skip_existing, overwrite_input=args.overwrite_input, cluster=args.cluster,
                    workers=args.workers)


def content_photo(photos: list[str], max_pixels: int):
    """What reads the one content photo that --mask-box cuts masks from (None for several photos
    or a folder)."""
    from impasto.core.images import read_image

    if len(photos) != 1 or Path(photos[0]).is_dir():
        return None
    return lambda: read_image(photos[0], max_pixels)


def first_frame(source: str, start: int):
    """What reads the clip's first painted frame, for --mask-box."""
    def read():
        from impasto.core import images
        from impasto.core.clips import open_clip

        for frame, _ in open_clip(source).frames(start, start + 1):
            return images.as_tensor(frame)
        raise ImpastoError(f"no frame {start} to cut the box's mask from", source)
    return read


def cmd_stylize(args: argparse.Namespace) -> int:
    """Files and folders of photos in; one image, or a folder of images, out -- for every method."""
    job = image_job(args)
    method, _, sources, targets = job.validate()
    if len(targets) == 1:
        return paint_one(job, args.quiet or method.one_pass, args.quiet, record=args.record)
    started = time.perf_counter()
    bar = Bar(args.quiet, "img", len(sources))
    try:
        report = job.run(on_photo=lambda done, total: bar.show(done, total),
                         on_error=lambda error: bar.message(f"impasto: error: {error}"))
    finally:
        bar.close()
    how = method.name + (f" on {report.workers} workers" if report.workers else "")
    return batch_end(args.quiet, report, Path(args.output), how, started)


def paint_one(job, quiet_bar: bool, quiet: bool, record: bool = False) -> int:
    """One photo into one file, with a bar of the steps; the end in words (and the exit status)."""
    update, close = progress_bar(quiet_bar)
    try:
        report = job.run(on_step=update)
    finally:
        close()
    result, output = report.result, report.targets[0]
    if record:
        run = job.record(report)
        if not quiet:
            print(f"recorded run {run.id} in {run.folder.parent}", file=sys.stderr)
    height, width = result.image.shape[-2:]
    method = job.chosen()
    if result.stop_reason == "non-finite":
        print(f"impasto: error: the loss became NaN or infinite after iteration {result.iterations}; "
              f"wrote the last good image to {output} (lower the learning rate or the weights)",
              file=sys.stderr)
        return EXIT_FAILED
    if result.stop_reason == "interrupted":
        resume = f" (continue with --init {output})" if method.options is not None and \
            "init" in method.options.__dataclass_fields__ else ""
        print(f"impasto: interrupted after {result.iterations} iterations; wrote {output}{resume}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if not quiet:
        if method.one_pass:
            how = f"{method.name}, {result.seconds:.2f} s"
        else:
            done = "converged" if result.stop_reason == "converged" else "done"
            asked = getattr(job.request.options, "iterations", None)
            steps = f"{result.iterations} iterations"
            if asked is not None and result.iterations > asked:  # a pyramid: its coarser levels' steps too
                steps = f"{result.iterations} steps over the pyramid's levels ({asked} at full size)"
            how = f"{method.name}, {steps}, {done}, {result.seconds:.1f} s"
        print(f"wrote {output} ({width}x{height}, {how})", file=sys.stderr)
    return 0


def batch_end(quiet: bool, report, output: Path, how: str, started: float) -> int:
    """A batch's last words and exit status (the same on one machine and on a cluster)."""
    if report.interrupted:
        print(f"impasto: interrupted; {report.done} image(s) written (rerun with --skip-existing to go on)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if not quiet:
        extra = f", {report.skipped} already there" if report.skipped else ""
        print(f"wrote {report.done} image(s) to {output} ({how}{extra}, {time.perf_counter() - started:.2f} s)",
              file=sys.stderr)
    if report.failed:
        print(f"impasto: error: {report.failed} of {report.total} image(s) failed (see above); the others were "
              "written", file=sys.stderr)
        return EXIT_FAILED
    return 0


def clip_job(args: argparse.Namespace):
    """The ``video`` command's flags as a :class:`impasto.jobs.clip_job.ClipJob`."""
    from impasto import methods
    from impasto.core.clips import VideoSettings
    from impasto.jobs.clip_job import ClipJob

    method, model = chosen(args)
    request = request_from(args, method, model, first_frame(args.input, args.start))
    if request.masks:
        from impasto.core.clips import open_clip
        from impasto.core.masks import check_masks_fit

        clip = open_clip(args.input)
        check_masks_fit(request.masks, [(clip.path, (clip.width, clip.height))], args.max_pixels)
    return settings_from(ClipJob, args, source=args.input, output=args.output, styles=args.style or [],
                         method=args.method, request=request, temporal=settings_from(methods.Temporal, args),
                         clip=settings_from(VideoSettings, args))


def cmd_video(args: argparse.Namespace) -> int:
    job = clip_job(args)
    bar = Bar(args.quiet, "chunk" if job.cluster is not None else "frame")

    def on_frame(done: int, total: int | None, skipped: bool) -> None:
        bar.show(done, total, "resumed" if skipped else None)

    try:
        report = job.run(on_frame)
    except KeyboardInterrupt:
        bar.close()  # before the message, so that it stays on its own line
        what = "chunks" if job.cluster is not None else "frames"
        print(f"impasto: interrupted; finished {what} are kept (run the same command again to go on)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    if not args.quiet:
        resumed = f", {report.skipped} resumed" if report.skipped else ""
        keyed = f", {len(report.keyframes)} keyframes" if report.keyframes else ""
        workers = f" on {job.workers_started} workers" if job.cluster is not None else ""
        print(f"wrote {report.output} ({report.frames} frames at {float(report.fps):.3g} fps{workers}{resumed}"
              f"{keyed}, audio: {report.audio}, {report.seconds:.1f} s)", file=sys.stderr)
    if args.record:
        run = job.record(report)
        if not args.quiet:
            print(f"recorded run {run.id} in {run.folder.parent}", file=sys.stderr)
    return 0
