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

from .errors import ImpastoError

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
    """One worker's state: the method prepared once, then ``paint`` per photo."""

    def __init__(self, method: str, styles: Sequence[torch.Tensor], request: Any, threads: int,
                 temporal: Any = None) -> None:
        from .methods import Temporal, get

        torch.set_num_threads(max(1, threads))
        self.painter = get(method).prepare(list(styles), request)
        self.temporal = temporal or Temporal()

    def paint_chunk(self, source: str, folder: str, settings: Any,
                    anchors: dict[int, tuple[str, float]] | None = None) -> list[float]:
        """Stylize the frames ``settings.start``..``settings.end`` of a clip, with temporal coherence
        from the chunk's first frame, into ``folder`` (resumable like any clip); their times.

        ``anchors``: frame index -> (a neighbouring chunk's painting of that frame, weight): targets
        that hold this chunk to its neighbours where they overlap."""
        from .images import read_image
        from .video import stylize_video

        def targets(index: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
            if not anchors or index not in anchors:
                return []
            path, weight = anchors[index]
            image = read_image(path)
            return [(image, torch.full((1, 1, *image.shape[-2:]), float(weight)))]

        return stylize_video(source, folder, self.painter.frames(self.temporal), settings, anchors=targets).times

    def paint(self, source: str, target: str) -> str | None:
        """Paint ``source`` into ``target``; None, or the one-line error for a photo that cannot be done."""
        from .images import save_image

        try:
            save_image(self.painter.paint(source).image, target)
        except ImpastoError as error:
            return str(error)
        return None

    def pid(self) -> int:
        return os.getpid()


def workers(method: str, styles: Sequence[torch.Tensor], request: Any, count: int | None = None,
            temporal: Any = None) -> list:
    """``count`` worker actors (default: one per core the cluster has, or per GPU when the job runs on
    CUDA), restarted by Ray if their process dies, their unfinished calls retried."""
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
    return [remote.remote(method, list(styles), request, threads, temporal) for _ in range(count)]


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

    from .files import remove_parts_of

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
    linear fade made 1.25x the single-machine warping error at the seams, this one less; tests)."""
    return ((position + 1) / (overlap + 1)) ** 2


def stylize_video(actors: list, source: str | os.PathLike, output: str | os.PathLike, settings: Any,
                  job: dict[str, Any], chunk: int = 48, overlap: int = 8,
                  on_chunk: Callable[[int, int], None] | None = None) -> Any:
    """A clip stylized in chunks on the workers, the overlaps cross-faded, then encoded (or left as a
    folder of frames) exactly like :func:`impasto.video.stylize_video`; a rerun resumes.

    ``job`` describes the work (method, model and style digests, options): a work folder holding
    another job's frames is refused."""
    import time

    from . import images
    from .files import atomic_write
    from .video import VideoReport, claim_work_folder, encode_video, open_clip, output_folders

    started = time.perf_counter()
    clip = open_clip(source, settings.fps)
    output, work, to_folder = output_folders(output, clip)
    count = clip.count if clip.count is not None else sum(1 for _ in clip.frames())
    last = min(count, settings.end or count)
    if last <= settings.start:
        raise ImpastoError(f"no frames in the range {settings.start}..{settings.end}", clip.path)
    claim_work_folder(work, {**job, "source": os.fspath(clip.path.resolve()), "chunk": chunk, "overlap": overlap,
                             "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k != "keep_frames"}})
    chunks = plan_chunks(settings.start, last, chunk, overlap)
    folders = [work / ".chunks" / f"chunk_{start:06d}" for start, _ in chunks]
    times_file = work / ".impasto-times.json"  # each frame's time, kept as chunks finish (for a resume)
    times: dict[int, float] = {int(k): v for k, v in json.loads(times_file.read_text()).items()} \
        if times_file.exists() else {}

    def frame_of(folder: Path, index: int) -> Path:
        return folder / f"frame_{index + 1:06d}.png"

    pending = [k for k, (start, end) in enumerate(chunks)
               if any(not frame_of(work, index).exists() for index in range(start, end))]
    done = len(chunks) - len(pending)
    if on_chunk is not None:
        on_chunk(done, len(chunks))

    def finished(job_args: tuple, result: Any) -> None:
        nonlocal done
        if isinstance(result, BaseException):
            raise ImpastoError(f"a chunk failed on every retry ({type(result).__name__})")
        for k, moment in enumerate(result):
            times[job_args[2].start + k] = moment
        atomic_write(times_file, lambda handle: handle.write(json.dumps(times).encode()))
        done += 1
        if on_chunk is not None:
            on_chunk(done, len(chunks))

    (work / ".chunks").mkdir(exist_ok=True)
    def job(k: int) -> tuple:
        """Chunk k's task; an odd chunk is held to the even chunks beside it (painted first): it starts
        from the earlier one's painting of its first frame and is drawn toward the later one's
        paintings across the overlap at its end, so both of its seams join frames that agree."""
        start, end = chunks[k]
        anchors: dict[int, tuple[str, float]] = {}

        def painted(neighbour: int, index: int) -> str:  # a finished neighbour's frame is in the work folder
            path = frame_of(folders[neighbour], index)
            return os.fspath(path if path.exists() else frame_of(work, index))

        if k % 2 == 1:
            anchors[start] = (painted(k - 1, start), 1.0)
            if k + 1 < len(chunks):
                later = chunks[k + 1][0]
                for position, index in enumerate(range(later, end)):
                    anchors[index] = (painted(k + 1, index), crossfade_weight(position, end - later))
        # an even chunk after the first starts fresh: it paints `overlap` more frames before its
        # overlap (not used) so that it is steady where its odd neighbour is drawn onto it
        begin = max(settings.start, start - overlap) if k % 2 == 0 and k > 0 else start
        return (os.fspath(clip.path), os.fspath(folders[k]),
                dataclasses.replace(settings, start=begin, end=end, keep_frames=True), anchors)

    for wave in (0, 1):  # the even chunks, then the odd ones between them
        _run_on(actors, [job(k) for k in pending if k % 2 == wave], "paint_chunk", finished)

    for k, ((start, end), folder) in enumerate(zip(chunks, folders)):
        for index in range(start, end):
            target = frame_of(work, index)
            if target.exists():
                continue
            if k > 0 and index < chunks[k - 1][1]:  # an overlap: fade from the earlier chunk to this one
                share = crossfade_weight(index - start, chunks[k - 1][1] - start)
                earlier = images.read_image(frame_of(folders[k - 1], index))
                images.save_image((1 - share) * earlier + share * images.read_image(frame_of(folder, index)), target)
            elif k + 1 < len(chunks) and index >= chunks[k + 1][0]:
                continue  # written with the next chunk's overlap
            else:
                atomic_write(target, lambda handle, f=frame_of(folder, index): handle.write(f.read_bytes()))
    frames = [frame_of(work, index) for index in range(settings.start, last)]
    shutil.rmtree(work / ".chunks", ignore_errors=True)
    audio = "none"
    if not to_folder:
        audio = encode_video(frames, output, clip, settings, [times[i] for i in range(settings.start, last)])
        if not settings.keep_frames:
            shutil.rmtree(work)
    return VideoReport(output, len(frames), 0, clip.fps, time.perf_counter() - started, audio,
                       [times[i] for i in range(settings.start, last)])
