from django.db import migrations

from config.migration_ops import postgres_sql


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [
        postgres_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm", "SELECT 1"),
        # Matches the SQL Django emits for icontains: UPPER("col"::text) LIKE UPPER('%q%').
        postgres_sql(
            'CREATE INDEX IF NOT EXISTS user_username_trgm ON accounts_user USING gin ((UPPER("username"::text)) gin_trgm_ops);'
            'CREATE INDEX IF NOT EXISTS user_email_trgm ON accounts_user USING gin ((UPPER("email"::text)) gin_trgm_ops)',
            "DROP INDEX IF EXISTS user_username_trgm; DROP INDEX IF EXISTS user_email_trgm",
        ),
    ]
