"""Benchmark of the matching engine (trading.engine) on one core.

Three timed replays, each printed in one JSON line at the end, each labelled:

- bare calls (``commands_per_s``, ``cpu_commands_per_s``, ``trades``, ``peak_rss_mb``): the
  seeded limit/market/cancel workload straight into ``place_limit``/``place_market``/
  ``cancel`` with ints, beside the rule-less heap book on the same commands
  (``heap_book_*``, ``engine_to_heap_book`` by wall clock, ``engine_to_heap_book_cpu``);
- as the matcher drives it, same stream (``apply_*``): the same commands as the rows the
  matcher's command query returns. PostgreSQL converts the Decimal prices and quantities
  to ticks and lots in that query (trading/matcher/commands.py ``place_columns``, checked
  against ``MarketScale`` by trading/tests/matcher/test_place_columns.py), so what the
  matcher runs per place command in Python, and what is timed here, is its off-grid check
  and ``OrderBook.place(*fields)`` on the row's slice of Place fields (what
  ``OrderBook.apply`` runs for a Place); cancels go through
  ``OrderBook.cancel``, amends and OCO pairs through the Decimal builders
  (``amend_command``, ``oco_command``), as in the matcher. Building the rows (the
  conversions PostgreSQL does) is untimed. ``apply_trades`` equals ``trades``;
  ``apply_to_heap_book_cpu`` compares it with the heap book on the same commands;
- as the matcher drives it, full mix (``mix_*``): every order type (limit GTC/IOC/FOK,
  post-only, iceberg, market by quantity and by quote, stop, stop-limit, trailing stop, OCO
  pairs), amends and cancels; the heap book has no order types, so it has no yardstick.

``peak_rss_mb`` is read right after the bare replay (with --resting, the 1M-order figure),
which reads the workload in pickled chunks of 10,000 commands unpickled off the clock (as the
matcher reads commands in batches), so it is the book's memory and not the workload's;
``peak_rss_mb_all_runs`` after the last. Generating the workloads (seeded, in a child
process, so the generator's scratch book is not counted), building the rows and preloading
resting orders happen before the clock starts; writing --trades-out after it stops.

    python bench/engine.py                                  # seeded 200,000-command workload
    python bench/engine.py --resting 1000000                # the same on top of 1M resting orders
    python bench/engine.py --workload cmds.jsonl --trades-out trades.jsonl
    python bench/engine.py --write-workload cmds.jsonl      # dump the generated workload
    python bench/engine.py --bare-only --no-heap            # the bare calls alone

Workload lines (JSON Lines): {"op": "limit"|"market"|"cancel", "id": int, "side": "buy"|"sell",
"price": ticks, "qty": lots, "tif": "GTC"|"IOC"|"FOK", "user": int}; cancels name an earlier id
and market orders have no price. (The full mix is always generated from --seed.)
"""

import argparse
import json
import multiprocessing
import pickle
import random
import resource
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from heapbook import HeapBook

from trading.engine import (
    BUY,
    FOK,
    GTC,
    IOC,
    ORDER_DONE,
    ORDER_RESTED,
    SELL,
    STOP_ACCEPTED,
    TRADE,
    OrderBook,
    Resting,
)

# Command tuples start with a small int op: small ints are singletons, so `is` dispatch
# survives the pickling that brings the generated workload back from its child process.
LIMIT_OP = 0
MARKET_OP = 1
CANCEL_OP = 2
OP_NAMES = {"limit": LIMIT_OP, "market": MARKET_OP, "cancel": CANCEL_OP}
MID_TICKS = 100_000
SPREAD_TICKS = 100


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _resting_orders(count, seed, first_id, prices, users):
    """Yield ``count`` non-crossing resting orders within SPREAD_TICKS of the mid price."""
    rng = random.Random(seed ^ 0x5EED)
    randrange = rng.randrange
    for i in range(count):
        offset = randrange(SPREAD_TICKS)
        if i & 1:
            yield Resting(
                first_id + i,
                users[randrange(len(users))],
                SELL,
                prices[offset + 1],
                1 + randrange(10),
            )
        else:
            yield Resting(
                first_id + i, users[randrange(len(users))], BUY, prices[-offset], 1 + randrange(10)
            )


