"""The whole command line, built in one place."""

from __future__ import annotations

import argparse

from impasto import __version__
from impasto.cli.flags import Parser, add_shift_share, float_list, name_list, non_negative_float, non_negative_int, port, positive_float, positive_int
from impasto.cli.options import add_cluster_options, add_dream_parser, add_engine_options, add_settings, add_training_options, fast_defaults


def build_parser(light: bool = False) -> argparse.ArgumentParser:
    """The whole command line; ``light``: the commands without their options, for ``impasto``,
    ``--help`` and ``--version``, so that those start without importing PyTorch."""
    method_names = None
    if not light:
        from impasto.methods import REGISTRY

        method_names = tuple(REGISTRY)
    parser = Parser(prog="impasto", description="Neural style transfer: repaint a photo in the style of artworks.")
    parser.add_argument("--version", action="version", version=f"impasto {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    stylize = commands.add_parser(
        "stylize", help="repaint a photo in the style of artworks (optimisation, a trained model, any-painting networks)",
        description="impasto stylize CONTENT STYLE... -o OUT             optimise the pixels (best quality)\n"
                    "impasto stylize --method arbitrary CONTENT STYLE... -o OUT   any painting, one pass of a small network\n"
                    "impasto stylize --method adain CONTENT STYLE... -o OUT   any style, one forward pass (AdaIN)\n"
                    "impasto stylize --method neighbours CONTENT STYLE... -o OUT   the style's own textures, no training\n"
                    "impasto stylize --model MODEL CONTENT... -o OUT      a trained feed-forward model\n"
                    "CONTENT may be a folder of photos (OUT is then a folder); see `impasto methods`",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    stylize.add_argument("inputs", metavar="CONTENT STYLE", nargs="+",
                         help="the photo (or a folder of photos), then the style image(s) or built-in paintings' "
                              "names (`impasto styles`; several are blended); "
                              "with a feed-forward --model, only photos and folders of photos")
    stylize.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp, .tif = 16-bit), or folder")
    stylize.add_argument("--method", choices=method_names, default=None,
                         help="(default: optimize; the model's method when --model is given; see `impasto methods`)")
    stylize.add_argument("--model", default=None,
                         help="a trained model: a file, or the name of one that ships (see `impasto models`)")
    stylize.add_argument("--save-every", type=positive_int, default=None, metavar="N",
                         help="also write OUTPUT_NNNN.ext every N iterations")
    stylize.add_argument("--overwrite-input", action="store_true", help="allow OUTPUT to be one of the inputs")
    stylize.add_argument("--record", action="store_true",
                         help="keep the result, its inputs, settings and command in the history the studio "
                              "shows (one image; IMPASTO_HISTORY or the user's data folder)")
    stylize.add_argument("--skip-existing", action="store_true",
                         help="batches: leave outputs that exist alone (to resume a stopped batch)")
    stylize.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    if not light:
        add_cluster_options(stylize)
        add_engine_options(stylize)

    demo = commands.add_parser("demo", help="stylize a bundled sample photo with a style impasto paints itself",
                               description="Offline demo: scikit-image's cat photo in a procedural brushstroke style.")
    demo.add_argument("-o", "--output", default="impasto-demo.png", help="(default %(default)s)")
    demo.add_argument("-s", "--size", type=positive_int, default=512, help="(default %(default)s)")
    demo.add_argument("-n", "--iterations", type=positive_int, default=50, help="(default %(default)s)")
    demo.add_argument("--device", default="auto")
    demo.add_argument("-q", "--quiet", action="store_true")

    commands.add_parser("methods", help="list the style-transfer methods, what each needs, and their own options")
    commands.add_parser("styles", help="list the built-in paintings (public domain): use a name as a STYLE")

    layers = commands.add_parser("layers", help="list the layer names of a backbone")
    layers.add_argument("--backbone", choices=("vgg19", "vgg16"), default="vgg19")

    models = commands.add_parser("models", help="list the trained models that ship with impasto")
    models.add_argument("--markdown", action="store_true", help="a provenance table (as in the package's PROVENANCE.md)")

    from impasto.networks.training_tasks import ADAPTATION, RECIPES
    from impasto.networks.training_tasks import default as task_default

    fast_default = fast_defaults(light)

    train = commands.add_parser("train", help="train a network (feed-forward per style, or the AdaIN decoder)")
    kinds = train.add_subparsers(dest="kind", metavar="KIND", parser_class=Parser, required=True)
    adain = kinds.add_parser("adain", help="train an AdaIN decoder on folders of photos and paintings")
    adain.add_argument("--content", required=True, metavar="DIR", help="folder of content photos")
    adain.add_argument("--style", required=True, metavar="DIR", help="folder of style images")
    adain.add_argument("--style-weight", type=non_negative_float, default=task_default("adain", "style_weight"),
                       help="(default %(default)s)")
    adain.add_argument("--hold-out", type=name_list, default=None, metavar="NAMES",
                       help="comma-separated style file names to keep out of training (for a held-out check)")
    adain.add_argument("--upsample", choices=("nearest", "bilinear"), default=task_default("adain", "upsample"),
                       help="decoder upsampling: nearest (the paper's) or bilinear (no 8 px grid on flat areas) "
                            "(default %(default)s)")
    adain.add_argument("--shift-weight", type=non_negative_float, default=task_default("adain", "shift_weight"),
                       help="weight of the shift-consistency loss (as in train fast: the photo moved by a few "
                            "pixels must decode to the picture moved as much; default %(default)s)")
    add_shift_share(adain, "1")
    add_training_options(adain, crop=task_default("adain", "crop"), recipe=RECIPES["adain"])

    arbitrary = kinds.add_parser("arbitrary", help="train the any-painting network (a style predictor and a "
                                                   "feed-forward network) on folders of photos and paintings")
    arbitrary.add_argument("--content", required=True, metavar="DIR", help="folder of content photos")
    arbitrary.add_argument("--style", required=True, metavar="DIR", help="folder of paintings")
    arbitrary.add_argument("--width", type=positive_float, default=task_default("arbitrary", "width"),
                           help="channel multiplier of the feed-forward network (default %(default)s)")
    arbitrary.add_argument("--style-weight", type=non_negative_float, default=task_default("arbitrary", "style_weight"),
                           help="style loss against content loss, both relative (default %(default)s)")
    arbitrary.add_argument("--style-loss", default=task_default("arbitrary", "style_loss"),
                           help="gram: Gram matrices; swd: the sliced Wasserstein distance between the feature "
                                "distributions, on fresh directions each step (default %(default)s)")
    arbitrary.add_argument("--shift-weight", type=non_negative_float, default=task_default("arbitrary", "shift_weight"),
                           help="weight of the shift-consistency loss (default %(default)s)")
    add_shift_share(arbitrary, "0.25")
    arbitrary.add_argument("--upsample", choices=("nearest", "bilinear"), default=task_default("arbitrary", "upsample"),
                           help="the network's two 2x upsamplings; nearest lets it paint a 2 px stripe pattern "
                                "(default %(default)s)")
    arbitrary.add_argument("--style-crop", type=positive_int, default=task_default("arbitrary", "style_crop"),
                           help="painting crop size in px (default %(default)s)")
    arbitrary.add_argument("--style-shorter-side", type=positive_int,
                           default=task_default("arbitrary", "style_shorter_side"),
                           help="paintings are scaled to this shorter side before cropping (default %(default)s)")
    arbitrary.add_argument("--procedural", type=non_negative_int, default=task_default("arbitrary", "procedural"),
                           help="procedural brushstroke paintings added to the paintings (default %(default)s)")
    arbitrary.add_argument("--hold-out", type=name_list, default=None, metavar="NAMES",
                           help="comma-separated painting file names to keep out of training (for a held-out check)")
    arbitrary.add_argument("--start-from", default=None, metavar="MODEL",
                           help="take the convolutions (and the starting norms) from a trained feed-forward model "
                                "of the same width (file or shipped name)")
    arbitrary.add_argument("--preview-image", default=None, metavar="IMAGE", help="photo to show in previews")
    add_training_options(arbitrary, crop=task_default("arbitrary", "crop"), recipe=RECIPES["arbitrary"])

    fast = kinds.add_parser("fast", help="train a feed-forward network for one style (or several: conditional norm)")
    fast.add_argument("--style", required=True, action="append", metavar="IMAGE",
                      help="style image; repeat for a multi-style network (blend them with stylize --style-blend)")
    fast.add_argument("--data", required=True, metavar="DIR", help="folder of content photos")
    fast.add_argument("--width", type=positive_float, default=task_default("fast", "width"),
                      help="channel multiplier; 0.5 = a smaller, faster network (see docs/figures.md; default %(default)s)")
    fast.add_argument("--style-size", type=positive_int, default=None,
                      help="long side of the style image(s) (default: the --shorter-side)")
    fast.add_argument("--content-weight", type=non_negative_float, default=task_default("fast", "content_weight"),
                      help="(default %(default)s)")
    fast.add_argument("--style-loss", default=task_default("fast", "style_loss"),
                      help="gram: Gram matrices; swd: the sliced Wasserstein distance between the feature "
                           "distributions, on fresh directions each step (default: gram; with --from-arbitrary "
                           "the loss and weight the arbitrary network trained with)")
    fast.add_argument("--style-weight", type=non_negative_float, default=None,
                      help="weight of the style loss against the content loss; both are relative (each layer "
                           "divided by its target's scale), so it means the same for any painting "
                           f"(default {fast_default['style_weight']}; with --from-arbitrary and no --style-loss: "
                           "the arbitrary network's own)")
    fast.add_argument("--network-output", choices=("direct", "residual"), default=task_default("fast", "network_output"),
                      help="direct: the network paints every pixel (default); residual: it adds a change to "
                           "the photo (impasto 0.2's networks)")
    fast.add_argument("--upsample", choices=("nearest", "bilinear"), default=task_default("fast", "upsample"),
                      help="the network's two 2x upsamplings (default %(default)s)")
    fast.add_argument("--tv-weight", type=non_negative_float, default=task_default("fast", "tv_weight"),
                      help="(default %(default)s)")
    fast.add_argument("--shift-weight", type=non_negative_float, default=None,
                      help="weight of the shift-consistency loss: the painting of a photo moved by a few pixels "
                           "must be the painting moved as much (no lattice tied to the pixel grid, steadier "
                           f"video; 0: off; default {fast_default['shift_weight']})")
    add_shift_share(fast, fast_default["shift_share"])
    fast.add_argument("--edge-weight", type=non_negative_float, default=task_default("fast", "edge_weight"),
                      help="weight of the edge-consistency loss: a photo's edge must be painted as its inside is "
                           "(no frame along the sides; 0: off; default %(default)s)")
    fast.add_argument("--frame-weight", type=non_negative_float, default=task_default("fast", "frame_weight"),
                      help="weight of the frame-light loss: a side of the painting may be no lighter or darker "
                           "than the next 8 px inward by more than the photo's side is (0: off; default %(default)s)")
    fast.add_argument("--preview-image", default=None, metavar="IMAGE",
                      help="photo to show in previews (default: a crop from --data)")
    fast.add_argument("--from-arbitrary", nargs="?", const="arbitrary", default=None, metavar="MODEL",
                      help="start from the arbitrary-style network's prediction for the painting (default: the "
                           "shipped one) and train only the norms: a model of your painting in minutes")
    fast.add_argument("--adapt-all", action="store_true",
                      help="with --from-arbitrary: train every weight, not only the norms")
    add_training_options(fast, crop=task_default("fast", "crop"), recipe=RECIPES["fast"], adaptation=ADAPTATION)

    video = commands.add_parser(
        "video", help="stylize a clip (video file or folder of frames) with temporal coherence",
        description="Stylize a clip with any method; frames are stabilised with optical flow. Rerun the same "
                    "command to resume: finished frames are kept.")
    video.add_argument("input", metavar="IN", help="video file (mp4, webm, mov, mkv, gif, ...) or folder of numbered frames")
    video.add_argument("-o", "--output", required=True, help="video file (.mp4, .webm, .mov, .mkv, .gif) or a folder of frames")
    video.add_argument("--style", action="append", default=None, metavar="IMAGE",
                       help="style image (every method but fast); repeat to blend")
    video.add_argument("--method", choices=method_names, default=None,
                       help="(default: optimize; the model's method when --model is given; see `impasto methods`)")
    video.add_argument("--model", default=None, help="a trained model file or shipped model name")
    video.add_argument("--record", action="store_true",
                       help="keep the video, its inputs, settings and command in the history the studio shows")
    if not light:  # a clip's settings and defaults are the job's (the light parser only shows the commands)
        from impasto.core.clips import VideoSettings
        from impasto.jobs.clip_job import ClipJob
        from impasto.methods import Temporal

        for settings in (VideoSettings, Temporal, ClipJob):
            add_settings(video, settings)
        add_engine_options(video, defaults={"size": VideoSettings().size})  # a clip's own size
    video.add_argument("-q", "--quiet", action="store_true")

    score = commands.add_parser("score-video", help="temporal consistency: the warping error of a stylized clip",
                                description="Mean squared difference (RGB in [0, 1], summed over channels) between "
                                            "each stylized frame and the previous one warped by the ORIGINAL clip's "
                                            "optical flow, over pixels where the flow is reliable. Lower is steadier.")
    score.add_argument("original", metavar="ORIGINAL")
    score.add_argument("stylized", metavar="STYLIZED")
    score.add_argument("--flow", choices=("dis", "farneback"), default="dis")
    score.add_argument("--fps", type=positive_float, default=None, help="for folders of frames")
    score.add_argument("--start", type=non_negative_int, default=0,
                       help="the ORIGINAL's frame where STYLIZED begins (for clips made with --start/--end)")

    serve = commands.add_parser("serve", help="start the local web studio",
                                description="A web app for every method: create, video, camera, gallery.")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s: this machine only)")
    serve.add_argument("--port", type=port, default=7860, help="(default %(default)s)")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="also answer requests for this host name (e.g. this machine's name on the "
                            "network when --host 0.0.0.0); repeat; '*' = any (default: localhost and --host)")

    add_dream_parser(commands, light)

    small = commands.add_parser(
        "compress", help="a smaller, faster feed-forward model: int8 (CPU) and/or pruned channels",
        description="impasto compress MODEL -o SMALL.pt --int8 --photos DIR        int8 for x86 CPUs\n"
                    "impasto compress MODEL -o SMALL.pt --prune 0.5 --photos DIR   half the work, distilled\n"
                    "The photos calibrate int8 and teach the pruned network (no style image needed).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    small.add_argument("model", metavar="MODEL", help="a feed-forward model file or shipped model name")
    small.add_argument("-o", "--output", required=True,
                       help="the compressed model file (.pt); with --int8, a .onnx name writes ONNX Runtime's "
                            "int8 (QDQ) instead, for running elsewhere")
    small.add_argument("--photos", required=True, metavar="DIR", help="a folder of photos (any; 16 or more)")
    small.add_argument("--int8", action="store_true", help="8-bit integer arithmetic (x86 CPUs)")
    small.add_argument("--prune", type=non_negative_float, default=0.0, metavar="F",
                       help="remove this fraction of the network's work (channels), then distil (e.g. 0.5)")
    small.add_argument("--style-blend", type=float_list, default=None,
                       help="int8 of a multi-style model: the blend to build in (default: its first style)")
    small.add_argument("--steps", type=positive_int, default=None,
                       help="distillation steps after pruning (default 300)")
    small.add_argument("--texture-weight", type=non_negative_float, default=None, metavar="W",
                       help="distillation: weight of the texture term (Gram matrices of the VGG features of "
                            "both networks' paintings) beside the pixels' L1; 0 for pixels only (default 0.3)")
    small.add_argument("--resume", action="store_true", help="go on with a stopped distillation")
    small.add_argument("--device", default="auto", help="for the distillation: auto (default), cpu, cuda, mps")
    small.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    export = commands.add_parser("export", help="export a feed-forward model to ONNX or TorchScript",
                                 description="The exported network takes (image N x 3 x H x W in [0, 1], H and W "
                                             "multiples of 4; mix: one weight per style) and returns the image.")
    export.add_argument("model", metavar="MODEL", help="model file or shipped model name")
    export.add_argument("-o", "--output", required=True, help="model.onnx or model.ts (TorchScript)")
    return parser
