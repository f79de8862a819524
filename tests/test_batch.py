"""Painting many photos into files (impasto.jobs.batch): what a folder command stands on."""

from __future__ import annotations

from helpers import gradient_photo, stripes
from palette_method import Palette

from impasto.core import images
from impasto.jobs.batch import paint_files
from impasto.methods import Request


def _folder(tmp_path):
    sources = []
    for k in range(3):
        path = tmp_path / f"photo{k}.png"
        gradient_photo(40, 30).rotate(90 * k).save(path)
        sources.append(path)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    sources.insert(1, bad)
    out = tmp_path / "out"
    out.mkdir()
    return sources, [out / p.name for p in sources]


def test_a_folder_is_painted_in_batches_and_a_bad_photo_is_reported_and_skipped(tmp_path):
    sources, targets = _folder(tmp_path)
    method = Palette()
    painter = method.prepare([images.pil_to_tensor(stripes(48))], Request(size=32, device="cpu", batch=2))
    progress, errors = [], []
    report = paint_files(method, painter, sources, targets, on_progress=progress.append, on_error=errors.append)
    assert (report.done, report.skipped, report.failed, report.interrupted) == (3, 0, 1, False)
    assert progress[-1] == 4 and len(errors) == 1 and "broken.png" in str(errors[0])
    assert [t.exists() for t in targets] == [True, False, True, True]
    alone = painter.paint(sources[0]).image  # batched photos are painted as one at a time
    assert (images.pil_to_tensor(images.tensor_to_pil(alone)) - images.read_image(targets[0])).abs().max() < 1e-6

    again = paint_files(method, painter, sources, targets, skip_existing=True)
    assert (again.done, again.skipped, again.failed) == (0, 3, 1)


def test_ctrl_c_ends_the_batch_and_keeps_the_finished_files(tmp_path):
    sources, targets = _folder(tmp_path)
    del sources[1], targets[1]
    method = Palette()
    painter = method.prepare([images.pil_to_tensor(stripes(48))], Request(size=32, device="cpu", batch=1))
    painted = painter.paint

    def stop_at_the_second(source, on_step=None):
        if source == sources[1]:
            raise KeyboardInterrupt
        return painted(source, on_step)

    painter.paint = stop_at_the_second
    report = paint_files(method, painter, sources, targets)
    assert report.interrupted and report.done == 1
    assert [t.exists() for t in targets] == [True, False, False]
