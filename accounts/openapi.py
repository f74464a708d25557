"""OpenAPI descriptions of the accounts views (drf-spectacular), merged into the Ninja document."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers

from accounts.serializers import BulkUserIn, RefreshIn, RegisterIn, TokenIn, UserOut, UserPatch

_USER = {
    "id": 7,
    "email": "ada@example.com",
    "username": "ada",
    "plan": "free",
    "is_active": True,
    "is_staff": False,
    "date_joined": "2026-11-23T12:00:00Z",
}
_PAIR = {"access": "eyJhbGciOiJIUzI1NiIs…", "refresh": "eyJhbGciOiJIUzI1NiIs…"}

TokenPair = inline_serializer("TokenPair", {"access": serializers.CharField(), "refresh": serializers.CharField()})


def _page(name: str, item: serializers.Serializer) -> serializers.Serializer:
    return inline_serializer(
        name,
        {
            "results": item,
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
        },
    )


Activities = inline_serializer(
    "UserActivity",
    {
        "id": serializers.IntegerField(),
        "action": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "metadata": serializers.JSONField(),
    },
    many=True,
)
_CURSOR = [
    OpenApiParameter("cursor", str, description="Opaque cursor from `next`/`previous`."),
    OpenApiParameter("page_size", int, description="Default 50, clamped to 100."),
]

register = extend_schema(
    operation_id="register_user",
    tags=["accounts"],
    summary="Register a user",
    request=RegisterIn,
    responses={201: UserOut},
    examples=[
        OpenApiExample(
            "register",
            {"email": "ada@example.com", "username": "ada", "password": "Corr3ct-Horse-Battery"},
            request_only=True,
        ),
        OpenApiExample("user", _USER, response_only=True, status_codes=["201"]),
    ],
    auth=[],
)
token = extend_schema(
    operation_id="obtain_token",
    tags=["accounts"],
    summary="Log in: an access and refresh token pair (throttle scope auth)",
    request=TokenIn,
    responses={200: TokenPair},
    examples=[
        OpenApiExample(
            "by email", {"email": "ada@example.com", "password": "Corr3ct-Horse-Battery"}, request_only=True
        ),
        OpenApiExample("by username", {"username": "ada", "password": "Corr3ct-Horse-Battery"}, request_only=True),
        OpenApiExample("pair", _PAIR, response_only=True),
    ],
    auth=[],
)
refresh = extend_schema(
    operation_id="refresh_token",
    tags=["accounts"],
    summary="Rotate a refresh token; reusing a rotated one revokes its family",
    request=RefreshIn,
    responses={200: TokenPair},
    examples=[OpenApiExample("pair", _PAIR, response_only=True)],
    auth=[],
)
logout = extend_schema(
    operation_id="logout",
    tags=["accounts"],
    summary="Log out: blacklist the refresh token and revoke its family",
    request=RefreshIn,
    responses={205: None},
)
me = extend_schema(
    operation_id="get_me",
    tags=["accounts"],
    summary="The current user",
    responses={200: UserOut},
    examples=[OpenApiExample("user", _USER)],
)
user_list = extend_schema(
    operation_id="list_users",
    tags=["users"],
    summary="Users (staff): filter, search, order; cursor pages",
    parameters=[
        OpenApiParameter("is_active", bool),
        OpenApiParameter("plan", str, enum=["free", "pro", "enterprise"]),
        OpenApiParameter("search", str, description="Case-insensitive substring of username or email."),
        OpenApiParameter("ordering", str, description="e.g. `-date_joined`, `username`."),
        *_CURSOR,
    ],
    responses={200: _page("UserPage", UserOut(many=True))},
)
user_bulk = extend_schema(
    operation_id="bulk_create_users",
    tags=["users"],
    summary="Create up to 1000 users in one transaction (staff), all or nothing",
    request=BulkUserIn(many=True),
    responses={
        201: inline_serializer(
            "BulkCreated",
            {"created": serializers.IntegerField(), "ids": serializers.ListField(child=serializers.IntegerField())},
        )
    },
    examples=[
        OpenApiExample(
            "two users",
            [{"email": "a@example.com", "username": "a"}, {"email": "b@example.com", "username": "b", "plan": "pro"}],
            request_only=True,
        ),
        OpenApiExample("created", {"created": 2, "ids": [11, 12]}, response_only=True, status_codes=["201"]),
    ],
)
user_get = extend_schema(
    operation_id="get_user", tags=["users"], summary="A user (staff or self)", responses={200: UserOut}
)
user_patch = extend_schema(
    operation_id="update_user",
    tags=["users"],
    summary="Update a user (staff or self; plan and is_active staff-only, is_staff superuser-only)",
    request=UserPatch,
    responses={200: UserOut},
    examples=[OpenApiExample("upgrade", {"plan": "pro"}, request_only=True)],
)
user_activity = extend_schema(
    operation_id="list_user_activity",
    tags=["users"],
    summary="A user's activity (staff or self), newest first; cursor pages",
    parameters=_CURSOR,
    responses={200: _page("UserActivityPage", Activities)},
)
