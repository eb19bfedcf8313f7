from django.conf import settings


def site(request):
    """Values every page template needs: where the WebSocket server listens."""
    return {"WS_PUBLIC_URL": settings.WS_PUBLIC_URL, "WS_PORT": settings.WS_PORT}
