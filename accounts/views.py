"""Accounts API (DRF): thin views that parse, call a service or selector, and shape the answer."""

import functools
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, QueryDict
from django.views.decorators.csrf import csrf_exempt
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import openapi, selectors, services
from accounts.auth import user_from_access_token
from accounts.serializers import BulkUserIn, RefreshIn, RegisterIn, TokenIn, UserFilters, UserOut, UserPatch
from config import adb
from config.errors import NotFound, ValidationFailed
from config.pagination import paginate
from config.renderers import dumps
from config.throttling import client_ip


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class RegisterView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @openapi.register
    def post(self, request: Request) -> Response:
        data = _valid(RegisterIn, request.data)
        user = services.user_register(**data, ip=client_ip(request))
        return Response(UserOut(user).data, status=status.HTTP_201_CREATED)


class TokenView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @openapi.token
    def post(self, request: Request) -> Response:
        return Response(services.auth_login(**_valid(TokenIn, request.data), request=request._request))


class TokenRefreshView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @openapi.refresh
    def post(self, request: Request) -> Response:
        return Response(services.token_refresh(raw=_valid(RefreshIn, request.data)["refresh"]))


class LogoutView(APIView):
    @openapi.logout
    def post(self, request: Request) -> Response:
        services.auth_logout(user_id=request.user.pk, raw_refresh=_valid(RefreshIn, request.data)["refresh"])
        return Response(status=status.HTTP_205_RESET_CONTENT)


class MeView(APIView):
    @openapi.me
    def get(self, request: Request) -> Response:
        return Response(selectors.user_detail_cached(user_id=request.user.pk))


def _user_list_args(query_params: Any) -> tuple[dict[str, Any], str]:
    """Validated filters and the ordering name of a user list request."""
    filters = _valid(UserFilters, query_params)
    ordering = filters.pop("ordering", None) or selectors.DEFAULT_USER_ORDERING
    if ordering not in selectors.USER_ORDERINGS:
        raise ValidationFailed(
            "Unknown ordering.", details={"field": "ordering", "allowed": sorted(selectors.USER_ORDERINGS)}
        )
    return filters, ordering


class UserListView(APIView):
    permission_classes = [IsAdminUser]

    @openapi.user_list
    def get(self, request: Request) -> Response:
        filters, ordering = _user_list_args(request.query_params)
        queryset = selectors.user_list(**filters)
        return Response(paginate(request, queryset, selectors.USER_ORDERINGS[ordering], selectors.user_to_dict))


def _fast_user_list_args(request: HttpRequest) -> dict[str, Any] | None:
    """The fast path's arguments when the request looks like one DRF would serve; anything else goes to DRF."""
    parts = request.headers.get("Authorization", "").split()
    if request.method != "GET" or len(parts) != 2 or parts[0] != "Bearer" or not adb.enabled(request):
        return None
    try:
        user = user_from_access_token(parts[1])
        filters, ordering = _cached_user_list_args(request.META.get("QUERY_STRING", ""))
        return None if user is None else {"actor_id": user.id, "filters": dict(filters), "ordering": ordering}
    except (ValueError, serializers.ValidationError, ValidationFailed):
        return None


@functools.lru_cache(maxsize=256)
def _cached_user_list_args(query_string: str) -> tuple[dict[str, Any], str]:
    """_user_list_args by raw query string: a client repeats its filters, DRF's field validation is not free.
    Invalid strings raise (lru_cache keeps no exception)."""
    return _user_list_args(QueryDict(query_string))


_drf_user_list = UserListView.as_view()


@csrf_exempt
async def user_list(request: HttpRequest) -> HttpResponse:
    """GET /users without a thread hop when the fast path can answer; DRF answers everything else."""
    args = _fast_user_list_args(request)
    try:
        page = await selectors.user_page_fast(request, **args) if args is not None else None
    except ValidationFailed:  # e.g. a bad cursor: DRF checks permissions first, then renders the error
        page = None
    if page is None:
        return await sync_to_async(_drf_user_list)(request)  # type: ignore[no-any-return]
    response = HttpResponse(dumps(page), content_type="application/json")
    response["Vary"], response["Allow"] = "Accept", "GET, OPTIONS"  # as DRF's APIView sets them
    return response


# The OpenAPI generator (drf-spectacular) describes views that carry their DRF class, as `as_view()` does.
user_list.cls, user_list.initkwargs = UserListView, {}  # type: ignore[attr-defined]


def _first_row_error(errors: list[dict[str, Any]]) -> dict[str, Any]:
    row = next(i for i, e in enumerate(errors) if e)
    return {"row": row, "field": next(iter(errors[row])), "fields": errors[row]}


class UserBulkView(APIView):
    permission_classes = [IsAdminUser]

    @openapi.user_bulk
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, list):
            raise ValidationFailed("Send a JSON array of users.", details={"field": "users"})
        if len(request.data) > services.BULK_MAX_USERS:
            raise ValidationFailed(
                f"At most {services.BULK_MAX_USERS} users per request.", details={"count": len(request.data)}
            )
        serializer = BulkUserIn(data=request.data, many=True)
        if not serializer.is_valid():
            errors = serializer.errors  # DRF 3.18: {row index: errors}
            rows = [errors.get(i, {}) for i in range(len(request.data))] if isinstance(errors, dict) else errors
            details = _first_row_error(rows)
            # A duplicate in an earlier, well-formed row is the first bad row.
            services.users_bulk_check_unique(rows=[r for r in request.data[: details["row"]] if isinstance(r, dict)])
            raise ValidationFailed(f"Row {details['row']} is not valid.", details=details)
        ids = services.users_bulk_create(rows=list(serializer.validated_data))
        return Response({"created": len(ids), "ids": ids}, status=status.HTTP_201_CREATED)


class UserDetailView(APIView):
    @openapi.user_get
    def get(self, request: Request, user_id: int) -> Response:
        if not (request.user.is_staff or request.user.pk == user_id):
            raise NotFound("User not found.")
        data = selectors.user_detail_cached(user_id=user_id)
        if data is None:
            raise NotFound("User not found.")
        return Response(data)

    @openapi.user_patch
    def patch(self, request: Request, user_id: int) -> Response:
        user = selectors.user_get_for_user(actor=request.user, user_id=user_id)
        data = _valid(UserPatch, request.data)
        user = services.user_update(actor=request.user, user=user, data=data)
        return Response(selectors.user_to_dict(user))


class UserActivityView(APIView):
    @openapi.user_activity
    def get(self, request: Request, user_id: int) -> Response:
        selectors.user_get_for_user(actor=request.user, user_id=user_id)
        queryset = selectors.activity_list(user_id=user_id)
        return Response(
            paginate(
                request,
                queryset,
                selectors.ACTIVITY_ORDERING,
                serialize=lambda a: {
                    "id": a.pk,
                    "action": a.action,
                    "created_at": a.created_at,
                    "metadata": a.metadata,
                },
            )
        )
