"""Account reads: user lists and details (cached), activity trails."""

from typing import Any

from django.core.cache import cache
from django.db.models import Exists, Q, QuerySet
from django.http import HttpRequest

from accounts.models import User, UserActivity
from config import adb
from config.errors import NotFound
from config.metrics import CACHE_REQUESTS

USER_CACHE_TTL_S = 300

# Allowed ?ordering= values → the full, unique keyset ordering used for cursors.
USER_ORDERINGS: dict[str, tuple[str, ...]] = {
    "-date_joined": ("-date_joined", "-id"),
    "date_joined": ("date_joined", "id"),
    "username": ("username", "id"),
    "-username": ("-username", "-id"),
    "email": ("email", "id"),
    "-email": ("-email", "-id"),
    "id": ("id",),
    "-id": ("-id",),
}
DEFAULT_USER_ORDERING = "-date_joined"
ACTIVITY_ORDERING = ("-created_at", "-id")


def user_cache_key(user_id: int) -> str:
    return f"user:v1:{user_id}"


# A user's JSON, in this order: list pages read these columns as values() rows, which are the JSON as they are.
USER_COLUMNS = ("id", "email", "username", "plan", "is_active", "is_staff", "date_joined")


def user_to_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.pk,
        "email": user.email,
        "username": user.username,
        "plan": user.plan,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "date_joined": user.date_joined,
    }


def user_list(*, is_active: bool | None = None, plan: str | None = None, search: str | None = None) -> QuerySet[User]:
    """Users filtered as the staff list offers (each filter is index-backed)."""
    qs = User.objects.all()
    if is_active is not None:
        qs = qs.filter(is_active=is_active)
    if plan:
        qs = qs.filter(plan=plan)
    if search:
        qs = qs.filter(Q(username__icontains=search) | Q(email__icontains=search))
    return qs


async def user_page_fast(
    request: HttpRequest, *, actor_id: int, filters: dict[str, Any], ordering: str
) -> dict[str, Any] | None:
    """A page of `user_list` in one statement that also requires the actor to be active staff (what DRF's JWT
    authentication and IsAdminUser load per request). None if empty: DRF then answers, errors included."""
    is_active = filters.get("is_active")
    values = {"actor_id": actor_id, **{k: filters[k] for k in ("plan", "search") if filters.get(k)}}

    def build(*, actor_id: int, plan: str | None = None, search: str | None = None) -> QuerySet[User]:
        actor = User.objects.filter(pk=actor_id, is_active=True, is_staff=True)
        return user_list(is_active=is_active, plan=plan, search=search).filter(Exists(actor)).values(*USER_COLUMNS)

    return await adb.page(
        request,
        key=("users", is_active, "plan" in values, "search" in values, ordering),
        build=build,
        values=values,
        model=User,
        ordering=USER_ORDERINGS[ordering],
    )


def user_get_for_user(*, actor: User, user_id: int) -> User:
    """The user `user_id` if `actor` is staff or that user; anything else is 404."""
    if not (actor.is_staff or actor.pk == user_id):
        raise NotFound("User not found.")
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound("User not found.")
    return user


def user_detail_cached(*, user_id: int) -> dict[str, Any] | None:
    """The user's public shape, from the cache when warm (user_update invalidates it)."""
    key = user_cache_key(user_id)
    data: dict[str, Any] | None = cache.get(key)
    CACHE_REQUESTS.labels("user", "miss" if data is None else "hit").inc()
    if data is None:
        user = User.objects.filter(pk=user_id).first()
        if user is None:
            return None
        data = user_to_dict(user)
        cache.set(key, data, USER_CACHE_TTL_S)
    return data


def activity_list(*, user_id: int) -> QuerySet[UserActivity]:
    return UserActivity.objects.filter(user_id=user_id)
