"""``python -m multihost [RUN_DIR]``: build the hosts, run the scenario, print the figures.

The same as the test (``pytest -m multihost multihost``), for a run by hand; as root.
The Redis master's whole host is powered off; ``MULTIHOST_REDIS_FAILOVER=kill`` kills only
redis-server instead (``Scenario.redis_failover``).
"""

import os
import sys
from pathlib import Path

from multihost.cluster import Cluster
from multihost.scenario import run


def main(argv: list[str]) -> int:
    cluster = Cluster(run_dir=Path(argv[0]) if argv else None)
    print(f"run directory (logs): {cluster.run_dir}", flush=True)
    try:
        cluster.start()
        print(f"hosts up: {cluster.timings}", flush=True)
        figures = run(
            cluster, redis_failover=os.environ.get("MULTIHOST_REDIS_FAILOVER", "power-off")
        )
    finally:
        cluster.stop()
    print("multi-host figures:")
    print(figures.report())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
