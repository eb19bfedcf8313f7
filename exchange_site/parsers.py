import codecs
import json
from decimal import Decimal

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def refuse_constant(name: str):
    raise ValueError(f"{name} is not a number this API accepts")


class DecimalJSONParser(JSONParser):
    """JSON with exact numbers: ``0.1`` arrives as ``Decimal("0.1")``, never as a float.

    Money must not pass through binary floating point (ARCHITECTURE §4), and a float such as
    0.30000000000000004 must be refused for its extra digits rather than silently rounded.
    NaN and Infinity are refused outright.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            decoded_stream = codecs.getreader(encoding)(stream)
            return json.load(decoded_stream, parse_float=Decimal, parse_constant=refuse_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        except RecursionError as exc:
            # The stdlib decoder recurses once per "[" or "{": a body of a few thousand of
            # them is a hostile document, not a server fault (it was a 500).
            raise ParseError("JSON parse error - nested too deeply.") from exc
