"""Accounts API (DRF): thin views that parse, call a service or selector, and shape the answer."""

from typing import Any

from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.serializers import BulkUserIn, RefreshIn, RegisterIn, TokenIn, UserFilters, UserOut, UserPatch
from config.errors import NotFound, ValidationFailed
from config.pagination import paginate
from config.throttling import client_ip


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class RegisterView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        data = _valid(RegisterIn, request.data)
        user = services.user_register(**data, ip=client_ip(request))
        return Response(UserOut(user).data, status=status.HTTP_201_CREATED)


class TokenView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        return Response(services.auth_login(**_valid(TokenIn, request.data), request=request._request))


class TokenRefreshView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        return Response(services.token_refresh(raw=_valid(RefreshIn, request.data)["refresh"]))


class LogoutView(APIView):
    def post(self, request: Request) -> Response:
        services.auth_logout(user_id=request.user.pk, raw_refresh=_valid(RefreshIn, request.data)["refresh"])
        return Response(status=status.HTTP_205_RESET_CONTENT)


class MeView(APIView):
    def get(self, request: Request) -> Response:
        return Response(selectors.user_detail_cached(user_id=request.user.pk))


class UserListView(APIView):
    permission_classes = [IsAdminUser]

    def get(self, request: Request) -> Response:
        filters = _valid(UserFilters, request.query_params)
        ordering_name = filters.pop("ordering", None) or selectors.DEFAULT_USER_ORDERING
        ordering = selectors.USER_ORDERINGS.get(ordering_name)
        if ordering is None:
            raise ValidationFailed(
                "Unknown ordering.", details={"field": "ordering", "allowed": sorted(selectors.USER_ORDERINGS)}
            )
        queryset = selectors.user_list(**filters)
        return Response(paginate(request, queryset, ordering, serialize=selectors.user_to_dict))


def _first_row_error(errors: list[dict[str, Any]]) -> dict[str, Any]:
    row = next(i for i, e in enumerate(errors) if e)
    return {"row": row, "field": next(iter(errors[row])), "fields": errors[row]}


class UserBulkView(APIView):
    permission_classes = [IsAdminUser]

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
    def get(self, request: Request, user_id: int) -> Response:
        if not (request.user.is_staff or request.user.pk == user_id):
            raise NotFound("User not found.")
        data = selectors.user_detail_cached(user_id=user_id)
        if data is None:
            raise NotFound("User not found.")
        return Response(data)

    def patch(self, request: Request, user_id: int) -> Response:
        user = selectors.user_get_for_user(actor=request.user, user_id=user_id)
        data = _valid(UserPatch, request.data)
        user = services.user_update(actor=request.user, user=user, data=data)
        return Response(selectors.user_to_dict(user))


class UserActivityView(APIView):
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
