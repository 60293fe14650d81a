"""One Redis client per queue configuration and process.

``django_rq.get_connection`` builds a new client, with a new connection pool, on every call:
every admin strip, health probe, pause check and cancel paid a TCP connect and redis-py's
handshake. A redis-py client is thread-safe and fork-safe (its pool starts afresh in a child
process); a changed configuration (another URL) gets a client of its own.
"""

from __future__ import annotations

from collections.abc import Iterable

import django_rq
from django_rq import settings as rq_settings
from redis import Redis

_clients: dict[tuple[str, str], Redis] = {}


def config_key(queue_name: str) -> tuple[str, str]:
    """``queue_name`` with its current django-rq configuration: what a cached client (or
    queue) is kept under, so a changed configuration gets a new one."""
    config = rq_settings.QUEUES[queue_name]
    return queue_name, repr(sorted(config.items(), key=lambda item: item[0]))


def redis_for(queue_name: str) -> Redis:
    """The Redis client of ``queue_name``'s configuration, made once per process."""
    key = config_key(queue_name)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = django_rq.get_connection(queue_name)
    return client


def server_key(client: Redis) -> tuple:
    """Which server and database ``client`` talks to: clients of queues configured alike share
    one (one pipeline for them all), a queue with a Redis of its own gets its own."""
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    return (
        type(pool).__name__,
        getattr(pool, "service_name", None),  # Sentinel: the service, not a host
        *(kwargs.get(k) for k in ("host", "port", "path", "db", "username")),
    )


def by_server(queue_names: Iterable[str]) -> dict[tuple, list[str]]:
    """``queue_names`` grouped by the Redis server their configuration points at (in order)."""
    groups: dict[tuple, list[str]] = {}
    for name in queue_names:
        groups.setdefault(server_key(redis_for(name)), []).append(name)
    return groups
