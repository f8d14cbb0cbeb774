"""The HTTP client writes the endpoint's path as its request target. For the usual
endpoint it skips ``urlsplit`` and quoting; whatever the URL, the target must be what
``urllib.parse`` makes of it (the path quoted, the query kept, the fragment dropped)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from pushcamp.webpush._http import _SAFE, HttpClient

# Characters that matter to the path's handling (reserved, quoted, split off), and any.
PATH_CHARS = st.sampled_from(
    list("aZ09-._~/!$&'()*+,;=:@[]%?# \t\"<>\\^`{|}é\x00\x7f")
) | st.characters(codec="utf-8", exclude_categories=["Cs"])


def expected_target(url: str) -> bytes:
    parts = urlsplit(url)
    target = quote(parts.path or "/", safe=_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_SAFE)
    return target.encode("ascii")


@given(path=st.text(PATH_CHARS, max_size=40))
def test_target_is_what_urllib_makes_of_the_url(path: str) -> None:
    client = HttpClient(timeout=1.0, user_agent="test")
    url = f"https://push.example.net/{path}"
    # The first call learns the origin (the slow path), the second may take the fast one.
    first = client._origin(url)
    second = client._origin(url)
    assert first[1] == second[1] == expected_target(url)
    assert first[0] is second[0]
    assert first[0].host_header == b"Host: push.example.net\r\n"


def test_origin_with_capitals_and_port_is_one_origin() -> None:
    client = HttpClient(timeout=1.0, user_agent="test")
    a, target_a = client._origin("HTTPS://Push.Example.net:8443/wpush/v2/abc")
    b, target_b = client._origin("HTTPS://Push.Example.net:8443/wpush/v2/abc")
    c, _ = client._origin("https://push.example.net:8443/other")
    assert a is b
    assert (a.host, a.port, a.tls) == ("push.example.net", 8443, True)
    assert target_a == target_b == b"/wpush/v2/abc"
    assert c.port == 8443
