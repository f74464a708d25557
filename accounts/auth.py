"""JWT authentication shared by DRF, Ninja and WebSockets; access tokens are verified without a query."""

import time
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
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


# Verified access tokens, so a client's next requests skip the HMAC and PyJWT's parsing (a third of a cached
# dashboard read's CPU). Verification of a given string under a given key is deterministic, so only the expiry
# can change the answer, and it is checked on every hit. Failures are never cached. Bounded: cleared when full,
# and when the signing settings change (tests; SimpleJWT itself keeps its key for the process's life).
_verified: dict[str, tuple[AuthUser, float]] = {}
_VERIFIED_MAX = 10_000


@receiver(setting_changed)
def _forget_verified(*, setting: str, **kwargs: Any) -> None:
    if setting in ("SIMPLE_JWT", "SECRET_KEY"):
        _verified.clear()


def user_from_access_token(raw: str) -> AuthUser | None:
    """The token's user (id, is_staff claims) if `raw` is a valid, unexpired access token."""
    hit = _verified.get(raw)
    if hit is not None:
        if time.time() < hit[1]:
            return hit[0]
        del _verified[raw]
        return None
    try:
        token = AccessToken(raw)
        user = AuthUser(token)
        expires = float(token["exp"]) + token.get_token_backend().get_leeway().total_seconds()
    except (TokenError, KeyError, ValueError):
        return None
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[raw] = (user, expires)
    return user


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
