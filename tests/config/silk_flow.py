"""Child process of test_silk.py (SILK_ENABLED=1): an auth flow through silk, then everything silk stored."""

import base64
import json

import django

django.setup()

from django.apps import apps  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from tests.factories import UserFactory  # noqa: E402

PASSWORD = "Corr3ct-Horse-Battery"


def _stored_text() -> str:
    """Every value of every row of silk's tables, with base64 response bodies decoded too."""
    from silk.models import Response

    parts = []
    for model in apps.get_app_config("silk").get_models():
        for row in model.objects.values():
            parts += [str(v) for v in row.values()]
    for raw in Response.objects.values_list("raw_body", flat=True):
        parts.append(base64.b64decode(raw or "").decode(errors="replace"))
    return "\n".join(parts)


def flow() -> dict:
    from silk.models import Request, SQLQuery

    client = Client()
    user = {"email": "ada@example.com", "username": "ada", "password": PASSWORD}
    assert client.post("/api/v1/auth/register", user, content_type="application/json").status_code == 201
    login = client.post(
        "/api/v1/auth/token", {"username": "ada", "password": PASSWORD}, content_type="application/json"
    )
    first = login.json()
    refreshed = client.post(
        "/api/v1/auth/token/refresh", {"refresh": first["refresh"]}, content_type="application/json"
    ).json()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {refreshed['access']}"}
    assert client.get("/api/v1/auth/me", **bearer).status_code == 200
    assert client.get("/api/v1/projects", **bearer).status_code == 200  # A Ninja (async) view.
    logout = client.post(
        "/api/v1/auth/logout", {"refresh": refreshed["refresh"]}, content_type="application/json", **bearer
    )
    assert logout.status_code == 205

    tokens = [first["access"], first["refresh"], refreshed["access"], refreshed["refresh"]]
    text = _stored_text()
    leaks = [i for i, t in enumerate(tokens) if t in text or t.split(".")[2] in text]

    anonymous = client.get("/silk/")
    client.force_login(UserFactory(username="plain"))
    plain = client.get("/silk/")
    client.force_login(UserFactory(username="boss", is_staff=True))
    staff = client.get("/silk/")
    projects = Request.objects.get(path="/api/v1/projects")
    return {
        "recorded_paths": sorted(set(Request.objects.values_list("path", flat=True))),
        "leaks": leaks,
        "eyJ_in_store": "eyJ" in text,
        "login_request_body": Request.objects.get(path="/api/v1/auth/token").body,
        "anonymous": [anonymous.status_code, anonymous.get("Location", "")],
        "plain_user": plain.status_code,
        "staff": staff.status_code,
        "ninja_sql_queries": SQLQuery.objects.filter(request=projects).count(),
        "profiled": sorted(set(Request.objects.filter(pyprofile__gt="").values_list("path", flat=True))),
    }


def main() -> None:
    setup_test_environment()
    if connection.vendor == "postgresql":
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    else:  # SQLITE_PATH points at a fresh file.
        call_command("migrate", verbosity=0)
        old_name = None
    try:
        print(json.dumps(flow()))
    finally:
        if old_name:
            connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
