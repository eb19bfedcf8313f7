"""Soak run (issue 11 item 7): mixed load on the real stack while the matcher and the Celery
worker are killed and restarted at random; then every invariant is checked.

    .venv/bin/python bench/soak.py --duration 600 [--seed N] [--rate 120] [--clients 16]
        [--subscribers 8] [--kill-every-min 20 --kill-every-max 60] [--markdown]
    .venv/bin/python bench/soak.py --render soak.log     (the markdown of a saved run's output)

Starts gunicorn, daphne, ``run_matcher`` and a Celery worker (``testsupport.stack``)
on a fresh PostgreSQL database (``--database``, default ``exchange_soak``, dropped and
recreated; ``BENCH_DATABASE_URL`` overrides) and Redis database ``--redis-db`` (default 11;
an exported ``REDIS_URL`` wins). Then, for ``--duration`` seconds:

- ``--clients`` users place limit and market orders on BTC-USD and ETH-USD at ``--rate``
  requests/s in total, cancel their own orders and now and then repeat a ``client_order_id``
  (the first order must come back);
- demo deposits, chain deposits (credited by the worker's simulated blocks), withdrawal
  requests, each confirmed by its owner with the emailed link's token (the API's confirm
  endpoint), and cancels; an operator approves and rejects the confirmed withdrawals through
  the services the admin uses, so the worker pays them out; this process plays beat (mining,
  sweeps). The traders are granted a withdrawal tier with a limit the load never reaches,
  and BTC and ETH an operator-set reference price (for the limit, before their first trade);
- ``--subscribers`` WebSocket clients keep each market's book from snapshot + diffs,
  resubscribe on a sequence gap and drop and reopen their connection now and then;
- hostile requests at ``--bad-rate``/s: malformed JSON, bad amounts, unknown symbols,
  other users' orders and withdrawals, bad signatures and keys on /api/v3, bad tokens,
  oversized bodies; each must get a 4xx;
- every ``--kill-every-min``..``--kill-every-max`` seconds (seeded) the matcher or the worker
  gets SIGKILL or SIGTERM and is restarted after a short pause.

At the end: load stops, anything down is restarted, the matcher drains, the worker settles
chain deposits and approved withdrawals, and then: ``manage.py check_ledger``; every accepted
order (2xx) is in the database and nothing else is; no order is left ``new`` and no command
unprocessed; every accepted cancel took effect; every deposit is credited and every approved
withdrawal completed; each asset's balances add up to what this process deposited minus
what it had withdrawn; the REST book equals the database's and every subscriber's; no 5xx.
Prints a progress line every 10 s, then a table and one JSON line; exits 1 if anything is off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import secrets
import subprocess
import sys
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SYMBOLS = ("BTC-USD", "ETH-USD")
# Per user: quote funds, and base funds worth as much at the start price.
USER_FUNDS_QUOTE = Decimal("10000000")
ORDER_MIX = (("limit", 62), ("market", 8), ("cancel", 27), ("repeat", 3))
# Small wallet movements, well inside the faucet's caps (per request and per day) and
# under the four-eyes thresholds (WITHDRAWAL_SECOND_APPROVAL_OVER): one approval pays out.
DEMO_DEPOSITS = {"USD": Decimal("250.00"), "BTC": Decimal("0.01000000")}
CHAIN_DEPOSITS = {"BTC": Decimal("0.02000000"), "ETH": Decimal("0.50000000")}
WITHDRAWALS = {"USD": Decimal("100.00"), "BTC": Decimal("0.00500000")}
WITHDRAWAL_ADDRESS = "soak-withdrawal-address-1"
OVERSIZED_BYTES = 2 * 1024 * 1024
PROGRESS_SECONDS = 10.0
IN_FLIGHT = 4  # outstanding order requests per trader


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="Seconds of load.")
    parser.add_argument("--seed", type=int, default=None, help="Seeds the load and the faults.")
    parser.add_argument("--rate", type=float, default=120.0, help="Order requests/s in total.")
    parser.add_argument("--clients", type=int, default=16, help="Trading users (one client each).")
    parser.add_argument("--subscribers", type=int, default=8, help="WebSocket subscribers.")
    parser.add_argument("--bad-rate", type=float, default=4.0, help="Hostile requests/s.")
    parser.add_argument("--wallet-rate", type=float, default=2.0, help="Wallet operations/s.")
    parser.add_argument("--kill-every-min", type=float, default=20.0)
    parser.add_argument("--kill-every-max", type=float, default=60.0)
    parser.add_argument(
        "--fault-targets", default="matcher,worker", help="Processes to kill: matcher,worker."
    )
    parser.add_argument("--fault-signals", default="KILL,TERM", help="Signals: KILL,TERM.")
    parser.add_argument("--max-faults", type=int, default=None, help="Stop injecting after N.")
    parser.add_argument(
        "--ws-drop-every",
        type=float,
        default=45.0,
        help="Mean seconds between a subscriber's own disconnects (0: never).",
    )
    parser.add_argument("--database", default="exchange_soak", help="PostgreSQL database name.")
    parser.add_argument("--redis-db", type=int, default=11)
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument("--markdown", action="store_true", help="Also print a markdown table.")
    parser.add_argument(
        "--render", metavar="FILE", help="Print the markdown table of a JSON report line and exit."
    )
    args = parser.parse_args(argv)
    targets = [t.strip() for t in args.fault_targets.split(",") if t.strip()]
    signals = [s.strip().upper().removeprefix("SIG") for s in args.fault_signals.split(",")]
    if set(targets) - {"matcher", "worker"} or set(signals) - {"KILL", "TERM"}:
        parser.error("--fault-targets takes matcher,worker and --fault-signals KILL,TERM")
    if not 0 < args.kill_every_min <= args.kill_every_max:
        parser.error("need 0 < --kill-every-min <= --kill-every-max")
    args.targets, args.signals = targets, signals
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    return args


# --- state shared by the tasks -------------------------------------------------------------


@dataclass
class Plan:
    """A market's grid and the price the clients trade around."""

    symbol: str
    tick: Decimal
    lot: Decimal
    unit_lots: int
    reference_ticks: int


@dataclass
class Trader:
    index: int
    user_id: int
    token: str
    live: deque = field(default_factory=lambda: deque(maxlen=500))  # own live order ids
    sent: deque = field(default_factory=lambda: deque(maxlen=50))  # (body, order id)
    withdrawals: list[int] = field(default_factory=list)  # own requested withdrawal ids


@dataclass
class Stats:
    started: float = 0.0
    load_seconds: float = 0.0
    ticks: int = 0  # order requests due
    skipped: int = 0  # due but not sent: the trader already had IN_FLIGHT outstanding
    unplanned_exits: list[str] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)  # "<category> <status>"
    latencies: list[float] = field(default_factory=list)
    accepted: dict[int, str] = field(default_factory=dict)  # order id -> client_order_id
    recent: deque = field(default_factory=lambda: deque(maxlen=2000))  # (order id, trader)
    uncertain: set[str] = field(default_factory=set)  # client ids whose answer never came
    cancels_accepted: set[int] = field(default_factory=set)
    repeats_ok: int = 0
    repeat_mismatches: list[str] = field(default_factory=list)
    transport: Counter = field(default_factory=Counter)
    refusals: Counter = field(default_factory=Counter)  # "<category> <status> <code>"
    deposited: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    demo_deposits: int = 0
    chain_deposits: list[int] = field(default_factory=list)
    withdrawals: Counter = field(default_factory=Counter)
    withdrawals_requested: dict[int, tuple[str, Decimal]] = field(default_factory=dict)
    withdrawals_confirmed: set[int] = field(default_factory=set)
    withdrawals_approved: set[int] = field(default_factory=set)
    withdrawals_rejected: set[int] = field(default_factory=set)
    withdrawals_cancelled: set[int] = field(default_factory=set)
    bad: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    bad_accepted: list[str] = field(default_factory=list)
    faults: Counter = field(default_factory=Counter)
    fault_log: list[str] = field(default_factory=list)
    restart_seconds: list[float] = field(default_factory=list)
    ws: Counter = field(default_factory=Counter)
    tasks_sent: Counter = field(default_factory=Counter)

    def status(self, category: str, status: int | str) -> None:
        self.statuses[f"{category} {status}"] += 1


