"""After a mass disconnect the pools drop every dead idle connection at the first failure (config/postgresql, adb).

psycopg_pool's own check walks dead connections one per backoff step (1 s, 2 s…), so a request after
`pg_terminate_backend` could wait out the pool timeout; tests/reliability/test_database_faults.py measures the
effect under load, these pin the mechanism: one checkout, every dead sibling counted as lost, a working connection.
"""

import logging
import uuid

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.db import connection
from psycopg_pool import ConnectionPool

from config import adb
from config.postgresql.base import purging_check

pytestmark = [
    pytest.mark.skipif(
        not django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="connection pools exist on PostgreSQL only",
    ),
    pytest.mark.django_db(transaction=True),
]

SIZE = 4


def _conninfo(app: str) -> str:
    db = connection.settings_dict
    return f"host={db['HOST']} port={db['PORT']} user={db['USER']} dbname={db['NAME']} application_name={app}"


def _terminate(app: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            [app],
        )
        return int(cursor.fetchone()[0])


def _terminate_pids(pids: list[int]) -> int:
    """Kill exactly these backends (never another test's or thread's connection), from a connection of our own."""
    with psycopg.connect(_conninfo("fw-pool-killer")) as killer:
        return killer.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM unnest(%s::int[]) AS pid", [pids]
        ).fetchone()[0]


def _counted(check, calls: list[int]):
    def counting(conn):
        calls.append(1)
        return check(conn)

    return counting


def test_sync_pool_purges_every_dead_connection_on_the_first_failed_check():
    app, calls = f"fw-pool-{uuid.uuid4().hex[:8]}", []
    check = _counted(purging_check(lambda: pool), calls)
    pool: ConnectionPool = ConnectionPool(
        _conninfo(app), min_size=SIZE, max_size=SIZE, timeout=10, open=False, check=check
    )
    pool.open(wait=True)
    try:
        assert _terminate(app) == SIZE
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        # One dead connection checked, its siblings purged in one pass, then a fresh one: the stock check walks
        # all SIZE dead ones, one backoff step (1 s, 2 s, 4 s…) each, before it reaches a live one.
        assert len(calls) == 2
        assert pool.get_stats().get("connections_lost", 0) == SIZE
    finally:
        pool.close()


async def test_fast_read_pool_retries_once_after_purging_dead_connections(caplog, settings):
    """The fast-read pool pings nothing before use (a round trip per read); a read that meets a dead connection
    purges every dead idle one and is retried once, so it still answers."""
    settings.ADB_POOL_MIN_SIZE = 3
    await adb.close_pool()
    pool = await adb._pool()
    await pool.wait(timeout=10)
    idle = pool.get_stats()["pool_available"]
    held = [await pool.getconn() for _ in range(idle)]
    pids = [conn.info.backend_pid for conn in held]
    for conn in held:
        await pool.putconn(conn)
    assert idle >= 2
    assert await sync_to_async(_terminate_pids)(pids) == idle
    caplog.set_level(logging.WARNING, logger="psycopg.pool")
    try:
        assert await adb.fetch_sql("SELECT 1", []) == [(1,)]
    finally:
        await adb.close_pool()
    purged = [r for r in caplog.records if r.getMessage().startswith("discarding broken connection")]
    assert len(purged) == idle - 1  # the first dead one failed the read; the rest went in one pass


def test_django_pool_uses_the_purging_check(caplog):
    """The ORM's pool (config.postgresql backend): its killed idle connections go at the first checkout."""
    connection.close()
    pool = connection.pool
    pool.wait(timeout=10)
    # Kill exactly the pool's idle connections: other threads (channels' executors) may hold live ones.
    idle = pool.get_stats()["pool_available"]
    held = [pool.getconn() for _ in range(idle)]
    pids = [conn.info.backend_pid for conn in held]
    for conn in held:
        pool.putconn(conn)
    killed = _terminate_pids(pids)
    assert killed == idle >= 2
    lost_before = pool.get_stats().get("connections_lost", 0)
    caplog.set_level(logging.WARNING, logger="psycopg.pool")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    # Stock checks would sleep 1 s + 2 s walking two dead ones and hit the 3 s pool timeout instead.
    assert pool.get_stats().get("connections_lost", 0) - lost_before == idle
    purged = [r for r in caplog.records if r.getMessage().startswith("discarding broken connection")]  # pool.check()
    assert len(purged) == idle - 1
