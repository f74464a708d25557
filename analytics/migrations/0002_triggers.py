"""Triggers that keep analytics_projectstats exact for every write path (ORM, raw SQL, COPY, cascades)."""

from typing import Any

from django.db import migrations

STATUSES = ("queued", "processing", "completed", "failed")
METRICS = ("precision", "recall", "f1")
COUNTERS = (
    "video_count",
    *(f"videos_{s}" for s in STATUSES),
    "test_session_count",
    "active_test_sessions",
    "completed_session_count",
    *(f"sum_{m}" for m in METRICS),
    "detection_count",
    "ground_truth_count",
)
NOW = {"postgresql": "now()", "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')"}


def _flag(condition: str) -> str:
    return f"(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def video_delta(row: str, sign: str, now: str) -> str:
    """Add (sign '+') or remove (sign '-') one video row's contribution to its project's counters."""
    sets = [f"video_count = video_count {sign} 1"]
    for status in STATUSES:
        flag = _flag(f"{row}.status = '{status}'")
        sets.append(f"videos_{status} = videos_{status} {sign} {flag}")
    return (
        f"UPDATE analytics_projectstats SET {', '.join(sets)}, updated_at = {now} "
        f"WHERE project_id = {row}.project_id;"
    )


def session_delta(row: str, sign: str, now: str) -> str:
    """Add or remove one test session's contribution (found through its video's project)."""
    completed = f"{row}.status = 'completed'"
    active = _flag(f"{row}.status IN ('open', 'scoring')")
    sets = [
        f"test_session_count = test_session_count {sign} 1",
        f"active_test_sessions = active_test_sessions {sign} {active}",
        f"completed_session_count = completed_session_count {sign} {_flag(completed)}",
    ]
    sets += [
        f"sum_{m} = sum_{m} {sign} (CASE WHEN {completed} THEN COALESCE({row}.{m}, 0) ELSE 0 END)" for m in METRICS
    ]
    return (
        f"UPDATE analytics_projectstats SET {', '.join(sets)}, updated_at = {now} "
        f"WHERE project_id = (SELECT project_id FROM videos_video WHERE id = {row}.video_id);"
    )


def recount(condition: str, now: str) -> str:
    """Exact counters from the tables for the projects matching `condition` (backfill, project moves)."""
    of_project = "v.project_id = p.id"
    sessions = f"videos_testsession t JOIN videos_video v ON v.id = t.video_id WHERE {of_project}"
    values = [
        f"(SELECT COUNT(*) FROM videos_video v WHERE {of_project})",
        *(f"(SELECT COUNT(*) FROM videos_video v WHERE {of_project} AND v.status = '{s}')" for s in STATUSES),
        f"(SELECT COUNT(*) FROM {sessions})",
        f"(SELECT COUNT(*) FROM {sessions} AND t.status IN ('open', 'scoring'))",
        f"(SELECT COUNT(*) FROM {sessions} AND t.status = 'completed')",
        *(f"(SELECT COALESCE(SUM(COALESCE(t.{m}, 0)), 0) FROM {sessions} AND t.status = 'completed')" for m in METRICS),
        f"(SELECT COUNT(*) FROM videos_detectionevent d JOIN videos_video v ON v.id = d.video_id WHERE {of_project})",
        f"(SELECT COUNT(*) FROM videos_groundtruthbox g JOIN videos_video v ON v.id = g.video_id WHERE {of_project})",
    ]
    updates = ", ".join(f"{c} = excluded.{c}" for c in ("owner_id", *COUNTERS, "updated_at"))
    return (
        f"INSERT INTO analytics_projectstats (project_id, owner_id, {', '.join(COUNTERS)}, updated_at) "
        f"SELECT p.id, p.owner_id, {', '.join(values)}, {now} FROM videos_project p WHERE {condition} "
        f"ON CONFLICT (project_id) DO UPDATE SET {updates};"
    )


def project_insert(row: str, now: str) -> str:
    return f"INSERT INTO analytics_projectstats (project_id, owner_id, updated_at) VALUES ({row}.id, {row}.owner_id, {now});"


def project_owner(now: str) -> str:
    return f"UPDATE analytics_projectstats SET owner_id = NEW.owner_id, updated_at = {now} WHERE project_id = NEW.id;"


