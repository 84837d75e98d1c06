"""The JSON API for the platform's services (``/api/v1``), bearer API keys with scopes.

The blueprint and its error handlers are in :mod:`web.api.blueprint`; each area's views in a
module of its own, imported here so that their routes are on the blueprint when it is
registered: ``ingest`` (records with provenance), ``requests_views`` (filing, reading, listing
and withdrawing requests), ``downloads`` (reports, exports, the disclosure list),
``recipients`` (webhook subscribers' identifiers and confirmations), ``statements`` (former
members' holdings statements), ``openapi`` (the document) and ``docs`` (its browsable page).
"""

from web.api import (  # noqa: F401 - imported for their routes
    docs,
    downloads,
    errors,
    ingest,
    openapi,
    recipients,
    requests_views,
    statements,
)
from web.api.blueprint import bp

__all__ = ["bp", "errors"]
