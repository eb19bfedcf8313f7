"""Autobahn's debug-log arguments, formatted only if a debug line is written.

Autobahn (daphne's WebSocket protocol) builds the arguments of its ``log.debug`` calls
before the call, whatever the log level: every new connection pretty-prints its 36
configuration options (``pprint.pformat``) and colours a handful of names through click,
and every read colours three more. Measured with cProfile on a ws process accepting
~70 connections/s, that formatting was a quarter of its CPU time, ahead of the handshake
itself; a reconnect storm of thousands of clients after a deploy is where it hurts.

``defer_debug_formatting()`` swaps those formatting functions, in the two autobahn modules
that call them, for ones returning a placeholder that formats on ``str()``: txaio drops a
debug call unread below the debug level, and at it the line reads as before. (One caller,
``Timings.__str__``, returns the text instead of logging it, and keeps the real thing.)
"""

from __future__ import annotations

_MODULES = ("autobahn.websocket.protocol", "autobahn.twisted.websocket")
_FUNCTIONS = ("pformat", "hltype", "hlval")


class Deferred:
    """``function(*args)``, computed when the value is formatted."""

    __slots__ = ("function", "args", "kwargs")

    def __init__(self, function, args, kwargs):
        self.function, self.args, self.kwargs = function, args, kwargs

    def value(self):
        return self.function(*self.args, **self.kwargs)

    def __str__(self) -> str:
        return str(self.value())

    def __repr__(self) -> str:
        return str(self)

    def __format__(self, spec: str) -> str:
        return format(self.value(), spec)


def _deferring(function):
    def deferred(*args, **kwargs):
        return Deferred(function, args, kwargs)

    deferred.deferred_from = function
    return deferred


def defer_debug_formatting() -> list[str]:
    """Patch the modules (idempotent); returns the ``module.function`` names patched."""
    import importlib

    patched = []
    for name in _MODULES:
        module = importlib.import_module(name)
        for function in _FUNCTIONS:
            original = getattr(module, function, None)
            if original is None or hasattr(original, "deferred_from"):
                continue
            setattr(module, function, _deferring(original))
            patched.append(f"{name}.{function}")
    timings = getattr(importlib.import_module(_MODULES[0]), "Timings", None)
    if timings is not None and "pformat" in timings.__str__.__code__.co_names:
        # The one caller that returns the text rather than logging it: it needs a str.
        from pprint import pformat

        timings.__str__ = lambda self: pformat(self._timings)
    return patched
