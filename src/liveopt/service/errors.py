"""Errors the controller raises to its callers; the API maps each to one HTTP status."""


class ServiceError(Exception):
    """Base class."""


class ConflictError(ServiceError):
    """The request contradicts the current state (already running, nothing to roll back):
    HTTP 409."""


class NotFoundError(ServiceError):
    """No such variant (or record): HTTP 404."""


class InvalidRequestError(ServiceError):
    """A well-formed request with an invalid value: HTTP 422 with this message."""
