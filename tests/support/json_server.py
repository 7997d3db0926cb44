"""A local HTTP server answering GETs with JSON: the stand-ins of the services the code under
test reads (Limitador's HTTP API, Prometheus's query API)."""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass(frozen=True)
class Refused:
    """An answer with this status and no JSON body."""

    status: int


class JsonHandler(BaseHTTPRequestHandler):
    """A stand-in's request handler: it logs nothing, and `reply` answers JSON."""

    def log_message(self, format: str, *args: object) -> None:
        return

    def reply(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def json_server(
    answer: Callable[..., object], tls: tuple[Path, Path] | None = None, headers: bool = False
) -> Iterator[str]:
    """Serves `answer(path)` (the path with its query) as JSON, or its `Refused` status, on a
    free local port; yields the base URL. `tls`: a certificate and its key, to serve HTTPS;
    `headers`: `answer` takes the request's headers too."""

    class Handler(JsonHandler):
        def do_GET(self) -> None:
            body = answer(self.path, self.headers) if headers else answer(self.path)
            if isinstance(body, Refused):
                self.send_error(body.status)
                return
            self.reply(200, body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
