"""WebSocket routes of every app."""

from videos.routing import websocket_urlpatterns as video_routes

websocket_urlpatterns = [*video_routes]
