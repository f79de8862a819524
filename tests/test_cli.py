import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from impasto import __version__

from helpers import gradient_photo, one_error_line, run_cli, stripes

FAST = ["--size", "48", "--precision", "fp32", "--device", "cpu", "-q"]



@pytest.mark.slow
def test_stylize_writes_output_and_intermediates(capsys, inputs, tmp_path):
    content, style = inputs
    out = tmp_path / "out.png"
    code, _, err = run_cli(capsys, "stylize", content, style, "-o", out, "-n", "4", "--save-every", "2", *FAST)
    assert code == 0, err
    assert Image.open(out).size == (48, 36)
    assert (tmp_path / "out_0002.png").exists() and (tmp_path / "out_0004.png").exists()
    assert content.read_bytes() == content.read_bytes()


def test_save_every_refuses_to_overwrite_inputs_named_like_intermediates(capsys, tmp_path):
    """`stylize se/photo_0002.jpg se/photo_0004.jpg -o se/photo.jpg --save-every 2` once replaced both inputs."""
    content, style = tmp_path / "photo_0002.png", tmp_path / "photo_0004.png"
    gradient_photo().save(content)
    stripes(64).save(style)
    before = content.read_bytes(), style.read_bytes()
    code, _, err = run_cli(capsys, "stylize", content, style, "-o", tmp_path / "photo.png", "-n", "4",
                           "--save-every", "2", *FAST)
    assert code == 2 and "--save-every would overwrite" in one_error_line(err)
    assert (content.read_bytes(), style.read_bytes()) == before
    assert not (tmp_path / "photo.png").exists()


@pytest.mark.slow
def test_result_is_rescued_when_the_final_write_fails(capsys, inputs, tmp_path, monkeypatch):
    """A full disk at the very end used to lose the whole run: the result goes to a fallback name."""
    from impasto.core import images

    content, style = inputs
    out = tmp_path / "out.png"
    real_save = images.save_image

    def failing_for_the_output(image, path, *args, **kwargs):
        if str(path) == str(out):
            raise images.ImpastoError("cannot write output (No space left on device)", path)
        return real_save(image, path, *args, **kwargs)

    monkeypatch.setattr(images, "save_image", failing_for_the_output)
    code, _, err = run_cli(capsys, "stylize", content, style, "-o", out, "-n", "2", *FAST)
    line = one_error_line(err)
    assert code == 2 and "No space left" in line and "saved to" in line
    rescued = list(tmp_path.glob("out.rescued-*.png"))
    assert len(rescued) == 1 and str(rescued[0]) in line and Image.open(rescued[0]).size == (48, 36)
    assert not out.exists()


@pytest.mark.slow
def test_summary_line_without_quiet(capsys, inputs, tmp_path):
    content, style = inputs
    code, _, err = run_cli(capsys, "stylize", content, style, "-o", tmp_path / "o.webp", "-n", "2",
                           "--size", "40", "--device", "cpu")
    assert code == 0
    assert "wrote" in err and "40x30" in err


@pytest.mark.slow
def test_two_styles_with_blend_and_layer_options(capsys, inputs, tmp_path):
    content, style = inputs
    style2 = tmp_path / "style2.png"
    stripes(64, vertical=False).save(style2)
    code, _, err = run_cli(capsys, "stylize", content, style, style2, "-o", tmp_path / "o.png", "-n", "2",
                           "--style-blend", "3,1", "--style-layers", "relu1_1,relu2_1,relu3_1",
                           "--style-layer-weights", "1,0.5,0.25", "--content-layers", "relu3_2",
                           "--optimizer", "adam", "--lr", "0.01", "--init", "noise", "--seed", "3", *FAST)
    assert code == 0, err


