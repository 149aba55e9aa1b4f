"""Canonical URLs: one address per story, whatever tracking, AMP or mobile variant a feed links to."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "ref_src",
        "ref_url",
        "cmpid",
        "ocid",
        "ncid",
        "sr_share",
        "smid",
        "soc_src",
        "soc_trk",
        "at_medium",
        "at_campaign",
        "xtor",
        "spm",
        "share",
        "rss",
        "from",
        "cmp",
    }
)
TRACKING_PREFIXES = ("utm_", "wt_", "pk_", "mtm_", "hsa_", "oly_", "__s", "vero_")
REDIRECTORS = {
    "news.google.com": ("url",),
    "www.google.com": ("url", "q"),
    "google.com": ("url", "q"),
    "l.facebook.com": ("u",),
    "lm.facebook.com": ("u",),
    "out.reddit.com": ("url",),
    "href.li": (),
    "www.linkedin.com": ("url",),
    "t.umblr.com": ("z",),
    "feedproxy.google.com": (),
}
MOBILE_PREFIXES = ("m.", "mobile.", "amp.", "www.")
AMP_SUFFIX = re.compile(r"/amp(/|\.html?)?$", re.IGNORECASE)
AMP_INFIX = re.compile(r"\.amp(?=\.html?$)", re.IGNORECASE)


def unwrap_redirector(url: str) -> str:
    """The target of a known redirector link when the target is in the URL itself."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "href.li":
        return parts.query if parts.query.startswith("http") else url
    for key in REDIRECTORS.get(host, ()):
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            target = unquote(value) if "%" in value else value
            if name == key and target.startswith(("http://", "https://")):
                return target
    return url


def _is_tracking(name: str) -> bool:
    name = name.lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def without_tracking(url: str) -> str:
    """The link as published, less its tracking parameters: the address an article is stored
    and shown under, whichever feed's copy of the link came first. Host and path stay as they
    are (a site may not answer without its "www.")."""
    parts = urlsplit(url.strip())
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(name, value) for name, value in query if not _is_tracking(name)]
    if len(kept) == len(query):
        return url.strip()
    return urlunsplit(parts._replace(query=urlencode(kept)))


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no default port, fragment, tracking parameters, AMP or mobile variant."""
    url = unwrap_redirector(url.strip())
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    for prefix in MOBILE_PREFIXES:
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix) :]
            break
    port = parts.port
    netloc = (
        host
        if port is None or (scheme, port) in (("http", 80), ("https", 443))
        else f"{host}:{port}"
    )
    path = AMP_SUFFIX.sub("", AMP_INFIX.sub("", parts.path)) or "/"
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not _is_tracking(name)
        and not (
            name.lower() in ("amp", "outputtype") and value.lower() in ("", "1", "amp", "true")
        )
    ]
    return urlunsplit((scheme, netloc, path, urlencode(sorted(query)), ""))


def dedupe_key(feed_url: str, title: str, summary: str) -> str:
    """Stable across GUID and URL churn: the same title and teaser in the same feed is the same entry."""
    normal = " ".join(f"{title} {summary[:200]}".lower().split())
    return hashlib.sha256(f"{feed_url}\n{normal}".encode()).hexdigest()[:24]
