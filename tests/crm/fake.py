"""A local HTTP server that answers as a CRM's documented API does; each CRM's test module adds its routes.

It records every request (for asserting request shapes and auth headers) and can be told
to misbehave for the next requests: an HTTP error with headers (429 + Retry-After, 401,
503), or silence longer than the client's timeout.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a slow or hung CRM)


Route = Callable[[Request, re.Match[str]], Reply]
HOST = "127.0.0.1"


class FakeCrm:
    """`with FakeCrm() as crm: crm.route("GET", r"/v1/persons/search", handler); crm.url`"""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Route]] = []
        self.requests: list[Request] = []
        self.faults: deque[tuple[re.Pattern[str] | None, Reply]] = deque()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer((HOST, 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_port}"

    def route(self, method: str, pattern: str, handler: Route) -> None:
        self.routes.append((method, re.compile(pattern), handler))

    def fail_next(self, reply: Reply, times: int = 1, path: str | None = None) -> None:
        """The next `times` requests (to paths matching `path`, if given) get `reply` instead."""
        for _ in range(times):
            self.faults.append((re.compile(path) if path else None, reply))

    def calls(self, method: str | None = None, path: str | None = None) -> list[Request]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and (path is None or re.search(path, r.path))
            ]

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, req: Request) -> Reply:
        with self.lock:
            self.requests.append(req)
            for i, (pattern, reply) in enumerate(self.faults):
                if pattern is None or pattern.search(req.path):
                    del self.faults[i]
                    return reply
        for method, pattern, handler in self.routes:
            if method == req.method and (m := pattern.fullmatch(req.path)):
                return handler(req, m)
        return Reply(404, {"message": f"no route for {req.method} {req.path}"})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body
                )
                reply = fake._answer(req)
                if reply.delay:
                    time.sleep(reply.delay)
                if isinstance(reply.body, dict | list):
                    data = json.dumps(reply.body).encode()
                    ctype = "application/json"
                elif isinstance(reply.body, str):
                    data, ctype = reply.body.encode(), "text/plain"
                else:
                    data, ctype = reply.body or b"", "application/octet-stream"
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.headers.get("Content-Type", ctype))
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        if k != "Content-Type":
                            self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing to answer

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler
