"""WSGI entry point: gunicorn serves all HTTP from here (ARCHITECTURE §1).

Order entry's ``POST /api/v1/orders/`` is answered by ``trading.api.order_route`` in front
of Django's middleware; every other request, and every order request it does not take, goes
to Django's application as it is.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")

django_application = get_wsgi_application()

from trading.api.order_route import OrderEntryRoute  # noqa: E402  (needs the apps loaded)

application = OrderEntryRoute(django_application)
