"""Bulk inserts: one COPY on PostgreSQL, batched INSERTs elsewhere."""

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Model

BATCH_SIZE = 2000


def bulk_insert(model: type[Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert `rows` (tuples in `columns` order, attnames such as `video_id`) in the caller's transaction."""
    if connection.vendor == "postgresql":
        db_columns = ", ".join(model._meta.get_field(c).column for c in columns)
        sql = f"COPY {model._meta.db_table} ({db_columns}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
        return
    model.objects.bulk_create((model(**dict(zip(columns, row, strict=True))) for row in rows), batch_size=BATCH_SIZE)
