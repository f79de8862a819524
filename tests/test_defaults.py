"""Each default written once: the command line's flags are the job layer's (jobs.command), its
defaults are the dataclasses' (a job parsed from bare arguments says no flag back), and a job's
command parses back into the same job."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from impasto import methods
from impasto.cli import build_parser
from impasto.cli.paint import clip_job, image_job


def _command(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subcommands.choices[command]


def _settings(command: str) -> list[type]:
    from impasto.core.clips import VideoSettings
    from impasto.engines.dream import DreamSettings
    from impasto.engines.optimize import OptimizeSettings
    from impasto.jobs.clip_job import ClipJob
    from impasto.jobs.image_job import ImageJob

    return {"stylize": [methods.Request, OptimizeSettings, ImageJob],
            "video": [methods.Request, OptimizeSettings, VideoSettings, methods.Temporal, ClipJob],
            "dream": [DreamSettings]}[command]


@pytest.mark.parametrize("command", ["stylize", "video", "dream"])
def test_every_declared_setting_is_a_flag_with_its_help_and_default(command):
    """The flags come from the settings' declarations: each declared field is an option whose help
    is the declaration's and whose default is the field's (or None where the method decides)."""
    from impasto.core.fields import declared, default_of, destination, flag_name

    parser = _command(command)
    actions = parser._option_string_actions
    given_only = _settings("stylize")[1]  # the iterative methods' common settings: each method's own decide
    for settings in _settings(command):
        for field in declared(settings):
            action = actions.get(flag_name(field))
            assert action is not None, f"{command}: {settings.__name__}.{field.name} has no {flag_name(field)}"
            assert action.dest == destination(field)
            assert field.metadata["help"] in action.help.replace("%%", "%")
            if settings is given_only:
                assert action.default is None
            elif not (command == "video" and field.name == "size"):
                assert action.default == default_of(field), f"{flag_name(field)}: {action.default}"


def test_a_setting_declared_on_a_new_dataclass_becomes_a_checked_flag():
    """What a new method or job gets without an edit to the CLI: flag, check, choices, old name."""
    from impasto.cli.flags import Parser
    from impasto.cli.options import add_settings, settings_from
    from impasto.core.fields import setting

    @dataclasses.dataclass
    class Brush:
        width: int = setting(3, check="positive", help="brush width in px")
        shape: str = setting("round", choices=("round", "flat"), help="the tip")
        wet: bool = setting(True, negate=True, flag="--dry", help="paint dry")
        mix: float | None = setting(None, check="share", old=("--blend",), help="how much paint mixes")
        hidden: int = 0

    parser = Parser(prog="brush")
    add_settings(parser, Brush)
    assert settings_from(Brush, parser.parse_args([])) == Brush()
    assert settings_from(Brush, parser.parse_args(["--width", "5", "--shape", "flat", "--dry", "--blend", "0.5"])) == \
        Brush(width=5, shape="flat", wet=False, mix=0.5)
    assert "--hidden" not in parser._option_string_actions
    assert "brush width in px (default 3)" in parser.format_help()
    for bad in (["--width", "0"], ["--shape", "square"], ["--mix", "2"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_every_method_setting_has_its_flag():
    from impasto.core.fields import declared, flag_name
    from impasto.engines.optimize import OptimizeSettings

    flags = set(_command("stylize")._option_string_actions)
    shared = {field.name: flag_name(field) for field in declared(OptimizeSettings)}
    for name in methods.names():
        options = methods.get(name).options
        for field in dataclasses.fields(options) if options is not None else ():
            own = f"--{name}-{field.name.replace('_', '-')}"
            flag = shared.get(field.name, own)
            assert flag in flags or f"--no-{own[2:]}" in flags, f"{name}.{field.name}: no {flag}"


def _stylize(*words: str):
    return image_job(build_parser().parse_args(["stylize", *words]))


def _video(*words: str):
    return clip_job(build_parser().parse_args(["video", *words]))


@pytest.mark.parametrize("method, inputs", [("optimize", ["photo.jpg", "style.jpg"]),
                                            ("neighbours", ["photo.jpg", "style.jpg"]),
                                            ("arbitrary", ["photo.jpg", "style.jpg"]),
                                            ("adain", ["photo.jpg", "style.jpg"])])
def test_bare_arguments_give_the_codes_defaults(method, inputs):
    """The parser's defaults are the Request's and the method's own: the job says no flag back."""
    job = _stylize("--method", method, *inputs, "-o", "out.png")
    assert job.command() == ["stylize", "--method", method, *inputs, "-o", "out.png"]
    assert dataclasses.replace(job.request, options=None, model=None) == methods.Request()


