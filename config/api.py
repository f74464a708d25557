"""The Ninja API object at /api/v1/: routers of each app, the error shape, orjson rendering."""

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError

from accounts.auth import jwt_auth
from config import openapi
from config.errors import error_response, exception_to_response, status_code_name
from config.renderers import NinjaORJSONRenderer

logger = logging.getLogger(__name__)


class FramewiseAPI(NinjaAPI):
    """Ninja's API whose OpenAPI document also describes the DRF accounts endpoints and the error shape."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        return openapi.merged(super().get_openapi_schema(**kwargs))

    def get_openapi_operation_id(self, operation: Any) -> str:
        return operation.view_func.__name__  # STYLE rule 5: <verb>_<entity>


api = FramewiseAPI(
    title="Framewise API",
    version="1",
    description="Video object-detection validation. Errors: {error, message, details}.",
    auth=jwt_auth,
    renderer=NinjaORJSONRenderer(),
    urls_namespace="api",
)


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors]
    return error_response(422, "validation_error", "The request is not valid.", {"errors": errors})


@api.exception_handler(AuthenticationError)
def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(401, headers={"WWW-Authenticate": 'Bearer realm="api"'})


@api.exception_handler(AuthorizationError)
def on_authorization_error(request: HttpRequest, exc: AuthorizationError) -> HttpResponse:
    return error_response(403)


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error_response(exc.status_code, status_code_name(exc.status_code), str(exc))


@api.exception_handler(Exception)
def on_exception(request: HttpRequest, exc: Exception) -> HttpResponse:
    response = exception_to_response(exc)
    if response is None:
        logger.exception("unhandled error", extra={"path": request.path})
        response = error_response(500, message="An internal error occurred.")
    return response


api.add_router("", "videos.api.router")
api.add_router("", "analytics.api.router")
