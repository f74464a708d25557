"""Django's PostgreSQL backend with a pool whose checkout check recovers from a mass disconnect (config/pgpool.py).

Django builds its `ConnectionPool` with `check=ConnectionPool.check_connection` when `CONN_HEALTH_CHECKS` is on and
offers no hook for another check, so this wrapper builds the same pool with the purging one.
"""

from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool

from config.pgpool import purging_check


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
