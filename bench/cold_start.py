"""Time ``make run`` from nothing to a served exchange.

    .venv/bin/python bench/cold_start.py [--runs 3] [--keep-var]

Each run starts ``make run`` with a fresh ``VAR_DIR`` (so it initialises its database,
migrates, seeds the demo and collects static files; ``--keep-var`` keeps the directory of
the previous run: a warm start) and times until ``GET /api/v1/markets/`` on the web port
answers 200 and the WebSocket port accepts connections, then stops it with Ctrl-C (SIGINT
to its process group) and times the shutdown. The virtualenv is not rebuilt (``make venv``
first). Prints one JSON line per run and a summary. Needs ports 8000 and 8001 free, and
uses the embedded servers unless DATABASE_URL / REDIS_URL are exported.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 300.0


def serving(port: int, ws_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/markets/", timeout=2) as r:
            if r.status != 200:
                return False
        with socket.create_connection(("127.0.0.1", ws_port), timeout=1):
            return True
    except OSError:
        return False


def one_run(var_dir: Path, port: int, ws_port: int) -> dict:
    env = {**os.environ, "VAR_DIR": str(var_dir), "PORT": str(port), "WS_PORT": str(ws_port)}
    log = open(var_dir.parent / "make-run.log", "wb")  # noqa: SIM115 (closed below)
    started = time.monotonic()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        while not serving(port, ws_port):
            if process.poll() is not None or time.monotonic() - started > TIMEOUT:
                raise SystemExit(f"make run did not come up; see {log.name}")
            time.sleep(0.1)
        up = time.monotonic() - started
    finally:
        stopping = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
    return {"serving_s": round(up, 2), "stop_s": round(time.monotonic() - stopping, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep-var", action="store_true", help="warm starts after the first")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--ws-port", type=int, default=8001)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="cold-start-"))
    results = []
    try:
        for index in range(args.runs):
            var_dir = base / "var"
            if not args.keep_var or index == 0:
                shutil.rmtree(var_dir, ignore_errors=True)
            var_dir.mkdir(exist_ok=True)
            result = {"run": index + 1, "fresh": not args.keep_var or index == 0}
            result.update(one_run(var_dir, args.port, args.ws_port))
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    times = [r["serving_s"] for r in results]
    print(
        json.dumps(
            {
                "runs": len(times),
                "serving_s_median": round(statistics.median(times), 2),
                "serving_s_min": min(times),
                "serving_s_max": max(times),
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
