"""Your painting as a one-pass model in minutes: the arbitrary network's prediction adapted (norms only).

Run from the repository root (after `make install`; the optimisation references come from
bench_arbitrary's cache, or are made):

    .venv/bin/python benchmarks/bench_adapt.py --painting starry_night.jpg --photo tubingen.jpg --seconds 180

It trains `impasto train fast --from-arbitrary` (the same task and defaults, in-process) on the training
photos for at most --seconds, the painting held out of the arbitrary network's training, then scores on the photo
(384 px): the arbitrary network's own result (step 0), the adapted model, and the optimisation method.
Reports the style distance and content error, each as a ratio to the optimisation method's, at each
checkpoint of the run (every --every steps).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench_arbitrary import DATA, find
from bench_quality import _as_saved, reference
from report import RESULTS, print_table, save_results

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--painting", default="the_scream.jpg")
    parser.add_argument("--photo", default="golden_gate.jpg")
    parser.add_argument("--model", default=None, help="arbitrary network (default: the shipped one)")
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--every", type=int, default=20, help="score every N steps")
    parser.add_argument("--lr", type=float, default=None, help="default: the command's (--from-arbitrary)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the command's")
    parser.add_argument("--crop", type=int, default=None, help="default: the command's")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--all", action="store_true", help="train every weight, not only the norms")
    parser.add_argument("--style-loss", choices=("gram", "swd"), default=None,
                        help="default: the one the arbitrary network trained with (as the command's)")
    parser.add_argument("--style-weight", type=float, default=None, help="default: as the command's")
    parser.add_argument("--trained", default=None, metavar="MODEL[:STYLE]",
                        help="also score a shipped per-style model trained for hours on this painting (e.g. "
                             "two-styles:starry_night): how near a network of this size gets with no time limit")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from impasto.networks import fast, training_tasks
    from impasto.core import images, quality
    from impasto.networks.training import TrainSettings, train

    # `impasto train fast --from-arbitrary`'s defaults where none are given
    args.lr = args.lr or training_tasks.ADAPTATION["lr"]
    args.batch_size = args.batch_size or training_tasks.ADAPTATION["batch_size"]
    args.crop = args.crop or training_tasks.default("fast", "crop")

    painting_path = find(DATA, args.painting, "style", "train/style")
    photo = images.resize_max_side(images.read_image(find(DATA, args.photo, "content")), args.size)
    painting = images.resize_max_side(images.read_image(painting_path), args.size)
    opt = reference(photo, painting, args.size, 50, RESULTS / "cache")
    base = quality.score(_as_saved(opt), photo, painting)
    rows = []

    def score(label: str, image: torch.Tensor, seconds: float) -> None:
        s = quality.score(_as_saved(image), photo, painting)
        rows.append({"model": label, "seconds": round(seconds, 1), "style_ratio": s.style / base.style,
                     "content_ratio": s.content / base.content})
        print(f"  {label}: style {s.style / base.style:.2f}x, content {s.content / base.content:.2f}x",
              file=sys.stderr)

    if args.trained:
        name, _, style_name = args.trained.partition(":")
        model = fast.FastModel(ROOT / "src" / "impasto" / "models" / f"{name}.pt", "auto", "auto")
        weights = [float(n == style_name) for n in model.style_names] if style_name else None
        score(f"{args.trained}, trained for hours (shipped)", model.stylize(photo, weights), 0.0)
    # the task `impasto train fast --from-arbitrary` makes (photos at 2x the crop, the painting as large)
    task = training_tasks.fast_task(DATA / "train" / "content", [painting_path], crop=args.crop,
                                    from_arbitrary=args.model or "arbitrary", adapt_all=args.all,
                                    style_loss=args.style_loss, style_weight=args.style_weight)
    print(f"  style loss {task.style_loss} at weight {task.style_weight:g}", file=sys.stderr)
    task.network.eval()
    with torch.no_grad():
        score("prediction (step 0)", fast_paint(task.network, photo), 0.0)
    began = time.perf_counter()
    spent = [0.0]  # training seconds, not counting the scoring

    def progress(step: int, total: int, losses: dict) -> None:
        if time.perf_counter() - began - spent[0] > args.seconds:
            raise KeyboardInterrupt

    with tempfile.TemporaryDirectory() as folder:
        steps = 0
        while True:
            settings = TrainSettings(steps=steps + args.every, batch_size=args.batch_size, learning_rate=args.lr,
                                     checkpoint_every=args.every, resume=steps > 0)
            report = train(task, settings, Path(folder) / "adapted.pt", progress=progress)
            steps = report.steps
            pause = time.perf_counter()
            task.network.eval()
            with torch.no_grad():
                score(f"adapted, {steps} steps", fast_paint(task.network, photo), pause - began - spent[0])
            task.network.train()
            spent[0] += time.perf_counter() - pause
            if report.stop_reason == "interrupted":
                break
    print(f"\n### {painting_path.stem} on {args.photo} at {args.size} px: adaptation ({'all weights' if args.all else 'norms only'}, "
          f"{task.style_loss} at weight {task.style_weight:g}, lr {args.lr}, batch {args.batch_size}, {args.crop} px crops)\n")
    print_table(["model", "training seconds", "style distance ratio", "content error ratio"],
                [[r["model"], r["seconds"], f"{r['style_ratio']:.2f}", f"{r['content_ratio']:.2f}"] for r in rows])
    print(f"results: {save_results('adapt', rows)}", file=sys.stderr)


def fast_paint(network: torch.nn.Module, photo: torch.Tensor) -> torch.Tensor:
    from impasto.core import images
    from impasto.networks.transformer import MULTIPLE

    padded, (h, w) = images.pad_to_multiple(photo, MULTIPLE, minimum=2 * MULTIPLE)
    return network(padded.contiguous(memory_format=torch.channels_last)).float()[..., :h, :w].clamp(0, 1)


if __name__ == "__main__":
    main()
