"""Fetching against a real local server: every failure has its kind."""

import gzip
import socket
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from flows.fetch import (
    FEED_ACCEPT,
    FetchError,
    FetchLimits,
    fetch,
    guarded_transport,
    make_client,
    parse_retry_after,
)
from flows.guard import AddressPolicy
from flows.localserver import Resource

LOOPBACK = AddressPolicy.from_settings(False, ("127.0.0.1/32",))
LIMITS = FetchLimits(max_bytes=64 * 1024, connect_timeout=2.0, deadline=4.0, max_redirects=5)


@pytest.fixture
def http():
    with make_client("atlaswatch-test", 2.0, LOOPBACK) as client:
        yield client


def redirect(to: str, status: int = 302):
    def handler(request):
        request.send_response(status)
        request.send_header("Location", to)
        request.send_header("Content-Length", "0")
        request.end_headers()

    return handler


def test_conditional_get_gets_304(site, http):
    site.routes["/feed"] = Resource(b"<rss></rss>", "application/rss+xml")
    first = fetch(http, site.url + "/feed", LIMITS, LOOPBACK, accept=FEED_ACCEPT)
    assert first.status == 200 and first.content == b"<rss></rss>"
    again = fetch(http, site.url + "/feed", LIMITS, LOOPBACK, etag=first.headers["etag"])
    assert again.not_modified and again.content == b""
    by_date = fetch(
        http, site.url + "/feed", LIMITS, LOOPBACK, last_modified=first.headers["last-modified"]
    )
    assert by_date.not_modified


@pytest.mark.parametrize(
    ("status", "kind"),
    [(404, "http"), (401, "http"), (403, "http"), (410, "gone"), (500, "http_server")],
)
def test_error_statuses(site, http, status, kind):
    site.routes["/x"] = Resource(b"no", "text/plain", status=status, conditional=False)
    with pytest.raises(FetchError) as caught:
        fetch(http, site.url + "/x", LIMITS, LOOPBACK)
    assert caught.value.kind == kind and caught.value.status == status
    assert caught.value.transient == (status == 500)


def test_429_and_503_carry_retry_after(site, http):
    site.routes["/busy"] = Resource(
        b"slow down", "text/plain", status=429, headers={"Retry-After": "120"}, conditional=False
    )
    site.routes["/down"] = Resource(
        b"later", "text/plain", status=503, headers={"Retry-After": "30"}, conditional=False
    )
    for path, wait in (("/busy", 120), ("/down", 30)):
        with pytest.raises(FetchError) as caught:
            fetch(http, site.url + path, LIMITS, LOOPBACK)
        assert caught.value.kind == "rate_limited" and caught.value.retry_after == wait
        assert not caught.value.transient


def test_retry_after_as_http_date():
    from datetime import UTC, datetime

    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert parse_retry_after("Sun, 22 Nov 2026 12:05:00 GMT", now) == 300
    assert parse_retry_after("garbage") is None


def test_empty_200_is_an_error(site, http):
    site.routes["/empty"] = Resource(b"", "application/rss+xml")
    with pytest.raises(FetchError) as caught:
        fetch(http, site.url + "/empty", LIMITS, LOOPBACK)
    assert caught.value.kind == "empty"


def test_redirects_are_followed_and_permanent_ones_reported(site, http):
    site.routes["/old"] = redirect("/new", 301)
    site.routes["/new"] = Resource(b"<rss/>", "application/rss+xml")
    result = fetch(http, site.url + "/old", LIMITS, LOOPBACK)
    assert (
        result.final_url == site.url + "/new" and result.moved_permanently_to == site.url + "/new"
    )
    site.routes["/temp"] = redirect("/new", 302)
    assert fetch(http, site.url + "/temp", LIMITS, LOOPBACK).moved_permanently_to is None


def test_redirect_loop_stops(site, http):
    site.routes["/a"] = redirect("/b")
    site.routes["/b"] = redirect("/a")
    with pytest.raises(FetchError) as caught:
        fetch(http, site.url + "/a", LIMITS, LOOPBACK)
    assert caught.value.kind == "redirects"


@pytest.mark.parametrize(
    "target", ["http://127.0.0.2:{port}/x", "http://[::1]:{port}/x", "file:///etc/passwd"]
)
def test_redirect_to_a_forbidden_target_is_refused_before_connecting(site, http, target):
    port = site.url.rsplit(":", 1)[1]
    site.routes["/hop"] = redirect(target.format(port=port))
    with pytest.raises(FetchError) as caught:
        fetch(http, site.url + "/hop", LIMITS, LOOPBACK)
    assert caught.value.kind == "blocked"


