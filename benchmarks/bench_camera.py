"""The studio's camera: frames per second, in a browser and in the handler alone.

Run from the repository root (after `make install`; needs Debian's chromium):

    .venv/bin/python benchmarks/bench_camera.py            # mosaic; --model NAME, --seconds N

Part 1 calls the camera handler directly on 640x480 frames (the work per frame: shrink to 320 px,
the model, back to 8 bits). Part 2 starts the studio, opens its Camera tab in Chromium with the
browser's fake camera, starts the stream and reads the frame rate the page shows after --seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mosaic")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    os.environ.setdefault("IMPASTO_HISTORY", tempfile.mkdtemp())  # leave the user's history alone

    import numpy as np

    from impasto.studio import Studio, build, camera_frame, launch

    studio = Studio(tempfile.mkdtemp(prefix="impasto-bench-"))
    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    for _ in range(3):
        camera_frame(studio, frame, "fast", args.model, None, "warm")
    began = time.perf_counter()
    for _ in range(20):
        camera_frame(studio, frame, "fast", args.model, None, "bench")
    per_frame = (time.perf_counter() - began) / 20
    print(f"handler: {per_frame * 1000:.1f} ms per 640x480 frame ({1 / per_frame:.1f} frames/s possible)")

    chromium = shutil.which("chromium")
    if chromium is None:
        print("no chromium: the browser part is skipped", file=sys.stderr)
        return
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build(studio)
    url = launch(app, studio, "127.0.0.1", port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=[
                "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
            page = browser.new_page()
            page.goto(url)
            page.get_by_role("tab", name="Camera").click()
            page.locator("#camera button").filter(has_text="Access Webcam").click()
            page.locator("#camera button").filter(has_text="Record").click()
            page.wait_for_function("() => parseFloat(document.querySelector('#camera-rate textarea')?.value) > 0",
                                   timeout=90_000)
            page.wait_for_timeout(args.seconds * 1000)
            print(f"browser: {page.locator('#camera-rate textarea').input_value()} shown after {args.seconds:g} s "
                  f"(fake camera, {args.model})")
            browser.close()
    finally:
        app.close()
        studio.cleanup()


if __name__ == "__main__":
    main()
