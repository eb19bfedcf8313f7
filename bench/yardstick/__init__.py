"""The HTTP yardstick: a bare DRF view doing order entry's database work, nothing else.

``bench/http_order_entry.py`` serves it under the exchange's own ``gunicorn.conf.py`` and
drives it with the exchange's own load generator (``bench/loadtest.py``), so every HTTP
figure of the exchange can be reported as a ratio to what this machine does for the bare
minimum (../shared/notes/http-ws-calibration.md, "(c) DRF + DB txn"): validate the body,
then in one transaction a conditional balance ``UPDATE``, an order ``INSERT``, an outbox
``INSERT`` and a two-row ledger ``INSERT``. No authentication, throttling, schema, market
rules or matcher.
"""