# --- preparation (synchronous Django, before the stack starts) ----------------------------


def prepare(args: argparse.Namespace, stats: Stats) -> dict:
    """Migrate, seed the markets, create and fund the traders, an operator and API keys."""
    from django.core.management import call_command
    from django_redis import get_redis_connection

    from accounts.models import User
    from accounts.services import api_key_create, auth_tokens_issue
    from testsupport.stack import seed_markets
    from trading.marketmaker import START_PRICES
    from trading.selectors import market_get_by_symbol
    from wallets.models import Asset, WithdrawalTier
    from wallets.services import (
        deposit_address_get_or_create,
        deposit_chain_detect,
        deposit_confirm,
        withdrawal_tier_grant,
    )

    call_command("migrate", verbosity=0)
    get_redis_connection("default").flushdb()
    seed_markets()
    plans = {}
    for symbol in SYMBOLS:
        market = market_get_by_symbol(symbol=symbol)
        reference = Decimal(START_PRICES[symbol])
        unit = max(market.min_qty, market.min_notional * 10 / reference)
        plans[symbol] = Plan(
            symbol=symbol,
            tick=market.tick_size,
            lot=market.lot_size,
            unit_lots=int((unit / market.lot_size).to_integral_value(rounding=ROUND_CEILING)),
            reference_ticks=int(reference / market.tick_size),
        )
    operator = User.objects.create_user(
        email="operator@soak.example", username="soak-operator", password=None, is_staff=True
    )
    # What an operator sets in the admin: a price for each base asset until it trades (the
    # limits value withdrawals with it), and a tier whose 24-hour limit the load never reaches.
    for symbol in SYMBOLS:
        Asset.objects.filter(code=symbol.split("-")[0]).update(
            reference_price=Decimal(START_PRICES[symbol])
        )
    tier = WithdrawalTier.objects.create(
        code="soak", name="Soak", daily_limit=Decimal("1000000000000")
    )
    traders, addresses, api_keys = [], {}, []
    funds = {"USD": USER_FUNDS_QUOTE}
    for symbol in SYMBOLS:
        base = symbol.split("-")[0]
        funds[base] = (USER_FUNDS_QUOTE / Decimal(START_PRICES[symbol])).quantize(Decimal("1"))
    for n in range(args.clients):
        user = User.objects.create_user(
            email=f"trader{n}@soak.example",
            username=f"soak-trader-{n}",
            password=None,
            is_verified=True,  # they withdraw
        )
        for code in funds:
            addresses[(n, code)] = deposit_address_get_or_create(user=user, asset_code=code).address
        # Starting funds arrive on the (simulated) chain and are confirmed at once: demo
        # deposits would use up the faucet's daily cap the load's own demo deposits need.
        for code, amount in funds.items():
            deposit = deposit_chain_detect(address=addresses[(n, code)], amount=amount)
            deposit_confirm(deposit_id=deposit.pk)
            stats.deposited[code] += amount
        withdrawal_tier_grant(user=user, tier=tier, operator=operator, reason="soak load")
        token = auth_tokens_issue(user=user)["access_token"]
        traders.append(Trader(index=n, user_id=user.pk, token=token))
        if n < 2:
            key, secret = api_key_create(user=user, label="soak", permissions=["read", "trade"])
            api_keys.append((key.key, secret))
    return {
        "plans": plans,
        "operator_id": operator.pk,
        "traders": traders,
        "addresses": addresses,
        "api_keys": api_keys,
    }


# --- trading clients -----------------------------------------------------------------------


def order_body(plan: Plan, kind: str, rng: random.Random, client_id: str) -> dict:
    """A limit order around the reference price (a fifth of them crossing), or a market one."""
    side = rng.choice(("buy", "sell"))
    quantity = plan.lot * plan.unit_lots * rng.randint(1, 20)
    body = {"symbol": plan.symbol, "side": side, "quantity": str(quantity)}
    body["client_order_id"] = client_id
    if kind == "market":
        return {**body, "order_type": "market"}
    offset = rng.randint(1, 50)
    if rng.random() < 0.2:
        offset = -rng.randint(0, 5)
    ticks = plan.reference_ticks - offset if side == "buy" else plan.reference_ticks + offset
    return {**body, "order_type": "limit", "price": str(plan.tick * max(ticks, 1))}


async def request(session, stats: Stats, category: str, method: str, url: str, **kwargs):
    """One HTTP request; returns (status, parsed body) or (None, None) on a transport error.
    Every status is counted under ``category``."""
    import aiohttp

    started = time.perf_counter()
    try:
        async with session.request(method, url, **kwargs) as response:
            payload = await response.read()
            status = response.status
    except (TimeoutError, aiohttp.ClientError) as exc:
        stats.transport[f"{category} {type(exc).__name__}"] += 1
        stats.status(category, "transport")
        return None, None
    elapsed = time.perf_counter() - started
    if category in ("order", "cancel", "repeat"):
        stats.latencies.append(elapsed)
    stats.status(category, status)
    try:
        body = json.loads(payload) if payload else None
    except ValueError:
        body = None
    if status >= 400 and not category.startswith("bad:"):
        error = body.get("error") if isinstance(body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        stats.refusals[f"{category} {status} {code}"] += 1
    return status, body


async def trading_client(ctx: dict, trader: Trader, stop: asyncio.Event) -> None:
    """Open loop: a request every ``clients / rate`` seconds whatever the answers take, with
    at most ``IN_FLIGHT`` outstanding per trader (a tick with none free is counted as
    skipped: the load was not held)."""
    args, stats = ctx["args"], ctx["stats"]
    rng = random.Random(args.seed * 1000 + trader.index)
    plans = list(ctx["plans"].values())
    names, weights = zip(*ORDER_MIX, strict=True)
    interval = args.clients / args.rate
    next_at = time.monotonic() + rng.random() * interval
    pending: set[asyncio.Task] = set()
    counter = 0
    while not stop.is_set():
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        stats.ticks += 1
        if len(pending) >= IN_FLIGHT:
            stats.skipped += 1
            continue
        kind = rng.choices(names, weights)[0]
        if kind == "cancel" and trader.live:
            order_id = trader.live.popleft() if rng.random() < 0.5 else trader.live.pop()
            job = _cancel(ctx, trader, order_id)
        elif kind == "repeat" and trader.sent:
            job = _repeat(ctx, trader, *rng.choice(trader.sent))
        else:
            counter += 1
            client_id = f"s{trader.index}-{counter}-{rng.randrange(1 << 30):x}"
            plan = rng.choice(plans)
            body = order_body(plan, "market" if kind == "market" else "limit", rng, client_id)
            job = _place(ctx, trader, body)
        task = asyncio.create_task(job)
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)


