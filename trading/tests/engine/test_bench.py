"""bench/engine.py runs, reports its JSON line, and writes the engine's trades in order."""

import json
import subprocess
import sys
from pathlib import Path

from trading.engine import OrderBook

BENCH = Path(__file__).resolve().parents[3] / "bench" / "engine.py"


def _bench(*args):
    result = subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _replay(workload_path):
    """The trades of a workload file, replayed here without the benchmark's code."""
    book = OrderBook()
    trades = []
    for line in workload_path.read_text().splitlines():
        c = json.loads(line)
        if c["op"] == "cancel":
            events = book.cancel(c["id"])
        elif c["op"] == "market":
            events = book.place_market(c["id"], c["user"], c["side"], c["qty"])
        else:
            events = book.place_limit(c["id"], c["user"], c["side"], c["price"], c["qty"], c["tif"])
        trades += [
            {"taker": e[1], "maker": e[0], "price": e[2], "qty": e[3]}
            for e in events
            if e[-1] == "trade"
        ]
    return trades


def test_bench_replays_a_generated_workload_and_writes_its_trades(tmp_path):
    workload, first, second = tmp_path / "w.jsonl", tmp_path / "t1.jsonl", tmp_path / "t2.jsonl"
    generated = _bench(
        "--commands",
        "3000",
        "--seed",
        "7",
        "--write-workload",
        str(workload),
        "--trades-out",
        str(first),
    )
    replayed = _bench("--workload", str(workload), "--trades-out", str(second))
    assert set(generated) >= {"commands", "seconds", "commands_per_s", "trades", "peak_rss_mb"}
    assert generated["commands"] == replayed["commands"] == 3000
    trades = [json.loads(line) for line in first.read_text().splitlines()]
    assert len(trades) == generated["trades"] == replayed["trades"] > 0
    assert first.read_text() == second.read_text()
    assert trades == _replay(workload)


def test_bench_reports_the_preloaded_resting_orders():
    result = _bench("--commands", "1000", "--resting", "2000")
    assert result["resting_preloaded"] == 2000
    assert result["commands"] == 1000


def test_bench_drives_the_matchers_entry_point_on_the_same_stream_and_a_full_mix():
    """The row commands go through trading.matcher.commands and OrderBook.apply: on the bare
    stream they trade exactly as the bare calls; the mix has every kind of command."""
    result = _bench("--commands", "4000", "--seed", "3", "--no-heap")
    assert result["apply_trades"] == result["trades"] > 0
    assert result["mix_trades"] > 0
    assert all(result["mix_by_op"][op] > 0 for op in ("place", "cancel", "amend", "oco"))
    assert result["mix_commands"] == sum(result["mix_by_op"].values())