def test_a_name_that_rebinds_to_a_forbidden_address_after_the_check_is_not_connected_to(
    site, http, monkeypatch
):
    """DNS rebinding: the name answers 127.0.0.1 (allowed here) when the request is checked,
    then 127.0.0.2 (not allowed) when the connection is opened. No DNS server can be run here
    that the system resolver would ask, so getaddrinfo stands in for one."""
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["127.0.0.1", "127.0.0.2"])
    asked: list[str] = []

    def rebinding(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        address = next(answers, "127.0.0.2")
        asked.append(address)
        return real_getaddrinfo(address, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    site.routes["/x"] = Resource(b"<rss></rss>", "application/rss+xml")
    port = site.url.rsplit(":", 1)[1]
    with pytest.raises(FetchError) as caught:
        fetch(http, f"http://rebind.test:{port}/x", LIMITS, LOOPBACK)
    assert asked == ["127.0.0.1", "127.0.0.2"]
    assert caught.value.kind == "blocked" and "127.0.0.2" in caught.value.message


def test_a_name_is_connected_to_at_the_address_that_was_checked(site, http, monkeypatch):
    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *args, **kwargs: real_getaddrinfo(
            "127.0.0.1" if host == "feeds.test" else host, port, *args, **kwargs
        ),
    )
    site.routes["/x"] = Resource(b"<rss></rss>", "application/rss+xml")
    port = site.url.rsplit(":", 1)[1]
    assert fetch(http, f"http://feeds.test:{port}/x", LIMITS, LOOPBACK).content == b"<rss></rss>"


@pytest.fixture
def tls_site(tmp_path, monkeypatch):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for feeds.test, which (like
    other.test) resolves to 127.0.0.1; yields (port, client trusting that certificate, SNI seen)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "feeds.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("feeds.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    seen: list[str | None] = []
    server_context.sni_callback = lambda _socket, server_name, _context: seen.append(server_name)

    class Feed(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", "11")
            self.end_headers()
            self.wfile.write(b"<rss></rss>")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *args, **kwargs: real_getaddrinfo(
            "127.0.0.1" if host in ("feeds.test", "other.test") else host, port, *args, **kwargs
        ),
    )
    client_context = ssl.create_default_context(cafile=str(cert_file))
    with httpx.Client(transport=guarded_transport(LOOPBACK, verify=client_context)) as client:
        yield server.server_address[1], client, seen
    server.shutdown()
    server.server_close()


def test_https_through_the_address_check_still_verifies_the_name_it_was_asked_for(tls_site):
    port, client, seen = tls_site
    assert (
        fetch(client, f"https://feeds.test:{port}/feed", LIMITS, LOOPBACK).content == b"<rss></rss>"
    )
    assert seen == ["feeds.test"]  # the name went out as SNI, though the socket went to 127.0.0.1
    with pytest.raises(FetchError) as caught:
        fetch(client, f"https://other.test:{port}/feed", LIMITS, LOOPBACK)
    assert caught.value.kind == "tls"


def test_lying_content_length_is_still_capped(site, http):
    def liar(request):
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.send_header("Content-Length", "100")
        request.end_headers()
        request.wfile.write(b"x" * (LIMITS.max_bytes * 2))

    site.routes["/liar"] = liar
    site.routes["/honest-big"] = Resource(
        b"x" * (LIMITS.max_bytes + 1), "text/plain", conditional=False
    )
    with pytest.raises(FetchError) as caught:
        fetch(http, site.url + "/honest-big", LIMITS, LOOPBACK)
    assert caught.value.kind == "too_large"
    # The body is cut at the declared length by the HTTP layer, which must never exceed the cap either.
    result = fetch(http, site.url + "/liar", LIMITS, LOOPBACK)
    assert len(result.content) <= LIMITS.max_bytes


def test_unbounded_body_without_length_is_capped(site, http):
    def endless(request):
        request.send_response(200)
        request.send_header("Content-Type", "text/html")
        request.send_header("Connection", "close")
        request.end_headers()
        for _ in range(64):
            request.wfile.write(b"y" * 8192)
        request.close_connection = True

    site.routes["/endless"] = endless
    with pytest.raises(FetchError) as caught:
        fetch(http, site.url + "/endless", LIMITS, LOOPBACK)
    assert caught.value.kind == "too_large"


def test_gzip_bomb_stops_at_the_cap(site, http):
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))
    assert len(bomb) < 100 * 1024
    site.routes["/bomb"] = Resource(
        bomb, "application/rss+xml", headers={"Content-Encoding": "gzip"}, conditional=False
    )
    with pytest.raises(FetchError) as caught:
        fetch(http, site.url + "/bomb", LIMITS, LOOPBACK)
    assert caught.value.kind == "too_large"


def test_gzip_body_is_decompressed(site, http):
    site.routes["/gz"] = Resource(
        gzip.compress(b"<rss>ok</rss>"),
        "application/rss+xml",
        headers={"Content-Encoding": "gzip"},
        conditional=False,
    )
    assert fetch(http, site.url + "/gz", LIMITS, LOOPBACK).content == b"<rss>ok</rss>"


def test_slow_drip_hits_the_whole_request_deadline(site, http):
    def drip(request):
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.send_header("Content-Length", "1000")
        request.end_headers()
        try:
            for _ in range(1000):
                request.wfile.write(b"x")
                request.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass

    site.routes["/drip"] = drip
    limits = FetchLimits(max_bytes=64 * 1024, connect_timeout=2.0, deadline=2.0)
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetch(http, site.url + "/drip", limits, LOOPBACK)
    assert caught.value.kind == "timeout"
    assert time.monotonic() - started < 6


def test_unreachable_port_is_a_connect_error(http):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError) as caught:
        fetch(http, f"http://127.0.0.1:{port}/feed", LIMITS, LOOPBACK)
    assert caught.value.kind == "connect" and caught.value.transient


def test_unresolvable_host_is_a_dns_error(http):
    with pytest.raises(FetchError) as caught:
        fetch(http, "http://no-such-host.invalid/feed", LIMITS, LOOPBACK)
    assert caught.value.kind == "dns"


def test_private_address_refused_by_default(site, http):
    site.routes["/feed"] = Resource(b"<rss/>", "application/rss+xml")
    with pytest.raises(FetchError) as caught:
        fetch(http, site.url + "/feed", LIMITS, AddressPolicy())
    assert caught.value.kind == "blocked"
    assert site.hits.get("/feed") is None
