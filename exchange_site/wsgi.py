"""WSGI entry point: gunicorn serves all HTTP from here (ARCHITECTURE §1)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")

application = get_wsgi_application()
