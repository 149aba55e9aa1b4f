"""HTTP fetching with the guards every untrusted URL needs: address checks on every hop,
caps counted after decompression, connect and whole-request deadlines, a redirect limit."""

from __future__ import annotations

import email.utils
import socket
import ssl
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx

from flows.guard import AddressPolicy, BlockedURL, check_address, check_target, resolve

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"


class FetchError(Exception):
    """A fetch that failed, with the kind recorded in the feed's health."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Worth retrying at once: timeouts, dropped connections, 5xx without a Retry-After."""
        return self.kind in {"timeout", "connect"} or (
            self.kind == "http_server" and self.retry_after is None
        )

    def __reduce__(self):  # survives the trip back from a worker process or a Prefect task
        return (_rebuild_fetch_error, (self.kind, self.message, self.status, self.retry_after))


def _rebuild_fetch_error(
    kind: str, message: str, status: int | None, retry_after: float | None
) -> FetchError:
    return FetchError(kind, message, status=status, retry_after=retry_after)


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int
    connect_timeout: float = 10.0
    deadline: float = 30.0
    max_redirects: int = 5


@dataclass
class FetchResult:
    url: str
    final_url: str
    status: int
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    moved_permanently_to: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class GuardedNetwork(httpcore.SyncBackend):
    """Connects only to an address it has just checked. The check before each request gives
    the clear error; this one closes the gap between that check and the connection, where a
    second DNS answer could point the name at the user's own network (DNS rebinding): the name
    is resolved once, here, and the socket goes to one of the addresses checked."""

    def __init__(self, policy: AddressPolicy):
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        for address in addresses:
            check_address(address, self.policy)
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return super().connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as error:
                failure = error
        raise failure or httpcore.ConnectError(f"{host} resolved to no address")


def guarded_transport(
    policy: AddressPolicy, verify: ssl.SSLContext | bool = True
) -> httpx.HTTPTransport:
    """httpx's transport with every connection made through GuardedNetwork."""
    transport = httpx.HTTPTransport(
        verify=verify,
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        trust_env=False,
    )
    # httpx takes no network backend; its httpcore pool does, and reads it when it opens a connection.
    transport._pool._network_backend = GuardedNetwork(policy)
    return transport


def make_client(user_agent: str, connect_timeout: float, policy: AddressPolicy) -> httpx.Client:
    """One client per run; redirects are followed by hand so that every hop is checked, and every
    connection goes to an address the policy allows."""
    timeout = httpx.Timeout(
        connect=connect_timeout, read=connect_timeout, write=connect_timeout, pool=60.0
    )
    return httpx.Client(
        follow_redirects=False,
        timeout=timeout,
        headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
        transport=guarded_transport(policy),
        trust_env=False,
    )


def fetch(
    client: httpx.Client,
    url: str,
    limits: FetchLimits,
    policy: AddressPolicy,
    *,
    accept: str = PAGE_ACCEPT,
    etag: str | None = None,
    last_modified: str | None = None,
) -> FetchResult:
    """GET a URL; raises FetchError with a kind for every failure. 304 is a result, not an error."""
    started = time.monotonic()
    headers = {"Accept": accept}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    current, permanent = url, True
    for _hop in range(limits.max_redirects + 1):
        _guard(current, policy)
        with _request(client, current, headers, limits, started) as response:
            location = response.headers.get("location")
            if response.status_code in (301, 302, 303, 307, 308) and location:
                permanent = permanent and response.status_code in (301, 308)
                current = urljoin(current, location)
                continue
            _raise_for_status(response, current)
            result = FetchResult(
                url=url,
                final_url=current,
                status=response.status_code,
                headers={key.lower(): value for key, value in response.headers.items()},
                moved_permanently_to=current if permanent and current != url else None,
            )
            if response.status_code != 304:
                result.content = _read_capped(response, limits, started, current)
                if not result.content.strip():
                    raise FetchError(
                        "empty",
                        f"{current} answered {response.status_code} with an empty body",
                        status=response.status_code,
                    )
            return result
    raise FetchError(
        "redirects", f"{url} redirected more than {limits.max_redirects} times; last hop {current}"
    )


def _guard(url: str, policy: AddressPolicy) -> None:
    try:
        check_target(url, policy)
    except BlockedURL as error:
        raise FetchError("blocked", str(error)) from error
    except (socket.gaierror, UnicodeError) as error:
        raise FetchError("dns", f"cannot resolve the host of {url}: {error}") from error


