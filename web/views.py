"""The single page at `/`: a template whose scripts talk to the JSON API and the progress WebSockets."""

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string


async def index(request: HttpRequest) -> HttpResponse:
    """Static markup only: no database access, so the view never leaves the event loop."""
    response = HttpResponse(render_to_string("web/index.html"))
    # Tokens live in the page's memory/sessionStorage; a cached copy of the page holds nothing private,
    # but revalidating keeps users on the current script URLs after a deploy.
    response["Cache-Control"] = "no-cache"
    return response
