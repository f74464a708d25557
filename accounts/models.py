"""Users, their activity trail, and refresh-token families."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class User(AbstractUser):
    class Plan(models.TextChoices):
        FREE = "free"
        PRO = "pro"
        ENTERPRISE = "enterprise"

    email = models.EmailField(unique=True)
    plan = models.CharField(max_length=16, choices=Plan.choices, default=Plan.FREE)

    REQUIRED_FIELDS = ["email"]

    class Meta:
        indexes = [
            # The staff list's filters with its default order: a filtered page reads only the rows it returns
            # (the plan/is_active prefix still serves the filters alone; scanned backwards, the ascending order).
            models.Index(fields=["plan", "is_active", "-date_joined", "-id"], name="user_plan_active_joined_idx"),
            models.Index(fields=["is_active"], name="user_active_idx"),
            models.Index(fields=["date_joined"], name="user_joined_idx"),
            # Keyset pages in the default order (newest first, id as tie-breaker).
            models.Index(fields=["-date_joined", "-id"], name="user_joined_id_idx"),
        ]


class UserActivity(models.Model):
    class Action(models.TextChoices):
        REGISTER = "register"
        LOGIN = "login"
        LOGOUT = "logout"
        REFRESH_REUSE = "refresh_reuse"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="activities")
    action = models.CharField(max_length=32, choices=Action.choices)
    created_at = models.DateTimeField(default=timezone.now)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "user activities"
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="activity_user_created_idx"),
            models.Index(fields=["action"], name="activity_action_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.action} {self.created_at:%Y-%m-%d %H:%M}"


class TokenFamily(models.Model):
    """All refresh tokens rotated from one login; revoked whole when a rotated-away token is reused."""

    id = models.CharField(primary_key=True, max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="token_families")
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "token families"

    def __str__(self) -> str:
        return f"{self.id} ({'revoked' if self.revoked_at else 'active'})"
