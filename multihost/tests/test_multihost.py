"""The exchange on several hosts (issue 22): network namespaces on this machine stand in for
hosts; PostgreSQL with a streaming replica, Redis with three sentinels, two web and two ws
hosts behind HAProxy, matchers with a standby, a Celery worker. One scenario, one test: it
trades, powers off a matcher host, a ws host and the Redis master's host one at a time
(``MULTIHOST_REDIS_FAILOVER=kill``: only redis-server is killed), and checks that nothing
was lost or doubled (multihost/scenario.py). Its figures are printed and kept in
var/test-artifacts/multihost/figures.json, the hosts' logs beside them.

Needs root (namespaces, veth), iproute2, HAProxy (scripts/ensure_haproxy.sh) and Redis; a
machine without them fails here, loudly: the test never skips.
"""

import json
import os
import shutil

import pytest

from multihost.cluster import ROOT, Cluster
from multihost.scenario import run

pytestmark = pytest.mark.multihost

RUN_DIR = ROOT / "var" / "test-artifacts" / "multihost"


def test_exchange_on_several_hosts_survives_losing_a_matcher_a_ws_host_and_the_redis_master(
    capsys,
):
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    cluster = Cluster(run_dir=RUN_DIR)
    try:
        cluster.start()
        figures = run(
            cluster, redis_failover=os.environ.get("MULTIHOST_REDIS_FAILOVER", "power-off")
        )
    finally:
        cluster.stop()
        # The databases' files are big and of no use after the run; the logs stay.
        for data in ("pg1", "pg2"):
            shutil.rmtree(RUN_DIR / data, ignore_errors=True)
    figures["hosts up, s (cumulative)"] = cluster.timings
    (RUN_DIR / "figures.json").write_text(json.dumps(figures.values, indent=2, default=str))
    with capsys.disabled():
        print(f"\nmulti-host figures (logs in {RUN_DIR / 'logs'}):\n{figures.report()}")
    assert figures["check_ledger"] == "OK"
