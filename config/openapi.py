"""One OpenAPI document: Ninja's operations plus the DRF accounts views, every operation with the error shape."""

import functools
from typing import Any

from django.urls import include, path

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error", "message", "details"],
    "properties": {
        "error": {"type": "string", "description": "Machine-readable code, e.g. `not_found`."},
        "message": {"type": "string", "description": "Human-readable text."},
        "details": {"type": ["object", "null"], "description": "Structured details or null."},
    },
}
# Status → (code, message, details) used as the documented example of each error answer.
ERROR_EXAMPLES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "400": ("validation_error", "Row 3 is not valid.", {"row": 3, "field": "confidence"}),
    "401": ("not_authenticated", "Authentication credentials were not provided or are invalid.", None),
    "403": ("forbidden", "You do not have permission to perform this action.", None),
    "404": ("not_found", "Not found.", None),
    "409": ("conflict", "A project with this name already exists.", {"field": "name"}),
    "413": ("payload_too_large", "The upload is larger than 104857600 bytes.", None),
    "415": ("unsupported_media_type", "Not a supported video container.", None),
    "422": ("validation_error", "The request is not valid.", {"errors": [{"loc": ["body", "name"], "msg": "…"}]}),
    "429": ("rate_limited", "Too many requests.", {"retry_after": 42}),
    "504": ("request_timeout", "The request took longer than 30 s.", None),
}
_ALWAYS = ("429",)
_WHEN_SECURED = ("401",)
_WHEN_PATH_PARAMS = ("404",)
# Operation-specific answers the generic rules above cannot infer.
_EXTRA: dict[str, tuple[str, ...]] = {
    "register_user": ("409",),
    "obtain_token": ("401",),  # wrong credentials (the operation itself needs no token)
    "refresh_token": ("401",),  # invalid, expired, blacklisted or reused refresh token
    "list_users": ("403",),
    "get_users_summary": ("403",),  # staff only
    "get_cache_stats": ("403",),
    "get_database_metrics": ("403",),
    "bulk_create_users": ("403", "409"),
    "update_user": ("403", "409"),
    "create_project": ("409",),
    "update_project": ("409",),
    "upload_video": ("413", "415"),
    "create_test_session": ("409",),
    "add_detections": ("409", "413", "415"),
    "complete_test_session": ("409",),
}
_DETECTION = {"frame": 12, "timestamp_ms": 400, "label": "car", "confidence": 0.91, "x": 10, "y": 20, "w": 64, "h": 48}
REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "create_project": {"application/json": {"name": "Highway cameras", "description": "Dash-cam footage, Q3"}},
    "update_project": {"application/json": {"description": "Dash-cam footage, Q3 and Q4"}},
    "create_test_session": {"application/json": {"model_name": "yolo-v11n", "iou_threshold": 0.5}},
    "add_detections": {
        "application/json": [_DETECTION],
        "application/jsonl": '{"frame": 12, "timestamp_ms": 400, "label": "car", "confidence": 0.91, '
        '"x": 10, "y": 20, "w": 64, "h": 48}\n',
    },
}


def _error_response(status: str) -> dict[str, Any]:
    code, message, details = ERROR_EXAMPLES[status]
    return {
        "description": code.replace("_", " ").capitalize(),
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/Error"},
                "example": {"error": code, "message": message, "details": details},
            }
        },
    }


def _document_operation(operation: dict[str, Any], path_template: str, *, drf: bool) -> None:
    wanted = list(_ALWAYS) + list(_EXTRA.get(operation["operationId"], ()))
    if operation.get("security") != [] and operation.get("security", [{}]) != [{}]:
        wanted += _WHEN_SECURED
    if "{" in path_template:
        wanted += _WHEN_PATH_PARAMS
    if "requestBody" in operation or operation.get("parameters"):
        wanted += ["400"] if drf else ["400", "422"]  # DRF answers every invalid input with 400
    for media_type, example in REQUEST_EXAMPLES.get(operation["operationId"], {}).items():
        operation["requestBody"]["content"][media_type]["example"] = example
    responses = {str(status): answer for status, answer in operation.get("responses", {}).items()}
    for status in wanted:
        responses.setdefault(status, _error_response(status))
    for status, answer in responses.items():
        if status in ERROR_EXAMPLES and not answer.get("content"):
            responses[status] = _error_response(status)
    operation["responses"] = dict(sorted(responses.items()))


@functools.cache
def _accounts_document() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    patterns = [path("api/v1/", include("accounts.urls"))]
    return SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)


def merged(ninja_document: dict[str, Any]) -> dict[str, Any]:
    """Ninja's document with the accounts paths and components added and the error shape on every operation."""
    document = dict(ninja_document)
    accounts = _accounts_document()
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    clashes = set(schemas) & set(accounts["components"].get("schemas", {}))
    if clashes:
        raise RuntimeError(f"OpenAPI component names defined twice: {sorted(clashes)}")
    schemas.update(accounts["components"].get("schemas", {}))
    schemas["Error"] = ERROR_SCHEMA
    components.setdefault("securitySchemes", {}).update(accounts["components"].get("securitySchemes", {}))
    document["paths"] = {**accounts["paths"], **document["paths"]}
    for path_template, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                _document_operation(operation, path_template, drf=path_template in accounts["paths"])
    return document