def generate(seed, commands, resting):
    """Build the seeded workload as command tuples, simulating it on a scratch book.

    The simulation tells which orders are live, so every cancel names a live order. The
    mix: 65 % limit orders within +-100 ticks of the mid (a quarter of them priced to cross),
    10 % market orders, 25 % cancels. Int objects for prices and users come from shared
    tables so that a million resting orders do not each carry their own.
    """
    rng = random.Random(seed)
    random_ = rng.random
    randrange = rng.randrange
    # prices[k] is MID_TICKS + k for k in -SPREAD_TICKS..SPREAD_TICKS (negative k wraps).
    prices = list(range(MID_TICKS, MID_TICKS + SPREAD_TICKS + 1)) + list(
        range(MID_TICKS - SPREAD_TICKS, MID_TICKS)
    )
    users = list(range(1, 1001))
    sides = (BUY, SELL)
    book = OrderBook.restore(_resting_orders(resting, seed, 1, prices, users))
    # Live workload orders are indexed for O(1) random choice; the preloaded ones (ids
    # 1..resting) are only counted and drawn by rejection sampling, because an index of a
    # million ids would cost more memory than the measured book.
    preloaded_live = resting
    live_ids = []
    live_index = {}

    def forget(order_id):
        i = live_index.pop(order_id, None)
        if i is not None:
            last = live_ids.pop()
            if i < len(live_ids):
                live_ids[i] = last
                live_index[last] = i

    def pick_live():
        i = randrange(preloaded_live + len(live_ids))
        if i >= preloaded_live:
            return live_ids[i - preloaded_live]
        while True:
            order_id = 1 + randrange(resting)
            if order_id in book:
                return order_id

    out = []
    next_id = resting + 1
    for _ in range(commands):
        r = random_()
        if r >= 0.75 and (live_ids or preloaded_live):
            cmd = (CANCEL_OP, pick_live())
            events = book.cancel(cmd[1])
        elif r >= 0.65:
            cmd = (
                MARKET_OP,
                next_id,
                users[randrange(1000)],
                sides[randrange(2)],
                1 + randrange(10),
            )
            next_id += 1
            events = book.place_market(cmd[1], cmd[2], cmd[3], cmd[4])
        else:
            side = sides[randrange(2)]
            offset = randrange(SPREAD_TICKS)
            crossing = random_() < 0.25
            if side == BUY:
                price = prices[offset + 1] if crossing else prices[-offset]
            else:
                price = prices[-offset] if crossing else prices[offset + 1]
            t = random_()
            tif = GTC if t < 0.9 else (IOC if t < 0.95 else FOK)
            cmd = (LIMIT_OP, next_id, users[randrange(1000)], side, price, 1 + randrange(10), tif)
            next_id += 1
            events = book.place_limit(*cmd[1:])
        out.append(cmd)
        for event in events:
            kind = event[-1]
            if kind is ORDER_RESTED:
                live_index[event[0]] = len(live_ids)
                live_ids.append(event[0])
            elif kind is ORDER_DONE:
                if event[0] <= resting:
                    preloaded_live -= 1
                else:
                    forget(event[0])
    return out


def _share_ints(commands):
    """Make the commands' prices and users shared int objects again (untimed), as they were
    in the generator: unpickling gives every int above 256 its own 32-byte object, memory
    that is the workload's, not the book's."""
    shared = {}
    share = shared.setdefault
    for i, cmd in enumerate(commands):
        op = cmd[0]
        if op is LIMIT_OP:
            commands[i] = (
                op,
                cmd[1],
                share(cmd[2], cmd[2]),
                cmd[3],
                share(cmd[4], cmd[4]),
                *cmd[5:],
            )
        elif op is MARKET_OP:
            commands[i] = (op, cmd[1], share(cmd[2], cmd[2]), *cmd[3:])


def read_workload(path):
    """Parse a JSON Lines workload into command tuples (untimed)."""
    intern = sys.intern
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            c = json.loads(line)
            op = OP_NAMES.get(c["op"])
            if op == CANCEL_OP:
                out.append((CANCEL_OP, c["id"]))
            elif op == MARKET_OP:
                out.append(
                    (MARKET_OP, c["id"], c["user"], intern(c["side"]), c["qty"], c.get("tif", IOC))
                )
            elif op == LIMIT_OP:
                out.append(
                    (
                        LIMIT_OP,
                        c["id"],
                        c["user"],
                        intern(c["side"]),
                        c["price"],
                        c["qty"],
                        intern(c.get("tif", GTC)),
                    )
                )
            else:
                raise SystemExit(f"unknown op {c['op']!r} in {path}")
    return out


