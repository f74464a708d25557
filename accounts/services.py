"""Account writes: registration, tokens (rotation with family revocation), profile updates, bulk import."""

from typing import Any

from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.hashers import make_password
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from accounts.models import TokenFamily, User, UserActivity
from accounts.selectors import user_cache_key
from config import cache as versioned_cache
from config.errors import Conflict, Forbidden, NotAuthenticated, ValidationFailed

BULK_MAX_USERS = 1000


def activity_record(*, user_id: int, action: str, metadata: dict[str, Any] | None = None) -> None:
    """Append one row to the user's activity trail."""
    UserActivity.objects.create(user_id=user_id, action=action, metadata=metadata or {})


def _check_password(password: str, user: User, *, row: int | None = None) -> None:
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        details: dict[str, Any] = {"field": "password", "fields": {"password": list(exc.messages)}}
        if row is not None:
            details["row"] = row
        raise ValidationFailed("The password is not acceptable.", details=details) from exc


def user_register(*, email: str, username: str, password: str, ip: str | None = None) -> User:
    """Create an account (password validators apply) and log the registration."""
    user = User(email=email.strip().lower(), username=username.strip(), plan=User.Plan.FREE)
    for field in ("email", "username"):
        if User.objects.filter(**{field: getattr(user, field)}).exists():
            raise Conflict(f"A user with this {field} already exists.", details={"field": field})
    _check_password(password, user)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            activity_record(user_id=user.pk, action=UserActivity.Action.REGISTER, metadata={"ip": ip})
            versioned_cache.bump_on_commit(versioned_cache.USERS)
    except IntegrityError as exc:
        raise Conflict("A user with this email or username already exists.") from exc
    return user


def tokens_issue(user: User, refresh: RefreshToken | None = None) -> dict[str, str]:
    """A new login (new family) when `refresh` is None, else the rotated successor of `refresh`."""
    if refresh is None:
        refresh = RefreshToken.for_user(user)
        refresh["fam"] = refresh["jti"]
        TokenFamily.objects.create(id=refresh["jti"], user=user)
    else:
        refresh.set_jti()
        refresh.set_exp()
        refresh.set_iat()
        refresh.outstand()
    refresh["is_staff"] = user.is_staff
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def auth_login(
    *, password: str, username: str | None = None, email: str | None = None, request: HttpRequest | None = None
) -> dict[str, str]:
    """Exchange credentials (username or email) for an access/refresh pair."""
    if not username and email:
        username = User.objects.filter(email=email.strip().lower()).values_list("username", flat=True).first()
    # An unknown email still runs the password hasher inside authenticate(): no timing oracle.
    user = authenticate(request, username=username or "", password=password)
    if user is None:
        raise NotAuthenticated("No active account found with the given credentials.")
    with transaction.atomic():
        tokens = tokens_issue(user)
        activity_record(user_id=user.pk, action=UserActivity.Action.LOGIN)
    return tokens


class _RefreshForRotation(RefreshToken):
    """Signature, expiry and type are verified; the blacklist is checked atomically by the caller."""

    def check_blacklist(self) -> None:
        return None


def _parse_refresh(raw: str) -> _RefreshForRotation:
    try:
        return _RefreshForRotation(raw)  # type: ignore[arg-type]
    except TokenError as exc:
        raise NotAuthenticated("The refresh token is invalid or expired.") from exc


def _blacklist(token: RefreshToken) -> bool:
    """Blacklist `token`; True if this call did it (the unique row makes concurrent callers lose)."""
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=token["jti"],
        defaults={
            "user_id": token.get("user_id"),
            "token": str(token),
            "created_at": timezone.now(),
            "expires_at": datetime_from_epoch(token["exp"]),
        },
    )
    _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    return created