async def _place(ctx: dict, trader: Trader, body: dict) -> None:
    stats = ctx["stats"]
    status, answer = await request(
        ctx["session"],
        stats,
        "order",
        "POST",
        f"{ctx['url']}/api/v1/orders/",
        json=body,
        headers={"Authorization": f"Bearer {trader.token}"},
    )
    if status is None:
        stats.uncertain.add(body["client_order_id"])
    elif status in (200, 201):
        stats.accepted[answer["id"]] = body["client_order_id"]
        stats.recent.append((answer["id"], trader.index))
        trader.sent.append((body, answer["id"]))
        if body["order_type"] == "limit":
            trader.live.append(answer["id"])


async def _cancel(ctx: dict, trader: Trader, order_id: int) -> None:
    status, _ = await request(
        ctx["session"],
        ctx["stats"],
        "cancel",
        "DELETE",
        f"{ctx['url']}/api/v1/orders/{order_id}",
        headers={"Authorization": f"Bearer {trader.token}"},
    )
    if status == 202:
        ctx["stats"].cancels_accepted.add(order_id)


async def _repeat(ctx: dict, trader: Trader, body: dict, first_id: int) -> None:
    """The same ``client_order_id`` again: the answer must be the first order."""
    stats = ctx["stats"]
    status, answer = await request(
        ctx["session"],
        stats,
        "repeat",
        "POST",
        f"{ctx['url']}/api/v1/orders/",
        json=body,
        headers={"Authorization": f"Bearer {trader.token}"},
    )
    if status in (200, 201):
        if answer.get("id") == first_id:
            stats.repeats_ok += 1
        else:
            stats.repeat_mismatches.append(f"{body['client_order_id']}: {answer}")


# --- wallets: deposits, withdrawals, the operator, and beat -------------------------------


async def wallet_client(ctx: dict, stop: asyncio.Event) -> None:
    """Deposits and withdrawals of random traders at ``--wallet-rate`` (open loop)."""
    args = ctx["args"]
    rng = random.Random(args.seed * 1000 + 901)
    pending: set[asyncio.Task] = set()
    while not stop.is_set():
        await asyncio.sleep(rng.expovariate(args.wallet_rate))
        trader = rng.choice(ctx["traders"])
        action = rng.choices(("demo", "chain", "withdraw"), (3, 2, 4))[0]
        # About 40 % of withdrawals are cancelled by their owner within seconds (a 409 once
        # the operator has reviewed them).
        cancel_after = rng.uniform(1, 9) if rng.random() < 0.4 else None
        job = _wallet_action(ctx, trader, action, rng.random(), cancel_after)
        task = asyncio.create_task(job)
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)


async def _wallet_action(
    ctx: dict, trader: Trader, action: str, draw: float, cancel_after: float | None
) -> None:
    stats, session, url = ctx["stats"], ctx["session"], ctx["url"]
    headers = {"Authorization": f"Bearer {trader.token}"}
    if action == "demo":
        code = "USD" if draw < 0.5 else "BTC"
        amount = DEMO_DEPOSITS[code]
        status, _ = await request(
            session,
            stats,
            "deposit",
            "POST",
            f"{url}/api/v1/wallets/deposits",
            json={"asset": code, "amount": str(amount)},
            headers=headers,
        )
        if status == 201:
            stats.deposited[code] += amount
            stats.demo_deposits += 1
        return
    if action == "chain":
        code = "BTC" if draw < 0.5 else "ETH"
        amount = CHAIN_DEPOSITS[code]
        address = ctx["addresses"][(trader.index, code)]
        deposit_id = await asyncio.to_thread(_chain_deposit, address, amount)
        stats.chain_deposits.append(deposit_id)
        stats.deposited[code] += amount
        return
    code = "USD" if draw < 0.5 else "BTC"
    amount = WITHDRAWALS[code]
    status, answer = await request(
        session,
        stats,
        "withdrawal",
        "POST",
        f"{url}/api/v1/wallets/withdrawals",
        json={"asset": code, "amount": str(amount), "address": WITHDRAWAL_ADDRESS},
        headers=headers,
    )
    if status != 201:
        return
    withdrawal_id = answer["id"]
    stats.withdrawals["requested"] += 1
    stats.withdrawals_requested[withdrawal_id] = (code, amount)
    trader.withdrawals.append(withdrawal_id)
    # The owner follows the emailed link at once: only then do operators see it.
    status, _ = await request(
        session,
        stats,
        "withdrawal_confirm",
        "POST",
        f"{url}/api/v1/wallets/withdrawals/confirm",
        json={"token": _confirm_token(withdrawal_id, trader.user_id)},
    )
    if status == 200:
        stats.withdrawals_confirmed.add(withdrawal_id)
        ctx["review_queue"].append((withdrawal_id, time.monotonic()))
    if cancel_after is None:
        return
    await asyncio.sleep(cancel_after)
    status, _ = await request(
        session,
        stats,
        "withdrawal_cancel",
        "DELETE",
        f"{url}/api/v1/wallets/withdrawals/{withdrawal_id}",
        headers=headers,
    )
    if status == 200:
        stats.withdrawals_cancelled.add(withdrawal_id)


def _confirm_token(withdrawal_id: int, user_id: int) -> str:
    """The token of the confirm link emailed for a withdrawal (signed with the stack's
    SECRET_KEY, which this process shares)."""
    from wallets.models import Withdrawal
    from wallets.services import CONFIRM_SALT, withdrawal_link_token

    withdrawal = Withdrawal(pk=withdrawal_id, user_id=user_id)
    return withdrawal_link_token(withdrawal=withdrawal, salt=CONFIRM_SALT)


def _chain_deposit(address: str, amount: Decimal) -> int:
    """The simulated chain sees a transfer to the address (the worker's blocks credit it)."""
    from wallets.services import deposit_chain_detect

    return deposit_chain_detect(address=address, amount=amount).pk


def _review(withdrawal_id: int, operator_id: int, approve: bool) -> str:
    """Approve or reject as the admin's actions do; returns the outcome."""
    from accounts.models import User
    from wallets.exceptions import WithdrawalStateConflict
    from wallets.services import withdrawal_approve, withdrawal_reject

    operator = User.objects.get(pk=operator_id)
    try:
        if approve:
            withdrawal_approve(withdrawal_id=withdrawal_id, reviewer=operator, note="soak")
        else:
            withdrawal_reject(withdrawal_id=withdrawal_id, reviewer=operator, reason="soak")
    except WithdrawalStateConflict:
        return "conflict"  # its owner cancelled it first
    return "approved" if approve else "rejected"


async def operator(ctx: dict, stop: asyncio.Event) -> None:
    """Reviews requested withdrawals 5–10 s after they arrive (their owners may cancel them
    meanwhile): most are approved, some rejected."""
    stats, rng = ctx["stats"], random.Random(ctx["args"].seed * 1000 + 902)
    queue: deque = ctx["review_queue"]
    while not stop.is_set():
        await asyncio.sleep(2.0)
        for _ in range(len(queue)):
            withdrawal_id, requested_at = queue.popleft()
            if time.monotonic() - requested_at < 5 or withdrawal_id in stats.withdrawals_cancelled:
                if withdrawal_id not in stats.withdrawals_cancelled:
                    queue.append((withdrawal_id, requested_at))
                continue
            approve = rng.random() < 0.85
            outcome = await asyncio.to_thread(_review, withdrawal_id, ctx["operator_id"], approve)
            stats.withdrawals[outcome] += 1
            if outcome == "approved":
                stats.withdrawals_approved.add(withdrawal_id)
            elif outcome == "rejected":
                stats.withdrawals_rejected.add(withdrawal_id)
            for trader in ctx["traders"]:
                if withdrawal_id in trader.withdrawals:
                    trader.withdrawals.remove(withdrawal_id)


