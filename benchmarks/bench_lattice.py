"""The lattice experiments: continue a feed-forward model for a few hundred steps with one change each.

Run from the repository root (after `make install`); each variant trains on one thread:

    .venv/bin/python benchmarks/bench_lattice.py --model rain_princess --variant control --variant shift100
    .venv/bin/python benchmarks/bench_lattice.py --list

The shipped models of impasto 0.3's first retraining painted a fine colour lattice tied to the
network's 4 px grid (BENCHMARKS.md).  Every variant continues --model (with --init: its weights, a
fresh optimiser) on 128 px crops of the training photos, batch 4, Adam lr 1e-3, for --steps, with
the model's own painting at --style-size, and differs from `control` (the shipped recipe, no shift
term) only in what its name says:
  jitter4     the losses see the output and the photo cropped at a random 0-3 px offset (does the
              lattice exploit the loss network's own stride?)
  relu1_1-0.2 relu1_1's style term weighted 0.2 (is it the colour layer's demand?)
  shiftN      the shift-consistency term (impasto.core.losses.shift_consistency) at weight N
  ...-bilinear the network's upsamplings bilinear
Scores (impasto.core.quality, on tubingen, golden_gate and brad_pitt at 384 px, never trained on):
style distance, content error, grid (lattice peak, luminance or colour; a photo is 1-2) and moved
(RMS change of the painting when the photo moves by 1-3 px, beyond the move).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from report import print_table, save_results

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PHOTOS = ("tubingen.jpg", "golden_gate.jpg", "brad_pitt.jpg")

VARIANTS = {
    "control": {},
    "jitter4": {"jitter": 4},
    "relu1_1-0.2": {"layer_weights": (0.2, 1, 1, 1, 1)},
    "shift10": {"shift_weight": 10.0},
    "shift40": {"shift_weight": 40.0},
    "shift100": {"shift_weight": 100.0},
    "shift40-bilinear": {"shift_weight": 40.0, "upsample": "bilinear"},
}


def make_task(variant: dict, style: torch.Tensor, style_name: str):
    from impasto.networks import fast_training
    from impasto.core.losses import relative_content_loss, relative_gram_loss
    from impasto.core.runtime import autocast, default_encoder
    from impasto.networks.training import ImageFolder, random_flip

    photos = ImageFolder(DATA / "train" / "content", 128, 256, what="content photos")
    jitter = variant.get("jitter", 0)
    layer_weights = variant.get("layer_weights", (1.0,) * len(fast_training.STYLE_LAYERS))

    class Task(fast_training.FastTask):
        """FastTask whose losses can see a jittered crop and weigh the style layers unevenly."""

        def losses(self, network, batch_size, rng, device, dtype):
            if not jitter and len(set(layer_weights)) == 1:
                return super().losses(network, batch_size, rng, device, dtype)
            layers = [*fast_training.CONTENT_LAYERS, *fast_training.STYLE_LAYERS]
            encoder = default_encoder(layers, device)
            grams = self._style_targets(device, dtype)[0]  # one painting, Gram loss
            content = random_flip(self.content.sample(batch_size, rng), rng).to(device)
            mix = torch.ones(batch_size, 1, device=device)
            with autocast(device, dtype):
                output = network(content.contiguous(memory_format=torch.channels_last), mix)
            seen_output, seen_photo = output, content
            if jitter:
                dy, dx = rng.randrange(jitter), rng.randrange(jitter)
                h, w = output.shape[-2:]
                crop = (..., slice(dy, h - jitter + dy), slice(dx, w - jitter + dx))
                seen_output, seen_photo = output[crop], content[crop]
            with torch.no_grad(), autocast(device, dtype):
                photo_features = encoder(seen_photo, fast_training.CONTENT_LAYERS)
            with autocast(device, dtype):
                features = encoder(seen_output, layers)
            content_term = sum(relative_content_loss(features[n], photo_features[n]) for n in fast_training.CONTENT_LAYERS)
            style_term = sum(weight * relative_gram_loss(features[n], grams[n].expand(batch_size, -1, -1))
                             for weight, n in zip(layer_weights, fast_training.STYLE_LAYERS))
            total = self.content_weight * content_term + self.style_weight * style_term
            return {"total": total, "content": content_term.detach(), "style": style_term.detach()}

    return Task(photos, [style], [style_name], width=0.5, upsample=variant.get("upsample", "nearest"),
                shift_weight=variant.get("shift_weight", 0.0))


def score(model: Path, style: torch.Tensor, size: int) -> dict:
    from impasto.networks import fast
    from impasto.core import images, quality

    loaded = fast.FastModel(model, device="cpu", precision="fp32")

    def paint(photo: torch.Tensor) -> torch.Tensor:
        return loaded.stylize(photo, None)

    rows = []
    for name in PHOTOS:
        photo = images.resize_max_side(images.read_image(DATA / "content" / name), size)
        painted = images.as_tensor(images.tensor_to_pil(paint(photo)))
        result = quality.score(painted, photo, style)
        rows.append({"style": result.style, "content": result.content, "grid": quality.grid(painted),
                     "moved": quality.moved(paint, photo)})
    return {key: statistics.mean(row[key] for row in rows) for key in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rain_princess", help="shipped name or file to continue")
    parser.add_argument("--style", default=None, help="its painting (default: train/style/<its style name>.jpg)")
    parser.add_argument("--style-size", type=int, default=256)
    parser.add_argument("--variant", action="append", default=None, choices=sorted(VARIANTS))
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list:
        for name, change in VARIANTS.items():
            print(f"{name:20s} {change or 'the shipped recipe, no shift term'}")
        return
    torch.set_num_threads(1)
    from impasto.core import images
    from impasto.core.modelfile import load_model, resolve_model
    from impasto.networks.training import TrainSettings, train

    model = resolve_model(args.model)
    style_name = (load_model(model, "fast").config.get("style_names") or [model.stem])[0]
    style_path = Path(args.style) if args.style else DATA / "train" / "style" / f"{style_name}.jpg"
    style = images.read_image(style_path)
    scored_style = images.resize_max_side(style, args.size)
    rows = [{"variant": f"{model.stem} as shipped", "steps": 0, **score(model, scored_style, args.size)}]
    for name in args.variant or list(VARIANTS):
        task = make_task(VARIANTS[name], images.resize_max_side(style, args.style_size), style_name)
        began = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / f"{name}.pt"
            train(task, TrainSettings(steps=args.steps, batch_size=4, learning_rate=1e-3, seed=0, init=str(model),
                                      checkpoint_every=args.steps), out)
            rows.append({"variant": name, "steps": args.steps, "minutes": (time.perf_counter() - began) / 60,
                         **score(out, scored_style, args.size)})
        print(f"  {name} done", flush=True)
    print_table(["variant", "steps", "style distance", "content error", "grid", "moved"],
                [[r["variant"], r["steps"], f"{r['style']:.4f}", f"{r['content']:.3f}", f"{r['grid']:.1f}",
                  f"{r['moved']:.3f}"] for r in rows])
    save_results("lattice", {"model": str(model), "style_size": args.style_size, "steps": args.steps, "rows": rows})


if __name__ == "__main__":
    main()
