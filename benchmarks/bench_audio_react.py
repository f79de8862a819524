"""Sound-driven painting: does it follow the sound, and does it stay steady?

Run from the repository root (after `make install`), with nothing else busy on the machine:

    .venv/bin/python benchmarks/bench_audio_react.py
    .venv/bin/python benchmarks/bench_audio_react.py --method adain --size 320

On ../shared/data/video/mountain_2 (a real camera clip, 25 fps) with a made-up soundtrack (beats at
120 bpm that decay, every other one low and the others high, over a quiet bed), the one-pass method
paints the clip with two paintings twice: as it is (half each, full strength) and with
--audio-react.  It reports the warping error of both (impasto.core.flow.warping_error; the goal is the
reactive clip within 1.2x of the plain one), how closely the reactive frames follow the loudness
(correlation of each frame's distance from the plain strength-0 photo with the loudness in dB), and
the frames per second.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
RATE = 22_050


def soundtrack(path: Path, seconds: float) -> None:
    """Beats at 120 bpm, decaying, alternating a low and a high tone, over a quiet bed."""
    import av
    import numpy as np

    t = np.arange(int(RATE * seconds)) / RATE
    beat = (t * 2.0).astype(int)
    since = t * 2.0 - beat
    pitch = np.where(beat % 2 == 0, 80.0, 2500.0)
    samples = 0.02 * np.sin(2 * np.pi * 220 * t) + 0.8 * np.exp(-6 * since) * np.sin(2 * np.pi * pitch * t)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=RATE)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray((samples * 32767 * 0.9).astype(np.int16)[None], format="s16", layout="mono")
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def main() -> None:
    import numpy as np

    from impasto.core import audio, flow, images
    from impasto import methods
    from impasto.jobs import sound as react, clip as video
    from impasto.core import clips

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="arbitrary")
    parser.add_argument("--styles", default="starry_night.jpg,the_scream.jpg")
    parser.add_argument("--size", type=int, default=480)
    parser.add_argument("--floor", type=float, default=0.2, help="the strength in silence, a share (--audio-floor)")
    args = parser.parse_args()
    clip_path = DATA / "video" / "mountain_2"
    method = methods.get(args.method)
    styles = [images.read_image(DATA / "style" / name) for name in args.styles.split(",")]
    settings = clips.VideoSettings(size=args.size)
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        clip = clips.open_clip(clip_path, 25)
        sound = folder / "beats.wav"
        soundtrack(sound, float(clip.count / clip.fps))
        settings.audio = sound
        request = methods.Request(size=args.size)
        plain = method.prepare(styles, request).frames(methods.Temporal())
        reacting, curves = react.scheduled_frames(method, styles, request, methods.Temporal(), sound, clip, 0,
                                                  clip.count, args.floor)
        still = method.prepare(styles, methods.Request(size=args.size, strength=0.0)).frames(methods.Temporal())
        for name, stylizer in (("plain", plain), ("audio-react", reacting), ("strength 0", still)):
            out = folder / name.replace(" ", "_")
            began = time.perf_counter()
            video.stylize_video(clip, out, stylizer, settings)
            seconds = time.perf_counter() - began
            rows[name] = {"seconds": seconds, "frames": clips.read_clip(out)}
            print(f"{name}: {seconds:.1f} s", file=sys.stderr, flush=True)
        photos = clips.read_clip(clip_path, rows["plain"]["frames"][0].shape[:2])
        samples = audio.read_audio(sound)
    hop = RATE / float(clip.fps)
    rms = np.array([np.sqrt(np.mean(samples[int(i * hop): int((i + 1) * hop)] ** 2) + 1e-12) for i in range(clip.count)])
    loudness = 20 * np.log10(rms / rms.max())
    base = [f.astype(np.float32) for f in rows["strength 0"]["frames"]]
    moved = [float(np.abs(f.astype(np.float32) - b).mean()) for f, b in zip(rows["audio-react"]["frames"], base)]
    results = []
    for name in ("plain", "audio-react"):
        error, _ = flow.warping_error(photos, rows[name]["frames"])
        results.append({"run": name, "warping_error": error, "fps": clip.count / rows[name]["seconds"]})
    ratio = results[1]["warping_error"] / results[0]["warping_error"]
    follows = float(np.corrcoef(moved, loudness)[0, 1])
    print(f"\n{args.method}, {args.size} px, {clip.count} frames, paintings {args.styles}\n")
    print("| run | warping error | frames/s |\n| --- | --- | --- |")
    for row in results:
        print(f"| {row['run']} | {row['warping_error']:.5f} | {row['fps']:.2f} |")
    print(f"\nwarping error, reactive / plain: {ratio:.2f}x; the reactive frames follow the loudness: "
          f"correlation {follows:.2f}; strength from {curves.strengths.min():.2f} to {curves.strengths.max():.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"audio-react-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(
        json.dumps({"rows": results, "ratio": ratio, "correlation": follows}, indent=2))


if __name__ == "__main__":
    main()
