"""Serving the browser in a background thread of this process (tests, benchmarks)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(token: str | None = None, port: int | None = None) -> Iterator[str]:
    """Serve :func:`~catalogstore.web.app.create_app` on loopback during the block;
    yields its base URL (``http://127.0.0.1:PORT``)."""
    import uvicorn

    from catalogstore.web.app import create_app

    port = port or free_port()
    config = uvicorn.Config(create_app(token), host="127.0.0.1", port=port,
                            log_level="warning", server_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="catalogstore-ui", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the browser did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
