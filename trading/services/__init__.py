"""Everything that writes trading's data: order entry (``orders``), cancels (``cancels``),
the operators' market console (``markets``) and the demo markets (``demo``).

The public names are re-exported here, so callers write ``from trading.services import
order_place``. The modules of this package import each other directly, never this package.
"""

from trading.services.cancels import (
    order_cancel,
    order_cancel_all,
    orders_cancel_by_operator,
    orders_cancel_queue,
    user_orders_cancel_queue,
)
from trading.services.demo import DEMO_MARKETS, markets_seed
from trading.services.markets import (
    FEE_QUANTUM,
    MARKET_STATUS_ACTIONS,
    RULE_FIELDS,
    market_create,
    market_rules_update,
    market_rules_validate,
    market_status_set,
)
from trading.services.order_types import (
    CANCEL_REPLACE_MODES,
    CancelReplaceResult,
    OcoRequest,
    oco_leg_requests,
    oco_place,
    order_amend,
    order_cancel_replace,
)
from trading.services.orders import (
    ORDER_FIELDS_BY_TYPE,
    OrderRequest,
    order_place,
    order_place_batch,
)

__all__ = [
    "CANCEL_REPLACE_MODES",
    "DEMO_MARKETS",
    "FEE_QUANTUM",
    "MARKET_STATUS_ACTIONS",
    "ORDER_FIELDS_BY_TYPE",
    "RULE_FIELDS",
    "CancelReplaceResult",
    "OcoRequest",
    "OrderRequest",
    "market_create",
    "market_rules_update",
    "market_rules_validate",
    "market_status_set",
    "markets_seed",
    "oco_leg_requests",
    "oco_place",
    "order_amend",
    "order_cancel",
    "order_cancel_all",
    "order_cancel_replace",
    "order_place",
    "order_place_batch",
    "orders_cancel_by_operator",
    "orders_cancel_queue",
    "user_orders_cancel_queue",
]
