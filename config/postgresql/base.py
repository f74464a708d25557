"""Django's PostgreSQL backend with a pool that recovers from a mass disconnect in one step.

psycopg_pool checks a connection on checkout (CONN_HEALTH_CHECKS) and, when the check fails, sleeps with
exponential backoff (1 s, 2 s…) before trying the next one. After `pg_terminate_backend`, a failover or a PostgreSQL
restart every idle connection is dead at once, so a request walking them one by one hits the pool timeout and
answers 503 although the database is back. `purging_check` drops every dead idle connection the moment it finds one
(`pool.check()`, which also starts the replacements), so the request's single backoff step lands on a fresh one.
Django builds its `ConnectionPool` with `check=ConnectionPool.check_connection` and offers no hook for another
check, so `DatabaseWrapper.pool` builds the same pool with this one.
"""

from collections.abc import Callable
from typing import Any

import psycopg
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


def purging_check(get_pool: Callable[[], ConnectionPool]) -> Callable[[psycopg.Connection[Any]], None]:
    def check(conn: psycopg.Connection[Any]) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            get_pool().check()  # its siblings most likely died with it
            raise

    return check


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self) -> ConnectionPool | None:
        options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not options or not self.settings_dict["CONN_HEALTH_CHECKS"]:
            return super().pool
        if self.alias not in self._connection_pools:
            alias, pools = self.alias, self._connection_pools
            pool = ConnectionPool(
                kwargs={**self.get_connection_params(), "autocommit": True},  # as Django: autocommit is set later
                open=False,
                configure=self._configure_connection,
                check=purging_check(lambda: pools[alias]),
                **({} if options is True else options),
            )
            pools.setdefault(alias, pool)  # as Django: the first thread to set it wins
        return self._connection_pools[self.alias]
