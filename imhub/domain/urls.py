"""Which URLs content may carry (issue #16 item 11). Pure rules, no I/O.

Whatever a client loads by itself — an avatar, a group icon, the picture of an image,
sticker, video or card, the sound of a voice note — must come from this server: its
media (``IMHUB_MEDIA_BASE_URL``, and ``/mnt/`` which the app always serves) or its
static files (``/asset/``: the seed's stickers). Otherwise a message or a profile could
make every viewer's browser fetch a third party's URL (tracking who read what, when,
from where). Links a user must click (link, news and red-packet cards) may be any
``http(s)`` URL. ``javascript:``, ``data:`` and every other scheme are refused
everywhere, with a message that says so.

Also :func:`split_url`, the parse of a URL the server itself will call (a push
endpoint, a webhook).
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

DEFAULT_MEDIA_BASE = "/mnt/"
LOCAL_PREFIXES = ("/mnt/", "/asset/")
# After the prefix: plain path characters; no "..", no backslash, no query tricks that a
# browser would normalise into another path ("%2e%2e", "%2f").
_REST = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@/-]*$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_HTTP = re.compile(r"^https?://[^\s/?#\\]+(?:[/?#][^\s\\]*)?$", re.IGNORECASE)


def _under(value: str, prefix: str) -> bool:
    if not value.startswith(prefix):
        return False
    rest = value[len(prefix):]
    return bool(_REST.match(rest)) and ".." not in rest.split("/") and "//" not in rest


def _scheme_problem(value: str, field: str) -> str | None:
    match = _SCHEME.match(value)
    if match and match.group(1).lower() not in ("http", "https"):
        return f"{field}: {match.group(1).lower()}: URLs are not allowed"
    if any(ord(c) < 33 or c == "\\" for c in value):
        return f"{field}: a URL must not contain spaces, control characters or backslashes"
    return None


def media_ref_problem(value: str, field: str, media_base: str = DEFAULT_MEDIA_BASE) -> str | None:
    """Why ``value`` may not be loaded automatically by clients, or None if it may
    (empty means "none" and is fine)."""
    if not value:
        return None
    problem = _scheme_problem(value, field)
    if problem:
        return problem
    # "/media" as a base must not admit "/media-other/...": compare whole segments.
    bases = (media_base.rstrip("/") + "/", *LOCAL_PREFIXES) if media_base.strip("/") else LOCAL_PREFIXES
    if any(_under(value, base) for base in bases):
        return None
    return f"{field}: only this server's media URLs are accepted (upload the file first)"


def link_problem(value: str, field: str, media_base: str = DEFAULT_MEDIA_BASE) -> str | None:
    """Why ``value`` is not an acceptable link for a card a user clicks, or None."""
    if not value:
        return None
    problem = _scheme_problem(value, field)
    if problem:
        return problem
    if _HTTP.match(value) or media_ref_problem(value, field, media_base) is None:
        return None
    return f"{field}: a link must be an http(s) URL"


def split_url(url: str) -> SplitResult:
    """``urlsplit(url)``, or for a URL it cannot parse (an unmatched "[" or a bracketed
    host that is no IP address raise ValueError) an empty one: no scheme, no host, which
    the caller refuses with its own message (400), never a 500."""
    try:
        return urlsplit(url)
    except ValueError:
        return urlsplit("")