def write_workload(path, commands):
    with open(path, "w") as f:
        for cmd in commands:
            op = cmd[0]
            if op == CANCEL_OP:
                line = {"op": "cancel", "id": cmd[1]}
            elif op == MARKET_OP:
                line = {"op": "market", "id": cmd[1], "user": cmd[2], "side": cmd[3], "qty": cmd[4]}
                if len(cmd) > 5:
                    line["tif"] = cmd[5]
            else:
                line = {
                    "op": "limit",
                    "id": cmd[1],
                    "side": cmd[3],
                    "price": cmd[4],
                    "qty": cmd[5],
                    "tif": cmd[6],
                    "user": cmd[2],
                }
            f.write(json.dumps(line) + "\n")


def run(book, commands, keep_events):
    """Replay ``commands``: the only timed part.

    Returns (wall seconds, CPU seconds, event lists or None). CPU time is reported too
    because on a shared machine the wall clock also counts time spent descheduled.
    """
    place_limit = book.place_limit
    place_market = book.place_market
    cancel = book.cancel
    kept = [] if keep_events else None
    keep = kept.append if keep_events else None
    perf_counter = time.perf_counter
    process_time = time.process_time
    start_cpu = process_time()
    start = perf_counter()
    if keep is None:
        for cmd in commands:
            op = cmd[0]
            if op is LIMIT_OP:
                place_limit(cmd[1], cmd[2], cmd[3], cmd[4], cmd[5], cmd[6])
            elif op is CANCEL_OP:
                cancel(cmd[1])
            elif len(cmd) > 5:
                place_market(cmd[1], cmd[2], cmd[3], cmd[4], None, None, cmd[5])
            else:
                place_market(cmd[1], cmd[2], cmd[3], cmd[4])
    else:
        for cmd in commands:
            op = cmd[0]
            if op is LIMIT_OP:
                keep(place_limit(cmd[1], cmd[2], cmd[3], cmd[4], cmd[5], cmd[6]))
            elif op is CANCEL_OP:
                keep(cancel(cmd[1]))
            elif len(cmd) > 5:
                keep(place_market(cmd[1], cmd[2], cmd[3], cmd[4], None, None, cmd[5]))
            else:
                keep(place_market(cmd[1], cmd[2], cmd[3], cmd[4]))
    seconds = perf_counter() - start
    return seconds, process_time() - start_cpu, kept


# Commands per pickled chunk of the workload (bench/engine.py's bare replay).
CHUNK = 10_000


def _pickled_chunks(commands):
    return [pickle.dumps(commands[i : i + CHUNK]) for i in range(0, len(commands), CHUNK)]


def _unpickled(chunks):
    return [cmd for chunk in chunks for cmd in pickle.loads(chunk)]


def generate_chunks(seed, commands, resting):
    """``generate``'s workload as pickled chunks of CHUNK commands (run in the child)."""
    return _pickled_chunks(generate(seed, commands, resting))


def run_chunks(book, chunks, keep_events):
    """``run`` over a workload in pickled chunks: each chunk is unpickled off the clock, so
    only the replays are timed. Returns what ``run`` does, summed, and the command count."""
    seconds = cpu_seconds = 0.0
    count = 0
    kept = [] if keep_events else None
    for chunk in chunks:
        commands = pickle.loads(chunk)
        count += len(commands)
        chunk_seconds, chunk_cpu, chunk_kept = run(book, commands, keep_events)
        seconds += chunk_seconds
        cpu_seconds += chunk_cpu
        if keep_events:
            kept.extend(chunk_kept)
    return seconds, cpu_seconds, kept, count


# --- the matcher's entry point: order rows, Decimal conversions, OrderBook.apply ------------

