"""Which handler answers for which request type.

Kept apart from :mod:`rights.lifecycle.handlers` (the base class) because the lifecycle's
transitions look handlers up here while the base class's defaults call those transitions: with
the registry on its own, neither module imports the other's importer.

Handlers are keyed by the type as it is stored on a request (a plain string), not by
``RequestType``: a right added later registers a type that enum has never heard of, and the
lifecycle files and moves its requests the same way.
"""

_HANDLERS: dict = {}


class UnknownRight(LookupError):
    """A request's type has no handler: a right that was never registered (the app imports
    ``rights.catalogue`` when it is created) or one that was taken out."""


def register(handler) -> None:
    """Make ``handler`` answer for requests of ``handler.type``. One handler per type: a second
    one for the same type is a mistake (two modules claiming one right), not an override."""
    key = str(handler.type)
    if not key:
        raise ValueError(f"{type(handler).__name__} names no request type.")
    present = _HANDLERS.get(key)
    if present is not None and present is not handler:
        raise ValueError(f"A handler for {key!r} is already registered: {present!r}.")
    _HANDLERS[key] = handler


def unregister(type: str) -> None:
    """Take a right out again (tests that register a right of their own)."""
    _HANDLERS.pop(str(type), None)


def handler_for(type: str):
    """The handler for requests of this type."""
    try:
        return _HANDLERS[str(type)]
    except KeyError:
        raise UnknownRight(
            f"No handler is registered for request type {type!r} "
            f"(registered: {', '.join(sorted(_HANDLERS)) or 'none'}; rights.catalogue "
            "registers them when the app is created)."
        ) from None


def types() -> frozenset[str]:
    """The request types that can be filed: those with a handler."""
    return frozenset(_HANDLERS)
