"""Migration operations that only apply on PostgreSQL (trigram search indexes); no-ops elsewhere."""

from typing import Any

from django.db import migrations


def postgres_sql(forward: str, backward: str) -> migrations.RunPython:
    """RunSQL that runs only when the database is PostgreSQL (SQLite has no pg_trgm)."""

    def run(sql: str) -> Any:
        def apply(apps: Any, schema_editor: Any) -> None:
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.execute(sql)

        return apply

    return migrations.RunPython(run(forward), run(backward), elidable=False)
