"""After a mass disconnect the pools drop every dead idle connection at the first failed checkout (config/pgpool.py).

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
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from config.pgpool import apurging_check, purging_check

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


def _counted(check, calls: list[int]):
    def counting(conn):
        calls.append(1)
        return check(conn)

    return counting


def _acounted(check, calls: list[int]):
    async def counting(conn):
        calls.append(1)
        return await check(conn)

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


async def test_async_pool_purges_every_dead_connection_on_the_first_failed_check():
    app, calls = f"fw-apool-{uuid.uuid4().hex[:8]}", []
    check = _acounted(apurging_check(lambda: pool), calls)
    pool: AsyncConnectionPool = AsyncConnectionPool(
        _conninfo(app), min_size=SIZE, max_size=SIZE, timeout=10, open=False, check=check
    )
    await pool.open(wait=True)
    try:
        assert await sync_to_async(_terminate)(app) == SIZE
        async with pool.connection() as conn:
            assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
        assert len(calls) == 2
        assert pool.get_stats().get("connections_lost", 0) == SIZE
    finally:
        await pool.close()


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
    with psycopg.connect(_conninfo("fw-pool-killer")) as killer:
        killed = killer.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM unnest(%s::int[]) AS pid", [pids]
        ).fetchone()[0]
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
