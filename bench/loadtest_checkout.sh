#!/bin/bash
# Order entry over HTTP for one checkout, on a freshly created database, to compare two
# versions on one machine (docs/PERFORMANCE.md): migrate, seed_demo, start gunicorn and
# run_matcher from CHECKOUT, then `manage.py loadtest`: a warm-up and RUNS counted runs of
# single orders (32 clients, 30 s), then batches of 20 (8 clients, 20 s). Prints one JSON
# line per run, prefixed with LABEL (the full reports go to $TMPDIR/loadtest-LABEL/). Uses this
# checkout's virtualenv for both versions.
#
#   bench/loadtest_checkout.sh ../old-checkout before; bench/loadtest_checkout.sh . after
set -euo pipefail
CHECKOUT=$(cd "$1" && pwd); LABEL=$2; RUNS=${RUNS:-2}; PORT=${LOADTEST_PORT:-8055}
PY=$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python
export DATABASE_URL=${LOADTEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/exchange_loadtest}
export REDIS_URL=${LOADTEST_REDIS_URL:-redis://127.0.0.1:6379/12}
export SECRET_KEY=loadtest-secret-0123456789abcdef0123456789 ALLOWED_HOSTS=127.0.0.1,localhost DEBUG=0
export VAR_DIR=${TMPDIR:-/tmp}/loadtest-$LABEL
mkdir -p "$VAR_DIR"
cd "$CHECKOUT"
db=${DATABASE_URL##*/}; admin_url=${DATABASE_URL%/*}/postgres
"$PY" - "$admin_url" "$db" <<'PYTHON'
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    conn.execute(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)')
    conn.execute(f'CREATE DATABASE "{sys.argv[2]}"')
PYTHON
"$PY" -c "import redis, os; redis.Redis.from_url(os.environ['REDIS_URL']).flushdb()"
"$PY" manage.py migrate -v0
"$PY" manage.py seed_demo >/dev/null
"$(dirname "$PY")/gunicorn" exchange_site.wsgi --config gunicorn.conf.py --bind "127.0.0.1:$PORT" \
    >"$VAR_DIR/gunicorn.log" 2>&1 &
web=$!
"$PY" manage.py run_matcher >"$VAR_DIR/matcher.log" 2>&1 &
matcher=$!
trap 'kill $web $matcher 2>/dev/null; wait 2>/dev/null' EXIT
sleep 6
load() { "$PY" manage.py loadtest --url "http://127.0.0.1:$PORT" --no-progress --vacuum "$@" 2>>"$VAR_DIR/loadtest.log" | tee -a "$VAR_DIR/loadtest.out" | grep "^{" | tail -n 1; }
echo "$LABEL warm-up $(load --clients 32 --duration 30)"
for run in $(seq "$RUNS"); do echo "$LABEL single $(load --clients 32 --duration 30)"; done
echo "$LABEL batch $(load --clients 8 --users 240 --duration 20 --batch)"