def _send_task(name: str) -> None:
    from wallets import tasks

    getattr(tasks, name).delay()


async def beat(ctx: dict, stop: asyncio.Event) -> None:
    """What ``celery beat`` would send: a chain block every 3 s, a withdrawal sweep every 15 s."""
    stats, ticks = ctx["stats"], 0
    while not stop.is_set():
        await asyncio.sleep(3.0)
        ticks += 1
        await asyncio.to_thread(_send_task, "chain_block_mine_task")
        stats.tasks_sent["chain_block_mine_task"] += 1
        if ticks % 5 == 0:
            await asyncio.to_thread(_send_task, "withdrawals_process_pending_task")
            stats.tasks_sent["withdrawals_process_pending_task"] += 1


# --- hostile input --------------------------------------------------------------------------


def _v3_signed(secret: str, params: dict, *, valid: bool) -> str:
    query = urlencode(params)
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    if not valid:
        signature = signature[::-1]
    return f"{query}&signature={signature}"


def hostile_request(kind: str, ctx: dict, rng: random.Random) -> tuple[str, str, dict]:
    """(method, url, aiohttp kwargs) of one bad request of ``kind``."""
    url, traders, stats = ctx["url"], ctx["traders"], ctx["stats"]
    trader = rng.choice(traders)
    auth = {"Authorization": f"Bearer {trader.token}"}
    order = {"symbol": "BTC-USD", "side": "buy", "order_type": "limit", "price": "50000.00"}
    orders = f"{url}/api/v1/orders/"
    json_headers = {**auth, "Content-Type": "application/json"}
    if kind == "malformed_json":
        return "POST", orders, {"data": b'{"symbol": "BTC-USD", "side": ', "headers": json_headers}
    if kind == "invalid_utf8":
        return "POST", orders, {"data": b'{"symbol": "\xff\xfe"}', "headers": json_headers}
    if kind == "not_an_object":
        return "POST", orders, {"json": [order], "headers": auth}
    amounts = {
        "negative_amount": "-0.001",
        "zero_amount": "0",
        "huge_amount": "9" * 40,
        "too_precise_amount": "0.0000000000000000001",
        "nan_amount": "NaN",
    }
    if kind in amounts:
        return "POST", orders, {"json": {**order, "quantity": amounts[kind]}, "headers": auth}
    if kind == "wrong_type":
        return "POST", orders, {"json": {**order, "quantity": {"$gt": 0}}, "headers": auth}
    if kind == "unknown_symbol":
        body = {**order, "symbol": "DOGE-XYZ", "quantity": "1"}
        return "POST", orders, {"json": body, "headers": auth}
    if kind == "other_users_order":
        others = [oid for oid, owner in stats.recent if owner != trader.index]
        order_id = rng.choice(others) if others else 10**12
        return "DELETE", f"{orders}{order_id}", {"headers": auth}
    if kind == "unknown_order":
        return "DELETE", f"{orders}{10**15 + rng.randrange(1000)}", {"headers": auth}
    if kind == "other_users_withdrawal":
        others = [w for t in traders if t is not trader for w in t.withdrawals]
        withdrawal_id = rng.choice(others) if others else 10**12
        return "DELETE", f"{url}/api/v1/wallets/withdrawals/{withdrawal_id}", {"headers": auth}
    if kind == "withdrawal_insufficient":
        body = {"asset": "USD", "amount": "999999999999.00", "address": WITHDRAWAL_ADDRESS}
        return "POST", f"{url}/api/v1/wallets/withdrawals", {"json": body, "headers": auth}
    if kind == "withdrawal_too_precise":
        body = {"asset": "USD", "amount": "10.001", "address": WITHDRAWAL_ADDRESS}
        return "POST", f"{url}/api/v1/wallets/withdrawals", {"json": body, "headers": auth}
    if kind == "deposit_over_cap":
        body = {"asset": "USD", "amount": "100000000.00"}
        return "POST", f"{url}/api/v1/wallets/deposits", {"json": body, "headers": auth}
    if kind == "no_token":
        return "POST", orders, {"json": {**order, "quantity": "0.001"}}
    if kind == "bad_token":
        headers = {"Authorization": f"Bearer {secrets.token_urlsafe(40)}"}
        return "POST", orders, {"json": {**order, "quantity": "0.001"}, "headers": headers}
    if kind in ("v3_bad_signature", "v3_unknown_key"):
        key, secret = rng.choice(ctx["api_keys"])
        params = {
            "symbol": "BTCUSD",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": "50000.00",
            "timestamp": str(time.time_ns() // 1_000_000),
        }
        if kind == "v3_unknown_key":
            key = secrets.token_hex(32)
        headers = {"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"}
        body = _v3_signed(secret, params, valid=kind == "v3_unknown_key")
        return "POST", f"{url}/api/v3/order", {"data": body.encode(), "headers": headers}
    if kind == "oversized_body":
        body = b'{"symbol": "' + b"A" * OVERSIZED_BYTES + b'"}'
        return "POST", orders, {"data": body, "headers": json_headers}
    raise ValueError(kind)


HOSTILE_KINDS = (
    "malformed_json",
    "invalid_utf8",
    "not_an_object",
    "negative_amount",
    "zero_amount",
    "huge_amount",
    "too_precise_amount",
    "nan_amount",
    "wrong_type",
    "unknown_symbol",
    "other_users_order",
    "unknown_order",
    "other_users_withdrawal",
    "withdrawal_insufficient",
    "withdrawal_too_precise",
    "deposit_over_cap",
    "no_token",
    "bad_token",
    "v3_bad_signature",
    "v3_unknown_key",
    "oversized_body",
)


async def hostile_client(ctx: dict, stop: asyncio.Event) -> None:
    """Bad requests of every kind in turn (shuffled), at ``--bad-rate`` (open loop); each
    must be refused with a 4xx."""
    rng = random.Random(ctx["args"].seed * 1000 + 903)
    kinds: list[str] = []
    pending: set[asyncio.Task] = set()
    while not stop.is_set():
        await asyncio.sleep(rng.expovariate(ctx["args"].bad_rate))
        if not kinds:
            kinds = list(HOSTILE_KINDS)
            rng.shuffle(kinds)
        kind = kinds.pop()
        task = asyncio.create_task(_hostile(ctx, kind, *hostile_request(kind, ctx, rng)))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)


async def _hostile(ctx: dict, kind: str, method: str, url: str, kwargs: dict) -> None:
    stats = ctx["stats"]
    status, _ = await request(ctx["session"], stats, f"bad:{kind}", method, url, **kwargs)
    stats.bad[kind][str(status) if status is not None else "transport"] += 1
    if status is not None and status < 400:
        stats.bad_accepted.append(f"{kind}: {status}")


# --- WebSocket subscribers -----------------------------------------------------------------


