"""drf-spectacular hooks: the one error shape of ARCHITECTURE §7, documented for every operation.

Views declare the domain errors they raise (``409``, ``422`` ...) with ``extend_schema``; the
errors that come from the framework around every view (a malformed body, a missing or bad
token, a missing object, throttling) are the same everywhere, so they are added here once
instead of being repeated on each view. Every documented 4xx carries the error body, which
is what a client (and the schemathesis fuzz test) checks responses against.
"""

from typing import Any

ERROR_COMPONENT = "ErrorResponse"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": 'Every error: `{"error": {"code", "message", "details"}}`.',
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "example": "VALIDATION_ERROR"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}

_DESCRIPTIONS = {
    "400": "Malformed request or invalid fields (`details` names them).",
    "401": "Missing, expired or invalid credentials.",
    "403": "Authenticated, but not allowed to do this.",
    "404": "No such object (or not yours).",
    "409": "Conflicts with the current state.",
    "415": "Unsupported request media type.",
    "422": "Well-formed, but refused by a business rule.",
    "429": "Rate limited; retry after the `Retry-After` header's seconds.",
}

_BODY_METHODS = {"post", "put", "patch"}


def _needs_auth(operation: dict[str, Any]) -> bool:
    return any(requirement for requirement in operation.get("security", []))


def _error_statuses(method: str, operation: dict[str, Any]) -> set[str]:
    statuses = {"429"}
    parameters = operation.get("parameters", [])
    if operation.get("requestBody") or any(p.get("in") == "query" for p in parameters):
        statuses.add("400")
    if method in _BODY_METHODS:
        statuses |= {"400", "415"}
    if any(p.get("in") == "path" for p in parameters):
        statuses.add("404")
    if any(p.get("in") == "query" and p.get("name") == "page" for p in parameters):
        # DRF's page-number pagination answers a page that does not exist with 404.
        statuses.add("404")
    if _needs_auth(operation):
        statuses |= {"401", "403"}
    elif operation.get("security") != [{}]:
        # Optional authentication: a bad token is refused even where none is needed.
        statuses.add("401")
    return statuses


def postprocess_error_responses(result: dict[str, Any], generator, request, public):
    """POSTPROCESSING_HOOK: add the error component and document the 4xx of each operation.

    A 4xx a view declared without a body (``{409: None}``) gets the error body too.
    """
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components[ERROR_COMPONENT] = ERROR_SCHEMA
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status in _error_statuses(method, operation):
                responses.setdefault(status, {"description": _DESCRIPTIONS[status]})
            for status, response in responses.items():
                if not str(status).startswith("4") or response.get("content"):
                    continue
                if not response.get("description") or response["description"] == (
                    "No response body"
                ):
                    response["description"] = _DESCRIPTIONS.get(str(status), "Error.")
                response["content"] = content
    return result
