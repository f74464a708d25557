"""Zero-hop reads on PostgreSQL: SQL compiled once per query shape from ORM querysets, run on an async psycopg pool."""

import asyncio
import datetime as dt
import re
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import SynchronousOnlyOperation
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable, ValuesIterable
from django.db.models.sql.compiler import SQLCompiler
from django.http import HttpRequest
from psycopg import adapt
from psycopg.types.datetime import TimestamptzLoader
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from config.pagination import (
    DEFAULT_PAGE,
    PagePlan,
    PageSpec,
    build_page,
    dict_maker,
    page_queryset,
    parse_cursor,
    parse_page_size,
)

ALIAS = "default"
Build = Callable[..., QuerySet[Any]]

# Sentinels stand in for request values while a shape compiles; each param is then traced back to its slot.
_INT_BASE = 1_999_000_000  # inside 32-bit range: Django turns out-of-range integer lookups into empty results
_TIME_BASE = dt.datetime(1901, 2, 3, tzinfo=dt.UTC)
_STR_MARK = re.compile("\ue000(\\d+)\ue001")


def enabled(request: HttpRequest) -> bool:
    """Fast reads serve ASGI requests on PostgreSQL. Under WSGI (and the sync test client) every async view runs
    on a throwaway event loop where no pool could be reused, so those take the ORM path, like SQLite does."""
    return (
        settings.FAST_READS
        and isinstance(request, ASGIRequest)
        and settings.DATABASES[ALIAS]["ENGINE"].endswith("postgresql")
    )


def _sentinel(value: Any, index: int) -> Any:
    if isinstance(value, bool) or value is None:
        raise TypeError("Booleans and None change the SQL itself: make them part of the shape key.")
    if isinstance(value, int):
        return _INT_BASE + index
    if isinstance(value, float):
        return _INT_BASE + index + 0.25
    if isinstance(value, str):
        return f"\ue000{index}\ue001"
    if isinstance(value, dt.datetime):
        return _TIME_BASE + dt.timedelta(microseconds=index)
    raise TypeError(f"No sentinel for {type(value).__name__} slots.")


def _like(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")


@dataclass(frozen=True)
class Shape:
    """One query shape: its SQL, how each param is made from the request's values, and how rows become objects."""

    sql: str
    recipe: tuple[tuple[str, Any, str, str], ...]  # (const|slot|like, value or slot name, prefix, suffix)
    model: type[Model] | None  # rows become instances of it (from_db), else dicts keyed by `columns`
    columns: tuple[str, ...]
    compiler: SQLCompiler
    converters: dict[int, Any]
    dicts: Callable[[list[tuple[Any, ...]]], list[dict[str, Any]]] | None = None  # values() rows → dicts

    def params(self, values: Mapping[str, Any]) -> list[Any]:
        out = []
        for kind, what, prefix, suffix in self.recipe:
            if kind == "const":
                out.append(what)
            elif kind == "slot":
                out.append(values[what])
            else:  # A string slot inside a LIKE pattern (contains/startswith/...), escaped as Django does.
                out.append(f"{prefix}{_like(values[what])}{suffix}")
        return out

    def rows(self, raw: list[tuple[Any, ...]]) -> list[Any]:
        if self.converters:
            raw = [tuple(r) for r in self.compiler.apply_converters(raw, self.converters)]
        if self.dicts is not None:
            return self.dicts(raw)
        return [self.model.from_db(ALIAS, self.columns, r) for r in raw]


def _trace(param: Any, slots: dict[Any, str], names: list[str]) -> tuple[str, Any, str, str]:
    if isinstance(param, Hashable) and not isinstance(param, bool) and param in slots:
        return ("slot", slots[param], "", "")
    if isinstance(param, str) and (marks := list(_STR_MARK.finditer(param))):
        if len(marks) != 1:
            raise TypeError("A param mixes several slots.")
        mark = marks[0]
        return ("like", names[int(mark.group(1))], param[: mark.start()], param[mark.end() :])
    return ("const", param, "", "")


def _compile(build: Build, values: Mapping[str, Any]) -> Shape:
    names = list(values)
    sentinels = {name: _sentinel(values[name], i) for i, name in enumerate(names)}
    queryset = build(**sentinels)
    compiler = queryset.query.get_compiler(using=ALIAS)
    sql, params = compiler.as_sql()
    if "\ue000" in sql or any(str(s) in sql for s in sentinels.values() if isinstance(s, int)):
        raise TypeError("A slot value was inlined into the SQL text: make it part of the shape key.")
    slots = {s: name for name, s in sentinels.items()}
    recipe = tuple(_trace(p, slots, names) for p in params)
    select = [col for col, _, _ in compiler.select]
    converters = compiler.get_converters(select)
    if queryset._iterable_class is ModelIterable:
        fields = compiler.klass_info["select_fields"]
        if fields != list(range(len(select))) or compiler.annotation_col_map:
            raise TypeError("Fast model rows support plain model querysets (no select_related or annotations).")
        return Shape(sql, recipe, queryset.model, tuple(c.target.attname for c in select), compiler, converters)
    if queryset._iterable_class is ValuesIterable:
        query = queryset.query
        columns = (*query.extra_select, *query.values_select, *query.annotation_select)
        return Shape(sql, recipe, None, tuple(columns), compiler, converters, dict_maker(columns))
    raise TypeError("Fast reads return model instances or values() dicts.")


_shapes: dict[Hashable, Shape] = {}


async def compiled(key: Hashable, build: Build, values: Mapping[str, Any]) -> Shape:
    """The shape for `key`, compiled on first use from `build(**sentinel values)` (the selector's queryset)."""
    shape = _shapes.get(key)
    if shape is None:
        try:
            shape = _compile(build, values)
        except SynchronousOnlyOperation:
            # Some compilations ask for the server version, which connects: one hop, once per shape.
            shape = await sync_to_async(_compile)(build, values)
        _shapes[key] = shape
    return shape


_pools: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[AsyncConnectionPool, asyncio.Future[None]]]" = (
    weakref.WeakKeyDictionary()
)


