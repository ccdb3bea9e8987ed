"""A loopback HTTP proxy that can hold chosen requests: a fault injector between two processes.

``gate(upstream, held)`` forwards every request to ``upstream``; a request for which ``held``
is true waits until the test calls ``Gate.open()``, so the test decides what happens first on
the far side while the caller is left waiting (a slow network, a stalled poll).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Gate:
    url: str
    opened: threading.Event = field(default_factory=threading.Event)
    held: int = 0
    """How many requests arrived while the gate was shut and had to wait."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self) -> None:
        self.opened.set()


@contextmanager
def gate(upstream: str, held: Callable[[str, str], bool], *, hold_limit: float = 60.0
         ) -> Iterator[Gate]:
    """Serve the proxy on 127.0.0.1 while the block runs; ``held(method, path)`` picks."""
    proxy = Gate("")
    client = httpx2.Client(base_url=upstream, timeout=30)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if held(self.command, self.path) and not proxy.opened.is_set():
                with proxy.lock:
                    proxy.held += 1
                proxy.opened.wait(hold_limit)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            reply = client.request(self.command, self.path, content=body, headers=headers)
            self.send_response(reply.status_code)
            for name, value in reply.headers.items():
                if name.lower() not in HOP_BY_HOP | {"content-encoding"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.content)))
            self.end_headers()
            self.wfile.write(reply.content)

        do_GET = do_POST = do_PUT = do_DELETE = _forward

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.open()
        server.shutdown()
        server.server_close()
        client.close()
