from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from config import health, metrics
from config.api import api

urlpatterns = [
    path("health", health.health, name="health"),
    path("health/live", health.live, name="health-live"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", api.urls),
    path("", include("web.urls")),
]

if settings.SILK_ENABLED:  # Not routed at all otherwise: /silk/ answers 404 in the error shape.
    urlpatterns.append(path("silk/", include("silk.urls", namespace="silk")))

handler400 = "config.errors.handler400"
handler403 = "config.errors.handler403"
handler404 = "config.errors.handler404"
handler500 = "config.errors.handler500"