@pytest.mark.parametrize(
    "make_args, fragment",
    [
        (lambda c, s, t: ["stylize", t / "missing.jpg", s, "-o", t / "o.png"], "missing.jpg: file not found"),
        (lambda c, s, t: ["stylize", c, t / "notes.png", "-o", t / "o.png"], "notes.png: not an image"),
        (lambda c, s, t: ["stylize", c, t / "cut.png", "-o", t / "o.png"], "cut.png: truncated or corrupt"),
        (lambda c, s, t: ["stylize", c, s, "-o", t / "o.png", "--max-pixels", "100"], "content.png: image is 64x48"),
        (lambda c, s, t: ["stylize", c, s, "-o", t / "o.png", "--size", "8"], "smaller than the 16 px"),
        (lambda c, s, t: ["stylize", c, s, "-o", t / "o.png", "--style-layers", "relu1_1,relu6_1"], "unknown layer 'relu6_1'"),
        (lambda c, s, t: ["stylize", c, s, "-o", t / "o.png", "--size", "-5"], "--size: must be a positive"),
        (lambda c, s, t: ["stylize", c, s, "-o", t / "o.png", "--size", "0"], "--size: must be a positive"),
        (lambda c, s, t: ["stylize", c, s, "-o", t / "o.png", "-n", "0"], "--iterations: must be a positive"),
        (lambda c, s, t: ["stylize", c, s, "-o", t / "o.png", "--weights", t / "bad.pth"], "bad.pth: wrong shape"),
        (lambda c, s, t: ["stylize", c, s, "-o", t / "nowhere" / "o.png"], "folder does not exist"),
        (lambda c, s, t: ["stylize", c, s, "-o", "/proc/o.png"], "not writable"),
        (lambda c, s, t: ["stylize", c, s, "-o", t / "o.gifx"], "unknown output format"),
        (lambda c, s, t: ["stylize", c, s, "-o", c], "refusing to overwrite an input"),
        (lambda c, s, t: ["stylize", c, s, "-o", t / "o.png", "--style-blend", "1,2"], "2 style blend weights given for 1"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, inputs, tmp_path, make_args, fragment):
    content, style = inputs
    (tmp_path / "notes.png").write_text("not a picture")
    full = (tmp_path / "full.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(full)
    (tmp_path / "cut.png").write_bytes(full.read_bytes()[:20000])
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64),
                "features.2.weight": torch.zeros(64, 3, 3, 3), "features.2.bias": torch.zeros(64)},
               tmp_path / "bad.pth")
    before = content.read_bytes()
    args = [str(a) for a in make_args(content, style, tmp_path)]
    extra = ["--precision", "fp32", "--device", "cpu", "-q"] + ([] if "--size" in args else ["--size", "48"])
    code, out, err = run_cli(capsys, *args, *extra)
    assert code == 2
    line = one_error_line(err)
    assert fragment in line, line
    assert content.read_bytes() == before  # inputs untouched
    assert not (tmp_path / "o.png").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_absent_is_exit_2(capsys, inputs, tmp_path):
    content, style = inputs
    code, _, err = run_cli(capsys, "stylize", content, style, "-o", tmp_path / "o.png", "--device", "cuda", "-q")
    assert code == 2 and "CUDA was asked for but is not available" in one_error_line(err)


def test_nan_loss_keeps_last_good_image(capsys, inputs, tmp_path):
    content, style = inputs
    out = tmp_path / "o.png"
    code, _, err = run_cli(capsys, "stylize", content, style, "-o", out, "--optimizer", "sgd", "--lr", "1e30",
                           "-n", "10", *FAST)
    assert code == 1
    assert "NaN or infinite" in err and out.exists()


