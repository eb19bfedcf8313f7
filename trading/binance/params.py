"""Reading Binance request parameters: each failure is the error Binance gives for it."""

import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from exchange_site.fields import MAX_NUMBER_TEXT, NUMBER_TEXT
from trading.binance import errors
from trading.binance.errors import BinanceError
from trading.binance.selectors import from_millis

INT_RANGE = "^[0-9]{1,20}$"
_INT = re.compile(r"[0-9]{1,20}", re.ASCII)


class Params:
    """The request's parameters (``auth.signed_payload``), read one typed value at a time."""

    def __init__(self, values: dict[str, str]):
        self.values = values

    def __contains__(self, name: str) -> bool:
        return self.given(name)

    def given(self, name: str) -> bool:
        return self.values.get(name, "") != ""

    def text(self, name: str, *, required: bool = False, default: str | None = None) -> str | None:
        value = self.values.get(name, "")
        if value == "":
            if required:
                raise errors.mandatory(name)
            return default
        return value

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        default: int | None = None,
        low: int | None = None,
        high: int | None = None,
    ) -> int | None:
        value = self.text(name, required=required)
        if value is None:
            return default
        if not _INT.fullmatch(value):
            raise errors.illegal_chars(name, INT_RANGE)
        number = int(value)
        if (low is not None and number < low) or (high is not None and number > high):
            raise BinanceError(
                errors.ILLEGAL_CHARS,
                f"Illegal characters found in parameter '{name}'; legal range is "
                f"'{low if low is not None else 0}-{high if high is not None else 'inf'}'.",
            )
        return number

    def limit(self, name: str = "limit", *, default: int, high: int) -> int:
        """A list's ``limit``: at least 1; above ``high`` it is cut to ``high``, as Binance
        does ("if limit > 5000, the response will truncate to 5000"), so a client asking
        for more than a page gets a full page, not an error."""
        return min(self.integer(name, default=default, low=1), high)

    def millis(self, name: str) -> datetime | None:
        value = self.integer(name)
        if value is None:
            return None
        try:
            return from_millis(value)
        except (OverflowError, OSError, ValueError) as exc:
            raise errors.illegal_chars(name, INT_RANGE) from exc

    def decimal(self, name: str) -> Decimal | None:
        value = self.text(name)
        if value is None:
            return None
        if len(value) > MAX_NUMBER_TEXT or not NUMBER_TEXT.fullmatch(value):
            raise errors.illegal_chars(name)
        try:
            return Decimal(value)
        except InvalidOperation as exc:
            raise errors.illegal_chars(name) from exc

    def choice(self, name: str, choices, *, required: bool = False, error=None) -> str | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        value = value.upper()
        if value not in choices:
            if error is not None:
                raise error
            raise errors.illegal_chars(name, ", ".join(choices))
        return value

    def symbols(self) -> list[str] | None:
        """``symbols=["BTCUSD","ETHUSD"]`` (a JSON array), or None when absent."""
        raw = self.text("symbols")
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise errors.illegal_chars("symbols", r'^\[("[A-Z0-9-_.]{1,20}"(,)?){1,100}]$') from exc
        if (
            not isinstance(value, list)
            or not 1 <= len(value) <= 100
            or not all(isinstance(item, str) for item in value)
        ):
            raise errors.illegal_chars("symbols", r'^\[("[A-Z0-9-_.]{1,20}"(,)?){1,100}]$')
        return value

    def unread(self, known: set[str]) -> None:
        """Binance refuses parameters an endpoint does not read (-1104): a misspelt one
        would otherwise be silently ignored."""
        extra = [name for name in self.values if name not in known]
        if extra:
            raise BinanceError(
                errors.UNREAD_PARAMETERS,
                f"Not all sent parameters were read; read '{len(self.values) - len(extra)}' "
                f"parameter(s) but was sent '{len(self.values)}'.",
            )