# Row commands (the order rows the matcher reads, converted and applied inside the clock).
PLACE_ROW = 0
CANCEL_ROW = 1
AMEND_ROW = 2
OCO_ROW = 3
# The market's grid: prices in cents, quantities in 1e-5 lots (a price of 1000.00 is
# MID_TICKS ticks). Quote amounts carry 7 places; every row gets its own Decimal objects,
# as rows read from the database do.
TICK_SIZE = "0.01"
LOT_SIZE = "0.00001"
ROW_COLUMNS = (
    "id",
    "user_id",
    "side",
    "order_type",
    "time_in_force",
    "post_only",
    "price",
    "stop_price",
    "quantity",
    "quote_quantity",
    "filled_quantity",
    "reserved",
    "iceberg_quantity",
    "trailing_delta",
    "order_list_id",
)


class Row:
    """An order row with the matcher's column names (trading.matcher.market.OrderState)."""

    __slots__ = ROW_COLUMNS

    def __init__(self, *values):
        for name, value in zip(ROW_COLUMNS, values, strict=True):
            setattr(self, name, value)


def _scale():
    from trading.matcher.convert import MarketScale

    return MarketScale(Decimal(TICK_SIZE), Decimal(LOT_SIZE))


_ON_GRID = Decimal("0E-8")  # the off-grid remainder as the query returns it for most rows


def command_row(scale, order):
    """The row the matcher's command query returns for placing ``order`` (a Row), up to its
    off-grid remainder: the Place fields are what PostgreSQL computes (the same rules as
    ``place_command``, which builds them here, untimed)."""
    from trading.matcher.commands import place_command

    return (None, "place", None, None, *place_command(scale, order), _ON_GRID)


def _row(
    order_id,
    user_id,
    side,
    order_type,
    *,
    tif=GTC,
    post_only=False,
    price=None,
    stop=None,
    lots=None,
    quote=None,
    reserved=None,
    iceberg=None,
    trailing=None,
    list_id=None,
):
    """A Row from ticks and lots, with fresh Decimals as a database read gives them."""
    return Row(
        order_id,
        user_id,
        side,
        order_type,
        tif,
        post_only,
        None if price is None else Decimal(price).scaleb(-2),
        None if stop is None else Decimal(stop).scaleb(-2),
        None if lots is None else Decimal(lots).scaleb(-5),
        None if quote is None else Decimal(quote).scaleb(-7),
        Decimal(0),
        None if reserved is None else Decimal(reserved).scaleb(-7),
        None if iceberg is None else Decimal(iceberg).scaleb(-5),
        trailing,
        list_id,
    )


# A market buy by quantity reserves this many tick-lots: more than any fill here costs.
_BIG_RESERVE = 10**12


def rows_of(commands):
    """The bare workload's commands as command rows (untimed): the same limit/market/cancel
    stream, for comparing the matcher's path with the bare calls and the heap book."""
    scale = _scale()
    out = []
    for cmd in commands:
        op = cmd[0]
        if op is CANCEL_OP:
            out.append((CANCEL_ROW, cmd[1]))
        elif op is MARKET_OP:
            side = cmd[3]
            order = _row(
                cmd[1],
                cmd[2],
                side,
                "market",
                tif=cmd[5] if len(cmd) > 5 else IOC,
                lots=cmd[4],
                reserved=_BIG_RESERVE if side == BUY else None,
            )
            out.append((PLACE_ROW, command_row(scale, order)))
        else:
            order = _row(cmd[1], cmd[2], cmd[3], "limit", tif=cmd[6], price=cmd[4], lots=cmd[5])
            out.append((PLACE_ROW, command_row(scale, order)))
    return out


