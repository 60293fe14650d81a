"""jobs.client_ip: the client behind TRUSTED_PROXIES proxies, REMOTE_ADDR when none is declared."""

from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings

from jobs.client_ip import client_ip

PROXY = "10.0.0.1"


def ip(forwarded: str | None, *, proxies: int) -> str | None:
    meta = {"REMOTE_ADDR": PROXY}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    with override_settings(TRUSTED_PROXIES=proxies):
        return client_ip(RequestFactory().get("/", **meta))


@pytest.mark.parametrize(
    ("forwarded", "proxies", "expected"),
    [
        ("203.0.113.5", 0, PROXY),  # no proxy declared: the header is ignored
        (None, 1, PROXY),  # not through the proxy (a probe): REMOTE_ADDR
        ("203.0.113.5", 1, "203.0.113.5"),
        ("1.1.1.1, 203.0.113.5", 1, "203.0.113.5"),  # the client's own entry is ignored
        ("1.1.1.1, 203.0.113.5, 192.168.0.2", 2, "203.0.113.5"),  # two proxies: 2nd from right
        ("203.0.113.5", 2, "203.0.113.5"),  # fewer entries than proxies: the farthest one
        ("203.0.113.5:4711", 1, "203.0.113.5"),  # a port some proxies add
        ("[2001:db8::1]:443", 1, "2001:db8::1"),
        ("2001:DB8:0::1", 1, "2001:db8::1"),
        ("unknown", 1, PROXY),  # not an address: REMOTE_ADDR, never junk for axes' IP field
        (" , ", 1, PROXY),
    ],
)
def test_the_client_is_the_entry_the_declared_proxies_appended(forwarded, proxies, expected):
    assert ip(forwarded, proxies=proxies) == expected
