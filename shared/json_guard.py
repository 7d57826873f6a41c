"""Check a request before FastAPI parses it, so every refusal names its field.

FastAPI reports malformed JSON by character offset, answers a body nested deeper than the
parser's recursion limit with its own error shape, and lets a number beyond 64 bits through
to the database driver, which then fails with a 500. This ASGI middleware reads the body of a
request FastAPI would parse as JSON (`application/json`, `application/*+json`) and refuses it,
in the project's error format and before anything runs, when:
- it is not JSON: 422, the field is the JSON path where the parser stopped (`scores.a12`);
- it is nested deeper than MAX_DEPTH: 422, the path where the limit was crossed;
- it holds a number outside the 64-bit integers (the largest the database stores), or NaN:
  422, the path of that number;
- it is larger than MAX_BYTES: 413;
- a string in it (a key or a value) holds text the database cannot store: U+0000, which
  PostgreSQL text cannot hold (FerretDB then failed with a 500), or an unpaired surrogate,
  which is not Unicode: 422, the path of that string.
The query string and the path parameters of every request are held to the same rule (422
naming the parameter). The body is then handed on unchanged. Our request models are at most four levels deep and an
attendance list of 10,000 ids is about 700 kB, hence the limits.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.routing import compile_path

MAX_DEPTH = 32
MAX_BYTES = 2 * 1024 * 1024
INT64 = (-(2**63), 2**63 - 1)

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[{}\[\]:,]', re.DOTALL)


class BodyRefused(Exception):
    def __init__(self, status: int, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.status, self.field, self.reason = status, field, reason


def unstorable(text: str) -> str | None:
    """Why the database cannot store `text`, or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return f"holds U+0000 (NUL) at character {found.start() + 1}, which cannot be stored"
    return f"holds an unpaired surrogate at character {found.start() + 1}: not Unicode text"


def check_query(query_string: bytes) -> None:
    """Raise BodyRefused (422, the parameter) for a query value the database cannot store."""
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        for text in (key, value):
            if (reason := unstorable(text)) is not None:
                raise BodyRefused(422, key.replace("\x00", "\\0"), reason)


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
    _check_values(value, [])


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


def _check_values(value: Any, path: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if (reason := unstorable(key)) is not None:
                raise BodyRefused(422, ".".join([*path, key.replace("\x00", "\\0")]),
                                  f"the key {reason}")
            _check_values(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_values(item, [*path, str(index)])
    elif isinstance(value, str):
        if (reason := unstorable(value)) is not None:
            raise BodyRefused(422, ".".join(path) or "body", reason)
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


def path_params(templates: Iterable[str], path: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Each route template (`/staff/{nip}`) that `path` matches, with its parameters."""
    for template in templates:
        found = compile_path(template)[0].match(path)
        if found:
            yield template, found.groupdict()


class InputGuard:
    """ASGI middleware: refuse bad input (see the module docstring) with `refuse`; `templates`
    gives the app's path templates (`/staff/{nip}`), to name the path parameter at fault."""

    def __init__(self, app: Callable, refuse: Callable[[BodyRefused], Any],
                 templates: Callable[[], Iterable[str]] = tuple):
        self.app = app
        self.refuse = refuse
        self.templates = templates

    def _check_path(self, scope) -> None:
        reason = unstorable(scope.get("path", ""))
        if reason is None:
            return
        for _, params in path_params(self.templates(), scope["path"]):  # a bad path only
            for name, value in params.items():
                if (why := unstorable(value)) is not None:
                    raise BodyRefused(422, name, why)
        raise BodyRefused(422, "path", reason)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            self._check_path(scope)
            check_query(scope.get("query_string", b""))
        except BodyRefused as refused:
            return await self.refuse(refused)(scope, receive, send)
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
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
