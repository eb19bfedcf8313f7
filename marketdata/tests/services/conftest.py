from trading.tests.conftest import fund, market, trader  # noqa: F401
