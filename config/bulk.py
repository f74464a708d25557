"""Bulk rows in and out: binary COPY and array aggregates on PostgreSQL, batched ORM calls elsewhere."""

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import psycopg
from asgiref.sync import sync_to_async
from django.db import connection, transaction
from django.db.models import Model, QuerySet

from config.pagination import dict_maker

BATCH_SIZE = 2000
# PostgreSQL binary formats of the fixed-width column types NumPy can read or write directly.
_FIXED = {"smallint": ">i2", "integer": ">i4", "bigint": ">i8", "real": ">f4", "double precision": ">f8"}
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_PGCOPY_TRAILER = b"\xff\xff"
_ARRAY_HEADER = 20  # array_send of a one-dimensional array: ndim, has-nulls, element oid, length, lower bound


def _db_types(model: type[Model], columns: Sequence[str]) -> list[str]:
    """PostgreSQL type names (no modifiers) of `columns`, attnames such as `video_id` included."""
    return [model._meta.get_field(c).db_type(connection).split("(")[0] for c in columns]  # type: ignore[union-attr]


def _columns_sql(model: type[Model], columns: Sequence[str]) -> str:
    return ", ".join(model._meta.get_field(c).column for c in columns)  # type: ignore[union-attr]


def bulk_insert(model: type[Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert `rows` (tuples in `columns` order, attnames such as `video_id`) in the caller's transaction.

    PostgreSQL: one binary COPY (psycopg's C dumpers, no float-to-text formatting on either side)."""
    if connection.vendor == "postgresql":
        sql = f"COPY {model._meta.db_table} ({_columns_sql(model, columns)}) FROM STDIN (FORMAT BINARY)"
        # The raw psycopg cursor's errors come out as Django's (IntegrityError, ...), as on other databases.
        with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            copy.set_types(_db_types(model, columns))
            for row in rows:
                copy.write_row(row)
        return
    model.objects.bulk_create((model(**dict(zip(columns, row, strict=True))) for row in rows), batch_size=BATCH_SIZE)


def bulk_insert_arrays(model: type[Model], arrays: Mapping[str, np.ndarray | Sequence[str]]) -> None:
    """Insert one row per element of equal-length columns: NumPy arrays of fixed-width values (numbers, `S<n>`
    bytes) or sequences of `str` (text of any length).

    PostgreSQL: the binary COPY stream is laid out by NumPy as one structured array, so no Python object is
    made per row; a text column gets a field as wide as its longest value, and the padding is cut out after."""
    columns = list(arrays)
    n = len(next(iter(arrays.values())))
    if connection.vendor != "postgresql":
        values = [_python_values(a) for a in arrays.values()]
        bulk_insert(model, columns, zip(*values, strict=True))
        return
    fixed = {c: a for c, a in arrays.items() if isinstance(a, np.ndarray)}
    text = {c: _encode_text(a) for c, a in arrays.items() if not isinstance(a, np.ndarray)}
    layout: list[tuple[str, str]] = [("fields", ">i2")]
    for i, (column, db_type) in enumerate(zip(columns, _db_types(model, columns), strict=True)):
        kind = text[column][0].dtype if column in text else fixed[column].dtype
        layout += [(f"len{i}", ">i4"), (f"v{i}", kind.str if kind.kind == "S" else _FIXED[db_type])]
    records = np.empty(n, dtype=np.dtype(layout))
    records["fields"] = len(columns)
    for i, column in enumerate(columns):
        values, lengths = text.get(column, (fixed.get(column), None))
        records[f"len{i}"] = records.dtype[f"v{i}"].itemsize if lengths is None else lengths
        records[f"v{i}"] = values
    data = records.view(np.uint8).reshape(n, records.dtype.itemsize)
    if text:
        keep = np.ones(data.shape, dtype=bool)
        for i, column in enumerate(columns):
            if column in text:
                offset, width = records.dtype.fields[f"v{i}"][1], records.dtype[f"v{i}"].itemsize
                keep[:, offset : offset + width] = np.arange(width) < text[column][1][:, None]
        data = data[keep]
    sql = f"COPY {model._meta.db_table} ({_columns_sql(model, columns)}) FROM STDIN (FORMAT BINARY)"
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.write(_PGCOPY_HEADER)
        copy.write(np.ascontiguousarray(data).data)
        copy.write(_PGCOPY_TRAILER)


async def aiter_sql(sql: str, params: Sequence[Any], chunk_size: int = 2000) -> AsyncIterator[dict[str, Any]]:
    """Rows of a SELECT as dicts, fetched `chunk_size` at a time through a server-side cursor on PostgreSQL
    (as the ORM's `aiterator` does), so memory stays flat however many rows; each chunk is one thread hop."""
    chunks = _sql_chunks(sql, params, chunk_size)
    step = sync_to_async(next, thread_sensitive=True)
    try:
        while (chunk := await step(chunks, None)) is not None:
            for row in chunk:
                yield row
    finally:
        await sync_to_async(chunks.close, thread_sensitive=True)()


def _sql_chunks(sql: str, params: Sequence[Any], chunk_size: int) -> Iterator[list[dict[str, Any]]]:
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        make_dicts = dict_maker([column[0] for column in cursor.description])
        while rows := cursor.fetchmany(chunk_size):
            yield make_dicts(rows)


def _encode_text(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 `values` as a fixed-width `S<n>` array and their byte lengths; each distinct value is encoded
    once (columns such as labels repeat a few values)."""
    lookup: dict[str, int] = {}
    codes = np.fromiter((lookup.setdefault(v, len(lookup)) for v in values), dtype=np.intp, count=len(values))
    encoded = [v.encode() for v in lookup]
    table = np.array(encoded or [b""], dtype=f"S{max(map(len, encoded), default=1) or 1}")
    return table[codes], np.array([len(b) for b in encoded] or [0], dtype=np.int32)[codes]


def _python_values(column: np.ndarray | Sequence[str]) -> list[Any]:
    if not isinstance(column, np.ndarray):
        return list(column)
    return column.astype(str).tolist() if column.dtype.kind == "S" else column.tolist()


def fetch_arrays(queryset: QuerySet[Any], columns: Sequence[str]) -> dict[str, np.ndarray]:
    """`columns` of every row of `queryset` as NumPy arrays (numbers as int64/float64, text as str).

    PostgreSQL: one query aggregating each column into an array; numeric arrays arrive in binary
    (`array_send`) and are read by NumPy in place, so no Python object is made per value."""
    if connection.vendor != "postgresql":
        return _orm_arrays(queryset, columns)
    (row,) = _aggregate_rows(queryset, columns, group_by=None)
    return _parse_arrays(queryset.model, columns, row)


def fetch_grouped_arrays(
    queryset: QuerySet[Any], key: str, columns: Sequence[str]
) -> tuple[list[Any], np.ndarray, dict[str, np.ndarray]]:
    """Like `fetch_arrays`, with `key` (a column repeating a few values, such as a label) given as the list of
    its distinct values and, per row, the int64 index of its value in that list; rows come grouped by value.

    PostgreSQL: one query with a row per value (GROUP BY), so no Python object is made per row for `key`
    either: a text column came back as one `str` per row, the largest cost of loading it. Meant for rows read
    through an index range (one session's detections): it is planned as such."""
    if connection.vendor != "postgresql":
        arrays = _orm_arrays(queryset, (key, *columns))
        lookup: dict[Any, int] = {}
        keys = arrays.pop(key).tolist()
        codes = np.fromiter((lookup.setdefault(v, len(lookup)) for v in keys), dtype=np.int64, count=len(keys))
        return list(lookup), codes, arrays
    groups = _aggregate_rows(queryset, columns, group_by=key)
    if not groups:
        return [], np.zeros(0, dtype=np.int64), _parse_arrays(queryset.model, columns, [None] * len(columns))
    parts = [_parse_arrays(queryset.model, columns, row[1:]) for row in groups]
    codes = np.repeat(np.arange(len(parts), dtype=np.int64), [part[columns[0]].size for part in parts])
    return [row[0] for row in groups], codes, {c: np.concatenate([part[c] for part in parts]) for c in columns}


def concat_grouped(
    *parts: tuple[list[Any], np.ndarray, dict[str, np.ndarray]],
) -> tuple[list[Any], np.ndarray, dict[str, np.ndarray]]:
    """`fetch_grouped_arrays` results of disjoint querysets as one: values in first-seen order, codes
    renumbered to index that list, columns concatenated in the parts' order."""
    lookup: dict[Any, int] = {}
    codes: list[np.ndarray] = []
    columns: dict[str, list[np.ndarray]] = {}
    for part_keys, part_codes, arrays in parts:
        remap = np.array([lookup.setdefault(k, len(lookup)) for k in part_keys], dtype=np.int64)
        codes.append(remap[part_codes] if part_keys else part_codes)
        for name, values in arrays.items():
            columns.setdefault(name, []).append(values)
    return list(lookup), np.concatenate(codes), {name: np.concatenate(values) for name, values in columns.items()}


def _aggregate_rows(queryset: QuerySet[Any], columns: Sequence[str], group_by: str | None) -> list[tuple[Any, ...]]:
    """Each column of `queryset` aggregated into an array, for all rows, or per value of `group_by` (then first
    in each returned row; no row when the queryset is empty)."""
    inner, params = queryset.values_list(*([group_by] if group_by else []), *columns).query.sql_with_params()
    db_types = _db_types(queryset.model, columns)
    aggregates = ", ".join(
        f"array_send(array_agg(q.c{i}))" if t in _FIXED else f"array_agg(q.c{i})" for i, t in enumerate(db_types)
    )
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    connection.ensure_connection()
    # Django's cursors bind parameters client-side, which cannot fetch binary results; this one shares the
    # connection and so the caller's transaction.
    with psycopg.Cursor(connection.connection) as cursor:
        if not group_by:
            cursor.execute(f"SELECT {aggregates} FROM ({inner}) AS q ({aliases})", params, binary=True)  # noqa: S608
            return cursor.fetchall()
        # Statistics lag behind rows added since the table's last ANALYZE (a session scored right after its
        # ingest), and so did the plans: expecting few rows, grouping sorted every row (spilling to disk at
        # 100 000 detections: more than the whole scan); expecting many, a scan of the whole table replaced
        # the index range (2x the CPU at 1.3M rows). Hashing is one pass at any size and these reads are index
        # ranges, so sorts and sequential scans are off for this statement only: set locally in a savepoint
        # (or transaction) of its own, then set back.
        with transaction.atomic():
            cursor.execute("SELECT current_setting('enable_sort'), current_setting('enable_seqscan')")
            previous = cursor.fetchone()
            cursor.execute("SELECT set_config('enable_sort', 'off', true), set_config('enable_seqscan', 'off', true)")
            sql = f"SELECT q.k, {aggregates} FROM ({inner}) AS q (k, {aliases}) GROUP BY q.k"  # noqa: S608
            cursor.execute(sql, params, binary=True)
            rows = cursor.fetchall()
            cursor.execute(
                "SELECT set_config('enable_sort', %s, true), set_config('enable_seqscan', %s, true)", previous
            )
        return rows


def _parse_arrays(model: type[Model], columns: Sequence[str], row: Sequence[Any]) -> dict[str, np.ndarray]:
    """NumPy arrays of one row of `_aggregate_rows` (NULL aggregates, of no rows, give empty arrays)."""
    out = {}
    for column, db_type, value in zip(columns, _db_types(model, columns), row, strict=True):
        if db_type not in _FIXED:
            out[column] = np.array(value or [], dtype=str)
            continue
        wide = np.float64 if _FIXED[db_type][1] == "f" else np.int64
        if value is None:  # no rows: array_agg gives NULL
            out[column] = np.array([], dtype=wide)
            continue
        if int.from_bytes(value[4:8], "big"):
            raise ValueError(f"fetch_arrays: column {column!r} holds NULLs")
        # Each element is its int4 length followed by its big-endian value.
        pairs = np.frombuffer(value, dtype=[("len", ">i4"), ("v", _FIXED[db_type])], offset=_ARRAY_HEADER)
        out[column] = pairs["v"].astype(wide)
    return out


def _orm_arrays(queryset: QuerySet[Any], columns: Sequence[str]) -> dict[str, np.ndarray]:
    rows = list(queryset.values_list(*columns))
    values = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    types = _sqlite_dtypes(queryset.model, columns)
    return {c: np.array(v, dtype=t) for c, v, t in zip(columns, values, types, strict=True)}


def _sqlite_dtypes(model: type[Model], columns: Sequence[str]) -> list[Any]:
    kinds = {"FloatField": np.float64, "CharField": str, "TextField": str}
    return [kinds.get(model._meta.get_field(c).get_internal_type(), np.int64) for c in columns]
