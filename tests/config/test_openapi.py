"""One OpenAPI document lists every operation, DRF accounts included, with examples and the error shape."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def document(api):
    response = api.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def _drf_routes():
    """(path template, methods) of every DRF view under /api/v1/, read from the URL resolver."""
    (accounts,) = [
        p
        for p in get_resolver().url_patterns
        if isinstance(p, URLResolver) and getattr(p.urlconf_module, "__name__", "") == "accounts.urls"
    ]
    for pattern in accounts.url_patterns:
        assert isinstance(pattern, URLPattern)
        template = "/api/v1/" + str(pattern.pattern).replace("<int:", "{").replace(">", "}")
        view = pattern.callback.cls
        yield template, [m for m in METHODS if hasattr(view, m)]


def test_every_drf_accounts_route_appears_in_the_document(document):
    routes = list(_drf_routes())
    assert len(routes) == 9
    for template, methods in routes:
        assert template in document["paths"], template
        assert sorted(document["paths"][template]) == sorted(methods), template


def test_ninja_operations_appear_under_verb_entity_ids(document):
    ids = [op["operationId"] for item in document["paths"].values() for m, op in item.items() if m in METHODS]
    assert len(ids) == len(set(ids))
    for expected in ("create_project", "upload_video", "add_detections", "get_session_report", "obtain_token"):
        assert expected in ids
    upload = document["paths"]["/api/v1/projects/{project_id}/videos"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"413", "415"} <= set(upload["responses"])


def test_every_operation_documents_the_error_shape(document):
    assert document["components"]["schemas"]["Error"]["required"] == ["error", "message", "details"]
    for template, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            errors = {s: r for s, r in operation["responses"].items() if s >= "400"}
            assert "429" in errors, (method, template)
            if "{" in template:
                assert "404" in errors, (method, template)
            for answer in errors.values():
                content = answer["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Error"}
                assert set(content["example"]) == {"error", "message", "details"}


def test_secured_operations_document_401_and_public_ones_do_not(document):
    register = document["paths"]["/api/v1/auth/register"]["post"]
    assert register.get("security") in (None, [], [{}])
    assert "401" not in register["responses"]
    # Public, but wrong credentials or a bad refresh token answer 401 (found by the schemathesis run).
    assert "401" in document["paths"]["/api/v1/auth/token"]["post"]["responses"]
    assert "401" in document["paths"]["/api/v1/auth/token/refresh"]["post"]["responses"]
    assert "401" in document["paths"]["/api/v1/auth/me"]["get"]["responses"]
    assert "401" in document["paths"]["/api/v1/projects"]["get"]["responses"]


def test_request_bodies_carry_examples(document):
    token = document["paths"]["/api/v1/auth/token"]["post"]["requestBody"]["content"]["application/json"]
    assert token["examples"]
    detections = document["paths"]["/api/v1/test-sessions/{session_id}/detections"]["post"]["requestBody"]
    assert detections["content"]["application/json"]["example"][0]["label"] == "car"
    assert detections["content"]["application/jsonl"]["example"].endswith("\n")


def test_docs_page_renders(api):
    response = api.get("/api/v1/docs")
    assert response.status_code == 200
    assert b"openapi.json" in response.content
