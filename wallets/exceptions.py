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


class WithdrawalLimitExceeded(BusinessRuleError):
    code = "WITHDRAWAL_LIMIT_EXCEEDED"
    message = "This withdrawal is over your 24-hour withdrawal limit."


class WithdrawalUnpriced(BusinessRuleError):
    code = "WITHDRAWAL_UNPRICED"
    message = "This asset has no price to count it against your withdrawal limit yet."


class WithdrawalAddressNotAllowed(BusinessRuleError):
    code = "WITHDRAWAL_ADDRESS_NOT_ALLOWED"
    message = "Your allow-list is on: withdraw only to a saved address past its cool-down."


class WithdrawalAddressCoolingDown(BusinessRuleError):
    code = "WITHDRAWAL_ADDRESS_COOLING_DOWN"
    message = "This saved address cannot be used until its cool-down ends."


class WithdrawalAddressNotFound(NotFoundError):
    code = "WITHDRAWAL_ADDRESS_NOT_FOUND"
    message = "Saved withdrawal address not found."


class WithdrawalAddressExists(ConflictError):
    code = "WITHDRAWAL_ADDRESS_EXISTS"
    message = "This address is already saved for this asset."


class WithdrawalLinkInvalid(BusinessRuleError):
    code = "WITHDRAWAL_LINK_INVALID"
    status = 400
    message = "This link is invalid or has expired."


class SelfApprovalRefused(ExchangeError):
    code = "SELF_APPROVAL"
    status = 403
    message = "A second approval must come from another operator."


class AdjustmentStateConflict(ConflictError):
    code = "ADJUSTMENT_STATE"
    message = "The adjustment is no longer waiting for approval."


class LiabilitySnapshotNotFound(NotFoundError):
    code = "LIABILITY_SNAPSHOT_NOT_FOUND"
    message = "No proof-of-liabilities snapshot has been published (or not that one)."
