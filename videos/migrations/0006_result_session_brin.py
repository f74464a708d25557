# Hand-written: the results' session index becomes BRIN on PostgreSQL (see models.DetectionResult).

from typing import Any

from django.db import migrations

from config.migration_ops import postgres_sql

PLAIN = "CREATE INDEX IF NOT EXISTS result_session_plain ON videos_detectionresult (test_session_id)"


def _plain(sql: str) -> Any:
    def apply(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):

    dependencies = [
        ('videos', '0005_detection_results_table'),
    ]

    operations = [
        migrations.RemoveIndex(model_name='detectionresult', name='result_session_idx'),
        postgres_sql(
            "CREATE INDEX IF NOT EXISTS result_session_brin ON videos_detectionresult USING brin (test_session_id) "
            "WITH (autosummarize = on)",
            "DROP INDEX IF EXISTS result_session_brin",
        ),
        migrations.RunPython(_plain(PLAIN), _plain("DROP INDEX IF EXISTS result_session_plain"), elidable=False),
    ]
