"""A small HTTP server on 127.0.0.1 for the offline demo and the tests: static resources with
ETag and Last-Modified answered by 304, plus routes that write their own response."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Resource:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    conditional: bool = True
    last_modified: str = field(default_factory=lambda: formatdate(usegmt=True))

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


Handler = Callable[[BaseHTTPRequestHandler], None]
Route = Resource | Handler


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.server.hits[path] = self.server.hits.get(path, 0) + 1
        route = self.server.routes.get(path)
        if route is None:
            self._send(Resource(b"not found", "text/plain", status=404, conditional=False))
        elif isinstance(route, Resource):
            self._send(route)
        else:
            route(self)

    def _send(self, resource: Resource) -> None:
        if (
            resource.conditional
            and resource.status == 200
            and (
                self.headers.get("If-None-Match") == resource.etag
                or (
                    self.headers.get("If-Modified-Since") == resource.last_modified
                    and not self.headers.get("If-None-Match")
                )
            )
        ):
            self.send_response(304)
            self.send_header("ETag", resource.etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(resource.status)
        self.send_header("Content-Type", resource.content_type)
        self.send_header("Content-Length", str(len(resource.body)))
        if resource.conditional:
            self.send_header("ETag", resource.etag)
            self.send_header("Last-Modified", resource.last_modified)
        for name, value in resource.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(resource.body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the demo prints its own story
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up early (a size cap, a refused redirect) is expected, not news."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def __init__(self, routes: Mapping[str, Route]):
        super().__init__(("127.0.0.1", 0), _RequestHandler)
        self.routes: dict[str, Route] = dict(routes)
        self.hits: dict[str, int] = {}


class LocalServer:
    """`with LocalServer(routes) as server:` serves on 127.0.0.1 at a free port until the block ends."""

    def __init__(self, routes: Mapping[str, Route] | None = None):
        self._server = _Server(routes or {})
        # A short poll interval: shutdown waits for one, and tests start hundreds of servers.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def routes(self) -> dict[str, Route]:
        return self._server.routes

    @property
    def hits(self) -> dict[str, int]:
        return self._server.hits

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def write_loopback_config(
    workdir: Path,
    base: str,
    feeds: list[tuple[str, str]],
    *,
    fetch: str = "",
    extra: str = "",
    comment: str = "",
) -> Path:
    """atlaswatch.toml in `workdir` polling `feeds` (path, name) on the local server at `base`,
    with only 127.0.0.1 let through and mail going to an outbox. `fetch` adds keys to the
    [fetch] table, `extra` adds tables of its own."""
    feed_lines = "\n".join(
        f'[[feeds]]\nurl = "{base}{path}"\nname = "{name}"\n' for path, name in feeds
    )
    config = workdir / "atlaswatch.toml"
    config.write_text(
        f"""{comment}
[storage]
path = "atlaswatch.db"

[fetch]
allowed_networks = ["127.0.0.1/32"]   # the local server; everything else private stays refused
{fetch}
[email]
outbox = "outbox"
recipients = ["analyst@example.org"]

{extra}
{feed_lines}""",
        encoding="utf-8",
    )
    return config
