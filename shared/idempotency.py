"""`Idempotency-Key` on the POSTs that create something: a retry returns the first answer.

A client that got a 503 (or no answer) cannot know whether its change was saved: the database
may have applied the write after the service stopped waiting. Without multi-document
transactions a separate "keys seen" collection could not be written together with the change,
so the key is kept in the change's own single-document write instead: the id of what the
request creates is derived from the key (`derived_id`). A retry with the same key then finds
that record and answers with it (200, the same body) instead of creating a second one; the
same key with a different request is a 422 naming the header.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Header

from shared.errors import DomainError

HEADER = "Idempotency-Key"

IdempotencyKey = Annotated[
    str | None,
    Header(alias=HEADER, min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$",
           description="any unique string (a UUID): a retry with the same key returns the "
                       "first answer and changes nothing"),
]


class KeyReused(DomainError):
    status, code = 422, "invalid_input"

    def __init__(self) -> None:
        super().__init__(HEADER, "already used for a different request: use a new key")


def derived_id(key: str, *, scope: str, length: int = 32) -> str:
    """The id a request with `key` creates in `scope` (a city's route): hex of SHA-256."""
    return hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()[:length]