def _new_pool() -> AsyncConnectionPool:
    database = connections[ALIAS]
    kwargs = database.get_connection_params()  # Django's own parameters and adapters (UTC timestamptz loader)
    # Autocommit: reads need no BEGIN/ROLLBACK trips. Server-side binding with every shape prepared on its first
    # use per connection: PostgreSQL parses and plans a hot read once, not on every request (video detail
    # 2.5 → 1.4 ms in-process). Needs session-level pooling (PgBouncer in transaction mode would not do).
    kwargs.update(cursor_factory=psycopg.AsyncCursor, autocommit=True, prepare_threshold=0)
    timezone_name, set_tz = database.timezone_name, database.ops.set_time_zone_sql()
    if settings.USE_TZ and timezone_name == "UTC":
        # Django's timestamptz loader is a Python subclass that re-stamps UTC on each value: a third of a list
        # page's CPU. Sessions here run in UTC (configure below), so psycopg's own loader (its C version, which
        # register_loader picks) returns the same aware UTC datetimes.
        context = adapt.AdaptersMap(kwargs["context"].adapters)
        context.register_loader("timestamptz", TimestamptzLoader)
        kwargs["context"] = context

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        if timezone_name and conn.info.parameter_status("TimeZone") != timezone_name:
            await conn.execute(set_tz, [timezone_name])

    pool = AsyncConnectionPool(
        kwargs=kwargs,
        min_size=settings.ADB_POOL_MIN_SIZE,
        max_size=settings.ADB_POOL_MAX_SIZE,
        timeout=settings.ADB_POOL_TIMEOUT_S,
        max_idle=300,
        configure=configure,
        # No check on checkout (a pre-ping is a round trip per read): fetch_sql retries a read that met a dead
        # connection once, after purging every dead idle one.
        open=False,
        name="fw-adb",
    )
    return pool


async def _pool() -> AsyncConnectionPool:
    """The running loop's pool (a pool's connections belong to the loop that opened them), opened lazily."""
    loop = asyncio.get_running_loop()
    entry = _pools.get(loop)
    if entry is None:
        pool = _new_pool()
        entry = (pool, asyncio.ensure_future(pool.open(wait=False)))
        _pools[loop] = entry
    pool, opening = entry
    if not opening.done():
        await asyncio.shield(opening)
    return pool


async def close_pool() -> None:
    """Close the running loop's pool (tests; the server's pools live as long as their process)."""
    entry = _pools.pop(asyncio.get_running_loop(), None)
    if entry is not None:
        await entry[1]
        await entry[0].close()


_observers: list[list[str]] = []


@contextmanager
def capture() -> Iterator[list[str]]:
    """Record the SQL statements fast reads run (query-count tests)."""
    seen: list[str] = []
    _observers.append(seen)
    try:
        yield seen
    finally:
        _observers.remove(seen)


async def fetch_sql(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run one statement on the pool. Connections are not pinged before use: one found dead (a restart,
    `pg_terminate_backend`) is dropped with every dead idle sibling, and the read is retried once."""
    pool = await _pool()
    for attempt in (1, 2):
        try:
            # getconn/putconn, not `pool.connection()`: that also enters the connection's own context, whose exit
            # commits (a no-op in autocommit, yet a lock and a status check on every read).
            conn = await pool.getconn()
            try:
                cursor = await conn.execute(sql, params)
                raw = await cursor.fetchall()
            finally:
                await pool.putconn(conn)  # a broken connection is discarded here
            break
        except PoolTimeout:
            raise  # No connection within the pool timeout: a retry would double the wait (503 now).
        except psycopg.OperationalError:
            if attempt == 2:
                raise
            await pool.check()
    for seen in _observers:
        seen.append(sql)
    return raw


async def fetch(shape: Shape, values: Mapping[str, Any]) -> list[Any]:
    """Run one compiled statement and turn its rows into what the ORM would have returned."""
    return shape.rows(await fetch_sql(shape.sql, shape.params(values)))


async def first(key: Hashable, build: Build, values: Mapping[str, Any]) -> Any | None:
    """The first row of `build`'s queryset (as `afirst()` would order it), or None."""
    rows = await fetch(await compiled(key, build, values), values)
    return rows[0] if rows else None


async def page(
    request: HttpRequest,
    *,
    key: Hashable,
    build: Build,
    values: Mapping[str, Any],
    model: type[Model],
    ordering: Sequence[str],
    serialize: Callable[[Any], Any] | None = None,
    spec: PageSpec = DEFAULT_PAGE,
) -> dict[str, Any] | None:
    """A keyset page exactly as config.pagination builds it, in one statement. None when it came back empty:
    `build` folds the access check into the statement, so the ORM path tells "foreign" (404) from "empty"."""
    size = parse_page_size(request, spec)
    after, backwards = parse_cursor(request, model, ordering)
    slots = dict(values)
    if after is not None:
        slots.update({f"after{i}": v for i, v in enumerate(after)})

    def build_page_query(**v: Any) -> QuerySet[Any]:
        cursor = None if after is None else [v[f"after{i}"] for i in range(len(ordering))]
        return page_queryset(build(**{k: v[k] for k in values}), ordering, size, cursor, backwards)

    shape = await compiled((key, size, after is not None, backwards), build_page_query, slots)
    rows = await fetch(shape, slots)
    if not rows:
        return None
    plan = PagePlan(None, tuple(ordering), size, backwards, after is not None, request)
    return build_page(plan, rows, serialize)
