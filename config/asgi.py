"""ASGI entry point: HTTP through Django, WebSockets through Channels, one application."""

import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

from config.handler import LeanASGIHandler  # noqa: E402

django_asgi_app = LeanASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.http import HttpRequest, HttpResponseBase  # noqa: E402

from config.compression import compress_response  # noqa: E402
from config.dramatiq import start_embedded_worker  # noqa: E402
from config.hopfree import SecurityMiddleware, XFrameOptionsMiddleware  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402


def _stop_twisted_form_parsing() -> None:
    """Under daphne (`make run`), Twisted parses every multipart POST body in memory (about 13x its size)
    before the app sees it, and daphne never uses the result. Measured in bench/bench_upload.py: a 100 MB
    upload went from +1.3 GB to +0.1 GB peak RSS with this off. Production serves with uvicorn instead."""
    try:
        import daphne.http_protocol as daphne_http
    except ImportError:
        return

    class NoFormParseRequest(daphne_http.WebRequest):  # type: ignore[misc, name-defined]
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs.setdefault("parsePOSTFormSubmission", False)
            super().__init__(*args, **kwargs)

    daphne_http.WebRequest = NoFormParseRequest  # type: ignore[misc]


class StaticFilesHandler(ASGIStaticFilesHandler):
    """/static/ is answered before the middleware stack runs: add its security headers and compression."""

    def __init__(self, application: Any) -> None:
        super().__init__(application)
        self.header_middleware = (SecurityMiddleware(application), XFrameOptionsMiddleware(application))

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        response = await super().get_response_async(request)
        for middleware in self.header_middleware:
            response = middleware.process_response(request, response)
        return compress_response(request, response)


_stop_twisted_form_parsing()
start_embedded_worker()

application = ProtocolTypeRouter(
    {
        "http": StaticFilesHandler(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
