"""impasto studio: a local web app that puts every method behind a few clicks (Gradio).

One page, five tabs, a module each (``*_tab``: the tab's job, its controls, its events):
**Create** (content, styles with their style blend, method and settings, a mask painted or cut from a box,
a live preview with progress and Stop, full-resolution download, before/after and the session's
results side by side), **Video** (keyframes, or the strength following the sound), **Camera** (a
one-pass method on the webcam stream, Start/Stop, its frame rate), **Dream** (DeepDream, with
Stop) and **Gallery** (every run in the history, each with the equivalent `impasto` command, its
settings, bundle and result for reuse).  ``common`` holds what they share, ``app`` the page and
the server.  The tab modules leave their annotations unquoted (no ``from __future__ import
annotations``): Gradio reads a handler's ``gr.Request`` and ``gr.SelectData`` from them.

Safety for many users: one job at a time holds the device (Gradio's queue shows the others their
place, and a lock keeps the limit even while an abandoned job winds down); a job stops when its
browser tab goes; uploads are limited in size by the server and in pixels from the file's header,
before any decoding; bad files become a message on the page; the app only reads the files Gradio
stored for the upload and only writes in its own private (0700) folder, uploads included, which is
removed when the server stops (Ctrl-C or SIGTERM); results older than an hour are swept. Requests
must name this machine as Host (no DNS rebinding) and the page cannot be framed by other sites.
"""

from impasto.studio.app import allowed_hosts, build, launch, serve
from impasto.studio.camera_tab import CAMERA_MAX_PIXELS, camera_frame
from impasto.studio.common import MAX_PIXELS, Background, Studio, model_previews
from impasto.studio.create_tab import create
from impasto.studio.dream_tab import create_dream
from impasto.studio.video_tab import create_video

__all__ = ["CAMERA_MAX_PIXELS", "MAX_PIXELS", "Background", "Studio", "allowed_hosts", "build", "camera_frame",
           "create", "create_dream", "create_video", "launch", "model_previews", "serve"]
