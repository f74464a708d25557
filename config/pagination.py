"""Keyset (cursor) pagination on a composite, unique ordering, shared by DRF and Ninja.

DRF's and Ninja's cursor paginators key on the first ordering field only (plus an
offset for ties), which repeats or skips rows when that field is not unique and
rows arrive between pages. This one keys on every ordering field (the last is
always the primary key), so pages stay exact under concurrent inserts and each
page costs one indexed query, whatever its position.
"""

import base64
import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest

from config.errors import ValidationFailed


@dataclass(frozen=True)
class PageSpec:
    default_size: int = 50
    max_size: int = 100


DEFAULT_PAGE = PageSpec()
LARGE_PAGE = PageSpec(default_size=1000, max_size=5000)


@dataclass
class PagePlan:
    """A parsed page request: the queryset slice to run and how to read its rows."""

    queryset: QuerySet[Any] | None  # None when the page's SQL runs outside the ORM (config.adb)
    ordering: tuple[str, ...]
    size: int
    backwards: bool
    has_cursor: bool
    request: HttpRequest


def _encode(values: list[Any], backwards: bool) -> str:
    raw = orjson.dumps({"v": values, "b": backwards}, default=str)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[list[Any], bool]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        values, backwards = data["v"], data["b"]
        if not isinstance(values, list) or not isinstance(backwards, bool):
            raise TypeError
    except (ValueError, TypeError, KeyError) as exc:
        raise ValidationFailed("Invalid cursor.", details={"field": "cursor"}) from exc
    return values, backwards


def parse_page_size(request: HttpRequest, spec: PageSpec) -> int:
    raw = request.GET.get("page_size")
    if raw in (None, ""):
        return spec.default_size
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if size < 1:
        raise ValidationFailed("page_size must be a positive integer.", details={"field": "page_size"})
    return min(size, spec.max_size)  # Sizes above the maximum are clamped, not refused.


def _after(ordering: Sequence[str], values: Sequence[Any], backwards: bool) -> Q:
    """Rows strictly after `values` in `ordering` (before, when backwards).

    Written as f1 <= v1 AND (f1 < v1 OR (...)) so the leading column bounds an
    index range scan instead of the planner filtering an OR across the index.
    """
    name = ordering[0].lstrip("-")
    descending = ordering[0].startswith("-") != backwards
    strict, loose = ("lt", "lte") if descending else ("gt", "gte")
    if len(ordering) == 1:
        return Q(**{f"{name}__{strict}": values[0]})
    rest = _after(ordering[1:], values[1:], backwards)
    return Q(**{f"{name}__{loose}": values[0]}) & (Q(**{f"{name}__{strict}": values[0]}) | rest)


def _reverse(ordering: Sequence[str]) -> list[str]:
    return [f[1:] if f.startswith("-") else f"-{f}" for f in ordering]


def parse_cursor(request: HttpRequest, model: type[Model], ordering: Sequence[str]) -> tuple[list[Any] | None, bool]:
    """The request's cursor as typed ordering values (None without a cursor) and its direction."""
    cursor = request.GET.get("cursor")
    if not cursor:
        return None, False
    values, backwards = _decode(cursor)
    if len(values) != len(ordering):
        raise ValidationFailed("Invalid cursor.", details={"field": "cursor"})
    try:
        values = [model._meta.get_field(f.lstrip("-")).to_python(v) for f, v in zip(ordering, values, strict=True)]
    except (DjangoValidationError, TypeError, ValueError) as exc:
        raise ValidationFailed("Invalid cursor.", details={"field": "cursor"}) from exc
    if any(v is None or (isinstance(v, str) and "\x00" in v) for v in values):
        raise ValidationFailed("Invalid cursor.", details={"field": "cursor"})
    return values, backwards


def page_queryset(
    queryset: QuerySet[Any], ordering: Sequence[str], size: int, after: Sequence[Any] | None, backwards: bool
) -> QuerySet[Any]:
    """The one query of a page: rows after the cursor values (if any), in page order, one extra to see more."""
    if after is not None:
        queryset = queryset.filter(_after(ordering, after, backwards))
    order = _reverse(ordering) if backwards else list(ordering)
    return queryset.order_by(*order)[: size + 1]


def plan_page(
    request: HttpRequest,
    queryset: QuerySet[Any],
    ordering: Sequence[str],
    spec: PageSpec = DEFAULT_PAGE,
) -> PagePlan:
    """Parse `cursor`/`page_size` and build the one query for this page (not run yet)."""
    size = parse_page_size(request, spec)
    values, backwards = parse_cursor(request, queryset.model, ordering)
    return PagePlan(
        queryset=page_queryset(queryset, ordering, size, values, backwards),
        ordering=tuple(ordering),
        size=size,
        backwards=backwards,
        has_cursor=values is not None,
        request=request,
    )


def _link(request: HttpRequest, cursor: str) -> str:
    params = request.GET.copy()
    params["cursor"] = cursor
    return request.build_absolute_uri(f"{request.path}?{urlencode(sorted(params.items()))}")


def _key(row: Any, ordering: Sequence[str]) -> list[Any]:
    names = [f.lstrip("-") for f in ordering]
    if isinstance(row, dict):
        return [row[n] for n in names]
    return [getattr(row, n) for n in names]