def test_version_and_help():
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-m", "impasto", "--version"], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stdout.strip() == f"impasto {__version__}"
    helped = subprocess.run([sys.executable, "-m", "impasto", "stylize", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "--style-weight" in helped.stdout and "--save-every" in helped.stdout


def test_layers_command(capsys):
    code, out, _ = run_cli(capsys, "layers", "--backbone", "vgg16")
    assert code == 0 and out.split()[0] == "conv1_1" and "conv5_3" in out and "conv5_4" not in out


@pytest.mark.slow
def test_ctrl_c_writes_current_image(inputs, tmp_path):
    content, style = inputs
    out = tmp_path / "o.png"
    proc = subprocess.Popen(
        [sys.executable, "-m", "impasto", "stylize", str(content), str(style), "-o", str(out), "-n", "100000",
         "--size", "48", "--device", "cpu", "--tolerance", "0", "--save-every", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 120
    while not (tmp_path / "o_0003.png").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted after" in err and "Traceback" not in err
    assert Image.open(out).size == (48, 36)


def test_a_built_in_painting_is_a_style_by_its_name(capsys, tmp_path):
    from helpers import run_cli
    from impasto.core.samples import painting_credits, paintings

    assert len(paintings()) >= 6 and set(painting_credits()) == set(paintings())  # every painting credited
    code, out, _ = run_cli(capsys, "styles")
    assert code == 0 and "The Starry Night, Vincent van Gogh (1853-1890), 1889" in out
    photo = tmp_path / "p.png"
    from helpers import gradient_photo

    gradient_photo(48, 40).save(photo)
    code, _, err = run_cli(capsys, "stylize", "--method", "adain", photo, "the_scream", "-o", tmp_path / "o.png",
                           "-s", 48, "-q")
    assert code == 0, err
    code, _, err = run_cli(capsys, "stylize", "--method", "adain", photo, "no_such_painting", "-o",
                           tmp_path / "o2.png", "-s", 48, "-q")
    assert code == 2 and "no_such_painting" in err


def test_version_and_the_command_list_start_without_pytorch():
    import subprocess
    import sys

    probe = ("import sys, contextlib, io, impasto.cli as cli\n"
             "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
             "    codes = [cli._run(['--version']), cli._run(['--help'])]\n"
             "print(codes, 'torch' in sys.modules, 'compress' in out.getvalue())")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "[0, 0] False True", done.stderr


def test_a_still_image_command_does_not_load_the_clip_pipeline(tmp_path):
    """OpenCV (the clip pipeline's flow) costs 0.1 s of a still image's whole command."""
    import subprocess
    import sys

    probe = ("import sys, impasto.cli as cli\n"
             "cli.build_parser(light=False)\n"
             "print('torch' in sys.modules, 'cv2' in sys.modules, 'impasto.jobs.clip' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "True False False", done.stderr


@pytest.mark.parametrize("flags, flag", [(["--tile-size", "10"], "--tile-size"), (["--optimizer", "adam", "--ema", "1.5"], "--ema"),
                                         (["--style-layers", "relu9_1"], "--style-layers"), (["--device", "tpu"], "--device")])
def test_a_bad_value_names_its_flag(inputs, tmp_path, capsys, flags, flag):
    content, style = inputs
    code, _, err = run_cli(capsys, "stylize", content, style, "-o", tmp_path / "out.png", "-n", "1", *flags)
    assert code == 2 and one_error_line(err).startswith(f"impasto: error: {flag}: ")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("encoding", [None, "ascii"])
def test_a_latin1_file_name_is_printed_as_the_shell_shows_it(tmp_path, encoding):
    """Names that are not UTF-8 were printed with surrogate escapes (out_\\udce9.png)."""
    folder = os.fsencode(tmp_path)
    gradient_photo(48, 36).save(os.fsdecode(folder + b"/photo_\xe9.png"))
    env = {**os.environ, **({"PYTHONIOENCODING": encoding} if encoding else {})}
    done = subprocess.run([sys.executable, "-m", "impasto", "stylize", "--method", "adain", b"photo_\xe9.png",
                           "the_scream", "-o", b"out_\xe9.png", "-s", "32", "--device", "cpu"],
                          cwd=tmp_path, env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(b"wrote out_\xe9.png (32x24") and b"\\udc" not in done.stderr
    assert os.path.exists(folder + b"/out_\xe9.png")
    missing = subprocess.run([sys.executable, "-m", "impasto", "stylize", "--method", "adain", b"gone_\xe9.png",
                              "the_scream", "-o", b"out.png"], cwd=tmp_path, env=env, capture_output=True)
    assert missing.returncode == 2 and missing.stderr == b"impasto: error: gone_\xe9.png: file not found\n"


def test_text_the_terminal_cannot_encode_is_escaped_not_an_error():
    import codecs

    from impasto.cli.output import _file_name_bytes

    codecs.register_error("impasto.names", _file_name_bytes)  # as the command does, leaving pytest's streams be
    assert "café_\udce9.png".encode("ascii", "impasto.names") == b"caf\\xe9_\xe9.png"


@pytest.mark.parametrize("command, old, new, dest, value, parsed", [
    (["stylize", "p.png", "s.png", "-o", "o.png"], "--style-mix", "--style-blend", "style_blend", "1,3", [1.0, 3.0]),
    (["stylize", "p.png", "s.png", "-o", "o.png"], "--alpha", "--strength", "strength", "0.8", 0.8),
    (["dream", "p.png", "-o", "o.png"], "--strength", "--step-size", "step_size", "1.5", 1.5),
])
def test_an_old_flag_name_still_works_and_says_the_new_one(capsys, command, old, new, dest, value, parsed):
    from impasto.cli import build_parser

    parser = build_parser()
    assert getattr(parser.parse_args([*command, new, value]), dest) == parsed
    assert capsys.readouterr().err == ""
    assert getattr(parser.parse_args([*command, old, value]), dest) == parsed
    assert capsys.readouterr().err == f"impasto: note: {old} is an old name; use {new} (the old one will go)\n"
    sub = next(a for a in parser._actions if a.dest == "command").choices[command[0]]
    assert old not in sub.format_help() and new in sub.format_help()


def test_the_dream_step_size_reaches_the_dreamer(capsys, tmp_path, monkeypatch):
    from impasto.core.errors import ImpastoError
    from impasto.engines import dream

    seen = []

    def made(self, settings, *args, **kwargs):
        seen.append(settings)
        raise ImpastoError("seen")

    monkeypatch.setattr(dream.Dreamer, "__init__", made)
    gradient_photo(48, 36).save(tmp_path / "p.png")
    code, _, err = run_cli(capsys, "dream", tmp_path / "p.png", "-o", tmp_path / "o.png", "--step-size", "2.5")
    assert code == 2 and err == "impasto: error: seen\n" and seen[0].step_size == 2.5


def test_the_demo_runs_and_its_banner_agrees_with_its_end(capsys, tmp_path):
    """The demo's banner said 50 iterations and its end 237; its painted style once made it fail."""
    out = tmp_path / "demo.png"
    code, stdout, err = run_cli(capsys, "demo", "-o", out, "-s", "64", "-n", "2", "--device", "cpu")
    assert code == 0, err
    banner, end = [line for line in err.splitlines() if line.startswith(("impasto demo:", "wrote"))]
    assert banner.endswith("64 px, 2 iterations") and ", 2 iterations, " in end
    assert Image.open(out).size[0] == 64 and str(out) in stdout


def test_the_demo_banner_counts_the_pyramid_as_the_end_does(capsys, tmp_path, monkeypatch):
    from impasto.cli import paint

    monkeypatch.setattr(paint, "paint_one", lambda *args, **kwargs: 1)  # the banner only
    code, _, err = run_cli(capsys, "demo", "-o", tmp_path / "demo.png", "--device", "cpu")
    assert code == 1 and err.strip().endswith("512 px, up to 237 steps over the pyramid's 3 levels (50 at full size)")