def generate_mix(seed, commands, resting):
    """The seeded full mix as row commands, simulated on a scratch book through the same
    conversions (so every cancel and amend names a live order).

    Per command: 35 % GTC limit, 4 % IOC, 3 % FOK, 4 % post-only, 3 % iceberg (a quarter of
    the plain limits priced to cross); 6 % market by quantity, 2 % market buy by quote; 3 %
    stop, 3 % stop-limit, 2 % trailing stop (delta 10-200 bp); 2 % OCO pairs; 5 % amends
    (down by one lot); 28 % cancels.
    """
    from trading.matcher.commands import amend_command, oco_command, place_command

    scale = _scale()
    rng = random.Random(seed)
    random_ = rng.random
    randrange = rng.randrange
    prices = list(range(MID_TICKS, MID_TICKS + SPREAD_TICKS + 1)) + list(
        range(MID_TICKS - SPREAD_TICKS, MID_TICKS)
    )
    users = list(range(1, 1001))
    book = OrderBook.restore(_resting_orders(resting, seed, 1, prices, users))
    live = []  # live workload order ids (cancels and amends pick from these and the preload)
    index = {}

    def forget(order_id):
        i = index.pop(order_id, None)
        if i is not None:
            last = live.pop()
            if i < len(live):
                live[i] = last
                index[last] = i

    def pick():
        pool = resting + len(live)
        for _ in range(20 if pool else 0):
            i = randrange(pool)
            order_id = live[i - resting] if i >= resting else 1 + i
            if order_id in book:
                return order_id
        return None

    out = []
    next_id = resting + 1
    list_id = 0
    for _ in range(commands):
        r = random_()
        side = BUY if randrange(2) else SELL
        user = users[randrange(1000)]
        lots = 1 + randrange(10)
        offset = randrange(SPREAD_TICKS)
        last = book.last_price_ticks or MID_TICKS
        passive = prices[-offset] if side == BUY else prices[offset + 1]
        aggressive = prices[offset + 1] if side == BUY else prices[-offset]
        row = cmd = None
        if r < 0.46:
            if r < 0.35:
                tif, post_only, price = GTC, False, aggressive if random_() < 0.25 else passive
            elif r < 0.39:
                tif, post_only, price = IOC, False, aggressive
            elif r < 0.42:
                tif, post_only, price = FOK, False, aggressive
            else:
                tif, post_only, price = GTC, True, passive
            row = _row(
                next_id, user, side, "limit", tif=tif, post_only=post_only, price=price, lots=lots
            )
        elif r < 0.49:
            row = _row(next_id, user, side, "limit", price=passive, lots=lots + 10, iceberg=lots)
        elif r < 0.55:
            row = _row(
                next_id,
                user,
                side,
                "market",
                tif=IOC,
                lots=lots,
                reserved=_BIG_RESERVE if side == BUY else None,
            )
        elif r < 0.57:
            row = _row(next_id, user, BUY, "market", tif=IOC, quote=lots * MID_TICKS)
        elif r < 0.63:
            # A stop beyond the last price, in the direction that triggers it.
            stop = last + 1 + offset if side == BUY else last - 1 - offset
            if r < 0.60:
                row = _row(
                    next_id,
                    user,
                    side,
                    "stop",
                    lots=lots,
                    reserved=_BIG_RESERVE if side == BUY else None,
                    stop=stop,
                )
            else:
                row = _row(
                    next_id,
                    user,
                    side,
                    "stop_limit",
                    lots=lots,
                    stop=stop,
                    price=stop + 5 if side == BUY else stop - 5,
                )
        elif r < 0.65:
            row = _row(
                next_id,
                user,
                side,
                "stop",
                lots=lots,
                reserved=_BIG_RESERVE if side == BUY else None,
                trailing=10 + randrange(191),
            )
        elif r < 0.67:
            list_id += 1
            stop = last + 1 + offset if side == BUY else last - 1 - offset
            limit_price = last - 1 - offset if side == BUY else last + 1 + offset
            limit = _row(
                next_id,
                user,
                side,
                "limit",
                post_only=True,
                price=limit_price,
                lots=lots,
                reserved=_BIG_RESERVE,
                list_id=list_id,
            )
            stop_leg = _row(next_id + 1, user, side, "stop", lots=lots, stop=stop, list_id=list_id)
            next_id += 2
            cmd = (OCO_ROW, limit, stop_leg)
            events = book.apply(oco_command(scale, limit, stop_leg))
        elif r < 0.72:
            order_id = pick()
            entry = book.order(order_id) if order_id is not None else None
            if entry is not None and entry.qty_lots and entry.qty_lots > 1:
                # The new total is one lot less than what is left (nothing filled, as the
                # scratch book cannot tell the total; the engine sees remaining - 1 lots).
                amending = Row(order_id, *(None,) * 9, Decimal(0), *(None,) * 4)
                quantity = scale.lots_to_qty(entry.qty_lots - 1)
                cmd = (AMEND_ROW, amending, quantity)
                events = book.apply(amend_command(scale, amending, quantity))
        if cmd is None and row is None:
            order_id = pick()
            if order_id is None:
                continue
            cmd = (CANCEL_ROW, order_id)
            events = book.cancel(order_id)
        elif row is not None:
            next_id += 1
            cmd = (PLACE_ROW, command_row(scale, row))
            events = book.apply(place_command(scale, row))
        out.append(cmd)
        for event in events:
            kind = event[-1]
            if kind is ORDER_RESTED or kind is STOP_ACCEPTED:
                if event[0] > resting and event[0] not in index:
                    index[event[0]] = len(live)
                    live.append(event[0])
            elif kind is ORDER_DONE:
                forget(event[0])
    return out