@contextmanager
def _request(
    client: httpx.Client, url: str, headers: dict[str, str], limits: FetchLimits, started: float
) -> Iterator[httpx.Response]:
    remaining = limits.deadline - (time.monotonic() - started)
    if remaining <= 0:
        raise FetchError(
            "timeout", f"{url}: gave up after {limits.deadline:.0f} s (whole-request deadline)"
        )
    timeout = httpx.Timeout(
        connect=min(limits.connect_timeout, remaining),
        read=min(limits.connect_timeout, remaining),
        write=min(limits.connect_timeout, remaining),
        pool=remaining,
    )
    try:
        with client.stream("GET", url, headers=headers, timeout=timeout) as response:
            yield response
    except BlockedURL as error:
        raise FetchError("blocked", str(error)) from error
    except httpx.TimeoutException as error:
        raise FetchError("timeout", f"{url}: timed out ({type(error).__name__})") from error
    except httpx.ConnectError as error:
        text = str(error)
        kind = "tls" if "SSL" in text or "CERTIFICATE" in text.upper() else "connect"
        raise FetchError(kind, f"{url}: cannot connect: {text or type(error).__name__}") from error
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as error:
        raise FetchError(
            "connect", f"{url}: the connection broke: {error or type(error).__name__}"
        ) from error
    except httpx.HTTPError as error:
        raise FetchError("connect", f"{url}: {type(error).__name__}: {error}") from error


def _raise_for_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status in (200, 203, 304) or 200 <= status < 300:
        return
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 410:
        raise FetchError(
            "gone", f"{url} answered 410 Gone: the publisher removed it", status=status
        )
    if status == 429 or (status == 503 and retry_after is not None):
        wait = f"; retry after {retry_after:.0f} s" if retry_after is not None else ""
        raise FetchError(
            "rate_limited", f"{url} answered {status}{wait}", status=status, retry_after=retry_after
        )
    if status >= 500:
        raise FetchError("http_server", f"{url} answered {status} (server error)", status=status)
    hint = {
        401: "it needs credentials",
        403: "access is refused",
        404: "the address is wrong or moved",
    }
    detail = f": {hint[status]}" if status in hint else ""
    raise FetchError("http", f"{url} answered {status}{detail}", status=status)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait, from a Retry-After header in seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def _read_capped(response: httpx.Response, limits: FetchLimits, started: float, url: str) -> bytes:
    """The body, decompressed by hand with a bound so that a compression bomb stops at the cap."""
    declared = response.headers.get("content-length", "")
    if (
        declared.isdigit()
        and not response.headers.get("content-encoding")
        and int(declared) > limits.max_bytes
    ):
        raise FetchError(
            "too_large",
            f"{url} declares {int(declared):,} bytes, over the {limits.max_bytes:,} limit",
        )
    decoder = _decoder(response.headers.get("content-encoding", ""), url)
    body = bytearray()
    for raw in response.iter_raw():
        if time.monotonic() - started > limits.deadline:
            raise FetchError(
                "timeout", f"{url}: body still arriving after {limits.deadline:.0f} s; gave up"
            )
        body += decoder.feed(raw, limits.max_bytes + 1 - len(body))
        if len(body) > limits.max_bytes:
            raise FetchError(
                "too_large", f"{url} is larger than the {limits.max_bytes:,}-byte limit"
            )
    body += decoder.flush(limits.max_bytes + 1 - len(body))
    if len(body) > limits.max_bytes:
        raise FetchError("too_large", f"{url} is larger than the {limits.max_bytes:,}-byte limit")
    return bytes(body)


class _Identity:
    def feed(self, data: bytes, room: int) -> bytes:
        return data

    def flush(self, room: int) -> bytes:
        return b""


class _Inflate:
    """zlib with a bound on output, so a few kilobytes cannot expand to gigabytes in memory.

    With `raw_fallback`, a "deflate" body that is a bare deflate stream without the zlib header
    (what some servers send, and what browsers and httpx accept) is read as such.
    """

    def __init__(self, wbits: int, url: str, raw_fallback: bool = False):
        self._zlib = zlib.decompressobj(wbits)
        self._url = url
        # Input kept until the first output.
        self._head: bytes | None = b"" if raw_fallback else None

    def feed(self, data: bytes, room: int) -> bytes:
        try:
            out = self._zlib.decompress(data, max(room, 1))
        except zlib.error as error:
            if self._head is not None:
                data, self._head = self._head + data, None
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.feed(data, room)
            raise FetchError("http", f"{self._url}: corrupt compressed body ({error})") from error
        if self._head is not None:
            self._head = None if out or len(self._head) > 65536 else self._head + data
        return out

    def flush(self, room: int) -> bytes:
        tail = self._zlib.unconsumed_tail
        return self.feed(tail, room) if tail else b""


def _decoder(encoding: str, url: str) -> _Identity | _Inflate:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return _Identity()
    if encoding in ("gzip", "x-gzip", "deflate"):
        # 32: accept both gzip and zlib headers; a headerless deflate stream is tried next
        return _Inflate(zlib.MAX_WBITS | 32, url, raw_fallback=encoding == "deflate")
    raise FetchError("http", f"{url} used an unsupported content encoding {encoding!r}")
