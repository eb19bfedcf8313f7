#!/bin/sh
# The ws process (Procfile): daphne on $HOST:$WS_PORT. --proxy-headers makes daphne take the
# client address and scheme from X-Forwarded-For and X-Forwarded-Proto, which any client can
# send; only a proxy in front (NUM_PROXIES > 0) overwrites them, so only then are they trusted.
set -eu
if [ "${NUM_PROXIES:-0}" -gt 0 ]; then
    set -- --proxy-headers "$@"
fi
exec daphne -b "${HOST:-127.0.0.1}" -p "${WS_PORT:-8001}" "$@" exchange_site.asgi:application
