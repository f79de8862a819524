"""The commands beside painting (``stylize`` and ``video`` are in :mod:`impasto.cli.paint`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from impasto.cli.options import settings_from
from impasto.cli.output import Bar, EXIT_INTERRUPTED, progress_bar


def cmd_dream(args: argparse.Namespace) -> int:
    """One photo in, its dream out; Ctrl-C writes the dream so far."""
    from impasto.engines.dream import DreamSettings, Dreamer
    from impasto.jobs.image_job import save_result
    from impasto.core.images import check_output_path
    from impasto.core.samples import resolve_style

    settings = settings_from(DreamSettings, args)
    guide = resolve_style(args.guide) if args.guide else None
    output = check_output_path(Path(args.output), (args.image, guide, *(args.mask or ())), args.overwrite_input)
    dreamer = Dreamer(settings, guide, device=args.device, precision=args.precision, max_pixels=args.max_pixels)
    update, close = progress_bar(args.quiet)
    try:
        result = dreamer.dream(args.image, args.size, args.mask or (), update, args.max_pixels)
    finally:
        close()
    save_result(result.image, output)
    height, width = result.image.shape[-2:]
    if result.stop_reason == "interrupted":
        print(f"impasto: interrupted after {result.iterations} iterations; wrote {output}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(f"wrote {output} ({width}x{height}, {result.iterations} iterations, {result.seconds:.1f} s)",
              file=sys.stderr)
    return 0


def cmd_score_video(args: argparse.Namespace) -> int:
    from impasto.jobs.clip import score_video

    mean, per_pair = score_video(args.original, args.stylized, args.flow, args.fps, args.start)
    print(f"warping error {mean:.5f} over {len(per_pair)} frame pairs (lower is steadier)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from impasto.studio import serve

    serve(args.host, args.port, extra_hosts=args.allow_host)
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    import dataclasses

    from impasto.networks.compress import DISTILL_SETTINGS, DISTILL_TEXTURE_WEIGHT, compress
    from impasto.networks.fast import FastModel, MULTIPLE
    from impasto.core.modelfile import resolve_model

    settings = dataclasses.replace(DISTILL_SETTINGS, steps=args.steps or DISTILL_SETTINGS.steps, resume=args.resume,
                                   device=args.device)
    bar = Bar(args.quiet, "step", settings.steps)
    try:
        path, how = compress(resolve_model(args.model), args.output, args.photos, int8=args.int8, remove=args.prune,
                             weights=args.style_blend, settings=settings,
                             texture_weight=DISTILL_TEXTURE_WEIGHT if args.texture_weight is None else args.texture_weight,
                             progress=lambda step, total, losses: bar.show(step, total, f"l1 {losses.get('l1', 0):.4f}"))
    finally:
        bar.close()
    if how == "interrupted":
        print(f"impasto: interrupted; the distillation so far is in {path} (add --resume to go on)", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        model = FastModel(path, device="cpu")
        from impasto.networks.compress import conv_macs

        kind = "int8" if model.quantized else "float"
        size = path.stat().st_size / 1e6
        work = "" if model.quantized else f", {conv_macs(model.network.float(), 256, 256) / 1e9:.2f} GMAC at 256 px"
        print(f"wrote {path} ({kind}, {size:.1f} MB{work}; inputs padded to multiples of {MULTIPLE})", file=sys.stderr)
        timing = model.config.get("int8_timing")
        if timing:
            margin = timing.get("margin", 1.0)
            verdict = ("int8 runs here" if model.int8 else
                       f"int8 does not take at most {margin:.2f}x float's time on both, so this file runs its "
                       "float network on this kind of CPU")
            print(f"measured on this CPU ({timing['cpu']}), {timing['side']} px: from launch to the first image "
                  f"int8 {timing['int8_start_s']:.2f} s, float {timing['float_start_s']:.2f} s "
                  f"({timing['int8_start_s'] / timing['float_start_s']:.2f}x); then int8 {timing['int8_s']:.3f} s, "
                  f"float {timing['float_s']:.3f} s per image ({timing['int8_s'] / timing['float_s']:.2f}x): {verdict}",
                  file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import logging

    from impasto.networks.export import export
    from impasto.core.modelfile import resolve_model

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    path = export(resolve_model(args.model), args.output)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from impasto.networks import training_tasks
    from impasto.core.modelfile import resolve_model
    from impasto.networks.training import TrainSettings, format_losses, train

    output, named = training_tasks.output_path(args.output)  # a bare name: one of your models
    defaults = args.training_defaults
    if getattr(args, "from_arbitrary", None) is not None and args.adaptation_defaults:
        defaults = args.adaptation_defaults
    chosen = {name: defaults[name] if getattr(args, name) is None else getattr(args, name) for name in defaults}
    settings = TrainSettings(
        steps=chosen["steps"], batch_size=chosen["batch_size"], learning_rate=chosen["lr"], lr_decay=args.lr_decay,
        seed=args.seed, device=args.device, precision=args.precision, checkpoint_every=args.checkpoint_every,
        preview_every=args.preview_every or 0, resume=args.resume,
        init=str(resolve_model(args.init)) if args.init else None, compile="inductor" if args.compile else None,
    )
    task = training_tasks.task_from(args.kind, vars(args))
    previews = Path(args.previews) if args.previews else output.with_name(output.stem + "-previews")
    bar = Bar(args.quiet, "step", settings.steps)

    def progress(step: int, total: int, losses: dict[str, float]) -> None:
        bar.show(step, total, format_losses(losses))

    for folder in (getattr(task, "content", None), getattr(task, "style", None)):
        note = folder.skipped_note() if folder is not None and hasattr(folder, "skipped_note") else None
        if note:
            print(f"impasto: warning: {note}", file=sys.stderr)
    try:
        report = train(task, settings, output, preview_dir=previews, progress=progress)
    finally:
        bar.close()
    if report.stop_reason == "interrupted":
        print(f"impasto: interrupted at step {report.steps}; wrote {output} and {report.checkpoint_path} "
              f"(continue with --resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(f"wrote {output} ({report.steps} steps, {report.seconds / 60:.1f} min, {format_losses(report.losses)})",
              file=sys.stderr)
        if named:
            print(f"use it by name: impasto stylize --model {output.stem} PHOTO -o OUT", file=sys.stderr)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from impasto.core.modelfile import SHIPPED_DIR, available_models, user_models_dir

    models = available_models()
    if not models:
        print("no trained models ship with this installation (train one with `impasto train`)")
        return 0
    if args.markdown:
        print("| model | kind | styles | data | steps x batch, crop | style weight | hardware | time | final losses |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for model in models:
        t = model.training
        styles = ", ".join(model.config.get("style_names", [])) or "any style"
        losses = ", ".join(f"{k} {v:.4g}" for k, v in (t.get("final_losses") or {}).items())
        minutes = float(t.get("seconds", 0)) / 60
        if args.markdown:
            data = t.get("content_data", "?") + (f"; styles: {t['style_data']}" if "style_data" in t else "")
            stages = "".join(f"{stage.get('steps_done', '?')} x {stage.get('batch_size', '?')}, {stage.get('crop', '?')} px "
                             f"({stage.get('hardware', '?')}, {float(stage.get('seconds', 0)) / 60:.0f} min), then "
                             for stage in t.get("lineage") or [])
            print(f"| {model.path.stem} | {model.kind} | {styles} | {data} | {stages}{t.get('steps_done', '?')} x "
                  f"{t.get('batch_size', '?')}, {t.get('crop', '?')} px | {t.get('style_weight', '?')} | "
                  f"{t.get('hardware', '?')}, {t.get('precision', '?')} | {minutes:.0f} min | {losses} |")
            continue
        mine = "" if model.path.parent == SHIPPED_DIR else f" (yours: {model.path})"
        if model.config.get("quantized"):
            from impasto.networks.int8 import int8_pays

            here = "" if int8_pays(model.config) else "; runs its float network on this CPU"
            mine = f" [{model.config['quantized']}{here}]{mine}"
        print(f"{model.path.stem:24s} {model.kind:14s} {styles}{mine}")
        for stage in t.get("lineage") or []:
            print(f"{'':24s} from {stage.get('model', '?')}: {stage.get('steps_done', '?')} steps, "
                  f"{stage.get('crop', '?')} px crops, {stage.get('hardware', '?')}, "
                  f"{float(stage.get('seconds', 0)) / 60:.0f} min")
        print(f"{'':24s} {t.get('steps_done', '?')} steps, {t.get('crop', '?')} px crops, batch {t.get('batch_size', '?')}, "
              f"{t.get('hardware', '?')}, {minutes:.0f} min; losses: {losses}")
    if not args.markdown:
        print(f"\nyour own models (used by name, listed in the studio): {user_models_dir()}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from impasto import methods
    from impasto.cli.paint import paint_one
    from impasto.core.images import pil_to_tensor
    from impasto.core.samples import painted_style, sample_photo_path
    from impasto.engines.optimize import OptimizeSettings
    from impasto.engines.solver import pyramid_plan
    from impasto.jobs.image_job import ImageJob

    started = time.perf_counter()
    content = sample_photo_path("chelsea.png")
    request = methods.Request(size=args.size, device=args.device, options=OptimizeSettings(iterations=args.iterations))
    job = ImageJob([content], [pil_to_tensor(painted_style(512))], args.output, "optimize", request)
    job.validate()
    if not args.quiet:
        plan = pyramid_plan(args.size, args.iterations, None, OptimizeSettings().pyramid_min)
        steps = f"{args.iterations} iterations"
        if len(plan) > 1:  # as the end says it: the steps of every level, the full size's among them
            steps = f"up to {sum(count for _, count in plan)} steps over the pyramid's {len(plan)} levels " \
                    f"({args.iterations} at full size)"
        print(f"impasto demo: {content.name} (scikit-image) in a brushstroke style impasto paints itself, "
              f"{args.size} px, {steps}", file=sys.stderr)
    code = paint_one(job, args.quiet, args.quiet)
    if code == 0:
        print(f"result: {Path(args.output).resolve()} ({time.perf_counter() - started:.1f} s in all)")
    return code


def cmd_styles(args: argparse.Namespace) -> int:
    from impasto.core.samples import painting_credits

    for name, credit in painting_credits().items():
        print(f"{name:<28} {credit}")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    import dataclasses

    from impasto import methods

    for name in methods.names():
        method = methods.get(name)
        needs = "style images" if method.uses_styles else "a trained model"
        if method.uses_styles and method.model_kind:
            needs += " (and a trained model, one ships)"
        print(f"{name:<11} {method.summary}")
        print(f"{'':<11} needs: {needs}")
        if method.options is not None:
            own = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(method.options)
                            if f.name not in {g.name for g in dataclasses.fields(methods.Request)} | {"style_blend"}
                            and f.default is not dataclasses.MISSING)
            print(f"{'':<11} own options: {own}")
    return 0


def cmd_layers(args: argparse.Namespace) -> int:
    from impasto.core.backbone import layer_names

    print(" ".join(layer_names(args.backbone)))
    return 0
