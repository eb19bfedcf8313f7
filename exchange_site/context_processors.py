from django.conf import settings


def site(request):
    """Values every page template needs: where the WebSocket server listens, and whether
    this is a demo (which links the /dev/ pages)."""
    return {
        "WS_PUBLIC_URL": settings.WS_PUBLIC_URL,
        "WS_PORT": settings.WS_PORT,
        "demo_mode": settings.DEMO_MODE,
    }
