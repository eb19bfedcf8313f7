"""Test support shared by every app's tests and the benchmarks: assertions and helpers
(``helpers``), the real processes on the test database (``stack``) and private servers to
break (``faults``). Not part of the exchange: nothing outside tests and bench imports it.
"""
