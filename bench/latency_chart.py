"""Chart HTTP order-entry latency against load: p50 and p99 per accepted orders/s.

    python bench/latency_chart.py [--url http://127.0.0.1:8000] [--clients 1,2,4,8,16,32]
                                  [--duration 10] [--users 64]
                                  [--out docs/img/latency-vs-load.png]
    python bench/latency_chart.py --from-json docs/img/latency-vs-load.json   # re-plot only

Runs ``manage.py loadtest`` once per client count against the running exchange (the same
environment as the server: ``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY``; see
docs/PERFORMANCE.md), keeps each run's JSON line next to the chart, and plots accepted
orders/s against HTTP latency with matplotlib.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(url: str, clients: list[int], duration: float, users: int) -> list[dict]:
    runs = []
    for count in clients:
        command = [
            sys.executable,
            "manage.py",
            "loadtest",
            "--url",
            url,
            "--clients",
            str(count),
            "--duration",
            str(duration),
            # Enough users that no one of them meets the per-user order limit: the server
            # runs with its default throttling.
            "--users",
            str(max(users, count)),
            # Each point starts from vacuumed order-entry tables, so a later point does not pay
            # for the dead rows of the earlier ones (every point's JSON records it).
            "--vacuum",
        ]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise SystemExit(f"loadtest with {count} clients printed no result:\n{done.stderr}")
        report = json.loads(lines[-1])
        print(
            f"{count:>3} clients: {report['orders_accepted_per_s']:>7.1f} orders/s, "
            f"p50 {report['latency_ms_p50']} ms, p99 {report['latency_ms_p99']} ms",
            file=sys.stderr,
        )
        runs.append(report)
    return runs


def plot(runs: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    from matplotlib import pyplot

    rates = [run["orders_accepted_per_s"] for run in runs]
    figure, axes = pyplot.subplots(figsize=(6.4, 3.6), dpi=120)
    for key, label in (("latency_ms_p50", "p50"), ("latency_ms_p99", "p99")):
        axes.plot(rates, [run[key] for run in runs], marker="o", label=label)
    for run in runs:
        axes.annotate(
            f"{run['clients']}c",
            (run["orders_accepted_per_s"], run["latency_ms_p99"]),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=7,
        )
    axes.axhline(100, color="grey", linestyle=":", linewidth=1, label="p99 target 100 ms")
    axes.set_xlabel("accepted orders/s (single-order requests)")
    axes.set_ylabel("HTTP latency, ms")
    axes.set_title("Order entry latency against load (2 vCPUs, all on one host)", fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", default="1,2,4,8,16,32")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=64, help="Users the clients share.")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/img/latency-vs-load.png")
    parser.add_argument("--from-json", type=Path, help="plot saved runs instead of measuring")
    args = parser.parse_args()
    if args.from_json:
        runs = json.loads(args.from_json.read_text())
    else:
        clients = [int(part) for part in args.clients.split(",") if part.strip()]
        runs = measure(args.url, clients, args.duration, args.users)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(runs, indent=1) + "\n")
    plot(runs, args.out)
    print(args.out)


if __name__ == "__main__":
    main()
