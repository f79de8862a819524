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
from impasto.jobs.command import OPTION_FLAGS, REQUEST_FLAGS


def _flags(command: str) -> set[str]:
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(subcommands.choices[command]._option_string_actions)


@pytest.mark.parametrize("command", ["stylize", "video"])
def test_every_request_field_has_the_flag_the_job_layer_names(command):
    assert set(REQUEST_FLAGS) == {f.name for f in dataclasses.fields(methods.Request)} - {"options"}
    missing = {flag for flag in REQUEST_FLAGS.values() if flag not in _flags(command)}
    assert not missing, f"{command} lacks {missing}"


def test_every_method_setting_has_its_flag():
    flags = _flags("stylize")
    for name in methods.names():
        options = methods.get(name).options
        for field in dataclasses.fields(options) if options is not None else ():
            own = f"--{name}-{field.name.replace('_', '-')}"
            flag = OPTION_FLAGS.get(field.name, own)
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
                 "--independent", "--fps", "12")
    again = _video(*job.command()[1:])
    assert again.command() == job.command()
    assert (again.request, again.temporal, again.clip, again.keyframes, again.fill_iterations) == \
        (job.request, job.temporal, job.clip, job.keyframes, job.fill_iterations)
