"""The page both examples serve: the static files and the real SignalR browser client from npm."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import StaticFiles

__all__ = ["BUNDLE", "STATIC_DIR", "signalr_bundle", "static_files"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
BUNDLE = STATIC_DIR.parent.parent / "node_modules/@microsoft/signalr/dist/browser/signalr.min.js"
"""``@microsoft/signalr``'s browser build, as ``npm ci`` installs it at the repository root."""


async def signalr_bundle(request: Request) -> Response:
    """``GET /signalr.min.js``: served by the app itself, so the page needs no CDN."""
    if not BUNDLE.is_file():
        message = "signalr.min.js is missing: run `npm ci` in the repository root."
        return PlainTextResponse(message, status_code=404)
    return FileResponse(BUNDLE, media_type="text/javascript")


def static_files() -> StaticFiles:
    """The page (``index.html``, ``chat.js``), mounted last at ``/``."""
    return StaticFiles(directory=STATIC_DIR, html=True)
