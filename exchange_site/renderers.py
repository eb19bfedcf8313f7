"""The browsable API with the forms people need: each write operation's form is built from
the serializer that operation reads, the one its OpenAPI schema documents
(``extend_schema(request=...)``), not from the serializer its answers are written with. DRF
builds forms from ``get_serializer()``, which on the order endpoint is the output serializer
(no price, no quantity) and on a plain ``APIView`` does not exist (no form at all)."""

import json

from rest_framework import serializers
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import is_form_media_type, override_method


def request_serializer_class(view, method: str) -> type[serializers.Serializer] | None:
    """The serializer class the schema documents as ``method``'s request body on ``view``,
    or None when it names none (or not a serializer)."""
    handler = getattr(view, method.lower(), None)
    schema_class = getattr(handler, "kwargs", {}).get("schema")
    if schema_class is None:
        return None
    # drf-spectacular's per-operation schema: the same object that writes the docs.
    schema = schema_class()
    schema.view, schema.method, schema.path = view, method.upper(), view.request.path
    try:
        found = schema.get_request_serializer()
    except Exception:  # a schema that cannot answer outside its generator: DRF's own form
        return None
    if isinstance(found, serializers.Serializer) and not isinstance(
        found, serializers.ListSerializer
    ):
        return type(found)
    if isinstance(found, type) and issubclass(found, serializers.Serializer):
        return found
    return None


def _accepts_forms(view) -> bool:
    return any(is_form_media_type(parser.media_type) for parser in view.parser_classes)


class InputFormsBrowsableAPIRenderer(BrowsableAPIRenderer):
    """DRF's browsable API, its HTML and raw-data forms built from the request serializer."""

    def get_rendered_html_form(self, data, view, method, request):
        serializer_class = request_serializer_class(view, method)
        if serializer_class is None:
            return super().get_rendered_html_form(data, view, method, request)
        with override_method(view, request, method) as request:
            if not self.show_form_for_method(view, method, request, None):
                return None
            if method in ("DELETE", "OPTIONS"):
                return True
            if not _accepts_forms(view):
                return None
            return self.render_form_for_serializer(
                serializer_class(context={"request": request, "view": view})
            )

    def get_raw_data_form(self, data, view, method, request):
        form = super().get_raw_data_form(data, view, method, request)
        serializer_class = request_serializer_class(view, method)
        if form is None or serializer_class is None or form.fields["_content"].initial:
            return form
        # The JSON a client sends, every writable field with its initial value.
        serializer = serializer_class(context={"request": request, "view": view})
        example = {
            name: field.initial if field.initial is not None else ""
            for name, field in serializer.fields.items()
            if not field.read_only and not isinstance(field, serializers.HiddenField)
        }
        form.fields["_content"].initial = json.dumps(example, indent=4, default=str)
        return form
