"""Benchmark of the one-pass methods (feed-forward networks and AdaIN) beside the optimisation method.

Run from the repository root (after `make install`), with nothing else busy on the machine:

    .venv/bin/python benchmarks/bench_feedforward.py                 # everything
    .venv/bin/python benchmarks/bench_feedforward.py --only speed    # or heldout, norm, cpu

Sections:
  speed    ms per image for the feed-forward network (width 1.0 and 0.5) at 256, 512 and 1024 px and
           for AdaIN (encoder + AdaIN + decoder, style statistics cached) at 512 and 1024 px, in fp32
           and bf16 autocast, channels-last, on this machine's device; and, measured in the same run,
           the optimisation method's default 512 px run as the peer.
  norm     the shipped mosaic model as `impasto stylize` runs it (FastModel, this machine's default
           precision) at 256, 512 and 1024 px, paired round by round: the CPU instance norm that keeps
           the channels-last layout (impasto's) against PyTorch's instance_norm (the earlier path,
           patched in here), with the largest output difference between the two.
  cpu      the shipped arbitrary network as `impasto stylize --method arbitrary` runs it (code cached,
           this machine's default precision) at 512x512 and 1920x1080, paired round by round, each
           step of the 2026-12-04 CPU work added to the one before: autocast over float32 weights with
           the earlier norm (two float32 means of the whole map, the affine on 16-wide rows) and the
           plain last convolution; weights converted once; the piecewise norm on widened rows; the
           last convolution on 2x2 pixel blocks (the code as shipped).
  (quality beside the optimisation method: benchmarks/bench_quality.py)
  heldout  the AdaIN decoder's training losses on training content x training styles and on photos and
           styles it never saw (the test photos, the held-out styles listed in impasto.networks.adain).

Images come from the project's data beside the repository (../shared/data).  Results are printed as
Markdown and saved as JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, oneDNN kernel selection)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def speed(device: torch.device, repeats: int) -> list[dict]:
    from impasto.networks import adain, transformer
    from impasto.engines.optimize import StyleSettings, run
    from impasto.core.runtime import autocast, default_encoder

    rows = []
    precisions = {"fp32": None, "bf16": torch.bfloat16}
    for width in (1.0, 0.5):
        net = transformer.TransformerNet(1, width).eval().requires_grad_(False).to(device, memory_format=torch.channels_last)
        for size in (256, 512, 1024):
            image = torch.rand(1, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
            for label, dtype in precisions.items():
                def once():
                    with torch.no_grad(), autocast(device, dtype):
                        net(image).float()
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                seconds = _timed(once, repeats)
                rows.append({"method": f"fast (width {width})", "size": size, "precision": label, "ms": seconds * 1e3})
                print(rows[-1], file=sys.stderr)
    decoder = adain.Decoder().eval().requires_grad_(False).to(device, memory_format=torch.channels_last)
    encoder = default_encoder([adain.ENCODER_LAYER], device)
    style = torch.rand(1, 3, 512, 512, device=device)
    for size in (512, 1024):
        image = torch.rand(1, 3, size, size, device=device)
        for label, dtype in precisions.items():
            with torch.no_grad(), autocast(device, dtype):
                code = adain.StyleCode(*adain.mean_std(encoder(style, [adain.ENCODER_LAYER])[adain.ENCODER_LAYER]))

            def once():
                with torch.no_grad(), autocast(device, dtype):
                    features = encoder(image, [adain.ENCODER_LAYER])[adain.ENCODER_LAYER]
                    target = adain.adain_to(features, code.mean, code.std)
                    decoder(target.contiguous(memory_format=torch.channels_last)).float()
                if device.type == "cuda":
                    torch.cuda.synchronize()
            seconds = _timed(once, repeats)
            rows.append({"method": "adain", "size": size, "precision": label, "ms": seconds * 1e3})
            print(rows[-1], file=sys.stderr)
    content, style_path = DATA / "content" / "tubingen.jpg", DATA / "style" / "starry_night.jpg"
    began = time.perf_counter()
    run(content, [style_path], StyleSettings(device=device.type))
    rows.append({"method": "optimisation (defaults, 50 iterations)", "size": 512, "precision": "auto",
                 "ms": (time.perf_counter() - began) * 1e3})
    print(rows[-1], file=sys.stderr)
    return rows


def norm(repeats: int) -> list[dict]:
    import torch.nn.functional as F

    from impasto.networks import fast, transformer
    from impasto.core.modelfile import resolve_model

    def pytorch_norm(x, scale, shift, eps=1e-5):  # what ConditionalInstanceNorm did before, on every device
        x = F.instance_norm(x, eps=eps)
        return x * scale[:, :, None, None].to(x.dtype) + shift[:, :, None, None].to(x.dtype)

    model = fast.FastModel(resolve_model("mosaic"), device="cpu")
    layout_norm = transformer.channels_last_instance_norm
    rows = []
    for size in (256, 512, 1024):
        image = torch.rand(1, 3, size * 3 // 4, size)
        timings: dict[str, list[float]] = {"layout": [], "pytorch": []}
        outputs = {}
        for round_ in range(repeats + 1):  # round 0 warms up both
            for label, function in (("layout", layout_norm), ("pytorch", pytorch_norm)):
                transformer.channels_last_instance_norm = function
                began = time.perf_counter()
                outputs[label] = model.stylize(image)
                if round_:
                    timings[label].append(time.perf_counter() - began)
        transformer.channels_last_instance_norm = layout_norm
        layout, pytorch = (statistics.median(timings[k]) * 1e3 for k in ("layout", "pytorch"))
        rows.append({"size": f"{size}x{size * 3 // 4}", "layout_ms": layout, "pytorch_ms": pytorch,
                     "ratio": layout / pytorch,
                     "max_difference": float((outputs["layout"] - outputs["pytorch"]).abs().max())})
        print(rows[-1], file=sys.stderr)
    return rows


def cpu_paths(repeats: int) -> list[dict]:
    import contextlib

    from impasto.networks import arbitrary, transformer
    from impasto.core.runtime import autocast

    def earlier_norm(x, scale, shift, eps=1e-5):  # channels_last_instance_norm as of 2026-11-29
        n, c, h, w = x.shape
        pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c)
        mean = pixels.mean(1, keepdim=True, dtype=torch.float32)
        variance = (pixels - mean).square().mean(1, keepdim=True)
        gain = scale[:, None, :] * torch.rsqrt(variance + eps)
        out = torch.addcmul((shift[:, None, :] - mean * gain).to(x.dtype), pixels, gain.to(x.dtype))
        return out.reshape(n, h, w, c).permute(0, 3, 1, 2)

    shipped_norm, shipped_conv = transformer.channels_last_instance_norm, transformer.space_to_depth_conv
    engine = arbitrary.ArbitraryModel()
    if engine.weights_dtype == torch.float32:
        print("cpu: this CPU runs float32 (no fast bf16): the steps below are bf16 ones", file=sys.stderr)
    converted = engine.transformer
    autocast_copy = arbitrary.network_from_config(engine.config).transformer
    autocast_copy.load_state_dict({k: v.float() for k, v in converted.state_dict().items()})
    autocast_copy.eval().requires_grad_(False).to(memory_format=torch.channels_last)
    norms = engine.norms(torch.randn(1, arbitrary.CODE_SIZE))
    steps = [("autocast, earlier norm, plain last conv", autocast_copy, True, earlier_norm, False),
             ("+ weights converted once", converted, False, earlier_norm, False),
             ("+ piecewise norm on widened rows", converted, False, shipped_norm, False),
             ("+ last conv on 2x2 blocks (shipped)", converted, False, shipped_norm, True)]
    rows = []
    for height, width in ((512, 512), (1080, 1920)):
        image = torch.rand(1, 3, height, width).contiguous(memory_format=torch.channels_last)
        timings: dict[str, list[float]] = {label: [] for label, *_ in steps}
        outputs = {}
        for round_ in range(repeats + 1):  # round 0 warms up every step
            for label, network, cast, norm_function, blocked in steps:
                transformer.channels_last_instance_norm = norm_function
                transformer.space_to_depth_conv = shipped_conv if blocked else (lambda conv, x: conv(x))
                dtype = torch.float32 if cast else engine.weights_dtype
                began = time.perf_counter()
                with torch.no_grad(), autocast(engine.device, engine.dtype) if cast else contextlib.nullcontext():
                    outputs[label] = arbitrary.paint(network, image.to(dtype), norms).float()
                if round_:
                    timings[label].append(time.perf_counter() - began)
        transformer.channels_last_instance_norm, transformer.space_to_depth_conv = shipped_norm, shipped_conv
        first = steps[0][0]
        for label, *_ in steps:
            rows.append({"size": f"{width}x{height}", "step": label, "ms": statistics.median(timings[label]) * 1e3,
                         "mean_difference": float((outputs[label] - outputs[first]).abs().mean())})
            print(rows[-1], file=sys.stderr)
    return rows


def heldout(count: int) -> list[dict]:
    from impasto.networks import adain
    from impasto.networks import adain_training
    from impasto.core import images
    from impasto.core.modelfile import load_model
    from impasto.core.runtime import resolve_precision

    loaded = load_model(adain.DEFAULT_DECODER, adain.KIND)
    decoder = adain.Decoder(str(loaded.config.get("upsample", "nearest")))
    decoder.load_state_dict({k: v.float() for k, v in loaded.state_dict.items()})
    decoder.eval().requires_grad_(False).to(memory_format=torch.channels_last)
    device = torch.device("cpu")
    dtype = resolve_precision("auto", device)
    held_styles = set(loaded.training.get("held_out_styles") or adain_training.HELD_OUT_STYLES)

    def prepare(path: Path) -> torch.Tensor:
        image = images.read_image(path)
        h, w = image.shape[-2:]
        scale = 256 / min(h, w)
        image = images.resize(image, (max(256, round(h * scale)), max(256, round(w * scale))))
        h, w = image.shape[-2:]
        top, left = (h - 256) // 2, (w - 256) // 2
        return image[..., top: top + 256, left: left + 256]

    train_photos = sorted((DATA / "train" / "content").glob("*.jpg"))[:count]
    train_styles = [p for p in sorted((DATA / "train" / "style").iterdir()) if p.name not in held_styles][:count]
    test_photos = sorted((DATA / "content").glob("*.jpg"))[:count]
    test_styles = [DATA / "train" / "style" / name for name in sorted(held_styles)]
    rows = []
    for label, photos, styles in (("training photos x training styles", train_photos, train_styles),
                                  ("unseen photos x unseen styles", test_photos, test_styles)):
        content_terms, style_terms = [], []
        for photo in photos:
            content = prepare(photo)
            for style_path in styles:
                with torch.no_grad():
                    terms = adain_training.decoder_losses(decoder, content, prepare(style_path), device, dtype)
                    c, s = terms["content"], terms["style"]
                content_terms.append(float(c))
                style_terms.append(float(s))
        rows.append({"pairs": label, "count": len(content_terms),
                     "content": statistics.mean(content_terms), "style": statistics.mean(style_terms),
                     "content_sd": statistics.stdev(content_terms), "style_sd": statistics.stdev(style_terms)})
        print(rows[-1], file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("speed", "heldout", "norm", "cpu"), action="append")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=6, help="heldout: photos and styles per group")
    args = parser.parse_args()
    sections = args.only or ["speed", "heldout", "norm", "cpu"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device}
    if "speed" in sections:
        report["speed"] = speed(torch.device(args.device), args.repeats)
        print("\n| method | size | precision | ms / image |\n| --- | --- | --- | --- |")
        for row in report["speed"]:
            print(f"| {row['method']} | {row['size']} | {row['precision']} | {row['ms']:.1f} |")
    if "norm" in sections:
        report["norm"] = norm(args.repeats)
        print("\n| size | layout-keeping norm ms | PyTorch instance_norm ms | ratio | max difference |\n"
              "| --- | --- | --- | --- | --- |")
        for row in report["norm"]:
            print(f"| {row['size']} | {row['layout_ms']:.1f} | {row['pytorch_ms']:.1f} | {row['ratio']:.2f}x | "
                  f"{row['max_difference']:.1e} |")
    if "cpu" in sections:
        report["cpu"] = cpu_paths(args.repeats)
        print("\n| size | step | ms | mean difference to the first |\n| --- | --- | --- | --- |")
        for row in report["cpu"]:
            print(f"| {row['size']} | {row['step']} | {row['ms']:.1f} | {row['mean_difference']:.1e} |")
    if "heldout" in sections:
        report["heldout"] = heldout(args.pairs)
        print("\n| pairs | count | content loss | style loss |\n| --- | --- | --- | --- |")
        for row in report["heldout"]:
            print(f"| {row['pairs']} | {row['count']} | {row['content']:.2f} ± {row['content_sd']:.2f} | "
                  f"{row['style']:.2f} ± {row['style_sd']:.2f} |")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"feedforward-{stamp}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
