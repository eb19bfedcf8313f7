from marketdata.tests.fixtures import book, public  # noqa: F401
from trading.tests.conftest import fund, market, trader  # noqa: F401