PROJECT_DELETE = "DELETE FROM analytics_projectstats WHERE project_id = OLD.id;"
VIDEO_CHANGED = "OLD.status IS DISTINCT FROM NEW.status AND OLD.project_id = NEW.project_id"
SESSION_CHANGED = (
    "(OLD.status, OLD.precision, OLD.recall, OLD.f1, OLD.video_id) "
    "IS DISTINCT FROM (NEW.status, NEW.precision, NEW.recall, NEW.f1, NEW.video_id)"
)
BULK_TABLES = {"videos_detectionevent": "detection_count", "videos_groundtruthbox": "ground_truth_count"}


def _pg_function(name: str, body: str) -> str:
    return f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} RETURN NULL; END $$;"


def postgresql_forward() -> list[str]:
    now = NOW["postgresql"]
    sql = [
        "CREATE OR REPLACE FUNCTION analytics_recount(ids bigint[]) RETURNS void LANGUAGE sql AS $$ "
        f"{recount('p.id = ANY(ids)', now)} $$;",
        _pg_function(
            "analytics_project_changed",
            f"IF TG_OP = 'INSERT' THEN {project_insert('NEW', now)} "
            f"ELSIF TG_OP = 'UPDATE' THEN {project_owner(now)} ELSE {PROJECT_DELETE} END IF;",
        ),
        "CREATE TRIGGER analytics_project_insdel AFTER INSERT OR DELETE ON videos_project "
        "FOR EACH ROW EXECUTE FUNCTION analytics_project_changed();",
        "CREATE TRIGGER analytics_project_owner AFTER UPDATE OF owner_id ON videos_project FOR EACH ROW "
        "WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id) EXECUTE FUNCTION analytics_project_changed();",
        # Progress updates rewrite the video row several times a second: only status (and rare project
        # moves, which recount both projects) fire the trigger.
        _pg_function(
            "analytics_video_changed",
            "IF TG_OP = 'UPDATE' AND OLD.project_id IS DISTINCT FROM NEW.project_id THEN "
            "PERFORM analytics_recount(ARRAY[OLD.project_id, NEW.project_id]); RETURN NULL; END IF; "
            f"IF TG_OP <> 'INSERT' THEN {video_delta('OLD', '-', now)} END IF; "
            f"IF TG_OP <> 'DELETE' THEN {video_delta('NEW', '+', now)} END IF;",
        ),
        "CREATE TRIGGER analytics_video_insdel AFTER INSERT OR DELETE ON videos_video "
        "FOR EACH ROW EXECUTE FUNCTION analytics_video_changed();",
        "CREATE TRIGGER analytics_video_upd AFTER UPDATE OF status, project_id ON videos_video FOR EACH ROW "
        "WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.project_id IS DISTINCT FROM NEW.project_id) "
        "EXECUTE FUNCTION analytics_video_changed();",
        _pg_function(
            "analytics_session_changed",
            f"IF TG_OP <> 'INSERT' THEN {session_delta('OLD', '-', now)} END IF; "
            f"IF TG_OP <> 'DELETE' THEN {session_delta('NEW', '+', now)} END IF;",
        ),
        "CREATE TRIGGER analytics_session_insdel AFTER INSERT OR DELETE ON videos_testsession "
        "FOR EACH ROW EXECUTE FUNCTION analytics_session_changed();",
        f"CREATE TRIGGER analytics_session_upd AFTER UPDATE ON videos_testsession FOR EACH ROW "
        f"WHEN ({SESSION_CHANGED}) EXECUTE FUNCTION analytics_session_changed();",
    ]
    for table, column in BULK_TABLES.items():
        # Statement-level with a transition table: one UPDATE per statement (a COPY of 100 000 rows
        # included), grouping the rows by video first so the join to videos_video is per video, not per row.
        function = f"analytics_{table}_changed"
        sql.append(
            _pg_function(
                function,
                f"UPDATE analytics_projectstats s SET {column} = s.{column} "
                "+ (CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END) * d.n, updated_at = now() "
                "FROM (SELECT v.project_id, SUM(c.n) AS n FROM (SELECT video_id, COUNT(*) AS n FROM changed "
                "GROUP BY video_id) c JOIN videos_video v ON v.id = c.video_id GROUP BY v.project_id) d "
                "WHERE s.project_id = d.project_id;",
            )
        )
        for op, ref in (("INSERT", "NEW"), ("DELETE", "OLD")):
            sql.append(
                f"CREATE TRIGGER analytics_{op.lower()} AFTER {op} ON {table} REFERENCING {ref} TABLE AS changed "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {function}();"
            )
    sql.append("SELECT analytics_recount(ARRAY(SELECT id FROM videos_project));")
    return sql