def token_refresh(*, raw: str) -> dict[str, str]:
    """Rotate a refresh token: exactly one caller wins; a reused (rotated-away) token revokes its family."""
    token = _parse_refresh(raw)
    family_id = token.get("fam")
    with transaction.atomic():
        first_use = _blacklist(token)
        family = TokenFamily.objects.filter(pk=family_id).first() if family_id else None
        user = User.objects.filter(pk=token.get("user_id"), is_active=True).first()
        if not first_use and family is not None:
            revoked = TokenFamily.objects.filter(pk=family.pk, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
            if revoked:  # Only the request that revoked the family logs the reuse.
                activity_record(user_id=family.user_id, action=UserActivity.Action.REFRESH_REUSE)
            family.refresh_from_db()
        valid = first_use and user is not None and family is not None and family.revoked_at is None
        tokens = tokens_issue(user, token) if valid and user is not None else None
    if tokens is None:
        raise NotAuthenticated("The refresh token is no longer valid.")
    return tokens


def auth_logout(*, user_id: int, raw_refresh: str) -> None:
    """Blacklist the refresh token and revoke its whole family."""
    token = _parse_refresh(raw_refresh)
    if str(token.get("user_id")) != str(user_id):
        raise ValidationFailed("The refresh token belongs to another user.", details={"field": "refresh"})
    with transaction.atomic():
        _blacklist(token)
        TokenFamily.objects.filter(pk=token.get("fam"), revoked_at__isnull=True).update(revoked_at=timezone.now())
        activity_record(user_id=user_id, action=UserActivity.Action.LOGOUT)


STAFF_ONLY_FIELDS = frozenset({"plan", "is_active"})


def user_update(*, actor: User, user: User, data: dict[str, Any]) -> User:
    """Apply a PATCH; plan/is_active need staff, is_staff needs a superuser. Invalidates cached reads."""
    if STAFF_ONLY_FIELDS & data.keys() and not actor.is_staff:
        raise Forbidden("Only staff may change plan or is_active.")
    if "is_staff" in data and not actor.is_superuser:
        raise Forbidden("Only superusers may change is_staff.")
    if "email" in data:
        data["email"] = data["email"].strip().lower()
    for field in ("email", "username"):
        if field in data and User.objects.filter(**{field: data[field]}).exclude(pk=user.pk).exists():
            raise Conflict(f"A user with this {field} already exists.", details={"field": field})
    for field, value in data.items():
        setattr(user, field, value)
    try:
        with transaction.atomic():
            user.save(update_fields=list(data) or None)
    except IntegrityError as exc:
        raise Conflict("A user with this email or username already exists.") from exc
    cache.delete(user_cache_key(user.pk))
    versioned_cache.bump_on_commit(versioned_cache.USERS)
    return user


def users_bulk_check_unique(*, rows: list[dict[str, Any]]) -> None:
    """Raise for the first row whose email or username is taken, in the database or earlier in the batch."""
    emails = [str(r.get("email", "")).strip().lower() for r in rows]
    usernames = [str(r.get("username", "")).strip() for r in rows]
    taken = {
        "email": set(User.objects.filter(email__in=emails).values_list("email", flat=True)),
        "username": set(User.objects.filter(username__in=usernames).values_list("username", flat=True)),
    }
    for index, values in enumerate(zip(emails, usernames, strict=True)):
        for field, value in zip(("email", "username"), values, strict=True):
            if value and value in taken[field]:
                raise ValidationFailed(
                    f"Row {index}: this {field} is already in use.", details={"row": index, "field": field}
                )
            taken[field].add(value)


def users_bulk_create(*, rows: list[dict[str, Any]]) -> list[int]:
    """Create up to BULK_MAX_USERS users in one statement, all or nothing; the first bad row is named."""
    if not rows:
        raise ValidationFailed("Send at least one user.", details={"field": "users"})
    if len(rows) > BULK_MAX_USERS:
        raise ValidationFailed(f"At most {BULK_MAX_USERS} users per request.", details={"count": len(rows)})
    users_bulk_check_unique(rows=rows)
    users = []
    for index, row in enumerate(rows):
        user = User(
            email=row["email"].strip().lower(), username=row["username"].strip(), plan=row.get("plan") or User.Plan.FREE
        )
        password = row.get("password")
        if password:
            _check_password(password, user, row=index)
            user.password = make_password(password)
        else:
            user.set_unusable_password()
        users.append(user)
    try:
        with transaction.atomic():
            created = User.objects.bulk_create(users, batch_size=BULK_MAX_USERS)
            versioned_cache.bump_on_commit(versioned_cache.USERS)
    except IntegrityError as exc:
        raise Conflict("A user in this batch was created concurrently; nothing was created.") from exc
    return [u.pk for u in created]
