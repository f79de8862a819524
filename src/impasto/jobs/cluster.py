"""Past one machine: folders of photos and long clips on a Ray cluster (the optional ``cluster`` extra).

Ray does the scheduling, placement, retries and restarts; impasto only says what a worker is and
what a task is:

- a **worker** is an actor that prepares the method once (backbone or model loaded, style
  statistics computed) and then paints task after task; it asks Ray for a GPU when the job runs on
  one, and for its share of the cores otherwise;
- a **task** is one photo (folders) or one chunk of frames (video), written with the same atomic
  writer as everywhere, so a task that dies mid-write leaves no broken file and is simply retried;
- a killed worker is restarted by Ray and its unfinished tasks are retried there
  (``max_restarts``/``max_task_retries``); a photo that fails on its own merits is reported and
  the others go on.

Without an address impasto starts a local Ray with this machine's cores; ``--cluster ADDRESS`` (or
``RAY_ADDRESS``) joins an existing cluster.  Inputs, models and outputs must then be on storage
every node sees at the same path (styles travel with the job).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from impasto.core.errors import ImpastoError

#: Tasks kept in flight per worker: one running, one waiting, so a worker never idles between tasks.
IN_FLIGHT = 2


def _ray():
    try:
        import ray
    except ImportError:
        raise ImpastoError("--cluster needs Ray: pip install 'impasto[cluster]'") from None
    return ray


def start(address: str | None = None, cpus: int | None = None) -> dict[str, float]:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), or start a local one with ``cpus``
    cores (default: this machine's); returns the resources Ray sees."""
    ray = _ray()
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        try:
            if address:
                ray.init(address=address, log_to_driver=False, logging_level="ERROR")
            else:
                ray.init(num_cpus=cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                         logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ImpastoError(f"cannot join the Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
    return dict(ray.cluster_resources())


def stop() -> None:
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()


class Worker:
    """One worker's state: the method prepared once, then ``paint`` per photo or a ``paint_*chunk``
    per stretch of a clip."""

    def __init__(self, method: str, styles: Sequence[torch.Tensor], request: Any, threads: int,
                 temporal: Any = None, fill: Any = None, react: dict | None = None) -> None:
        from impasto.methods import Temporal, get

        torch.set_num_threads(max(1, threads))
        self.method = get(method)
        self.styles = list(styles)
        self.request = request
        self.painter = self.method.prepare(self.styles, request)
        self.temporal = temporal or Temporal()
        self.fill = fill or self.temporal  # keyframed clips: how what no keyframe covers is repainted
        self.react = react  # sound-driven clips: {"sound": a file or None (the clip's own), "quietest": share}

    def paint_chunk(self, source: str, folder: str, settings: Any,
                    anchors: dict[int, tuple[str, float]] | None = None) -> list[float]:
        """Stylize the frames ``settings.start``..``settings.end`` of a clip, with temporal coherence
        from the chunk's first frame, into ``folder`` (resumable like any clip); their times.

        ``anchors``: frame index -> (a neighbouring chunk's painting of that frame, weight): targets
        that hold this chunk to its neighbours where they overlap."""
        from impasto.core.images import read_image
        from impasto.jobs.clip import stylize_video

        def targets(index: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
            if not anchors or index not in anchors:
                return []
            path, weight = anchors[index]
            image = read_image(path)
            return [(image, torch.full((1, 1, *image.shape[-2:]), float(weight)))]

        clip, stylizer = source, self.painter.frames(self.temporal)
        if self.react is not None:  # the sound's schedule, read from this chunk's first frame
            from impasto.jobs.sound import reacting_clip

            clip, stylizer = reacting_clip(self.method, self.styles, self.request, self.temporal, source,
                                           self.react["sound"], settings.fps, settings.start, self.react["quietest"])
        return stylize_video(clip, folder, stylizer, settings, anchors=targets).times

    def paint_keyed_chunk(self, source: str, folder: str, settings: Any, keys: Any, held: dict[int, str]) -> list[float]:
        """Stylize the frames ``settings.start``..``settings.end`` of a clip at keyframes into
        ``folder`` (resumable like any clip); their times.  ``held``: frame index -> a painting taken
        as it is (the user's keyframes, and the chunk's ends where its neighbours painted them)."""
        from impasto.jobs.keyframes import stylize_keyframed

        return stylize_keyframed(source, folder, self.painter.frames(self.temporal), self.painter.frames(self.fill),
                                 settings, keys, user={index: Path(path) for index, path in held.items()}).times

    def paint(self, source: str, target: str) -> str | None:
        """Paint ``source`` into ``target``; None, or the one-line error for a photo that cannot be done."""
        from impasto.core.images import save_image

        try:
            save_image(self.painter.paint(source).image, target)
        except ImpastoError as error:
            return str(error)
        return None

    def pid(self) -> int:
        return os.getpid()


def workers(method: str, styles: Sequence[torch.Tensor], request: Any, count: int | None = None,
            temporal: Any = None, fill: Any = None, react: dict | None = None) -> list:
    """``count`` worker actors (default: one per core the cluster has, or per GPU when the job runs on
    CUDA), restarted by Ray if their process dies, their unfinished calls retried.  ``temporal``,
    ``fill`` and ``react``: see :class:`Worker`."""
    ray = _ray()
    resources = ray.cluster_resources()
    gpu = request.device.startswith("cuda") or (request.device == "auto" and resources.get("GPU", 0) > 0)
    available = int(resources.get("GPU", 0) if gpu else resources.get("CPU", 1))
    count = count or max(1, available)
    if gpu and available < 1:
        raise ImpastoError("the job asks for a GPU and the cluster has none")
    threads = max(1, int(resources.get("CPU", 1)) // count)
    remote = ray.remote(Worker).options(num_cpus=0 if gpu else threads,
                                        num_gpus=1 if gpu else 0, max_restarts=-1, max_task_retries=-1)
    return [remote.remote(method, list(styles), request, threads, temporal, fill, react) for _ in range(count)]


def _run_on(actors: list, jobs: Sequence[tuple], call: str, on_done: Callable[[tuple, Any], None]) -> None:
    """Each job (a tuple of arguments) through ``actor.<call>``, ``IN_FLIGHT`` per actor, ``on_done(job,
    result)`` as each finishes (the result is the exception for a task that failed every retry)."""
    ray = _ray()
    queue = list(jobs)
    running: dict[Any, tuple[tuple, Any]] = {}

    def submit(actor) -> None:
        job = queue.pop(0)
        running[getattr(actor, call).remote(*job)] = (job, actor)

    for _ in range(IN_FLIGHT):
        for actor in actors:
            if queue:
                submit(actor)
    try:
        while running:
            finished, _ = ray.wait(list(running), num_returns=1)
            job, actor = running.pop(finished[0])
            try:
                result = ray.get(finished[0])
            except ray.exceptions.RayError as exc:
                cause = getattr(exc, "cause", None)
                if isinstance(cause, ImpastoError):  # the user's mistake, said once, as on one machine
                    raise cause from None
                result = exc
            on_done(job, result)
            if queue:
                submit(actor)
    except KeyboardInterrupt:
        for ref in running:
            ray.cancel(ref)
        raise


def paint_folder(actors: list, jobs: Sequence[tuple[Path, Path]],
                 on_done: Callable[[Path, str | None], None]) -> None:
    """Paint every (photo, output) pair on the workers; ``on_done(photo, error or None)`` as each
    finishes, in the order they finish.  Ctrl-C cancels what is left."""
    def done(job: tuple, result: Any) -> None:
        if isinstance(result, BaseException):  # the task failed on every retry
            result = f"{job[0]}: the worker failed ({type(result).__name__})"
        on_done(Path(job[0]), result)

    from impasto.core.files import remove_parts_of

    try:
        _run_on(actors, [(os.fspath(s), os.fspath(t)) for s, t in jobs], "paint", done)
    finally:  # every task has ended: what a killed worker was writing is litter now
        for _, target in jobs:
            remove_parts_of(Path(target))


# ------------------------------------------------------------------------------------------ video


def plan_chunks(first: int, last: int, length: int, overlap: int) -> list[tuple[int, int]]:
    """Frame ranges [start, end) covering first..last-1 in chunks of ``length`` new frames; every
    chunk after the first also repeats the ``overlap`` frames before it (they are cross-faded)."""
    if length < 1 or overlap < 0 or overlap >= length:
        raise ImpastoError("chunks need at least one frame and an overlap shorter than a chunk")
    return [(max(first, start - overlap), min(last, start + length)) for start in range(first, last, length)]


def crossfade_weight(position: int, overlap: int) -> float:
    """The later chunk's share at the ``position``-th (0-based) frame of an overlap: it grows
    quadratically, because the later chunk's first frames have no history yet to steady them (a
    linear fade left more warping error at the seams than this one; tests, docs/figures.md)."""
    return ((position + 1) / (overlap + 1)) ** 2


class _ChunkedRun:
    """The driver's side of a clip painted in chunks: its work folder and job record, the chunks'
    own folders, each frame's time (kept as chunks finish, for a resume), and the encoding."""

    def __init__(self, source: Any, output: str | os.PathLike, settings: Any, job: dict[str, Any]) -> None:
        import time

        from impasto.core.clips import Clip, open_clip
        from impasto.jobs.clip import claim_work_folder, output_folders

        self.started = time.perf_counter()
        self.settings = settings
        self.clip = source if isinstance(source, Clip) else open_clip(source, settings.fps)
        self.output, self.work, self.to_folder = output_folders(output, self.clip)
        count = self.clip.count if self.clip.count is not None else sum(1 for _ in self.clip.frames())
        self.last = min(count, settings.end or count)
        if self.last <= settings.start:
            raise ImpastoError(f"no frames in the range {settings.start}..{settings.end}", self.clip.path)
        settings_record = {k: v for k, v in dataclasses.asdict(settings).items() if k != "keep_frames"}
        claim_work_folder(self.work, {**job, "source": os.fspath(self.clip.path.resolve()),
                                      "settings": settings_record})
        self.times_file = self.work / ".impasto-times.json"
        self.times: dict[int, float] = {int(k): v for k, v in json.loads(self.times_file.read_text()).items()} \
            if self.times_file.exists() else {}
        (self.work / ".chunks").mkdir(exist_ok=True)

    def frame(self, index: int, folder: Path | None = None) -> Path:
        """Frame ``index``'s file in ``folder`` (default: the work folder)."""
        return (folder or self.work) / f"frame_{index + 1:06d}.png"

    def folder(self, start: int) -> Path:
        return self.work / ".chunks" / f"chunk_{start:06d}"

    def pending(self, chunks: Sequence[tuple[int, int]], on_chunk: Callable[[int, int], None] | None) -> list[int]:
        """The chunks with a frame not yet in the work folder (the others count as done)."""
        pending = [k for k, (start, end) in enumerate(chunks)
                   if any(not self.frame(index).exists() for index in range(start, end))]
        self.done, self.total, self.on_chunk = len(chunks) - len(pending), len(chunks), on_chunk
        if on_chunk is not None:
            on_chunk(self.done, self.total)
        return pending

    def painted(self, chunk_start: int, index: int) -> str:
        """A chunk's painting of frame ``index`` (in the work folder once the chunk was put there)."""
        path = self.frame(index, self.folder(chunk_start))
        return os.fspath(path if path.exists() else self.frame(index))

    def run(self, actors: list, call: str, tasks: Sequence[tuple]) -> None:
        """The tasks (each (source, folder, settings, ...)) through ``actor.<call>``; each frame's time kept."""
        from impasto.core.files import atomic_write

        def finished(task: tuple, result: Any) -> None:
            if isinstance(result, BaseException):
                raise ImpastoError(f"a chunk failed on every retry ({type(result).__name__})")
            for k, moment in enumerate(result):
                self.times[task[2].start + k] = moment
            atomic_write(self.times_file, lambda handle: handle.write(json.dumps(self.times).encode()))
            self.done += 1
            if self.on_chunk is not None:
                self.on_chunk(self.done, self.total)

        _run_on(actors, tasks, call, finished)

    def fade(self, index: int, earlier: Path, later: Path, share: float) -> None:
        """Frame ``index`` as two chunks' paintings of it mixed, ``share`` of the later one."""
        from impasto.core import images

        mixed = (1 - share) * images.read_image(earlier) + share * images.read_image(later)
        images.save_image(mixed, self.frame(index))

    def place(self, index: int, source: Path) -> None:
        """Frame ``index`` copied from ``source`` (a chunk's file), unless it is there already."""
        from impasto.core.files import atomic_write

        if not self.frame(index).exists():
            atomic_write(self.frame(index), lambda handle: handle.write(source.read_bytes()))

    def finish(self) -> Any:
        """Encode the frames (or leave them as the output folder) and say how it went."""
        import time

        from impasto.core.clips import VideoReport, encode_video

        settings, first = self.settings, self.settings.start
        frames = [self.frame(index) for index in range(first, self.last)]
        times = [self.times[i] for i in range(first, self.last)]
        shutil.rmtree(self.work / ".chunks", ignore_errors=True)
        audio = "none"
        if not self.to_folder:
            audio = encode_video(frames, self.output, self.clip, settings, times)
            if not settings.keep_frames:
                shutil.rmtree(self.work)
        return VideoReport(self.output, len(frames), 0, self.clip.fps, time.perf_counter() - self.started, audio,
                           times)


def stylize_video(actors: list, source: Any, output: str | os.PathLike, settings: Any,
                  job: dict[str, Any], chunk: int = 48, overlap: int = 8,
                  on_chunk: Callable[[int, int], None] | None = None) -> Any:
    """A clip (a file, a folder of frames, or an opened :class:`impasto.core.clips.Clip`) stylized in
    chunks on the workers, the overlaps cross-faded, then encoded (or left as a folder of frames)
    exactly like :func:`impasto.jobs.clip.stylize_video`; a rerun resumes.

    ``job`` describes the work (method, model and style digests, options): a work folder holding
    another job's frames is refused."""
    run = _ChunkedRun(source, output, settings, {**job, "chunk": chunk, "overlap": overlap})
    chunks = plan_chunks(settings.start, run.last, chunk, overlap)
    pending = run.pending(chunks, on_chunk)

    def task(k: int) -> tuple:
        """Chunk k's task; an odd chunk is held to the even chunks beside it (painted first): it starts
        from the earlier one's painting of its first frame and is drawn toward the later one's
        paintings across the overlap at its end, so both of its seams join frames that agree."""
        start, end = chunks[k]
        anchors: dict[int, tuple[str, float]] = {}
        if k % 2 == 1:
            anchors[start] = (run.painted(chunks[k - 1][0], start), 1.0)
            if k + 1 < len(chunks):
                later = chunks[k + 1][0]
                for position, index in enumerate(range(later, end)):
                    anchors[index] = (run.painted(later, index), crossfade_weight(position, end - later))
        # an even chunk after the first starts fresh: it paints `overlap` more frames before its
        # overlap (not used) so that it is steady where its odd neighbour is drawn onto it
        begin = max(settings.start, start - overlap) if k % 2 == 0 and k > 0 else start
        return (os.fspath(run.clip.path), os.fspath(run.folder(start)),
                dataclasses.replace(settings, start=begin, end=end, keep_frames=True), anchors)

    for wave in (0, 1):  # the even chunks, then the odd ones between them
        run.run(actors, "paint_chunk", [task(k) for k in pending if k % 2 == wave])

    for k, (start, end) in enumerate(chunks):
        folder = run.folder(start)
        for index in range(start, end):
            if run.frame(index).exists():
                continue
            if k > 0 and index < chunks[k - 1][1]:  # an overlap: fade from the earlier chunk to this one
                run.fade(index, run.frame(index, run.folder(chunks[k - 1][0])), run.frame(index, folder),
                         crossfade_weight(index - start, chunks[k - 1][1] - start))
            elif k + 1 < len(chunks) and index >= chunks[k + 1][0]:
                continue  # written with the next chunk's overlap
            else:
                run.place(index, run.frame(index, folder))
    return run.finish()


def plan_keyed_chunks(first: int, last: int, length: int, every: int | None,
                      overlap: int) -> tuple[list[tuple[int, int]], int]:
    """(frame ranges [start, end) covering first..last-1, each chunk's last frame the next one's
    first, and the lead-in: how many frames before its start a chunk paints to be cross-faded into
    the chunk before it).  ``length`` and ``overlap`` are rounded up to whole keyframe gaps
    (``every``), so that the chunks' keyframes are those of the whole clip, and the lead-in is at
    least two gaps: two chunks' keyframes place their strokes differently, and the fade between
    them is seen less the longer it is (a fade of two gaps left clearly less warping error than one:
    docs/figures.md, Cluster)."""
    if length < 1 or overlap < 0:
        raise ImpastoError("chunks need at least one frame and an overlap of zero frames or more")
    if every:
        length, overlap = -(-length // every) * every, max(2 * every, -(-overlap // every) * every)
    starts = list(range(first, last - 1, length)) or [first]
    return [(start, min(last, start + length + 1)) for start in starts], min(overlap, length)


def stylize_keyframed(actors: list, source: str | os.PathLike, output: str | os.PathLike, settings: Any,
                      job: dict[str, Any], keys: Any, chunk: int = 48, overlap: int = 8,
                      on_chunk: Callable[[int, int], None] | None = None) -> Any:
    """A clip painted at keyframes (:func:`impasto.jobs.keyframes.stylize_keyframed`) in chunks on the
    workers, then encoded like any clip; a rerun resumes.

    The even chunks go first, each after the first with a lead-in (it starts ``overlap`` frames
    early, so that its first keyframe is painted from the ones before and steadied, as on one
    machine).  Then the odd ones between them: each starts from the earlier neighbour's painting of
    its first frame and ends on the later one's painting of its last, both taken as they are, and
    its last frames are cross-faded into the later neighbour's lead-in, so that no seam is a jump
    (a keyframe painted on its own arrives all at once).  The user's keyframes are kept by every
    chunk that paints their frame."""
    from impasto.core.files import file_digest
    from impasto.jobs.keyframes import user_keyframes
    from impasto.core.clips import frame_size, open_clip

    keys.validate()
    clip = open_clip(source, settings.fps)
    size = frame_size(clip.height, clip.width, settings.size)
    last = clip.count if settings.end is None or clip.count is None else min(clip.count, settings.end)
    user = user_keyframes(keys.folder, settings.start, last, size) if keys.folder is not None else {}
    record = {k: v for k, v in dataclasses.asdict(keys).items() if k != "folder"}
    record["user"] = {str(index): file_digest(path) for index, path in sorted(user.items())}
    run = _ChunkedRun(clip, output, settings, {**job, "chunk": chunk, "overlap": overlap, "keyframes": record})
    chunks, lead = plan_keyed_chunks(settings.start, run.last, chunk, keys.every, overlap)
    begins = [max(settings.start, start - lead) if k % 2 == 0 and k > 0 else start
              for k, (start, _) in enumerate(chunks)]
    pending = run.pending(chunks, on_chunk)
    # an even chunk's lead-in is needed while the odd chunk before it is painted
    pending = sorted({*pending, *(k + 1 for k in pending if k % 2 == 1 and k + 1 < len(chunks))})

    def task(k: int) -> tuple:
        start, end = chunks[k]
        held = {index: os.fspath(path) for index, path in user.items() if begins[k] <= index < end}
        if k % 2 == 1:
            held[start] = run.painted(chunks[k - 1][0], start)
            if k + 1 < len(chunks):
                held[end - 1] = run.painted(chunks[k + 1][0], end - 1)
        return (os.fspath(clip.path), os.fspath(run.folder(start)),
                dataclasses.replace(settings, start=begins[k], end=end, keep_frames=True), keys, held)

    for wave in (0, 1):  # the even chunks, then the odd ones between them
        run.run(actors, "paint_keyed_chunk", [task(k) for k in pending if k % 2 == wave])
    for k, (start, end) in enumerate(chunks):
        folder = run.folder(start)
        fade = k % 2 == 1 and k + 1 < len(chunks)
        for index in range(start, end):
            if run.frame(index).exists():
                continue
            if fade and begins[k + 1] <= index < end - 1:  # into the later chunk's lead-in
                # linear: the lead-in starts from a whole keyframe (no history to wait for), so
                # its share can grow evenly, the smallest largest step
                later = chunks[k + 1][0]
                run.fade(index, run.frame(index, folder), run.frame(index, run.folder(later)),
                         (index - begins[k + 1] + 1) / (later - begins[k + 1] + 1))
            else:
                run.place(index, run.frame(index, folder))
    return run.finish()