def postgresql_backward() -> list[str]:
    sql = [
        f"DROP TRIGGER IF EXISTS {name} ON {table};"
        for table, names in {
            "videos_project": ("analytics_project_insdel", "analytics_project_owner"),
            "videos_video": ("analytics_video_insdel", "analytics_video_upd"),
            "videos_testsession": ("analytics_session_insdel", "analytics_session_upd"),
            **{t: ("analytics_insert", "analytics_delete") for t in BULK_TABLES},
        }.items()
        for name in names
    ]
    functions = ["project", "video", "session", *BULK_TABLES]
    sql += [f"DROP FUNCTION IF EXISTS analytics_{f}_changed();" for f in functions]
    sql.append("DROP FUNCTION IF EXISTS analytics_recount(bigint[]);")
    return sql


def _sqlite_trigger(name: str, event: str, body: str, when: str = "") -> str:
    return f"CREATE TRIGGER {name} AFTER {event} FOR EACH ROW {f'WHEN {when} ' if when else ''}BEGIN {body} END;"


SQLITE_TRIGGERS = (
    "analytics_project_ins",
    "analytics_project_del",
    "analytics_project_owner",
    "analytics_video_ins",
    "analytics_video_del",
    "analytics_video_status",
    "analytics_video_move",
    "analytics_session_ins",
    "analytics_session_del",
    "analytics_session_upd",
    *(f"analytics_{t}_{op}" for t in BULK_TABLES for op in ("ins", "del")),
)


def sqlite_forward() -> list[str]:
    now = NOW["sqlite"]
    sql = [
        _sqlite_trigger("analytics_project_ins", "INSERT ON videos_project", project_insert("NEW", now)),
        _sqlite_trigger("analytics_project_del", "DELETE ON videos_project", PROJECT_DELETE),
        _sqlite_trigger(
            "analytics_project_owner",
            "UPDATE OF owner_id ON videos_project",
            project_owner(now),
            "OLD.owner_id IS NOT NEW.owner_id",
        ),
        _sqlite_trigger("analytics_video_ins", "INSERT ON videos_video", video_delta("NEW", "+", now)),
        _sqlite_trigger("analytics_video_del", "DELETE ON videos_video", video_delta("OLD", "-", now)),
        _sqlite_trigger(
            "analytics_video_status",
            "UPDATE OF status ON videos_video",
            video_delta("OLD", "-", now) + video_delta("NEW", "+", now),
            VIDEO_CHANGED.replace("IS DISTINCT FROM", "IS NOT"),
        ),
        _sqlite_trigger(
            "analytics_video_move",
            "UPDATE OF project_id ON videos_video",
            recount("p.id IN (OLD.project_id, NEW.project_id)", now),
            "OLD.project_id IS NOT NEW.project_id",
        ),
        _sqlite_trigger("analytics_session_ins", "INSERT ON videos_testsession", session_delta("NEW", "+", now)),
        _sqlite_trigger("analytics_session_del", "DELETE ON videos_testsession", session_delta("OLD", "-", now)),
        _sqlite_trigger(
            "analytics_session_upd",
            "UPDATE ON videos_testsession",
            session_delta("OLD", "-", now) + session_delta("NEW", "+", now),
            SESSION_CHANGED.replace("IS DISTINCT FROM", "IS NOT"),
        ),
    ]
    for table, column in BULK_TABLES.items():
        for op, row, sign in (("ins", "NEW", "+"), ("del", "OLD", "-")):
            body = (
                f"UPDATE analytics_projectstats SET {column} = {column} {sign} 1, updated_at = {now} "
                f"WHERE project_id = (SELECT project_id FROM videos_video WHERE id = {row}.video_id);"
            )
            event = ("INSERT" if op == "ins" else "DELETE") + f" ON {table}"
            sql.append(_sqlite_trigger(f"analytics_{table}_{op}", event, body))
    sql.append(recount("1 = 1", now))
    return sql


def _run(statements: dict[str, Any]) -> Any:
    def apply(apps: Any, schema_editor: Any) -> None:
        for statement in statements.get(schema_editor.connection.vendor, list)():
            schema_editor.execute(statement, params=None)

    return apply


class Migration(migrations.Migration):
    dependencies = [("analytics", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": postgresql_forward, "sqlite": sqlite_forward}),
            _run(
                {
                    "postgresql": postgresql_backward,
                    "sqlite": lambda: [f"DROP TRIGGER IF EXISTS {name};" for name in SQLITE_TRIGGERS],
                }
            ),
            elidable=False,
        )
    ]
