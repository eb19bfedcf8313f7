"""Container health check: ``python deploy/healthcheck.py PORT`` exits 0 when ``/health`` on
this container's own server answers 200.

It asks the way the reverse proxy does, because the production settings refuse anything else:
a plain ``http://127.0.0.1`` request would get a 400 (the host is not in ALLOWED_HOSTS) or a
301 to HTTPS (SECURE_SSL_REDIRECT). So it names the public host (the first ALLOWED_HOSTS entry)
and sends ``X-Forwarded-Proto: https``, which the app believes only behind a proxy
(NUM_PROXIES > 0), as in docker-compose.yml. Standard library only: it runs every few seconds.
"""

import os
import sys
import urllib.request


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: following one to https://<public host>/ could reach a healthy
    sibling through the proxy and report this container healthy."""

    def redirect_request(self, *args, **kwargs):
        return None


def main(port: str) -> int:
    host = os.environ.get("ALLOWED_HOSTS", "localhost").split(",")[0].strip().lstrip(".")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/health",
        headers={"Host": host or "localhost", "X-Forwarded-Proto": "https"},
    )
    try:
        with urllib.request.build_opener(_NoRedirects).open(request, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:  # refused, timed out, or an HTTP error status (URLError)
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
