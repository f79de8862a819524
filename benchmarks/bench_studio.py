"""Checks of the studio (not timed tests): its estimates against the real time, and a load check.

Run from the repository root (after `make install`):

    .venv/bin/python benchmarks/bench_studio.py --estimates                       # every method
    .venv/bin/python benchmarks/bench_studio.py --estimates --methods adain fast --sides 512 12mp
    .venv/bin/python benchmarks/bench_studio.py --clients 20                       # the load check
    .venv/bin/python benchmarks/bench_studio.py --preview --changes 5              # the instant preview
    .venv/bin/python benchmarks/bench_studio.py --brush --strokes 5                # the brush

``--estimates``: for each method and size (a long side in px, or ``12mp``: a 4000x3000 photo at its
own size), the Create tab's job (:class:`impasto.jobs.image_job.ImageJob`, the photo in memory) is
estimated by :mod:`impasto.jobs.estimate` from a fresh history (the first guess, a calibration),
run and recorded, estimated again (after one earlier run) and run again; the ratio estimate / real
time of each is printed (the goal: within 1.5x after one earlier run).  Sizes run in the order given,
so ``12mp`` after ``512`` also shows the 12 MP estimate made from the 512 px run alone.  Iterative
methods run ``--iterations`` (default: their own) at every size.

The load check starts `impasto serve` in its own process, submits N stylization jobs at the same
moment through Gradio's own client (each a separate session, like N browsers), and reports how many
were answered, how many finished, the longest wait, the queue positions clients were told, and the
server's resident memory before, at its peak and after.  The jobs use a shipped fast model at 256 px
so that the check measures the queue, not the stylization.

``--preview``: the Create tab's instant preview as a user sees it, in a headless Chromium (Debian's
package, driven by Playwright as in tests/test_studio.py): the studio starts in this process, a
1024x768 photo (``../shared/data/content/tubingen.jpg`` beside the project, or a generated one) and
one built-in painting are uploaded, and after the first preview the strength slider is moved
``--changes`` times; each change is timed from typing the slider's new value until the preview
picture on the page is a new one.  The median and the longest are printed, with the server's own painting time
(the preview's note) beside each.  ``--render-first``: the same after one small Render.

``--brush``: on the same page, ``--strokes`` strokes of 20 moves are drawn on the photo; each move is
timed until the page has handled the mouse event and until its next animation frame (drawn).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimates", action="store_true", help="check the estimates against the real time")
    parser.add_argument("--methods", nargs="+", default=["arbitrary", "adain", "fast", "neighbours", "optimize"])
    parser.add_argument("--sides", nargs="+", default=["512", "12mp"])
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--method", default="fast", choices=("fast", "adain", "optimize"))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--preview", action="store_true", help="time the instant preview from the page")
    parser.add_argument("--changes", type=int, default=5, help="strength changes timed by --preview")
    parser.add_argument("--brush", action="store_true", help="time the Create tab's brush on the photo")
    parser.add_argument("--strokes", type=int, default=5, help="strokes of 20 moves timed by --brush")
    parser.add_argument("--render-first", action="store_true",
                        help="--preview after one Render (a small one), as a user who has rendered once")
    parser.add_argument("--photo", default=str(ROOT.parent / "shared" / "data" / "content" / "tubingen.jpg"))
    args = parser.parse_args()
    if args.estimates:
        estimates(args)
    elif args.preview:
        preview_latency(args)
    elif args.brush:
        brush_latency(args)
    else:
        load_check(args)


def estimates(args: argparse.Namespace) -> None:
    import tempfile

    from impasto import methods
    from impasto.core import images
    from impasto.core.modelfile import available_models
    from impasto.core.samples import paintings, sample_photo_path
    from impasto.jobs.estimate import Estimator, work_of
    from impasto.jobs.history import History
    from impasto.jobs.image_job import ImageJob

    sample = images.as_tensor(sample_photo_path("chelsea.png"))
    style = images.as_tensor(next(iter(paintings().values())))
    fast_model = next(m.path for m in available_models() if m.kind == "fast")
    rows = []
    for name in args.methods:
        method = methods.get(name)
        history = History(tempfile.mkdtemp(prefix="impasto-bench-history-"))
        estimator = Estimator(history)
        for side in args.sides:
            photo = images.resize(sample, (3000, 4000)) if side == "12mp" else sample
            request = methods.Request(size=None if side == "12mp" else int(side), max_pixels=50_000_000,
                                      model=fast_model if method.model_required else None)
            if args.iterations and method.options is not None:
                request.options = method.options(iterations=args.iterations)
            for attempt in ("first", "again"):
                job = ImageJob([photo], [style] if method.uses_styles else [], method=name, request=request)
                work = work_of(job)
                began = time.perf_counter()
                guessed_seconds, guessed = estimator.seconds(work)
                asking = time.perf_counter() - began
                report = job.run()
                job.record(report, history)
                rows.append({"method": name, "side": side, "run": attempt, "first_guess": guessed,
                             "estimate": round(guessed_seconds, 2), "real": round(report.seconds, 2),
                             "ratio": round(guessed_seconds / report.seconds, 2), "estimate_took": round(asking, 2)})
                print(json.dumps(rows[-1]), flush=True)
    print("\n| method | size | run | estimate (s) | real (s) | estimate / real |\n|---|---|---|---|---|---|")
    for row in rows:
        kind = "first guess" if row["first_guess"] else "fitted"
        print(f"| {row['method']} | {row['side']} | {row['run']} ({kind}) | {row['estimate']} | {row['real']} | "
              f"{row['ratio']} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"studio-estimates-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(rows, indent=2))


def upload(url: str, path: Path) -> str:
    """The file sent to the studio's upload route, as a page sends it: its path on the server."""
    import httpx

    with open(path, "rb") as handle:
        answer = httpx.post(f"{url}gradio_api/upload", files={"files": (path.name, handle)}, timeout=60)
    answer.raise_for_status()
    return answer.json()[0]


