"""Push subscriptions name a URL the server will POST to: without the test setting
(push_allow_http) only public https hosts are accepted, and a hostname that resolves to
a private address is refused when connecting (no SSRF through Web Push)."""

from __future__ import annotations

import pytest

from imhub.errors import Refused
from imhub.services.push import PublicOnlyResolver, check_push_endpoint


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/push/1", "https://10.1.2.3/x", "https://192.168.0.5:8443/x", "https://[::1]/x",
    "https://169.254.169.254/latest/meta-data", "https://localhost/x", "https://0.0.0.0/x",
    "http://fcm.googleapis.com/fcm/send/abc", "javascript:alert(1)", "https:///nohost",
    # urlsplit raises ValueError ("Invalid IPv6 URL") on an unmatched bracket: a 500
    # under schemathesis' fuzz before (issue: the flaky "Invalid IPv6 URL" failure).
    "https://[::1/x", "http://[", "https://a]b/x", "https://[x]/p",
])
def test_private_or_plain_http_endpoints_are_refused(url: str) -> None:
    with pytest.raises(Refused) as refused:
        check_push_endpoint(url, allow_local=False)
    assert refused.value.code.name == "BAD_PARAM"


def test_public_https_endpoints_are_taken_and_the_test_setting_allows_local() -> None:
    url = "https://fcm.googleapis.com/fcm/send/abc"
    assert check_push_endpoint(url, allow_local=False) == url
    assert check_push_endpoint("http://127.0.0.1:9/push/1", allow_local=True) == "http://127.0.0.1:9/push/1"


@pytest.mark.parametrize("url", ["https://[::1/x", "http://[", "https://a]b/x", "https://[x]/p"])
def test_malformed_endpoints_are_refused_even_where_local_is_allowed(url: str) -> None:
    with pytest.raises(Refused) as refused:
        check_push_endpoint(url, allow_local=True)
    assert refused.value.code.name == "BAD_PARAM"


async def test_a_name_resolving_to_a_private_address_is_not_connected() -> None:
    resolver = PublicOnlyResolver()
    with pytest.raises(OSError, match="not a public address"):
        await resolver.resolve("localhost", 443)
    await resolver.close()