class LocalBook:
    """One market's book kept from snapshot + diffs (ARCHITECTURE §6)."""

    def __init__(self):
        self.seq: int | None = None  # None: waiting for a snapshot
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def load(self, message: dict) -> None:
        self.seq = message["seq"]
        self.bids = {Decimal(p): Decimal(q) for p, q, *_ in message["bids"]}
        self.asks = {Decimal(p): Decimal(q) for p, q, *_ in message["asks"]}

    def apply(self, message: dict) -> bool:
        """Apply a diff; False on a gap (the caller resyncs). Diffs the snapshot already
        holds are dropped; the first one after it may overlap it (totals are absolute)."""
        if self.seq is None or message["seq"] <= self.seq:
            return True
        if message["first_seq"] > self.seq + 1:
            return False
        for side, levels in ((self.bids, message["bids"]), (self.asks, message["asks"])):
            for price, quantity in levels:
                price, quantity = Decimal(price), Decimal(quantity)
                if quantity:
                    side[price] = quantity
                else:
                    side.pop(price, None)
        self.seq = message["seq"]
        return True

    def levels(self) -> tuple[dict, dict]:
        return dict(self.bids), dict(self.asks)


class Subscriber:
    def __init__(self, number: int, url: str, stats: Stats, rng: random.Random, drop_every: float):
        self.number = number
        self.url = url
        self.stats = stats
        self.rng = rng
        self.drop_every = drop_every
        self.books = {symbol: LocalBook() for symbol in SYMBOLS}
        self.connected = False

    async def run(self, stop: asyncio.Event, steady: asyncio.Event) -> None:
        """Connect, subscribe, keep the books; on a drop, reconnect. ``steady``: the load
        is over, so no more voluntary disconnects."""
        import websockets

        first = True
        while not stop.is_set():
            if not first:
                self.stats.ws["reconnects"] += 1
                await asyncio.sleep(0.2 + self.rng.random() * 0.5)
            first = False
            self.books = {symbol: LocalBook() for symbol in SYMBOLS}
            try:
                async with websockets.connect(f"{self.url}/ws/", open_timeout=15) as ws:
                    self.connected = True
                    await self._session(ws, stop, steady)
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
                self.stats.ws[f"disconnected {type(exc).__name__}"] += 1
            finally:
                self.connected = False

    async def _session(self, ws, stop: asyncio.Event, steady: asyncio.Event) -> None:
        for symbol in SYMBOLS:
            await ws.send(
                json.dumps({"type": "subscribe", "channel": "orderbook", "symbol": symbol})
            )
        await ws.send(json.dumps({"type": "subscribe", "channel": "trades", "symbol": SYMBOLS[0]}))
        drop_at = (
            time.monotonic() + self.rng.expovariate(1 / self.drop_every)
            if self.drop_every
            else float("inf")
        )
        while not stop.is_set():
            if time.monotonic() > drop_at and not steady.is_set():
                self.stats.ws["drops"] += 1
                return  # closing the connection: run() reconnects
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            self.stats.ws["messages"] += 1
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "snapshot":
                book = self.books[message["symbol"]]
                if book.seq is not None:
                    self.stats.ws["snapshots_again"] += 1
                book.load(message)
            elif kind == "update":
                book = self.books[message["symbol"]]
                if not book.apply(message):
                    self.stats.ws["gaps"] += 1
                    await self._resync(ws, message["symbol"])
            elif kind == "trade":
                self.stats.ws["trades"] += 1
            elif kind == "error":
                self.stats.ws[f"error {message.get('code')}"] += 1

    async def _resync(self, ws, symbol: str) -> None:
        """Start the market over: unsubscribe, subscribe, wait for the snapshot."""
        self.stats.ws["resyncs"] += 1
        self.books[symbol] = LocalBook()
        for kind in ("unsubscribe", "subscribe"):
            await ws.send(json.dumps({"type": kind, "channel": "orderbook", "symbol": symbol}))


# --- faults ---------------------------------------------------------------------------------


def _heartbeat_pids(redis_url: str) -> set[int | None]:
    from exchange_site.redis_clients import redis_client
    from trading.matcher.publish import heartbeat_key

    client = redis_client(redis_url)
    beats = client.mget([heartbeat_key(symbol) for symbol in _all_symbols()])
    return {json.loads(beat)["pid"] if beat else None for beat in beats}


def _all_symbols() -> list[str]:
    from trading.models import Market

    return list(Market.objects.values_list("symbol", flat=True))


async def start_process(stack, target: str, redis_url: str) -> None:
    """(Re)start the matcher or the worker and wait until it works: a heartbeat from the new
    matcher for every market, or the worker's ``ready``.

    The process is spawned from this (the main) thread on purpose: the stack's processes get
    SIGTERM when the thread that spawned them ends (``PR_SET_PDEATHSIG`` follows the thread),
    and executor threads end when the event loop closes."""
    from testsupport.stack import _port_open

    if target == "worker":
        stack.start_worker("worker", "--concurrency", "1", wait=False)
    elif target == "matcher":
        stack.start_matcher(wait=False)
    elif target == "web":
        stack.start_web(wait=False)
    else:
        stack.start_ws(wait=False)
    pid = stack.processes[target].pid
    deadline = time.monotonic() + 60
    while True:
        stack._check_alive(target)
        if target == "worker":
            if " ready." in stack.log_text("worker"):
                return
        elif target in ("web", "ws"):
            port = stack.web_port if target == "web" else stack.ws_port
            if await asyncio.to_thread(_port_open, port):
                return
        elif await asyncio.to_thread(_heartbeat_pids, redis_url) == {pid}:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the restarted {target} was not working after 60 s")
        await asyncio.sleep(0.1)


def stop_process(stack, target: str, kill: bool) -> None:
    if target == "worker":
        stack.stop_worker(kill=kill)
    else:
        stack._stop(target, kill=kill)


async def watchdog(ctx: dict, stop: asyncio.Event) -> None:
    """Any stack process that exits without the fault injector having stopped it is an
    unplanned exit (a crash, or a kill from outside): recorded, a failure, and started again
    so that the run still ends with every check."""
    stack, stats = ctx["stack"], ctx["stats"]
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)
        for name, process in list(stack.processes.items()):
            if process.poll() is None or name in ctx["faulting"]:
                continue
            at = time.monotonic() - stats.started
            stats.unplanned_exits.append(f"{at:.1f}s {name} exited ({process.returncode})")
            print(f"UNPLANNED: {stats.unplanned_exits[-1]}", flush=True)
            ctx["faulting"].add(name)
            try:
                await asyncio.to_thread(stop_process, stack, name, False)
                await start_process(stack, name, ctx["redis_url"])
            finally:
                ctx["faulting"].discard(name)


async def fault_injector(ctx: dict, stop: asyncio.Event) -> None:
    """At random intervals, SIGKILL or SIGTERM the matcher or the worker; restart it after a
    pause of 0.5–3 s."""
    args, stats, stack = ctx["args"], ctx["stats"], ctx["stack"]
    rng = random.Random(args.seed)
    injected = 0
    while not stop.is_set():
        if args.max_faults is not None and injected >= args.max_faults:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                stop.wait(), timeout=rng.uniform(args.kill_every_min, args.kill_every_max)
            )
        if stop.is_set():
            return
        target, signal_name = rng.choice(args.targets), rng.choice(args.signals)
        while target in ctx["faulting"]:  # the watchdog is restarting it
            await asyncio.sleep(0.1)
        ctx["faulting"].add(target)
        try:
            at = time.monotonic() - stats.started
            process = stack.processes[target]
            stopping = time.monotonic()
            await asyncio.to_thread(stop_process, stack, target, signal_name == "KILL")
            stopped = f"exit {process.returncode} after {time.monotonic() - stopping:.1f}s"
            injected += 1
            stats.faults[f"{target} SIG{signal_name}"] += 1
            down = rng.uniform(0.5, 3.0)
            await asyncio.sleep(down)
            started = time.monotonic()
            await start_process(stack, target, ctx["redis_url"])
            stats.restart_seconds.append(time.monotonic() - started)
        finally:
            ctx["faulting"].discard(target)
        stats.fault_log.append(
            f"{at:7.1f}s {target} SIG{signal_name}: {stopped}, "
            f"working again {down + stats.restart_seconds[-1]:.1f}s later"
        )


