"""Domain errors. The API maps each to one HTTP status in one place (api/errors.py)."""

from __future__ import annotations


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    code = "not_found"


class InvalidTransition(DomainError):
    code = "invalid_transition"


class Conflict(DomainError):
    """A precondition held by another writer failed; the caller may retry with fresh state."""

    code = "conflict"


class InvalidInput(DomainError):
    """Input that passed the schema but breaks a domain rule; ``field`` names the culprit."""

    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)
        self.field = field
