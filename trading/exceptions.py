from exchange_site.exceptions import BusinessRuleError, ConflictError, ExchangeError, NotFoundError


class UnknownSymbol(ExchangeError):
    code = "UNKNOWN_SYMBOL"
    status = 400
    message = "Unknown symbol."


class MarketNotFound(NotFoundError):
    code = "UNKNOWN_SYMBOL"
    message = "Unknown symbol."


class InvalidOrder(ExchangeError):
    """A rule of the market or of the order type refused the order (400)."""

    code = "INVALID_ORDER"
    status = 400
    message = "The order breaks a rule of the market."

    def __init__(self, code: str, message: str, *, details: dict | None = None):
        self.code = code
        super().__init__(message, details=details)


class MarketHalted(BusinessRuleError):
    code = "MARKET_HALTED"
    message = "Trading is halted on this market."


class MarketCancelOnly(BusinessRuleError):
    code = "MARKET_CANCEL_ONLY"
    message = "This market accepts only cancels now."


class NoLiquidity(BusinessRuleError):
    code = "NO_LIQUIDITY"
    message = "There is no price to estimate this market order's cost from."


class OrderNotFound(NotFoundError):
    code = "ORDER_NOT_FOUND"
    message = "Order not found."


class OrderNotCancellable(ConflictError):
    code = "ORDER_NOT_CANCELLABLE"
    message = "The order is already done."


class MarketStatusUnchanged(ConflictError):
    code = "MARKET_STATUS_UNCHANGED"
    message = "The market already has this status."


class OrderNotAmendable(ConflictError):
    code = "ORDER_NOT_AMENDABLE"
    message = "The order cannot be amended."


class OrderListNotFound(NotFoundError):
    code = "ORDER_LIST_NOT_FOUND"
    message = "Order list not found."


class DuplicateClientOrderId(ConflictError):
    code = "DUPLICATE_CLIENT_ORDER_ID"
    message = "A client order id of this list is already used by another order."


class CancelPending(ExchangeError):
    """cancel-replace waited for the matcher in vain: the cancel is queued, not yet run."""

    code = "CANCEL_PENDING"
    status = 503
    message = "The cancel is queued but the matcher has not settled it yet."
