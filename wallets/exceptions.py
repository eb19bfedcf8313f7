from exchange_site.exceptions import BusinessRuleError, ConflictError, ExchangeError, NotFoundError


class InsufficientBalance(BusinessRuleError):
    code = "INSUFFICIENT_BALANCE"
    message = "Insufficient balance."


class AssetNotFound(NotFoundError):
    code = "UNKNOWN_ASSET"
    message = "Unknown asset."


class AssetInactive(BusinessRuleError):
    code = "ASSET_INACTIVE"
    message = "This asset is not available for deposits or withdrawals now."


class WithdrawalNotFound(NotFoundError):
    code = "WITHDRAWAL_NOT_FOUND"
    message = "Withdrawal not found."


class DepositNotFound(NotFoundError):
    code = "DEPOSIT_NOT_FOUND"
    message = "Deposit not found."


class WithdrawalStateConflict(ConflictError):
    code = "WITHDRAWAL_STATE"
    message = "The withdrawal is not in a state that allows this."


class DepositLimitExceeded(BusinessRuleError):
    code = "DEPOSIT_LIMIT"
    message = "This deposit exceeds the demo deposit limit."


class DemoDepositsDisabled(ExchangeError):
    code = "DEMO_DEPOSITS_DISABLED"
    status = 403
    message = "Instant demo deposits are turned off on this exchange."


class LedgerInconsistency(ExchangeError):
    """A reserve that should exist does not: a bug, never a user error."""

    code = "LEDGER_INCONSISTENCY"
    status = 500
    message = "Internal balance inconsistency."


class DepositStateConflict(ConflictError):
    code = "DEPOSIT_STATE"
    message = "The deposit is no longer pending."


class LiabilitySnapshotNotFound(NotFoundError):
    code = "LIABILITY_SNAPSHOT_NOT_FOUND"
    message = "No proof-of-liabilities snapshot has been published (or not that one)."