def run_rows(book, commands):
    """Replay row commands as the matcher does (trading/matcher/market.py): a place row's
    off-grid check and its slice of Place fields into ``OrderBook.place``; cancels through
    ``OrderBook.cancel``; amends and OCO pairs through their Decimal builders. The only
    timed part; returns (wall seconds, CPU seconds)."""
    from trading.matcher.commands import OFF_GRID_AT, PLACE_AT, amend_command, oco_command

    scale = _scale()
    apply = book.apply
    place = book.place
    cancel = book.cancel
    perf_counter = time.perf_counter
    process_time = time.process_time
    start_cpu = process_time()
    start = perf_counter()
    for cmd in commands:
        op = cmd[0]
        if op is PLACE_ROW:
            row = cmd[1]
            if row[OFF_GRID_AT]:
                raise SystemExit(f"off-grid row {row}")
            place(*row[PLACE_AT:OFF_GRID_AT])
        elif op is CANCEL_ROW:
            cancel(cmd[1])
        elif op is AMEND_ROW:
            amend = amend_command(scale, cmd[1], cmd[2])
            if amend is not None:
                apply(amend)
        else:
            apply(oco_command(scale, cmd[1], cmd[2]))
    seconds = perf_counter() - start
    return seconds, process_time() - start_cpu


