from django.urls import path

from videos.consumers import ProgressConsumer

websocket_urlpatterns = [
    path("ws/videos/<int:video_id>/", ProgressConsumer.as_asgi()),
    path("ws/projects/<int:project_id>/", ProgressConsumer.as_asgi()),
]
