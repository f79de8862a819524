"""The Camera tab: a one-pass method on the webcam's stream, Start/Stop, its frame rate."""

import time
from collections import deque
from types import SimpleNamespace
from typing import Any

import numpy as np
import PIL.Image
import torch

from impasto.core.errors import ImpastoError
from impasto.studio.common import MAX_PIXELS, MORE, OFFERED, Studio, chosen_method, fail, gradio, load_upload, method_choices


CAMERA_MAX_PIXELS = 4_000_000  # per camera frame (a 4K webcam has 8.3 M; frames are shown at 320 px)


CAMERA_SIDE = 320


def camera_frame(studio: Studio, frame: np.ndarray | None, method: str, model: str | None, style_file: Any,
                 session: str) -> tuple:
    """One webcam frame through a one-pass method; returns (image, frame-rate text)."""
    from impasto.methods import Request

    if frame is None:
        return None, "waiting for the camera"
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[0] * frame.shape[1] > CAMERA_MAX_PIXELS:
        raise fail(ImpastoError(f"camera frames are limited to {CAMERA_MAX_PIXELS:,} pixels"))
    shown = PIL.Image.fromarray(frame[..., :3].astype(np.uint8))
    shown.thumbnail((CAMERA_SIDE, CAMERA_SIDE))  # shrink as 8-bit, before any float copy
    content = torch.from_numpy(np.asarray(shown).copy()).permute(2, 0, 1)[None].float() / 255.0
    try:
        chosen, model_path = chosen_method(method, model)
        if not chosen.one_pass:
            raise ImpastoError(f"the camera needs a one-pass method; {method} optimises for seconds per frame")
        style_path = str(getattr(style_file, "name", style_file)) if style_file and chosen.uses_styles else None
        key = (method, str(model_path), style_path)
        painter = studio.camera_painters.get(key)
        if painter is None:  # the model and the style's statistics: once per choice, not once per frame
            styles = [load_upload(style_path, "style image")] if chosen.uses_styles else []
            painter = chosen.prepare(styles, Request(size=None, model=model_path, max_pixels=MAX_PIXELS))
            studio.camera_painters.clear()
            studio.camera_painters[key] = painter
        out = painter.paint(content).image
    except ImpastoError as exc:
        raise fail(exc) from None
    times = studio.camera_times.setdefault(session, deque(maxlen=20))
    times.append(time.perf_counter())
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
    return (out[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8), f"{rate:.1f} frames/s"


def layout(fast_models: list[tuple[str, str]]) -> SimpleNamespace:
    """The tab's controls (inside the page's Tabs)."""
    gr = gradio()
    from impasto import methods

    tab = SimpleNamespace()
    with gr.Tab("Camera"):
        with gr.Row():
            tab.method = gr.Radio(method_choices([n for n in OFFERED + MORE if methods.get(n).one_pass]),
                                  value="fast", label="Method", elem_id="camera-method")
            tab.model = gr.Dropdown(fast_models, value=fast_models[0][1] if fast_models else None,
                                    label="Fast model", elem_id="camera-model")
            tab.style = gr.File(label="Style image (any-painting methods)", file_types=["image"],
                                elem_id="camera-style")
        with gr.Row():
            tab.camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera", elem_id="camera",
                                  webcam_options=gr.WebcamOptions(constraints={"video": {
                                      "width": {"ideal": 2 * CAMERA_SIDE}, "height": {"ideal": CAMERA_SIDE * 3 // 2}}}))
            tab.result = gr.Image(label="Stylized", elem_id="camera-result", interactive=False,
                                  alt_text="the camera's picture, stylized")
        with gr.Row():
            tab.start = gr.Button("Start camera", variant="primary", elem_id="camera-start")
            tab.stop = gr.Button("Stop camera", elem_id="camera-stop")
            tab.rate = gr.Textbox(label="Frame rate", elem_id="camera-rate", interactive=False)
    return tab


def wire(studio: Studio, tab: SimpleNamespace) -> None:
    gr = gradio()

    def run_camera(frame, method_v, model_v, style_v, request: gr.Request):
        return camera_frame(studio, frame, method_v, model_v, style_v, request.session_hash)

    tab.camera.stream(run_camera, [tab.camera, tab.method, tab.model, tab.style], [tab.result, tab.rate],
                      stream_every=0.1, concurrency_id="camera", concurrency_limit=2, show_progress="hidden")
    tab.start.click(None, js="() => impastoCamera(true)")  # the page's script drives the webcam's own button
    tab.stop.click(None, js="() => impastoCamera(false)")
