"""HTTP caching in one place: a Cache-Control policy per endpoint class, and ETag/304 on every JSON read."""

import re

from django.http import HttpRequest, HttpResponseBase, HttpResponseNotModified
from django.utils.cache import patch_vary_headers, set_response_etag
from django.utils.http import parse_etags

from config.middleware import AsyncMiddleware

IMMUTABLE = "private, max-age=31536000, immutable"  # content addressed, per-user (signed) URL
READ = "private, max-age=5, stale-while-revalidate=30"  # details and lists: user data behind Authorization
REVALIDATE = "private, no-cache"  # reusable, but only after an ETag check
NO_STORE = "no-store"  # live state, health, metrics, writes, errors

# (path pattern, policy for GET/HEAD); first match wins. Other methods on these paths are NO_STORE;
# paths matching nothing (admin, docs assets, silk) keep whatever their views set.
CACHE_POLICIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^/api/v1/videos/\d+/file$"), IMMUTABLE),  # bytes never change for a video id
    (re.compile(r"^/api/v1/videos/\d+/thumbnail$"), REVALIDATE),  # IMMUTABLE when signed, see policy_for
    (re.compile(r"^/api/v1/videos/\d+/status$"), NO_STORE),  # long poll on live state
    (re.compile(r"^/(health|health/live|metrics)$"), NO_STORE),
    (re.compile(r"^/api/"), READ),
)
_READ_METHODS = ("GET", "HEAD")
# Headers that describe the representation a 304 does not carry.
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "content-disposition"})


def policy_for(request: HttpRequest, status: int) -> str | None:
    """The Cache-Control value for this request and status, or None for paths outside the table."""
    policy = next((policy for pattern, policy in CACHE_POLICIES if pattern.match(request.path)), None)
    if policy is None or (300 <= status < 400 and status != 304):
        return None  # a redirect (e.g. to a presigned S3 URL) carries its view's own policy
    if request.method not in _READ_METHODS or status >= 400:
        return NO_STORE
    if policy is REVALIDATE and "sig" in request.GET:
        # A thumbnail is regenerated under a new name on reprocess, but a signed URL is minted from the
        # row each time the video is read, so what one signed URL shows never needs revalidating.
        return IMMUTABLE
    return policy


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/"x" matches "x"."""
    tags = parse_etags(header)
    return "*" in tags or etag.removeprefix("W/") in {tag.removeprefix("W/") for tag in tags}


def not_modified(response: HttpResponseBase) -> HttpResponseNotModified:
    """A 304 keeping every header but the body's own (so RateLimit-*, Vary, Cache-Control survive)."""
    result = HttpResponseNotModified()
    for key, value in response.items():
        if key.lower() not in _BODY_HEADERS:
            result[key] = value
    result.cookies = response.cookies
    return result


class CacheHeadersMiddleware(AsyncMiddleware):
    """Cache-Control from CACHE_POLICIES; a body-hash ETag on cacheable 200 reads and 304 on a match.

    Views that set their own ETag (video detail, files) keep it; streamed bodies get none (no hash without
    reading them), and Range responses are answered by their views."""

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return apply_cache_headers(request, await self.get_response(request))


def apply_cache_headers(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """CacheHeadersMiddleware's work on one response: the policy, Vary, the body-hash ETag, 304 on a match."""
    policy = policy_for(request, response.status_code)
    if policy is None:
        return response
    response["Cache-Control"] = policy
    if response.status_code == 304:
        for header in _BODY_HEADERS:  # a view's own 304 may still carry a default Content-Type
            del response[header]
    if policy == NO_STORE:
        return response
    patch_vary_headers(response, ("Authorization",))
    if response.status_code != 200 or response.streaming:
        return response
    if not response.has_header("ETag"):
        set_response_etag(response)
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match and response.has_header("ETag") and etag_matches(if_none_match, response["ETag"]):
        return not_modified(response)
    return response
