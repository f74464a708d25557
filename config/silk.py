"""django-silk hooks (SILK_ENABLED=1): who may open /silk/, which requests are recorded, which get cProfile."""

from typing import Any

from django.http import HttpRequest

# Signed media URLs carry their secret in the query string, which silk stores unmasked.
_SECRET_QUERY_PARAMS = ("sig", "token")


def is_staff(user: Any) -> bool:
    """SILKY_PERMISSIONS: /silk/ is for signed-in staff only."""
    return bool(user and user.is_active and user.is_staff)


def should_record(request: HttpRequest) -> bool:
    """SILKY_INTERCEPT_FUNC: record every request except those authorised by a secret in the URL."""
    return not any(name in request.GET for name in _SECRET_QUERY_PARAMS)


def profile_chosen_paths(request: HttpRequest) -> bool:
    """SILKY_PYTHON_PROFILER_FUNC: run cProfile on requests under a SILK_PROFILE_PATHS prefix."""
    from django.conf import settings

    return any(request.path.startswith(prefix) for prefix in settings.SILK_PROFILE_PATHS)
