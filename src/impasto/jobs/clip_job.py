"""A clip painted by any method, as one job: every frame (plain), keyframes carried along the motion,
the strength following a sound, on one machine or a cluster -- chosen here, once, for every front end."""

from __future__ import annotations

import dataclasses
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from impasto.core import images
from impasto.core.errors import ImpastoError
from impasto.core.fields import CLUSTER, KEYFRAMES, SOUND, cluster_setting, setting, workers_setting
from impasto.core.clips import FRAME_SUFFIXES, VideoReport, VideoSettings
from impasto.jobs.command import (changed_flags, model_name, name, option_flags, painting_names, request_flags,
                                  request_settings)
from impasto.methods import Method, Request, Temporal

#: Keyframes' holes: iterations of the frames between keyframes (iterative methods).
FILL_ITERATIONS = 10
#: A sound-driven clip: the share of the full strength in silence.
QUIETEST = 0.2
#: A cluster: frames per chunk, and frames two chunks share (to join them without a seam).
CHUNK = 48
OVERLAP = 8


@dataclass
class ClipJob:
    """A clip (a video file, a folder of frames, or a still photo painted to a sound) into a video
    or a folder of frames.  ``keyframes``: None (every frame painted), a number (a keyframe every
    that many frames) or ``"auto"``; ``audio_react``: each frame's strength follows the loudness."""

    source: str | os.PathLike
    output: str | os.PathLike
    styles: Sequence[Any] = ()
    method: str | None = None
    request: Request = field(default_factory=lambda: Request(size=VideoSettings().size))  # a clip's own size
    temporal: Temporal = field(default_factory=Temporal)
    clip: VideoSettings = field(default_factory=VideoSettings)
    keyframes: str | int | None = setting(
        None, group=KEYFRAMES, metavar="N|auto", default_text="every frame painted",
        help="paint every Nth frame (and the last) with the method and carry the paint along the optical flow in "
             "between; auto: where the carried paint covers too little of the frame or at cuts")
    keyframe_dir: str | os.PathLike | None = setting(
        None, group=KEYFRAMES, metavar="DIR", default_text="none",
        help="your own keyframes (painted over in an editor), named by frame number as the output frames are "
             "(frame_000009.png); they replace the method's painting there")
    keyframe_iterations: int | None = setting(None, group=KEYFRAMES, check="positive", default_text="--frame-iterations",
                                              help="iterative methods: iterations of each keyframe from the one before")
    fill_iterations: int = setting(FILL_ITERATIONS, group=KEYFRAMES, check="positive",
                                   help="iterative methods: iterations that repaint what no keyframe covers")
    audio: str | os.PathLike | None = setting(
        None, group=SOUND, metavar="FILE", default_text="the clip's own",
        help="the soundtrack for the output instead of the clip's own; with a still photo as IN, the sound that "
             "paints it into a clip as long as the sound")
    audio_react: bool = setting(False, group=SOUND,
                                help="the sound drives the painting: loudness and onsets set each frame's --strength, "
                                     "and with several --style images each follows one band of the spectrum (bass to "
                                     "treble)")
    quietest: float = setting(QUIETEST, flag="--audio-floor", group=SOUND, check="non_negative", metavar="SHARE",
                              help="--audio-react: the strength in silence, as a share of --strength (higher is "
                                   "steadier, lower follows the sound more)")
    cluster: str | None = cluster_setting()
    workers: int | None = workers_setting()
    chunk: int = setting(CHUNK, group=CLUSTER, check="positive",
                         help="--cluster: new frames per chunk (with keyframes, whole keyframe gaps)")
    overlap: int = setting(OVERLAP, group=CLUSTER, check="positive",
                           help="--cluster: frames each chunk repeats from the one before, cross-faded (with "
                                "keyframes, whole keyframe gaps)")
    workers_started: int = field(default=0, init=False, compare=False)  # a cluster's, once it ran

    kind = "clip"

    @property
    def keyed(self) -> bool:
        return self.keyframes is not None or self.keyframe_dir is not None

    @property
    def reacting(self) -> bool:
        """Painted to a sound: asked for, or a still photo (which only a sound can make a clip of)."""
        source = Path(self.source)
        return self.audio_react or (source.suffix.lower() in FRAME_SUFFIXES and source.is_file())

    def chosen(self) -> Method:
        from impasto import methods
        from impasto.core.modelfile import resolve_model

        if self.request.model is not None and not isinstance(self.request.model, Path):
            self.request.model = resolve_model(self.request.model)
        return methods.choose(self.method, self.request.model)

    def validate(self) -> tuple[Method, list[Any]]:
        """(method, styles), or the first problem as an error naming its parameter."""
        from impasto import methods
        from impasto.core.samples import resolve_style

        method = self.chosen()
        if self.keyed and self.reacting:
            raise ImpastoError("a clip painted to its sound paints every frame; it does not go with keyframes",
                               parameter="keyframes")
        styles = [style if not isinstance(style, (str, os.PathLike)) else resolve_style(style)
                  for style in self.styles]
        methods.check(method, styles, self.request)
        if self.reacting:
            from impasto.jobs.sound import full_strength

            full_strength(method, self.request, self.quietest)
        return method, styles

    def video_settings(self) -> VideoSettings:
        """The clip's settings, the size being the request's (one size for the frames and the painting)."""
        return dataclasses.replace(self.clip, size=self.request.size,
                                   audio=Path(self.audio) if self.audio is not None else self.clip.audio)

    def run(self, on_frame: Callable[[int, int | None, bool], None] | None = None,
            stop: threading.Event | None = None) -> VideoReport:
        """Paint the clip; ``on_frame(done, total, resumed)`` after each frame (a cluster: each chunk);
        ``stop`` set ends it after the frame in hand, the finished frames kept for a rerun to go on."""
        method, styles = self.validate()

        def frame(done: int, total: int | None, skipped: bool) -> None:
            if on_frame is not None:
                on_frame(done, total, skipped)
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt

        if self.cluster is not None:
            return self._run_cluster(method, styles, frame)
        from impasto.jobs import clip as video

        settings = self.video_settings()
        source: Any = self.source
        if self.reacting:
            from impasto.jobs import sound

            source, stylizer = sound.reacting_clip(method, styles, self.request, self.temporal, self.source,
                                                   self.audio, self.clip.fps, settings.start, self.quietest)
            return video.stylize_video(source, self.output, stylizer, settings, frame)
        painter = method.prepare(styles, self.request)
        if not self.keyed:
            return video.stylize_video(source, self.output, painter.frames(self.temporal), settings, frame)
        from impasto.jobs import keyframes

        keys = keyframes.parse_keyframes(None if self.keyframes is None else str(self.keyframes), self.keyframe_dir)
        stylizer = painter.frames(self.key_temporal())
        fill = painter.frames(dataclasses.replace(self.temporal, iterations=self.fill_iterations))
        return keyframes.stylize_keyframed(self.source, self.output, stylizer, fill, settings, keys, frame)

    def key_temporal(self) -> Temporal:
        return dataclasses.replace(self.temporal, iterations=self.keyframe_iterations or self.temporal.iterations)

    def _run_cluster(self, method: Method, styles: list, on_frame) -> VideoReport:
        """A clip in chunks on a Ray cluster (keyframed or sound-driven too); the same frames folder,
        job record and resume as on one machine."""
        from impasto.core.files import file_digest
        from impasto.jobs import cluster

        request = self.request
        settings = self.video_settings()
        style_images = [images.as_tensor(style, request.max_pixels) for style in styles]
        temporal, fill, sound = self.temporal, None, None
        record = {"method": method.name, "model": file_digest(request.model) if request.model else None,
                  "styles": [images.digest(style) for style in style_images],
                  "request": {k: v for k, v in dataclasses.asdict(request).items()
                              if k not in ("model", "masks", "device")},
                  "temporal": dataclasses.asdict(temporal)}
        source: Any = self.source
        if self.keyed:
            from impasto.jobs import keyframes

            keys = keyframes.parse_keyframes(None if self.keyframes is None else str(self.keyframes),
                                             self.keyframe_dir)
            temporal = self.key_temporal()
            fill = dataclasses.replace(temporal, iterations=self.fill_iterations)
            record.update(temporal=dataclasses.asdict(temporal), fill=dataclasses.asdict(fill))
        if self.reacting:  # the clip (a still photo too) opened as the workers will
            from impasto.jobs import sound as react

            source, sound_file, _ = react.sound_clip(self.source, self.audio, self.clip.fps)
            sound = {"sound": self.audio, "quietest": self.quietest}
            record["audio_react"] = {"audio": file_digest(Path(sound_file)), "quietest": self.quietest}
        cluster.start(None if self.cluster == "local" else self.cluster)
        actors = cluster.workers(method.name, style_images, request, self.workers, temporal, fill, sound)
        self.workers_started = len(actors)

        def on_chunk(done: int, total: int) -> None:
            on_frame(done, total, False)

        if self.keyed:
            return cluster.stylize_keyframed(actors, source, self.output, settings, record, keys, self.chunk,
                                             self.overlap, on_chunk)
        return cluster.stylize_video(actors, source, self.output, settings, record, self.chunk, self.overlap,
                                     on_chunk)

    def command(self, output: bool = True, placeholders: bool = False) -> list[str]:
        """The ``impasto video`` command's arguments that do this job (``output``: with ``-o``;
        ``placeholders``: the inputs named as the history keeps them, ``{clip}``, ``{style1}``...)."""
        method = self.chosen()
        parts = ["video", "{clip}" if placeholders else os.fsdecode(self.source)]
        if output:
            parts += ["-o", os.fsdecode(self.output)]
        if self.request.model is not None:
            parts += ["--model", model_name(self.request.model)]
        if self.method is not None or self.request.model is None:
            parts += ["--method", method.name]
        for k, style in enumerate(self.styles, 1):
            parts += ["--style", f"{{style{k}}}" if placeholders else name(style, f"style{k}")]
        masks = {f"mask{k}": f"{{mask{k}}}" if placeholders else name(mask, f"mask{k}")
                 for k, mask in enumerate(self.request.masks or (), 1)}
        parts += request_flags(self.request, masks, {"size": VideoSettings().size})
        parts += option_flags(method, self.request.options)
        named = self
        if placeholders:  # the files the history keeps, by their names there
            named = dataclasses.replace(self, audio="{sound}" if self.audio is not None else None,
                                        keyframe_dir="{keyframes}" if self.keyframe_dir is not None else None)
        return parts + changed_flags(self.clip) + changed_flags(self.temporal) + changed_flags(named)

    def settings(self) -> dict[str, Any]:
        """The job's settings as plain data (the history keeps them)."""
        request, options = request_settings(self.request)
        clip = {key: (os.fsdecode(value) if isinstance(value, os.PathLike) else value)
                for key, value in dataclasses.asdict(self.clip).items()}
        return {"kind": self.kind, "method": self.method, "request": request, "options": options, "clip": clip,
                "temporal": dataclasses.asdict(self.temporal), "keyframes": self.keyframes,
                "audio_react": self.audio_react, "quietest": self.quietest, "sound": self.audio is not None}

    def record(self, report: VideoReport, history: Any = None, paintings: Sequence[str] | None = None,
               status: str = "done") -> Any:
        """Keep a painted clip in the history (:class:`impasto.jobs.history.History`): the video,
        its middle frame as its picture, the clip, paintings and sound as the run's files, the
        settings and the command that paints it again.  ``paintings``: the styles' names for the
        caption (default: the style files' or the model's name)."""
        from impasto.core import clips
        from impasto.jobs.history import History

        history = history or History()
        method = self.chosen()
        made = clips.open_clip(report.output)
        middle = max(0, (made.count or 1) // 2)
        frame = next(made.frames(middle, middle + 1), None) or next(made.frames(0, 1))
        poster = clips.frame_tensor(frame[0], (made.height, made.width))
        styles = [images.as_tensor(style, self.request.max_pixels) for style in self.validate()[1]]
        paintings = painting_names(self.styles, self.request.model, paintings)
        limit = self.request.max_pixels
        inputs = [("style", style) for style in styles]
        inputs += [("mask", images.as_tensor(mask, limit).expand(1, 3, -1, -1)) for mask in self.request.masks or ()]
        files = [("clip", self.source)] + ([("sound", self.audio)] if self.audio is not None else [])
        files += [("keyframes", self.keyframe_dir)] if self.keyframe_dir is not None else []
        settings = {**self.settings(), "paintings": paintings, "frames": report.frames}
        return history.record(method.name, poster, inputs, settings, status, report.seconds,
                              self.command(output=False, placeholders=True), files=files, made=report.output)
