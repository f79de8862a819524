"""The studio's page and server: the tabs put together, the page's own script, the Host check and
security headers, and the server's life (Ctrl-C and SIGTERM remove the studio's folder)."""

from __future__ import annotations

import atexit
import os
import time
from typing import Sequence

import PIL.Image

from impasto.studio import camera_tab, create_tab, dream_tab, gallery_tab, video_tab
from impasto.studio.canvas import BRUSH_SCRIPT
from impasto.studio.common import MAX_PIXELS, Studio, gradio, model_label

MAX_UPLOAD = "25mb"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
SECURITY_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


#: The page's own script, in the head:
#: - Ctrl+Enter (Cmd+Enter) runs Render from anywhere on the page;
#: - each radio group is one Tab stop (arrow keys choose inside it) and the sliders' reset buttons
#:   are left out of the Tab order, so Render is reached in a few presses;
#: - a photo the browser cannot decode, or one over the studio's pixel limit, is named in a message at
#:   upload that stays until dismissed, and never reaches the canvas (nor the server): the page keeps
#:   what it showed;
#: - the camera's Start/Stop buttons drive the webcam component's own capture button;
#: - the Create tab's brush (:data:`impasto.studio.canvas.BRUSH_SCRIPT`).
PAGE_SCRIPT = """<script>
const IMPASTO_MAX_PIXELS = %d;
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
    const run = document.querySelector("#run");
    if (run && run.offsetParent !== null) { event.preventDefault(); run.click(); }
  }
});
function impastoTidyTabOrder() {
  document.querySelectorAll("fieldset, [role=radiogroup]").forEach((group, index) => {
    const radios = group.querySelectorAll("input[type=radio]");
    const name = "impasto-group-" + (group.closest("[id]")?.id || index);
    radios.forEach((radio) => { if (radio.name !== name) radio.name = name; });
  });
  document.querySelectorAll("button[aria-label='Reset to default value'], #paintings button[aria-label='Download All']")
    .forEach((button) => { if (button.tabIndex !== -1) button.tabIndex = -1; });
}
new MutationObserver(impastoTidyTabOrder).observe(document.documentElement, {childList: true, subtree: true});
function impastoPhotoMessage(text) {
  const box = document.querySelector("#photo-message");
  if (!box) return;
  box.replaceChildren();
  if (!text) return;
  const note = document.createElement("div");
  note.setAttribute("role", "alert");
  note.className = "impasto-alert";
  note.textContent = text + " ";
  const dismiss = document.createElement("button");
  dismiss.textContent = "Dismiss";
  dismiss.addEventListener("click", () => impastoPhotoMessage(""));
  note.append(dismiss);
  box.append(note);
}
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.closest("#content")) return;
  if (input.dataset.impastoChecked === "1") { delete input.dataset.impastoChecked; return; }
  const files = [...(input.files || [])];
  if (!files.length) return;
  event.stopImmediatePropagation();  // the photo goes to the canvas only once it is known to fit
  impastoPhotoMessage("");
  Promise.all(files.map((file) => createImageBitmap(file).then((bitmap) => {
    const [width, height] = [bitmap.width, bitmap.height], pixels = width * height;
    bitmap.close();
    return pixels > IMPASTO_MAX_PIXELS ? file.name + ": " + width + " x " + height + " = " +
      pixels.toLocaleString("en") + " pixels, more than the studio takes (" +
      IMPASTO_MAX_PIXELS.toLocaleString("en") + "); make it smaller first" : null;
  }, () => file.name + ": not an image this page can read (a PNG, JPEG or WebP photo works); choose another file")))
    .then((problems) => {
      const problem = problems.find((p) => p);
      if (problem) { impastoPhotoMessage(problem); input.value = ""; return; }
      input.dataset.impastoChecked = "1";
      input.dispatchEvent(new Event("change", {bubbles: true}));
    });
}, true);
async function impastoCamera(start) {
  const root = document.querySelector("#camera");
  if (!root) return;
  const find = (text) => [...root.querySelectorAll("button")].find((b) => b.innerText.includes(text));
  if (start) {
    find("Access Webcam")?.click();
    for (let i = 0; i < 100 && !root.querySelector(".capture-button"); i++) {
      await new Promise((done) => setTimeout(done, 100));
    }
  }
  const capture = root.querySelector(".capture-button");
  if (capture && (capture.innerText.trim() === "Stop") !== start) capture.click();
}
</script>
<style>
#camera .capture-button { display: none; }
#session-results .grid-container { grid-template-columns: repeat(auto-fill, minmax(140px, 220px)) !important; }
#model-previews .grid-container, #style-thumbnails .grid-container {
  grid-template-columns: repeat(auto-fill, minmax(90px, 120px)) !important; }
.impasto-alert { padding: 0.5em 0.75em; border: 2px solid #c0392b; border-radius: 6px; color: #c0392b; }
.impasto-alert button { margin-left: 0.5em; text-decoration: underline; }
</style>""" % MAX_PIXELS