def build_page(plan: PagePlan, rows: list[Any], serialize: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Turn the fetched rows of `plan` into {"results", "next", "previous"}."""
    more = len(rows) > plan.size
    rows = rows[: plan.size]
    if plan.backwards:
        rows.reverse()
        has_next, has_previous = True, more
    else:
        has_next, has_previous = more, plan.has_cursor
    next_url = previous_url = None
    if rows and has_next:
        next_url = _link(plan.request, _encode(_key(rows[-1], plan.ordering), False))
    if rows and has_previous:
        previous_url = _link(plan.request, _encode(_key(rows[0], plan.ordering), True))
    results = [serialize(r) for r in rows] if serialize else rows
    return {"results": results, "next": next_url, "previous": previous_url}


def queryset_of(plan: PagePlan) -> QuerySet[Any]:
    if plan.queryset is None:
        raise TypeError("This page plan has no queryset.")
    return plan.queryset


def paginate(
    request: HttpRequest,
    queryset: QuerySet[Any],
    ordering: Sequence[str],
    serialize: Callable[[Any], Any] | None = None,
    spec: PageSpec = DEFAULT_PAGE,
) -> dict[str, Any]:
    """Sync: one query for the page."""
    plan = plan_page(request, queryset, ordering, spec)
    return build_page(plan, list(queryset_of(plan)), serialize)


def dict_maker(columns: Sequence[str]) -> Callable[[list[tuple[Any, ...]]], list[dict[str, Any]]]:
    """`lambda raw: [{"id": v0, "frame": v1, ...} for v0, v1, ... in raw]` for these columns: a dict display over
    unpacked rows builds a 1000-row page in a third of the time `dict(zip(columns, row, strict=True))` takes."""
    names = [f"v{i}" for i in range(len(columns))]
    pairs = ", ".join(f"{column!r}: {name}" for column, name in zip(columns, names, strict=True))
    return eval(f"lambda raw: [{{{pairs}}} for {', '.join(names)}, in raw]")  # noqa: S307 - our column names


def merged_sql(
    querysets: Sequence[QuerySet[Any]], ordering: Sequence[str], limit: int | None = None
) -> tuple[str, list[Any]]:
    """One statement for the rows of several `values()` querysets (the same columns, each already in
    `ordering`, e.g. one index range per test session) merged in `ordering`, at most `limit` rows.

    Each queryset stays a parenthesised subquery with its own ORDER BY (and LIMIT), so PostgreSQL merges
    their index scans (Merge Append) and reads about `limit` rows in all; a plain join of the sets, or a
    UNION with one ORDER BY on top, sorts every row first."""
    parts, params = [], []
    for i, queryset in enumerate(querysets):
        sql, part_params = queryset.query.sql_with_params()
        parts.append(f"SELECT * FROM ({sql}) AS part{i}")  # noqa: S608 - SQL compiled by the ORM
        params.extend(part_params)
    quote, model = connection.ops.quote_name, querysets[0].model
    order = ", ".join(
        quote(model._meta.get_field(f.lstrip("-")).column) + (" DESC" if f.startswith("-") else "") for f in ordering
    )
    sql = f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS merged ORDER BY {order}"  # noqa: S608 - as above
    return (sql if limit is None else f"{sql} LIMIT {int(limit)}"), params


def merged_paginate(
    request: HttpRequest, querysets: Sequence[QuerySet[Any]], ordering: Sequence[str], spec: PageSpec = DEFAULT_PAGE
) -> dict[str, Any]:
    """Sync: a keyset page over several `values()` querysets merged in `ordering` (`merged_sql`); each
    contributes at most one page of rows, in one statement."""
    size = parse_page_size(request, spec)
    if not querysets:
        return {"results": [], "next": None, "previous": None}
    after, backwards = parse_cursor(request, querysets[0].model, ordering)
    order = _reverse(ordering) if backwards else list(ordering)
    sql, params = merged_sql([page_queryset(q, ordering, size, after, backwards) for q in querysets], order, size + 1)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = dict_maker([column[0] for column in cursor.description])(cursor.fetchall())
    plan = PagePlan(None, tuple(ordering), size, backwards, after is not None, request)
    return build_page(plan, rows)


async def apaginate(
    request: HttpRequest,
    queryset: QuerySet[Any],
    ordering: Sequence[str],
    serialize: Callable[[Any], Any] | None = None,
    spec: PageSpec = DEFAULT_PAGE,
) -> dict[str, Any]:
    """Async: one query for the page, through the async ORM."""
    plan = plan_page(request, queryset, ordering, spec)
    rows: list[Model] = [row async for row in queryset_of(plan)]
    return build_page(plan, rows, serialize)


def page_list(
    request: HttpRequest, rows: list[dict[str, Any]], *, key: str, spec: PageSpec = DEFAULT_PAGE
) -> dict[str, Any]:
    """Cursor pages over an already computed list sorted by the unique `key` (forward links only)."""
    size = parse_page_size(request, spec)
    start = 0
    cursor = request.GET.get("cursor")
    if cursor:
        values, _ = _decode(cursor)
        if len(values) != 1 or not isinstance(values[0], int) or isinstance(values[0], bool):
            raise ValidationFailed("Invalid cursor.", details={"field": "cursor"})
        keys = [r[key] for r in rows]
        start = bisect.bisect_right(keys, values[0])
    page = rows[start : start + size]
    more = start + size < len(rows)
    next_url = _link(request, _encode([page[-1][key]], False)) if page and more else None
    return {"results": page, "next": next_url, "previous": None}
