"""The client's address, behind as many reverse proxies as ``TRUSTED_PROXIES`` declares.

Each proxy appends the address it received the request from to ``X-Forwarded-For``, so with N
trusted proxies in front of us the client is the N-th entry from the right; everything left of
it was written by the client and proves nothing. With no proxy declared (the default) the
header is ignored and the address is ``REMOTE_ADDR``, as before. django-axes (the admin login's
throttling, ``AXES_CLIENT_IP_CALLABLE``) and the ``/metrics`` allow-list both ask here.
"""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest

from jobs import conf


def client_ip(request: HttpRequest) -> str | None:
    """The client's IP address as a string, or ``REMOTE_ADDR`` when no proxy is trusted or
    the forwarded entry is not an address."""
    remote = request.META.get("REMOTE_ADDR") or None
    hops = conf.trusted_proxies()
    if hops <= 0:
        return remote
    entries = [e.strip() for e in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    entries = [e for e in entries if e]
    if not entries:
        return remote  # not through the proxy (a probe talking to the pod directly)
    # Fewer entries than proxies: the request passed fewer of them; the first is the farthest.
    return _address(entries[-hops] if len(entries) >= hops else entries[0]) or remote


def _address(entry: str) -> str | None:
    """``entry`` as a normalised IP address (a port some proxies add is dropped), or None."""
    candidates = [entry]
    if entry.startswith("[") and "]" in entry:  # [2001:db8::1]:443
        candidates.append(entry[1 : entry.index("]")])
    elif entry.count(":") == 1:  # 203.0.113.5:443
        candidates.append(entry.split(":", 1)[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None
