"""One error shape for DRF, Ninja and Django: {"error", "message", "details"}."""

import logging
from http import HTTPStatus
from typing import Any

import psycopg
from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent
from django.db import InterfaceError as DjangoInterfaceError
from django.db import OperationalError as DjangoOperationalError
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import exceptions as drf_exc
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_default_handler

from config.renderers import dumps

logger = logging.getLogger(__name__)

# Status → default code for responses that reach us without one.
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
    504: "request_timeout",
}


def status_code_name(status: int) -> str:
    return STATUS_CODES.get(status, "bad_request" if status < 500 else "internal_error")


def status_message(status: int) -> str:
    try:
        return HTTPStatus(status).phrase + "."
    except ValueError:
        return "Error."


class ApiError(Exception):
    """Base for errors raised by services and selectors; rendered in the error shape."""

    status = 400
    code = "bad_request"
    message = "Bad request."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)


class BadRequest(ApiError):
    pass


class ValidationFailed(ApiError):
    code = "validation_error"
    message = "The request is not valid."


class NotAuthenticated(ApiError):
    status, code, message = 401, "not_authenticated", "Authentication credentials are missing or invalid."


class Forbidden(ApiError):
    status, code, message = 403, "forbidden", "You do not have permission to do this."


class NotFound(ApiError):
    status, code, message = 404, "not_found", "Not found."


class Conflict(ApiError):
    status, code, message = 409, "conflict", "The request conflicts with the current state."


class PayloadTooLarge(ApiError):
    status, code, message = 413, "payload_too_large", "The request body is too large."


class UnsupportedMediaType(ApiError):
    status, code, message = 415, "unsupported_media_type", "Unsupported media type."


class RateLimited(ApiError):
    status, code, message = 429, "rate_limited", "Too many requests."


class ServiceUnavailable(ApiError):
    status, code, message = 503, "service_unavailable", "A backing service is unavailable."


class RequestTimeout(ApiError):
    status, code, message = 504, "request_timeout", "The request took too long."


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    return dumps({"error": code, "message": message, "details": details})


def error_response(
    status: int,
    code: str | None = None,
    message: str | None = None,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    response = HttpResponse(
        error_body(code or status_code_name(status), message or status_message(status), details),
        status=status,
        content_type="application/json",
    )
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def api_error_response(exc: ApiError) -> HttpResponse:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


# --- DRF ----------------------------------------------------------------------
def _drf_code(exc: Exception, status: int) -> str:
    if isinstance(exc, drf_exc.ValidationError):
        return "validation_error"
    if isinstance(exc, (drf_exc.NotAuthenticated, drf_exc.AuthenticationFailed)):
        return "not_authenticated"
    if isinstance(exc, drf_exc.ParseError):
        return "bad_request"
    return status_code_name(status)


def drf_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every error leaves in the project's shape."""
    if isinstance(exc, ApiError):
        return Response(
            {"error": exc.code, "message": exc.message, "details": exc.details},
            status=exc.status,
            headers=exc.headers,
        )
    response = drf_default_handler(exc, context)
    if response is None:
        return None  # Unhandled: Django's handler500 renders it.
    status = response.status_code
    details: dict[str, Any] | None = None
    if isinstance(exc, drf_exc.ValidationError):
        message = "The request is not valid."
        data = response.data
        details = data if isinstance(data, dict) and "row" in data else {"fields": data}
    else:
        detail = getattr(exc, "detail", "")
        if isinstance(detail, dict):  # SimpleJWT's {"detail", "code", "messages"}
            detail = detail.get("detail", "")
        message = str(detail) or status_message(status)
    if isinstance(exc, drf_exc.Throttled) and exc.wait is not None:
        details = {"retry_after": int(exc.wait)}
    response.data = {"error": _drf_code(exc, status), "message": message, "details": details}
    return response


# --- Django handlers (urls.handler400 … handler500) ---------------------------
def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, (RequestDataTooBig, TooManyFieldsSent)):
        return error_response(413, message=str(exception) or None)
    return error_response(400, message=str(exception) or None)


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(403)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(404)


def handler500(request: HttpRequest) -> HttpResponse:
    return error_response(500, message="An internal error occurred.")


def database_unavailable(exc: BaseException) -> bool:
    """A lost, killed or refused database connection, or no pooled connection in time: transient, so 503."""
    return isinstance(
        exc, (DjangoOperationalError, DjangoInterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
    )


def database_unavailable_response() -> HttpResponse:
    return error_response(
        503, "service_unavailable", "The database is unavailable; retry shortly.", headers={"Retry-After": "1"}
    )


def exception_to_response(exc: Exception) -> HttpResponse | None:
    """Map framework exceptions that Ninja does not know to the error shape."""
    if isinstance(exc, ApiError):
        return api_error_response(exc)
    if database_unavailable(exc):
        logger.warning("database unavailable", exc_info=exc)
        return database_unavailable_response()
    if isinstance(exc, Http404):
        return error_response(404)
    if isinstance(exc, PermissionDenied):
        return error_response(403)
    if isinstance(exc, (RequestDataTooBig, TooManyFieldsSent)):
        return error_response(413)
    return None
