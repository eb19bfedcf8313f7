"""Real PostgreSQL and Redis servers run from files under ``var/``, for a machine that has none.

``make run`` uses them when ``DATABASE_URL`` / ``REDIS_URL`` are not given, and ``make test``
when neither those variables nor the servers on 127.0.0.1:5432 / 6379 answer. The fault tests
start throwaway clusters with the same code. Nothing here imports Django: it runs before
settings exist.
"""
