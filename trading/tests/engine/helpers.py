"""Command builders and checked runners shared by the engine tests."""

from trading.engine import (
    GTC,
    IOC,
    LIMIT,
    MARKET,
    STOP,
    STOP_LIMIT,
    Cancel,
    OrderBook,
    Place,
    named,
)


def limit(order_id, user_id, side, price, qty, tif=GTC, post_only=False):
    return Place(
        order_id,
        user_id,
        side,
        LIMIT,
        qty_lots=qty,
        price_ticks=price,
        tif=tif,
        post_only=post_only,
    )


def market(order_id, user_id, side, qty=None, quote=None, max_quote=None, tif=IOC):
    return Place(
        order_id,
        user_id,
        side,
        MARKET,
        qty_lots=qty,
        tif=tif,
        quote_amount=quote,
        max_quote=max_quote,
    )


def stop(order_id, user_id, side, stop_price, qty=None, quote=None, max_quote=None, tif=IOC):
    return Place(
        order_id,
        user_id,
        side,
        STOP,
        qty_lots=qty,
        stop_price_ticks=stop_price,
        tif=tif,
        quote_amount=quote,
        max_quote=max_quote,
    )


def stop_limit(order_id, user_id, side, stop_price, price, qty, tif=GTC):
    return Place(
        order_id,
        user_id,
        side,
        STOP_LIMIT,
        qty_lots=qty,
        price_ticks=price,
        stop_price_ticks=stop_price,
        tif=tif,
    )


def cancel(order_id):
    return Cancel(order_id)


def apply_checked(book, command):
    """Apply one command and check the book's consistency right after it."""
    events = book.apply(command)
    book.validate()
    return events


def book_with(*commands):
    """An audited book (FIFO checked by validate) with ``commands`` applied, each validated."""
    book = OrderBook(audit=True)
    for command in commands:
        apply_checked(book, command)
    return book


def check(given, when, then):
    """Table row: after the ``given`` commands, ``when`` yields exactly the events ``then``."""
    book = book_with(*given)
    events = apply_checked(book, when)
    if events != then:
        # helpers.py is not a test module, so pytest would not explain a bare assert here.
        got = "\n  ".join(map(repr, map(named, events)))
        want = "\n  ".join(map(repr, then))
        raise AssertionError(f"events differ\ngot:\n  {got}\nwant:\n  {want}")
    return book


def iceberg(order_id, user_id, side, price, qty, peak, post_only=False, tif=GTC):
    return limit(order_id, user_id, side, price, qty, tif, post_only)._replace(iceberg_lots=peak)


def trailing(order_id, user_id, side, delta, activation=None, qty=None, quote=None, tif=IOC):
    """A trailing stop (market when triggered); ``activation`` is its optional stop price."""
    return stop(order_id, user_id, side, activation, qty, quote, tif=tif)._replace(
        trailing_delta=delta
    )
