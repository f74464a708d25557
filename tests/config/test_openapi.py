"""The OpenAPI document renders and lists every Ninja operation."""

import pytest

pytestmark = pytest.mark.django_db


def test_openapi_document_renders_with_every_operation(api):
    response = api.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/projects",
        "/api/v1/projects/{project_id}/videos",
        "/api/v1/videos/{video_id}/status",
        "/api/v1/test-sessions/{session_id}/detections",
        "/api/v1/test-sessions/{session_id}/report",
        "/api/v1/videos/{video_id}/compare",
    ):
        assert path in paths, path
    upload = paths["/api/v1/projects/{project_id}/videos"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
