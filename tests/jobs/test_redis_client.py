"""``jobs.redis_client.redis_for``: one client per queue configuration and process."""

from django_rq import settings as rq_settings

from config.embedded_redis import free_port
from jobs.redis_client import redis_for


def test_the_same_queue_gets_the_same_client_and_it_talks_to_redis():
    first = redis_for("bundle-recompute")
    assert redis_for("bundle-recompute") is first
    assert first.ping()


def test_a_changed_configuration_gets_a_client_of_its_own(monkeypatch):
    before = redis_for("bundle-recompute")
    port = free_port()
    config = {**rq_settings.QUEUES["bundle-recompute"], "URL": f"redis://127.0.0.1:{port}/0"}
    monkeypatch.setitem(rq_settings.QUEUES, "bundle-recompute", config)
    moved = redis_for("bundle-recompute")
    assert moved is not before
    assert moved.connection_pool.connection_kwargs["port"] == port
