"""Domain errors: raised by pure domain code, translated once at the HTTP edge (shared.http).

Each names the field at fault and the reason, so a user can fix exactly that.
"""


class DomainError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFoundError(DomainError):
    status = 404
    code = "not_found"


class ConflictError(DomainError):
    status = 409
    code = "conflict"


class UnstorableInput(DomainError):
    """Text the database cannot store (U+0000, an unpaired surrogate): refused, never a 500."""
    status = 422
    code = "invalid_input"


class DatabaseUnavailable(Exception):
    """The database did not answer: the caller should retry later (HTTP 503)."""
