"""JWT authentication shared by DRF, Ninja and WebSockets; access tokens are verified without a query."""

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.tokens import AccessToken

_UNSET = object()


class AuthUser(TokenUser):
    """The token's user without a query; `id` is the integer primary key (SimpleJWT keeps it as a string)."""

    @property
    def id(self) -> int:  # type: ignore[override]
        return int(self.token["user_id"])

    @property
    def pk(self) -> int:  # type: ignore[override]
        return self.id


def user_from_access_token(raw: str) -> AuthUser | None:
    """The token's user (id, is_staff claims) if `raw` is a valid, unexpired access token."""
    try:
        return AuthUser(AccessToken(raw))
    except (TokenError, KeyError, ValueError):
        return None


def bearer_user(request: HttpRequest) -> AuthUser | None:
    """The request's bearer user, decoded once per request."""
    cached: Any = getattr(request, "_bearer_user", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[no-any-return]
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    user = user_from_access_token(raw.strip()) if scheme.lower() == "bearer" and raw.strip() else None
    request._bearer_user = user  # type: ignore[attr-defined]
    return user


class JWTAuth(HttpBearer):
    """Ninja auth: stateless on the event loop (no thread hop, no query)."""

    async def __call__(self, request: HttpRequest) -> AuthUser | None:  # type: ignore[override]
        return bearer_user(request)

    def authenticate(self, request: HttpRequest, token: str) -> AuthUser | None:
        return user_from_access_token(token)


jwt_auth = JWTAuth()
