#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis the tests use are answering; start them the way the
# machine guide says when they are installed but stopped, otherwise say how to start them.
set -u
PG_HOST=127.0.0.1 PG_PORT=5432 REDIS_PORT=6379

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_port() { for _ in $(seq 1 50); do port_open "$1" "$2" && return 0; sleep 0.2; done; return 1; }

if ! port_open $PG_HOST $PG_PORT; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "PostgreSQL is not answering on $PG_HOST:$PG_PORT; starting it" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  wait_port $PG_HOST $PG_PORT || {
    echo "ERROR: PostgreSQL is not answering on $PG_HOST:$PG_PORT." >&2
    echo "Start it: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start" >&2
    echo "(or with Docker: docker compose up -d postgres)" >&2
    exit 1
  }
fi

if ! port_open 127.0.0.1 $REDIS_PORT; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "Redis is not answering on 127.0.0.1:$REDIS_PORT; starting it" >&2
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port $REDIS_PORT --save "" --appendonly no || true
  fi
  wait_port 127.0.0.1 $REDIS_PORT || {
    echo "ERROR: Redis is not answering on 127.0.0.1:$REDIS_PORT." >&2
    echo "Start it: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no" >&2
    echo "(or with Docker: docker compose up -d redis)" >&2
    exit 1
  }
fi
echo "PostgreSQL and Redis are answering."