def build(studio: Studio):
    """The Gradio Blocks app: each tab lays out its controls, then wires its events.

    Its process keeps Gradio's uploads in the studio's private folder, and Pillow refuses (from
    the header, before decoding) any image over ``MAX_PIXELS``, Gradio's own decoding included.
    """
    os.environ["GRADIO_TEMP_DIR"] = str(studio.uploads)
    PIL.Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2  # Pillow raises above twice this, warns above it
    gr = gradio()
    from impasto.core.modelfile import available_models

    fast_models = [(model_label(m), m.path.stem) for m in available_models() if m.kind == "fast"]
    with gr.Blocks(title="impasto studio", delete_cache=(3600, 3600)) as app:
        gallery_state = gr.State([])  # the Gallery's items; a finished Create run joins them
        gr.Markdown("# impasto studio\nRepaint a photo in the style of artworks.")
        with gr.Tabs() as tabs:
            create = create_tab.layout(studio, fast_models)
            clip = video_tab.layout(fast_models)
            camera = camera_tab.layout(fast_models)
            dream = dream_tab.layout()
            gallery = gallery_tab.layout()
        create_tab.wire(studio, create, fast_models, gallery.gallery, gallery_state)
        gallery_tab.wire(studio, app, gallery, gallery_state, create, tabs, dream, clip)
        dream_tab.wire(studio, dream)
        video_tab.wire(studio, clip)
        camera_tab.wire(studio, camera)
    app.queue(default_concurrency_limit=1, max_size=64)
    return app


class SecurityHeaders:
    """ASGI middleware: every response forbids framing by other sites and content sniffing."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def allowed_hosts(host: str, extra: Sequence[str] = ()) -> list[str]:
    """Host headers the studio answers: this machine's loopback names, the bound address, ``extra``.

    A page on another site that resolves its own name to 127.0.0.1 (DNS rebinding) sends its own
    name as Host and is refused.  ``*`` in ``extra`` accepts any.
    """
    names = [*LOCAL_HOSTS, *extra]
    if host not in ("0.0.0.0", "::", ""):
        names.append(host)
    return sorted(set(names))


def launch(app, studio: Studio, host: str = "127.0.0.1", port: int = 7860, extra_hosts: Sequence[str] = ()) -> str:
    """Start the built app's server (not blocking) with the Host check and security headers; its URL.

    The history's folder (under the user's data folder, outside the temporary folder and the
    working directory Gradio serves from by default) is the one other folder the page may show."""
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(host, extra_hosts)),
                  Middleware(SecurityHeaders)]
    _, url, _ = app.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                           max_file_size=MAX_UPLOAD, footer_links=[], show_error=True, head=PAGE_SCRIPT + BRUSH_SCRIPT,
                           allowed_paths=[str(studio.history.folder)], app_kwargs={"middleware": middleware})
    return url


def serve(host: str = "127.0.0.1", port: int = 7860, folder: str | None = None, block: bool = True,
          extra_hosts: Sequence[str] = ()):
    """Start the studio; returns (app, url, studio) when ``block`` is False (tests).

    Ctrl-C and SIGTERM (the CLI turns it into KeyboardInterrupt) close the server and remove the
    studio's folder.
    """
    studio = Studio(folder)
    atexit.register(studio.cleanup)
    app = build(studio)
    url = launch(app, studio, host, port, extra_hosts)
    if not block:
        return app, url, studio
    print(f"impasto studio: {url} (Ctrl-C stops it)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        app.close()
        studio.cleanup()
    return app, url, studio
