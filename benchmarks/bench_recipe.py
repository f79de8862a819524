"""The feed-forward recipe experiments: short trainings that differ in one thing, scored on unseen photos.

Run from the repository root (after `make install`); each variant trains for --steps on one thread:

    .venv/bin/python benchmarks/bench_recipe.py --variant base --variant direct-relative --steps 600
    .venv/bin/python benchmarks/bench_recipe.py --list

Every variant trains the width-0.5 network on 128 px crops of the training photos (256 px shorter
side), batch 4, Adam lr 1e-3, for one painting (--style, default mosaic, at 256 px), with the shared
training loop.  It differs from `base` (impasto 0.2's recipe) only in what its name says:
  output   residual (photo + a change, starting as the identity) or direct (a sigmoid image)
  losses   raw (content and Gram losses in the backbone's units, summed over layers) or relative
           (each layer divided by its target's mean square)
  weights  style weight; content layer
Scores (impasto.core.quality, on tubingen, golden_gate and chicago at 256 px, never trained on): content
error, style distance and its relu1_1 (colour) part, beside the optimisation method's on the same
photos.  A strip of the three outputs goes to benchmarks/results/recipe-VARIANT-STYLE.png.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
from report import RESULTS, print_table, save_results

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PHOTOS = ("tubingen.jpg", "golden_gate.jpg", "chicago.jpg")

BASE = {"output": "residual", "losses": "raw", "style_weight": 3.0, "content_layer": "relu2_2"}
VARIANTS = {
    "base": {},
    "relative-sw10": {"losses": "relative", "style_weight": 10.0},
    "relative-sw3": {"losses": "relative"},
    "direct": {"output": "direct"},
    "direct-relative-sw10": {"output": "direct", "losses": "relative", "style_weight": 10.0},
    "direct-relative-sw3": {"output": "direct", "losses": "relative"},
    "direct-relative-sw2": {"output": "direct", "losses": "relative", "style_weight": 2.0},
    "direct-relative-sw3-relu3_1": {"output": "direct", "losses": "relative", "content_layer": "relu3_1"},
}


def make_task(variant: dict, style: torch.Tensor, style_name: str):
    from impasto.networks import fast_training
    from impasto.core.losses import content_loss, gram_style_loss, relative_content_loss, relative_gram_loss
    from impasto.core.runtime import autocast, default_encoder
    from impasto.networks.training import ImageFolder, random_flip

    photos = ImageFolder(DATA / "train" / "content", 128, 256, what="content photos")

    class Task(fast_training.FastTask):
        """FastTask with the variant's content layer and, for raw losses, 0.2's unnormalised sums."""

        def losses(self, network, batch_size, rng, device, dtype):
            layers = [variant["content_layer"], *fast_training.STYLE_LAYERS]
            encoder = default_encoder(layers, device)
            grams = self._style_targets(device, dtype)[0]  # one painting, Gram loss
            content = random_flip(self.content.sample(batch_size, rng), rng)
            with torch.no_grad(), autocast(device, dtype):
                target = encoder(content, [variant["content_layer"]])[variant["content_layer"]]
            with autocast(device, dtype):
                output = network(content.contiguous(memory_format=torch.channels_last))
                features = encoder(output, layers)
            if variant["losses"] == "raw":
                c = content_loss(features[variant["content_layer"]], target)
                s = sum(gram_style_loss(features[n], grams[n].expand(batch_size, -1, -1)) for n in fast_training.STYLE_LAYERS)
            else:
                c = relative_content_loss(features[variant["content_layer"]], target)
                s = sum(relative_gram_loss(features[n], grams[n].expand(batch_size, -1, -1)) for n in fast_training.STYLE_LAYERS)
            total = c + self.style_weight * s
            return {"total": total, "content": c.detach(), "style": (self.style_weight * s).detach()}

    return Task(photos, [style], [style_name], width=0.5, style_weight=variant["style_weight"], output=variant["output"])


def run(name: str, style_name: str, steps: int) -> dict:
    from impasto.core import images, quality
    from impasto.networks.training import TrainSettings, train

    variant = {**BASE, **VARIANTS[name]}
    style = images.resize_max_side(images.read_image(DATA / "train" / "style" / f"{style_name}.jpg"), 256)
    task = make_task(variant, style, style_name)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        train(task, TrainSettings(steps=steps, batch_size=4, learning_rate=1e-3, checkpoint_every=steps),
              Path(folder) / "m.pt")
    seconds = time.perf_counter() - began
    network = task.network.eval()
    scores, strip = [], []
    for photo in PHOTOS:
        content = images.resize_max_side(images.read_image(DATA / "content" / photo), 256)
        padded, (h, w) = images.pad_to_multiple(content, 4)
        with torch.no_grad():
            out = network(padded)[..., :h, :w].float().clamp(0, 1)
        scores.append(quality.score(out, content, style))
        strip.append(torch.cat([content, out], -1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    images.save_image(torch.cat([images.resize(x, (192, round(x.shape[-1] * 192 / x.shape[-2]))) for x in strip], -1),
                      RESULTS / f"recipe-{name}-{style_name}.png")
    return {"variant": name, **variant, "style_image": style_name, "steps": steps, "seconds": round(seconds),
            "content": statistics.mean(s.content for s in scores), "style": statistics.mean(s.style for s in scores),
            "style_relu1_1": statistics.mean(s.per_layer["relu1_1"] for s in scores)}


def reference(style_name: str) -> dict:
    """The optimisation method (defaults) on the same photos and painting at 256 px."""
    from impasto.core import images, quality
    from impasto.engines.optimize import StyleSettings, run as optimise

    style = images.resize_max_side(images.read_image(DATA / "train" / "style" / f"{style_name}.jpg"), 256)
    scores = []
    for photo in PHOTOS:
        content = images.resize_max_side(images.read_image(DATA / "content" / photo), 256)
        scores.append(quality.score(optimise(content, [style], StyleSettings(size=256)).image, content, style))
    return {"variant": "optimisation method", "style_image": style_name,
            "content": statistics.mean(s.content for s in scores), "style": statistics.mean(s.style for s in scores),
            "style_relu1_1": statistics.mean(s.per_layer["relu1_1"] for s in scores)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS))
    parser.add_argument("--style", default="mosaic")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reference", action="store_true", help="also score the optimisation method")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list:
        for name, changes in VARIANTS.items():
            print(f"{name:32s} {({**BASE, **changes})}")
        return
    torch.set_num_threads(args.threads)
    random.seed(0)
    rows = [reference(args.style)] if args.reference else []
    rows += [run(name, args.style, args.steps) for name in (args.variant or ["base"])]
    print_table(["variant", "output", "losses", "style weight", "content layer", "content error", "style distance",
                 "relu1_1"],
                [[r["variant"], r.get("output", ""), r.get("losses", ""), r.get("style_weight", ""),
                  r.get("content_layer", ""), f"{r['content']:.3f}", f"{r['style']:.4f}", f"{r['style_relu1_1']:.4f}"]
                 for r in rows])
    save_results("recipe", rows)

if __name__ == "__main__":
    main()
