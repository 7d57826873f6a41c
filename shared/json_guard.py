"""Check a JSON request body before FastAPI parses it, so every refusal names a JSON path.

FastAPI reports malformed JSON by character offset, answers a body nested deeper than the
parser's recursion limit with its own error shape, and lets a number beyond 64 bits through
to the database driver, which then fails with a 500. This ASGI middleware reads the body of a
request FastAPI would parse as JSON (`application/json`, `application/*+json`) and refuses it,
in the project's error format and before anything runs, when:
- it is not JSON: 422, the field is the JSON path where the parser stopped (`scores.a12`);
- it is nested deeper than MAX_DEPTH: 422, the path where the limit was crossed;
- it holds a number outside the 64-bit integers (the largest the database stores), or NaN:
  422, the path of that number;
- it is larger than MAX_BYTES: 413.
The body is then handed on unchanged. Our request models are at most four levels deep and an
attendance list of 10,000 ids is about 700 kB, hence the limits.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 32
MAX_BYTES = 2 * 1024 * 1024
INT64 = (-(2**63), 2**63 - 1)

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[{}\[\]:,]', re.DOTALL)


class BodyRefused(Exception):
    def __init__(self, status: int, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.status, self.field, self.reason = status, field, reason


def check_json(raw: bytes) -> None:
    """Raise BodyRefused when `raw` is not a JSON document this API could accept."""
    if len(raw) > MAX_BYTES:
        raise BodyRefused(413, "body", f"larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyRefused(400, "body", f"not UTF-8 (byte {exc.start})") from None
    too_deep = _scan(text, stop=None)
    if too_deep is not None:
        raise BodyRefused(422, too_deep, f"nested deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(text)  # NaN and Infinity parse as floats, refused below by path
    except json.JSONDecodeError as exc:
        raise BodyRefused(422, path_at(text, exc.pos),
                          f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    _check_numbers(value, [])


def path_at(text: str, offset: int) -> str:
    """The JSON path (`a.b.3`, `body` for the document itself) being read at `offset`."""
    return _dotted(_scan(text, stop=offset, path_only=True))


def _scan(text: str, *, stop: int | None, path_only: bool = False) -> Any:
    # A token scan: strings as one token (so braces inside them are ignored), and the
    # punctuation that opens, separates and closes containers. Each stack entry is the
    # container's key or index in its parent: [kind, current key or index, expecting a key].
    stack: list[list[Any]] = []
    for token in _TOKEN.finditer(text):
        if stop is not None and token.start() >= stop:
            break
        char = token.group()[0]
        top = stack[-1] if stack else None
        if char == '"':
            if top is not None and top[0] == "obj" and top[2]:
                try:
                    top[1] = json.loads(token.group())
                except ValueError:
                    top[1] = token.group()[1:80]
                top[2] = False
        elif char in "{[":
            stack.append(["obj", None, True] if char == "{" else ["arr", 0, False])
            if not path_only and len(stack) > MAX_DEPTH:
                return _dotted(stack[:-1])
        elif char in "}]":
            if stack:
                stack.pop()
        elif char == "," and top is not None:
            if top[0] == "arr":
                top[1] += 1
            else:
                top[1], top[2] = None, True
    return stack if path_only else None


def _dotted(stack: list[list[Any]]) -> str:
    parts = [str(entry[1]) for entry in stack if entry[1] is not None]
    return ".".join(parts) or "body"


def _check_numbers(value: Any, path: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _check_numbers(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_numbers(item, [*path, str(index)])
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        where = ".".join(path) or "body"
        if isinstance(value, float) and not math.isfinite(value):
            raise BodyRefused(422, where, f"{value} is not a number JSON allows")
        if not INT64[0] <= value <= INT64[1]:
            raise BodyRefused(422, where, f"{value:g} is outside the 64-bit range the database "
                                          f"stores ({INT64[0]} to {INT64[1]})")


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    major, _, minor = kind.partition("/")
    return major == "application" and (minor == "json" or minor.endswith("+json"))


class JsonBodyGuard:
    """ASGI middleware: refuse a bad JSON body (see the module docstring) with `refuse`."""

    def __init__(self, app: Callable, refuse: Callable[[BodyRefused], Any]):
        self.app = app
        self.refuse = refuse

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        if not _is_json(headers.get(b"content-type", b"").decode("latin-1")):
            return await self.app(scope, receive, send)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > MAX_BYTES or not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        if raw:
            try:
                check_json(raw)
            except BodyRefused as refused:
                response = self.refuse(refused)
                return await response(scope, receive, send)

        delivered = False

        async def replay():
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}

        await self.app(scope, replay, send)
