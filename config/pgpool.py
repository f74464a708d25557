"""Pool checks that recover from a mass disconnect in one step.

psycopg_pool checks a connection on checkout and, when the check fails, sleeps with exponential backoff (1 s, 2 s…)
before trying the next one. After `pg_terminate_backend`, a failover or a PostgreSQL restart every idle connection is
dead at once, so a request walking them one by one hits the pool timeout and answers 503 although the database is
back. These checks drop every dead idle connection the moment they find one (`pool.check()`, which also starts the
replacements), so the request's single backoff step lands on a fresh connection.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool


def purging_check(get_pool: Callable[[], ConnectionPool]) -> Callable[[psycopg.Connection[Any]], None]:
    def check(conn: psycopg.Connection[Any]) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            get_pool().check()  # its siblings most likely died with it
            raise

    return check


def apurging_check(
    get_pool: Callable[[], AsyncConnectionPool],
) -> Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]:
    async def check(conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            await AsyncConnectionPool.check_connection(conn)
        except psycopg.Error:
            await get_pool().check()
            raise

    return check