def run_heap(commands, resting):
    """Replay ``commands`` through the rule-less HeapBook (bench/heapbook.py) preloaded with
    ``resting``; returns (wall seconds, CPU seconds, trades). The yardstick for the engine's
    figure: same commands, same process, same clock."""
    book = HeapBook()
    for order_id, _user, side, price, qty, *_ in resting:
        book.rest(order_id, side, price, qty)
    limit = book.limit
    market = book.market
    cancel = book.cancel
    perf_counter = time.perf_counter
    process_time = time.process_time
    start_cpu = process_time()
    start = perf_counter()
    for cmd in commands:
        op = cmd[0]
        if op is LIMIT_OP:
            limit(cmd[1], cmd[3], cmd[4], cmd[5], cmd[6] == GTC)
        elif op is CANCEL_OP:
            cancel(cmd[1])
        else:
            market(cmd[3], cmd[4])
    seconds = perf_counter() - start
    return seconds, process_time() - start_cpu, book.trades


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", help="JSON Lines workload to replay")
    parser.add_argument("--trades-out", help="write every trade as a JSON line here")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--commands", type=int, default=200_000)
    parser.add_argument("--resting", type=int, default=0, help="preload N resting orders")
    parser.add_argument("--write-workload", help="dump the generated workload here and go on")
    parser.add_argument(
        "--no-heap", action="store_true", help="skip the rule-less heap book's replay"
    )
    parser.add_argument(
        "--bare-only",
        action="store_true",
        help="skip the runs through OrderBook.apply with the matcher's conversions",
    )
    args = parser.parse_args(argv)

    if args.workload:
        commands = read_workload(args.workload)
        first_resting_id = 1 + max((c[1] for c in commands), default=0)
        chunks = _pickled_chunks(commands)
    else:
        # The generator simulates the workload on a scratch book holding the preload too; it
        # runs in a child process so that this second book is not part of the peak RSS
        # reported for the measured one.
        with multiprocessing.get_context("fork").Pool(1) as pool:
            chunks = pool.apply(generate_chunks, (args.seed, args.commands, args.resting))
        first_resting_id = 1
        if args.write_workload:
            write_workload(args.write_workload, _unpickled(chunks))
    # The bare replay reads the workload in pickled chunks, as the matcher reads commands in
    # batches: the peak RSS read after it is the book's and one chunk's, not 200,000
    # command tuples' (about 25 MB).
    commands = None

    prices = list(range(MID_TICKS, MID_TICKS + SPREAD_TICKS + 1)) + list(
        range(MID_TICKS - SPREAD_TICKS, MID_TICKS)
    )
    users = list(range(1, 1001))
    preload_start = time.perf_counter()
    book = OrderBook.restore(
        _resting_orders(args.resting, args.seed, first_resting_id, prices, users)
    )
    preload_seconds = time.perf_counter() - preload_start

    seconds, cpu_seconds, kept, n = run_chunks(book, chunks, keep_events=bool(args.trades_out))
    peak_rss_mb = round(_peak_rss_mb(), 1)
    if not (args.no_heap and args.bare_only):
        commands = _unpickled(chunks)
        _share_ints(commands)
    del chunks

    if args.trades_out:
        with open(args.trades_out, "w") as f:
            for events in kept:
                for event in events:
                    if event[-1] == TRADE:
                        f.write(
                            json.dumps(
                                {
                                    "taker": event[1],
                                    "maker": event[0],
                                    "price": event[2],
                                    "qty": event[3],
                                }
                            )
                            + "\n"
                        )
    result = {
        "commands": n,
        "seconds": round(seconds, 4),
        "commands_per_s": round(n / seconds) if seconds else None,
        "trades": book.trade_count,
        "peak_rss_mb": peak_rss_mb,
        "cpu_seconds": round(cpu_seconds, 4),
        "cpu_commands_per_s": round(n / cpu_seconds) if cpu_seconds else None,
    }
    if not args.no_heap:
        # After the engine's peak RSS was read: the heap book's memory is not counted.
        del book, kept
        heap_seconds, heap_cpu, heap_trades = run_heap(
            commands, _resting_orders(args.resting, args.seed, first_resting_id, prices, users)
        )
        result["heap_book_commands_per_s"] = round(n / heap_seconds)
        result["heap_book_cpu_seconds"] = round(heap_cpu, 4)
        result["heap_book_trades"] = heap_trades
        result["engine_to_heap_book"] = round(heap_seconds / seconds, 3)
        result["heap_book_cpu_commands_per_s"] = round(n / heap_cpu)
        result["engine_to_heap_book_cpu"] = round(heap_cpu / cpu_seconds, 3)
    if not args.bare_only:
        book = kept = None
        # The same limit/market/cancel stream as order rows, through the matcher's
        # conversions and OrderBook.apply: comparable with the bare calls and the heap book.
        rows = rows_of(commands)
        book = OrderBook.restore(
            _resting_orders(args.resting, args.seed, first_resting_id, prices, users)
        )
        same_seconds, same_cpu = run_rows(book, rows)
        result["apply_commands_per_s"] = round(len(rows) / same_seconds)
        result["apply_cpu_seconds"] = round(same_cpu, 4)
        result["apply_cpu_commands_per_s"] = round(len(rows) / same_cpu)
        result["apply_trades"] = book.trade_count
        if "heap_book_cpu_seconds" in result:
            result["apply_to_heap_book_cpu"] = round(heap_cpu / same_cpu, 3)
        book = rows = None
        # The full mix: every order type, stops, icebergs, trailing stops, OCO pairs, amends.
        with multiprocessing.get_context("fork").Pool(1) as pool:
            mix = pool.apply(generate_mix, (args.seed, args.commands, args.resting))
        book = OrderBook.restore(_resting_orders(args.resting, args.seed, 1, prices, users))
        mix_seconds, mix_cpu = run_rows(book, mix)
        result["mix_commands"] = len(mix)
        result["mix_commands_per_s"] = round(len(mix) / mix_seconds)
        result["mix_cpu_seconds"] = round(mix_cpu, 4)
        result["mix_cpu_commands_per_s"] = round(len(mix) / mix_cpu)
        result["mix_trades"] = book.trade_count
        result["mix_by_op"] = {
            name: sum(1 for cmd in mix if cmd[0] == op)
            for name, op in (
                ("place", PLACE_ROW),
                ("cancel", CANCEL_ROW),
                ("amend", AMEND_ROW),
                ("oco", OCO_ROW),
            )
        }
        result["peak_rss_mb_all_runs"] = round(_peak_rss_mb(), 1)
    if args.resting:
        result["resting_preloaded"] = args.resting
        result["preload_seconds"] = round(preload_seconds, 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