def load_check(args: argparse.Namespace) -> None:
    from gradio_client import Client, handle_file

    from impasto.core.samples import painted_style, sample_photo_path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen([sys.executable, "-m", "impasto", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(120):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    scratch = ROOT / "benchmarks" / "results" / "studio-inputs"
    scratch.mkdir(parents=True, exist_ok=True)
    photo = sample_photo_path("chelsea.png")
    style = scratch / "style.png"
    painted_style(256).save(style)

    peak = [rss_mib(server.pid)]
    before = peak[0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak.append(rss_mib(server.pid))
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()
    results: list[dict] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        began = time.perf_counter()
        record = {"client": index, "answered": False, "finished": False, "queue_positions": []}
        try:
            client = Client(url, verbose=False)
            # The page sends its canvas as the files it uploaded (the studio reads only its own uploads).
            canvas = {"background": {"path": upload(url, photo)}, "layers": []}
            job = client.submit(canvas, [handle_file(str(style))], "", args.method, "mosaic", args.size, 1.0, 10,
                                "none", "first", False, 0, None, api_name="/run_create")
            while not job.done():
                status = job.status()
                record["answered"] = True
                if status.rank is not None:
                    record["queue_positions"].append(status.rank)
                time.sleep(0.25)
            outputs = job.result()
            record["answered"] = True
            record["finished"] = outputs is not None and outputs[2] is not None
        except Exception as exc:  # noqa: BLE001 - a failure is a result here
            record["error"] = f"{type(exc).__name__}: {exc}"[:200]
        record["seconds"] = time.perf_counter() - began
        with lock:
            results.append(record)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(args.clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    time.sleep(2)
    done.set()
    after = rss_mib(server.pid)
    server.terminate()
    server.wait(timeout=30)
    summary = {
        "clients": args.clients, "method": args.method, "size": args.size,
        "answered": sum(r["answered"] for r in results), "finished": sum(r["finished"] for r in results),
        "errors": [r["error"] for r in results if "error" in r],
        "wall_seconds": wall, "longest_wait_seconds": max(r["seconds"] for r in results),
        "highest_queue_position": max((max(r["queue_positions"]) for r in results if r["queue_positions"]), default=0),
        "rss_mib_before": before, "rss_mib_peak": max(peak), "rss_mib_after": after,
    }
    print(json.dumps(summary, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"studio-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(summary, indent=2))


@contextlib.contextmanager
def studio_page(args: argparse.Namespace):
    """(page, photo): a studio started in this process, opened in a headless Chromium (Debian's
    package, driven by Playwright as in tests/test_studio.py), with the photo on the Create tab's
    canvas; closed afterwards."""
    import shutil
    import tempfile

    import numpy as np
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from impasto.jobs.history import History
    from impasto.studio import Studio, build, launch

    scratch = Path(tempfile.mkdtemp(prefix="impasto-bench-page-"))
    photo = Path(args.photo)
    if not photo.exists():  # a generated 1024x768 photo: a gradient with a disc
        yy, xx = np.mgrid[:768, :1024]
        array = np.stack([xx * 255 // 1023, yy * 255 // 767, 255 - xx * 255 // 1023], -1).astype(np.uint8)
        array[(yy - 384) ** 2 + (xx - 512) ** 2 < 200 ** 2] = (220, 30, 30)
        photo = scratch / "photo.png"
        Image.fromarray(array).save(photo)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    studio = Studio(None, history=History(scratch / "history"))
    app = build(studio)
    url = launch(app, studio, "127.0.0.1", port)
    try:
        with sync_playwright() as p:
            chromium = shutil.which("chromium") or "/usr/bin/chromium"
            browser = p.chromium.launch(executable_path=chromium, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
            page = browser.new_context(viewport={"width": 1280, "height": 1100}).new_page()
            page.set_default_timeout(120_000)
            page.goto(url)
            page.locator("#run").wait_for()
            page.locator("#content input[type=file]").wait_for(state="attached")
            page.wait_for_timeout(500)
            page.locator("#content input[type=file]").set_input_files(str(photo))
            page.locator("#content canvas").first.wait_for()
            page.wait_for_timeout(2000)
            yield page, photo
            browser.close()
    finally:
        app.close()
        studio.cleanup()


def photo_label(photo: Path) -> str:
    from PIL import Image

    with Image.open(photo) as image:
        return f"{photo.name} {image.size[0]}x{image.size[1]}"


def preview_latency(args: argparse.Namespace) -> None:
    import re
    import statistics

    from impasto.core.samples import paintings

    painting = next(iter(paintings().values()))
    rows = []
    with studio_page(args) as (page, photo):
        page.locator("#styles input[type=file]").set_input_files([str(painting)])
        page.wait_for_function(f"() => document.querySelector('#styles')?.innerText.includes('{painting.stem}')")
        page.wait_for_function("() => document.querySelector('#preview-note')?.innerText.includes('preview: ')")
        page.wait_for_timeout(3000)  # the upload's and the styles' previews have both come back
        if args.render_first:
            for elem_id, value in (("size", 64), ("iterations", 5)):
                page.locator(f"#{elem_id} input[type=number]").fill(str(value))
                page.locator(f"#{elem_id} input[type=number]").press("Enter")
            page.locator("#run").click()
            page.wait_for_function("() => document.querySelector('#job-progress')?.innerText.includes('done')")
            page.wait_for_timeout(2000)
        source = "() => document.querySelector('#preview img')?.src"
        box = page.locator("#strength input[type=number]")
        for index in range(args.changes):
            shown = page.evaluate(source)
            began = time.perf_counter()  # typing the value already changes the slider
            box.fill(f"{0.55 + 0.1 * (index % 5):.2f}")  # never the value it has
            box.press("Enter")
            page.wait_for_function(f"() => document.querySelector('#preview img')?.src !== {shown!r}")
            seconds = time.perf_counter() - began
            note = page.locator("#preview-note").inner_text()
            found = re.search(r"in ([0-9.]+) s", note)
            rows.append({"change": index + 1, "page_seconds": round(seconds, 3),
                         "server_seconds": float(found.group(1)) if found else None,
                         "size": (re.search(r"(\d+x\d+)", note) or [None])[0]})
            print(json.dumps(rows[-1]), flush=True)
            page.wait_for_timeout(1000)
    times = [row["page_seconds"] for row in rows]
    summary = {"photo": photo_label(photo), "render_first": args.render_first,
               "changes": len(times), "median_seconds": statistics.median(times), "max_seconds": max(times),
               "server_median_seconds": statistics.median(r["server_seconds"] or 0 for r in rows)}
    print(json.dumps(summary, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"studio-preview-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(
        json.dumps({"rows": rows, **summary}, indent=2))


def brush_latency(args: argparse.Namespace) -> None:
    """Each move of ``--strokes`` strokes of 20 moves on the photo, timed until the page has taken
    it (the mouse event handled) and until it has drawn it (the next animation frame)."""
    import statistics

    frame = "() => new Promise((done) => requestAnimationFrame(() => done(performance.now())))"
    handled, drawn = [], []
    with studio_page(args) as (page, photo):
        box = page.locator("#content canvas").first.bounding_box()
        for stroke in range(args.strokes):
            y = 0.2 + 0.6 * stroke / max(args.strokes - 1, 1)
            page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * y)
            page.mouse.down()
            for step in range(20):
                began = time.perf_counter()
                page.mouse.move(box["x"] + box["width"] * (0.1 + 0.04 * step), box["y"] + box["height"] * y)
                handled.append(time.perf_counter() - began)
                page.evaluate(frame)
                drawn.append(time.perf_counter() - began)
            page.mouse.up()
            page.wait_for_timeout(1000)  # the stroke's end hands the area over; the preview follows
    summary = {"photo": photo_label(photo), "moves": len(handled),
               "handled_median_ms": round(1000 * statistics.median(handled), 1),
               "handled_max_ms": round(1000 * max(handled), 1),
               "drawn_median_ms": round(1000 * statistics.median(drawn), 1),
               "drawn_max_ms": round(1000 * max(drawn), 1)}
    print(json.dumps(summary, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"studio-brush-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
