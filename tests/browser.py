"""Shared pieces of the browser tests: how Chromium is started here, and a WSGI app on a real port."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

ARTIFACTS = Path(__file__).parent / "_artifacts"
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def serve(app: Callable[..., Any]) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 on a free port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
