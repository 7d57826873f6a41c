"""The AsyncAPI 3.0 document of the event contracts, generated from shared.events.

Nothing in it is written by hand: one message per event type (its CloudEvents envelope with the
typed payload, as JSON Schema from the pydantic models), one channel per topic of a city's
family (`bangkom.{city}.<stream>`) holding the messages of that stream, and the operations
each side performs (a city sends enrollment and sessions events and receives insights; the
nation receives the first two and sends insights). Every service serves it at
`/asyncapi.json`; tests/ops/test_asyncapi.py validates it with the AsyncAPI project's parser.
"""

from __future__ import annotations

from typing import Any

from shared.events import EVENT_TYPES, STRUCTURED_CONTENT_TYPE, _typed_envelope

VERSION = "1.0.0"
_SENT_BY_CITIES = ("enrollment", "sessions", "heartbeat")


def _message_name(type_: str) -> str:
    return type_.removeprefix("bangkom.").replace(".", "-")


def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    streams: dict[str, list[str]] = {}
    for type_, model in EVENT_TYPES.items():
        schema = _typed_envelope(model).model_json_schema(
            ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        name = _message_name(type_)
        schemas[name] = schema
        messages[name] = {
            "name": type_,
            "title": model.__name__,
            "summary": (model.__doc__ or model.__name__).strip().splitlines()[0],
            "contentType": STRUCTURED_CONTENT_TYPE,
            "headers": {"type": "object", "required": ["content-type"], "properties": {
                "content-type": {"type": "string", "const": STRUCTURED_CONTENT_TYPE}}},
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "bindings": {"kafka": {"key": {"type": "string", "description":
                                           "the CloudEvents subject: the partition key"}}},
        }
        streams.setdefault(model.STREAM, []).append(name)
    channels = {
        stream: {
            "address": f"bangkom.{{city}}.{stream}",
            "description": f"A city's {stream} events (CloudEvents, Kafka structured mode).",
            "parameters": {"city": {"description": "the city node, e.g. palu"}},
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
        }
        for stream, names in sorted(streams.items())
    }
    operations = {}
    for stream in channels:
        by_city = stream in _SENT_BY_CITIES
        operations[f"city-{'sends' if by_city else 'receives'}-{stream}"] = {
            "action": "send" if by_city else "receive", "channel": {"$ref": f"#/channels/{stream}"}}
        operations[f"nation-{'receives' if by_city else 'sends'}-{stream}"] = {
            "action": "receive" if by_city else "send", "channel": {"$ref": f"#/channels/{stream}"}}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Bangkom events", "version": VERSION,
                 "description": "Every event a Bangkom node publishes, generated from "
                                "shared/events.py."},
        "defaultContentType": STRUCTURED_CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
