"""Every error leaves in the {"error", "message", "details"} shape."""

import json

import pytest
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.test import RequestFactory

from config.errors import handler400, handler500
from config.middleware import ErrorShapeMiddleware

pytestmark = pytest.mark.django_db


def _shape(response) -> dict:
    body = json.loads(response.content)
    assert set(body) == {"error", "message", "details"}
    assert response["Content-Type"] == "application/json"
    return body


def test_unknown_url_is_not_found_in_error_shape(api):
    response = api.get("/api/v1/does-not-exist")
    assert response.status_code == 404
    assert _shape(response)["error"] == "not_found"


def test_unknown_site_url_is_not_found_in_error_shape(api):
    response = api.get("/nothing-here")
    assert response.status_code == 404
    assert _shape(response)["error"] == "not_found"


def test_wrong_method_on_drf_view_is_405_in_error_shape(user_api):
    response = user_api.delete("/api/v1/auth/me")
    assert response.status_code == 405
    assert _shape(response)["error"] == "method_not_allowed"


def test_malformed_json_is_400_bad_request(api):
    response = api.post("/api/v1/auth/register", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert _shape(response)["error"] == "bad_request"


def test_unsupported_content_type_is_415(api):
    response = api.post("/api/v1/auth/register", "a=b", content_type="text/plain")
    assert response.status_code == 415
    assert _shape(response)["error"] == "unsupported_media_type"


async def test_bare_framework_405_gets_the_error_shape_and_keeps_allow():
    async def get_response(request: HttpRequest) -> HttpResponse:
        return HttpResponseNotAllowed(["GET"])

    response = await ErrorShapeMiddleware(get_response)(RequestFactory().post("/api/v1/anything"))
    assert response.status_code == 405
    assert _shape(response) == {"error": "method_not_allowed", "message": "Method Not Allowed.", "details": None}
    assert response["Allow"] == "GET"


def test_handler500_answers_internal_error_shape():
    response = handler500(RequestFactory().get("/"))
    assert response.status_code == 500
    assert _shape(response)["error"] == "internal_error"


def test_oversized_form_body_maps_to_413():
    from django.core.exceptions import RequestDataTooBig

    response = handler400(RequestFactory().get("/"), RequestDataTooBig("too big"))
    assert response.status_code == 413
    assert _shape(response)["error"] == "payload_too_large"
