import django_rq


def test_suite_talks_to_a_real_redis(redis_conn):
    redis_conn.set("probe", "1")
    assert redis_conn.get("probe") == b"1"
    assert django_rq.get_queue("bundle-recompute").connection.ping()
