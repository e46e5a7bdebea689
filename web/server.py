"""Serving the panel with waitress, a production WSGI server (threads, no fork, pure Python).

Each browser on the live page holds one thread for its event stream, so `threads`
bounds live viewers plus concurrent requests.
"""

from __future__ import annotations

import logging

from flask import Flask
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

log = logging.getLogger(__name__)


def make_server(app: Flask, host: str, port: int, threads: int = 32) -> BaseWSGIServer | MultiSocketServer:
    """A bound, not yet running server; port 0 picks a free one (see `effective_port`)."""
    # every open live or pop page holds a connection and a thread: accept a few more than the threads
    return create_server(
        app, host=host, port=port, threads=threads, connection_limit=threads + 50, ident="pbxlink"
    )


def serve(app: Flask, host: str, port: int, threads: int = 32) -> None:
    """Serve until interrupted."""
    server = make_server(app, host, port, threads)
    for url in urls_of(server):
        log.info("web panel on %s", url)
    try:
        server.run()
    finally:
        server.close()


def urls_of(server: BaseWSGIServer | MultiSocketServer) -> list[str]:
    """Where the server really listens (after port 0 or a name resolving to several addresses)."""
    if isinstance(server, MultiSocketServer):
        listen = list(server.effective_listen)
    else:
        listen = [(server.effective_host, server.effective_port)]
    return [f"http://[{h}]:{p}/" if ":" in str(h) else f"http://{h}:{p}/" for h, p in listen]
