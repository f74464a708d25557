"""Silk's middleware for our hop-free stack (loaded only with SILK_ENABLED=1)."""

from typing import Any

from silk.middleware import SilkyMiddleware as _SilkyMiddleware


class SilkyMiddleware(_SilkyMiddleware):
    """Silk refuses to start unless Django's stock session/auth middleware paths are in MIDDLEWARE (a set
    intersection, which our `_MiddlewareList` cannot answer); ours are their subclasses in config.hopfree,
    giving the same `request.session` and `request.user`, so the check is skipped."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