def test_a_fast_models_bare_arguments_give_the_codes_defaults():
    job = _stylize("--model", "mosaic", "photo.jpg", "-o", "out.png")
    assert job.command() == ["stylize", "--model", "mosaic", "photo.jpg", "-o", "out.png"]


@pytest.mark.parametrize("words, said", [
    (["clip.mp4", "-o", "out.mp4", "--model", "mosaic"], ["--model", "mosaic"]),
    (["clip.mp4", "-o", "out.mp4", "--method", "optimize", "--style", "s.jpg"], ["--method", "optimize", "--style", "s.jpg"]),
])
def test_a_clips_bare_arguments_give_the_codes_defaults(words, said):
    from impasto.core.clips import VideoSettings
    from impasto.jobs.clip_job import ClipJob

    job = _video(*words)
    assert job.command() == ["video", "clip.mp4", "-o", "out.mp4", *said]
    bare = ClipJob("clip.mp4", "out.mp4")
    assert (job.temporal, job.clip, job.fill_iterations, job.quietest, job.chunk, job.overlap) == \
        (methods.Temporal(), VideoSettings(), bare.fill_iterations, bare.quietest, bare.chunk, bare.overlap)


@pytest.mark.parametrize("words", [
    ["--method", "optimize", "photo.jpg", "a.jpg", "b.jpg", "-s", "384", "--style-blend", "3,1", "--strength", "0.7",
     "--preserve-color", "luminance", "-n", "20", "--style-weight", "2e4", "--init", "noise", "--seed", "3",
     "--style-scale", "0.8", "-o", "out.png"],
    ["--method", "arbitrary", "photo.jpg", "a.jpg", "--stroke-scale", "2", "--strength", "0.5", "--mask", "m.png",
     "-o", "out.png"],
    ["--method", "neighbours", "photo.jpg", "a.jpg", "-n", "7", "--device", "cpu", "--precision", "fp32",
     "-o", "out.png"],
])
def test_a_jobs_command_parses_back_into_the_same_job(words, tmp_path, monkeypatch):
    from helpers import gradient_photo

    monkeypatch.chdir(tmp_path)
    gradient_photo(64, 48).save("photo.jpg")
    gradient_photo(64, 48).convert("L").save("m.png")
    job = _stylize(*words)
    again = _stylize(*job.command()[1:])
    assert again.command() == job.command()
    assert again.settings() == job.settings()


def test_a_clip_jobs_command_parses_back_into_the_same_job():
    job = _video("clip.mp4", "-o", "out.mp4", "--method", "optimize", "--style", "s.jpg", "-s", "256",
                 "--frame-iterations", "7", "--keyframes", "12", "--fill-iterations", "4", "--temporal-weight", "50",
                 "--independent", "--fps", "12", "--cluster", "--chunk", "20", "--audio-floor", "0.5")
    again = _video(*job.command()[1:])
    assert again.command() == job.command()
    assert "--cluster" in job.command() and "local" not in job.command()
    assert (again.request, again.temporal, again.clip, again.keyframes, again.fill_iterations, again.cluster,
            again.chunk, again.quietest) == (job.request, job.temporal, job.clip, job.keyframes,
                                             job.fill_iterations, "local", 20, 0.5)
