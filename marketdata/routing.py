from django.urls import re_path

from marketdata.consumers import StreamConsumer

websocket_urlpatterns = [
    re_path(r"^ws/?$", StreamConsumer.as_asgi()),
]