# --- progress --------------------------------------------------------------------------------


def _pending_commands() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM trading_ordercommand WHERE processed_at IS NULL")
        return cursor.fetchone()[0]


async def progress(ctx: dict, stop: asyncio.Event) -> None:
    stats = ctx["stats"]
    last_accepted, last_at = 0, time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=PROGRESS_SECONDS)
        now = time.monotonic()
        accepted = len(stats.accepted)
        pending = await asyncio.to_thread(_pending_commands)
        server_errors = sum(n for k, n in stats.statuses.items() if k.split()[-1].startswith("5"))
        print(
            f"[{now - stats.started:6.0f}s] orders {accepted:,} "
            f"({(accepted - last_accepted) / (now - last_at):.0f}/s), "
            f"requests {sum(stats.statuses.values()):,}, 5xx {server_errors}, "
            f"transport {sum(stats.transport.values())}, pending {pending}, "
            f"faults {sum(stats.faults.values())}, bad {sum(sum(c.values()) for c in stats.bad.values())}, "  # noqa: E501
            f"ws msgs {stats.ws['messages']:,} resyncs {stats.ws['resyncs']} "
            f"reconnects {stats.ws['reconnects']}",
            flush=True,
        )
        last_accepted, last_at = accepted, now


# --- the run ---------------------------------------------------------------------------------


async def drive(args: argparse.Namespace, stack, prepared: dict, stats: Stats, redis_url: str):
    """The load with faults for ``--duration`` seconds, then back to a quiet, complete stack,
    and the subscribers' books against the REST book. Returns (settling, book comparison)."""
    import aiohttp

    ctx = {
        "args": args,
        "stats": stats,
        "stack": stack,
        "url": stack.web_url,
        "redis_url": redis_url,
        "review_queue": deque(),
        "faulting": set(),  # processes the fault injector or the watchdog is cycling
        **prepared,
    }
    stop, ws_stop, steady = asyncio.Event(), asyncio.Event(), asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        ctx["session"] = session
        subscribers = [
            Subscriber(
                n,
                stack.ws_url,
                stats,
                random.Random(args.seed * 1000 + 500 + n),
                args.ws_drop_every,
            )
            for n in range(args.subscribers)
        ]
        ws_tasks = [asyncio.create_task(s.run(ws_stop, steady)) for s in subscribers]
        stats.started = time.monotonic()
        load = [asyncio.create_task(trading_client(ctx, t, stop)) for t in prepared["traders"]]
        load += [
            asyncio.create_task(wallet_client(ctx, stop)),
            asyncio.create_task(operator(ctx, stop)),
            asyncio.create_task(beat(ctx, stop)),
            asyncio.create_task(hostile_client(ctx, stop)),
            asyncio.create_task(fault_injector(ctx, stop)),
            asyncio.create_task(watchdog(ctx, stop)),
        ]
        progress_task = asyncio.create_task(progress(ctx, stop))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_first_failure(load), timeout=args.duration)
        stats.load_seconds = time.monotonic() - stats.started
        stop.set()
        steady.set()
        await asyncio.gather(*load)  # answers still on their way, a restart under way
        await progress_task
        print("load stopped; settling", flush=True)
        for target in ("web", "ws", "matcher", "worker"):
            if target not in stack.processes or stack.processes[target].poll() is not None:
                stats.unplanned_exits.append(f"{target} was down at the end")
                await asyncio.to_thread(stop_process, stack, target, False)
                await start_process(stack, target, redis_url)
        settle = await asyncio.to_thread(settle_everything, stats, args.drain_timeout)
        books = await compare_books(ctx, subscribers)
        ws_stop.set()
        await asyncio.gather(*ws_tasks)
    return settle, books


async def _first_failure(tasks: list[asyncio.Task]) -> None:
    """Return when the first task fails (re-raising its error); the load never ends alone."""
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in done:
        if task.exception() is not None:
            raise task.exception()


