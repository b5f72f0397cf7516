"""Webhook endpoint URLs: a URL that ``urlsplit`` cannot parse (an unmatched IPv6
bracket) is refused as a bad URL (400), like any other malformed one, not raised as a
ValueError (a 500 through the server API)."""

from __future__ import annotations

import pytest

from imhub.errors import ErrorCode, Refused
from imhub.services.webhooks import check_url


@pytest.mark.parametrize(
    "url", ["https://[::1/hook", "http://[", "https://a]b/hook", "https://[x]/hook", "https:///nohost", "hook"],
)
@pytest.mark.parametrize("allow_loopback_http", [False, True])
def test_malformed_urls_are_refused(url: str, allow_loopback_http: bool) -> None:
    with pytest.raises(Refused) as refused:
        check_url(url, allow_loopback_http)
    assert refused.value.code is ErrorCode.BAD_URL and refused.value.status == 400


def test_https_and_allowed_loopback_http_are_taken() -> None:
    assert check_url("https://[2001:db8::1]/hook", False) == "https://[2001:db8::1]/hook"
    assert check_url("http://[::1]:9/hook", True) == "http://[::1]:9/hook"