def settle_everything(stats: Stats, timeout: float) -> dict:
    """Wait for the matcher to drain, then have the worker mine and sweep until every chain
    deposit is credited and every approved withdrawal is completed."""
    from django.db import close_old_connections

    from wallets.models import Deposit, Withdrawal

    close_old_connections()
    result = {}
    started = time.monotonic()
    deadline = started + timeout
    while _pending_commands():
        if time.monotonic() > deadline:
            result["drained"] = False
            return result
        time.sleep(0.2)
    result["drained"] = True
    result["drain_seconds"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    while True:
        deposits = Deposit.objects.filter(status=Deposit.Status.PENDING).exists()
        withdrawals = Withdrawal.objects.filter(
            status__in=[Withdrawal.Status.APPROVED, Withdrawal.Status.PROCESSING]
        ).exists()
        if not deposits and not withdrawals:
            break
        if time.monotonic() > deadline:
            result["worker_settled"] = False
            return result
        if deposits:
            _send_task("chain_block_mine_task")
        if withdrawals:
            _send_task("withdrawals_process_pending_task")
        time.sleep(1.0)
    result["worker_settled"] = True
    result["worker_settle_seconds"] = round(time.monotonic() - started, 1)
    return result


async def compare_books(ctx: dict, subscribers: list[Subscriber], timeout: float = 30.0) -> dict:
    """Every subscriber's book against the REST book at the same seq, and the REST book
    against the database's."""
    session, url = ctx["session"], ctx["url"]
    results = {"rest_equals_database": True, "subscribers_equal": 0, "subscribers_differ": []}
    for symbol in SYMBOLS:
        deadline = time.monotonic() + timeout
        while True:
            status, rest = await request(
                session,
                ctx["stats"],
                "final",
                "GET",
                f"{url}/api/v1/market/{symbol}/orderbook?depth=1000",
            )
            if status != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the REST book of {symbol} answered {status}")
                await asyncio.sleep(0.5)
                continue
            database = await asyncio.to_thread(_database_book, symbol)
            caught_up = all(s.connected and s.books[symbol].seq == rest["seq"] for s in subscribers)
            if (caught_up and rest["seq"] == database["seq"]) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        rest_levels = _levels(rest)
        if rest_levels != _levels(database) or rest["seq"] != database["seq"]:
            results["rest_equals_database"] = False
        for s in subscribers:
            book = s.books[symbol]
            if book.seq == rest["seq"] and book.levels() == rest_levels:
                results["subscribers_equal"] += 1
            else:
                results["subscribers_differ"].append(
                    f"subscriber {s.number} {symbol}: seq {book.seq} vs REST {rest['seq']}"
                )
    return results


def _database_book(symbol: str) -> dict:
    from django.db import close_old_connections

    from marketdata.selectors import orderbook_from_database

    close_old_connections()
    return orderbook_from_database(symbol=symbol)


def _levels(book: dict) -> tuple[dict, dict]:
    return tuple(
        {Decimal(price): Decimal(quantity) for price, quantity, *_ in book[side]}
        for side in ("bids", "asks")
    )


# --- the checks after the run ---------------------------------------------------------------


def check_ledger_command(stack) -> tuple[bool, str]:
    result = subprocess.run(
        [sys.executable, "manage.py", "check_ledger"],
        cwd=ROOT,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    return result.returncode == 0 and "ledger OK" in result.stdout, output


def database_checks(stats: Stats) -> dict:
    """Nothing lost, nothing extra, everything settled; the balances add up."""
    from django.db import close_old_connections
    from django.db.models import F, Sum

    from trading.models import Order, OrderCommand, Trade
    from wallets.models import Asset, Balance, Deposit, Withdrawal

    close_old_connections()
    rows = dict(Order.objects.values_list("id", "client_order_id"))
    lost = sorted(set(stats.accepted) - set(rows))
    extra = sorted(
        order_id
        for order_id, client_id in rows.items()
        if order_id not in stats.accepted and client_id not in stats.uncertain
    )
    statuses = Counter(Order.objects.values_list("status", flat=True))
    cancelled_but_live = Order.objects.filter(
        pk__in=stats.cancels_accepted, status__in=[Order.Status.OPEN, Order.Status.PARTIALLY_FILLED]
    ).count()
    deposits = Deposit.objects.filter(pk__in=stats.chain_deposits)
    withdrawals = dict(Withdrawal.objects.values_list("id", "status"))
    expected_status = {}
    for withdrawal_id in stats.withdrawals_requested:
        if withdrawal_id in stats.withdrawals_approved:
            expected_status[withdrawal_id] = Withdrawal.Status.COMPLETED
        elif withdrawal_id in stats.withdrawals_rejected:
            expected_status[withdrawal_id] = Withdrawal.Status.REJECTED
        elif withdrawal_id in stats.withdrawals_cancelled:
            expected_status[withdrawal_id] = Withdrawal.Status.CANCELLED
        elif withdrawal_id in stats.withdrawals_confirmed:
            expected_status[withdrawal_id] = Withdrawal.Status.REQUESTED
        else:
            expected_status[withdrawal_id] = Withdrawal.Status.AWAITING_CONFIRMATION
    withdrawals_wrong = [
        f"{wid}: {withdrawals.get(wid)} not {want}"
        for wid, want in expected_status.items()
        if withdrawals.get(wid) != want
    ]
    expected = defaultdict(Decimal, stats.deposited)
    for withdrawal_id in stats.withdrawals_approved:
        code, amount = stats.withdrawals_requested[withdrawal_id]
        expected[code] -= amount
    held = {
        code: total or Decimal(0)
        for code, total in Balance.objects.values("asset__code")
        .annotate(total=Sum(F("available") + F("locked")))
        .values_list("asset__code", "total")
    }
    sums_wrong = {
        code: {"held": str(held.get(code, 0)), "expected": str(expected[code])}
        for code in Asset.objects.values_list("code", flat=True)
        if held.get(code, Decimal(0)) != expected[code]
    }
    return {
        "orders_in_database": len(rows),
        "lost_orders": len(lost),
        "lost_order_ids": lost[:20],
        "extra_orders": len(extra),
        "extra_order_ids": extra[:20],
        "orders_left_new": statuses.get(Order.Status.NEW, 0),
        "commands_unprocessed": OrderCommand.objects.filter(processed_at__isnull=True).count(),
        "cancelled_but_live": cancelled_but_live,
        "order_statuses": dict(sorted(statuses.items())),
        "trades": Trade.objects.count(),
        "chain_deposits_uncredited": deposits.exclude(status=Deposit.Status.CONFIRMED).count(),
        "withdrawals_completed": sum(
            1 for wid in stats.withdrawals_approved if withdrawals.get(wid) == "completed"
        ),
        "withdrawals_wrong": withdrawals_wrong[:20],
        "balance_sums_wrong": sums_wrong,
    }


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def build_report(args, stats: Stats, settle: dict, books: dict, checks: dict, ledger: bool):
    by_status = Counter()
    for key, count in stats.statuses.items():
        by_status[key.rsplit(" ", 1)[1]] += count
    server_errors = {k: n for k, n in stats.statuses.items() if k.rsplit(" ", 1)[1][0] == "5"}
    seconds = stats.load_seconds
    invariants = {
        "check_ledger": ledger,
        "matcher_drained": settle.get("drained", False),
        "worker_settled": settle.get("worker_settled", False),
        "no_lost_orders": checks["lost_orders"] == 0,
        "no_extra_orders": checks["extra_orders"] == 0,
        "no_order_left_new": checks["orders_left_new"] == 0,
        "no_command_unprocessed": checks["commands_unprocessed"] == 0,
        "cancels_took_effect": checks["cancelled_but_live"] == 0,
        "client_order_id_idempotent": not stats.repeat_mismatches,
        "deposits_credited": checks["chain_deposits_uncredited"] == 0,
        "withdrawals_settled": not checks["withdrawals_wrong"],
        "balance_sums": not checks["balance_sums_wrong"],
        "rest_book_equals_database": books["rest_equals_database"],
        "ws_books_equal_rest": not books["subscribers_differ"],
        "no_5xx": not server_errors,
        "no_transport_errors": not stats.transport,
        "bad_inputs_refused": not stats.bad_accepted,
        "no_unplanned_exit": not stats.unplanned_exits,
    }
    ws = dict(stats.ws)
    return {
        "duration_s": round(seconds, 1),
        "seed": args.seed,
        "clients": args.clients,
        "subscribers": args.subscribers,
        "target_rate": args.rate,
        "orders_accepted": len(stats.accepted),
        "orders_accepted_per_s": round(len(stats.accepted) / seconds, 1),
        "order_requests_due": stats.ticks,
        "order_requests_skipped": stats.skipped,
        "load_held_pct": round(100 * (1 - stats.skipped / max(1, stats.ticks)), 1),
        "cancels_accepted": len(stats.cancels_accepted),
        "repeats_answered_with_first_order": stats.repeats_ok,
        "requests": sum(stats.statuses.values()),
        "requests_by_status": dict(sorted(by_status.items())),
        "requests_by_kind": dict(sorted(stats.statuses.items())),
        "refusals": dict(sorted(stats.refusals.items())),
        "latency_ms_p50": round(percentile(stats.latencies, 0.50) * 1000, 1),
        "latency_ms_p99": round(percentile(stats.latencies, 0.99) * 1000, 1),
        "trades": checks["trades"],
        "order_statuses": checks["order_statuses"],
        "deposits": {
            "demo": stats.demo_deposits,
            "chain": len(stats.chain_deposits),
            "chain_uncredited": checks["chain_deposits_uncredited"],
        },
        "withdrawals": {
            "requested": stats.withdrawals["requested"],
            "confirmed": len(stats.withdrawals_confirmed),
            "cancelled_by_owner": len(stats.withdrawals_cancelled),
            "approved": len(stats.withdrawals_approved),
            "rejected": len(stats.withdrawals_rejected),
            "completed": checks["withdrawals_completed"],
        },
        "worker_tasks_sent": dict(stats.tasks_sent),
        "faults": dict(sorted(stats.faults.items())),
        "fault_restart_s_max": round(max(stats.restart_seconds, default=0.0), 1),
        "fault_log": stats.fault_log,
        "bad_inputs": {kind: dict(sorted(c.items())) for kind, c in sorted(stats.bad.items())},
        "bad_inputs_total": sum(sum(c.values()) for c in stats.bad.values()),
        "ws": {
            "messages": ws.get("messages", 0),
            "trades": ws.get("trades", 0),
            "reconnects": ws.get("reconnects", 0),
            "voluntary_drops": ws.get("drops", 0),
            "gaps": ws.get("gaps", 0),
            "resyncs": ws.get("resyncs", 0),
            "server_snapshots_again": ws.get("snapshots_again", 0),
            "other": {k: v for k, v in ws.items() if k.startswith(("error", "disconnected"))},
            "books_equal_rest": books["subscribers_equal"],
        },
        "drain_s": settle.get("drain_seconds"),
        "lost_orders": checks["lost_orders"],
        "unplanned_exits": stats.unplanned_exits,
        "server_errors": server_errors,
        "transport_errors": dict(stats.transport),
        "invariants": invariants,
        "ok": all(invariants.values()),
    }


def table(report: dict) -> str:
    faults = ", ".join(f"{k} {v}" for k, v in report["faults"].items()) or "none"
    rows = [
        ("duration", f"{report['duration_s']} s (seed {report['seed']})"),
        ("load", f"{report['clients']} traders, {report['subscribers']} WebSocket subscribers"),
        ("orders accepted", f"{report['orders_accepted']:,} ({report['orders_accepted_per_s']}/s)"),
        ("load held", f"{report['load_held_pct']} % of {report['order_requests_due']:,} due"),
        ("cancels accepted", f"{report['cancels_accepted']:,}"),
        ("requests", f"{report['requests']:,} {report['requests_by_status']}"),
        ("latency p50 / p99", f"{report['latency_ms_p50']} / {report['latency_ms_p99']} ms"),
        ("trades", f"{report['trades']:,}"),
        ("deposits", json.dumps(report["deposits"])),
        ("withdrawals", json.dumps(report["withdrawals"])),
        ("faults", faults),
        ("bad inputs", f"{report['bad_inputs_total']:,} in {len(report['bad_inputs'])} kinds"),
        ("ws", json.dumps(report["ws"])),
        ("lost orders", str(report["lost_orders"])),
    ]
    rows += [
        (f"  {name}", "ok" if good else "FAILED") for name, good in report["invariants"].items()
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def markdown(report: dict) -> str:
    """The figures section of docs/RELIABILITY.md, from a report."""
    ws = report["ws"]
    lines = [
        "| figure | value |",
        "|---|---|",
        f"| duration | {report['duration_s']} s (seed {report['seed']}) |",
        f"| load | {report['clients']} traders at {report['target_rate']:g} order requests/s, "
        f"{report['subscribers']} WebSocket subscribers |",
        f"| orders accepted | {report['orders_accepted']:,} ({report['orders_accepted_per_s']}/s) |",  # noqa: E501
        f"| order requests sent on time (load held) | {report['load_held_pct']} % of "
        f"{report['order_requests_due']:,} |",
        f"| cancels accepted | {report['cancels_accepted']:,} |",
        f"| repeated `client_order_id` answered with the first order | {report['repeats_answered_with_first_order']:,} |",  # noqa: E501
        f"| trades | {report['trades']:,} |",
        f"| HTTP requests | {report['requests']:,} |",
        "| requests by status | "
        + ", ".join(f"{s}: {n:,}" for s, n in report["requests_by_status"].items())
        + " |",
        f"| order / cancel latency p50 / p99 | {report['latency_ms_p50']} / {report['latency_ms_p99']} ms |",  # noqa: E501
        f"| deposits | {report['deposits']['demo']:,} demo, {report['deposits']['chain']:,} "
        f"on the simulated chain ({report['deposits']['chain_uncredited']} left uncredited) |",
        "| withdrawals | "
        + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in report["withdrawals"].items())
        + " |",
        "| faults injected | "
        + (", ".join(f"{k}: {v}" for k, v in report["faults"].items()) or "none")
        + f" (longest from restart to working: {report['fault_restart_s_max']} s) |",
        f"| bad inputs | {report['bad_inputs_total']:,} in {len(report['bad_inputs'])} kinds, "
        "all refused with a 4xx |"
        if report["invariants"]["bad_inputs_refused"]
        else f"| bad inputs | {report['bad_inputs_total']:,}, SOME ACCEPTED |",
        f"| WebSocket messages | {ws['messages']:,} ({ws['trades']:,} trades) |",
        f"| WebSocket reconnects / gaps / resyncs | {ws['reconnects']} / {ws['gaps']} / "
        f"{ws['resyncs']} |",
        f"| subscriber books equal to the REST book at the end | {ws['books_equal_rest']} |",
        f"| matcher drain after the load | {report['drain_s']} s |",
        f"| 5xx | {sum(report['server_errors'].values())} |",
        f"| lost orders | {report['lost_orders']} |",
        "| invariants | "
        + (
            f"all {len(report['invariants'])} hold"
            if report["ok"]
            else "FAILED: " + ", ".join(k for k, v in report["invariants"].items() if not v)
        )
        + " |",
        "",
        "| bad input | answers |",
        "|---|---|",
    ]
    for kind, statuses in report["bad_inputs"].items():
        answers = ", ".join(f"{status}: {n}" for status, n in statuses.items())
        lines.append(f"| `{kind}` | {answers} |")
    if report.get("fault_log"):
        lines += ["", "Faults, in order (seconds into the load):", "", "```"]
        lines += [line.strip() for line in report["fault_log"]]
        lines.append("```")
    return "\n".join(lines)


def run_loop(coroutine):
    """uvloop when installed: the load generator should not be what limits the load."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        text = sys.stdin.read() if args.render == "-" else Path(args.render).read_text()
        line = [ln for ln in text.splitlines() if ln.startswith("{")][-1]
        print(markdown(json.loads(line)))
        return 0
    from testsupport.stack import STACK_SECRET_KEY

    # This process issues the traders' tokens and API keys: it signs as the stack does.
    os.environ["SECRET_KEY"] = STACK_SECRET_KEY
    os.environ.setdefault("JWT_ACCESS_TTL_SECONDS", str(int(args.duration) + 3600))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault(
        "BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{args.database}"
    )
    from benchdb import setup

    database_url = setup(database=args.database, redis_db=args.redis_db)
    redis_url = os.environ["REDIS_URL"]
    from testsupport.stack import LiveStack

    stats = Stats()
    print(f"soak: seed {args.seed}, database {database_url}, redis {redis_url}", flush=True)
    prepared = prepare(args, stats)
    stack = LiveStack(name="soak", database_url=database_url, redis_url=redis_url, append_logs=True)
    try:
        stack.start()
        stack.start_worker("worker", "--concurrency", "1")
        print(
            f"stack up: web {stack.web_url}, ws {stack.ws_url}; load for {args.duration:g} s",
            flush=True,
        )
        settle, books = run_loop(drive(args, stack, prepared, stats, redis_url))
        ledger, ledger_output = check_ledger_command(stack)
        checks = database_checks(stats)
    finally:
        stack.stop()
    report = build_report(args, stats, settle, books, checks, ledger)
    print(table(report))
    for line in stats.fault_log:
        print(f"fault {line}")
    if not ledger:
        print(ledger_output)
    for name, detail in (
        ("lost orders", checks["lost_order_ids"]),
        ("extra orders", checks["extra_order_ids"]),
        ("withdrawals", checks["withdrawals_wrong"]),
        ("balance sums", checks["balance_sums_wrong"]),
        ("subscribers", books["subscribers_differ"]),
        ("repeats", stats.repeat_mismatches[:10]),
        ("bad inputs accepted", stats.bad_accepted[:10]),
    ):
        if detail:
            print(f"FAILED {name}: {detail}")
    if args.markdown:
        print(markdown(report))
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
