"""Ingest: the platform records members, perk awards, disclosures, promotions and consents,
each with its provenance (``source``, ``actor``). Sending a record again updates it."""

from rights.holdings import records
from web.api import schemas
from web.api.blueprint import bp
from web.api.idempotency import idempotent
from web.api.keys import require
from web.api.responses import RecordOut

TAGS = ["records"]

# A member just ingested (its id in the body) can have a request filed for it as verified (the
# platform vouches for its own member; scope requests:verified), which an access or portability
# request completes at once. The body is the link's, not merged with another (the OpenAPI
# meaning of a link's requestBody; x-schemathesis says so to schemathesis, which merges by
# default).
MEMBER_LINKS = {
    f"FileVerified{kind.title()}Request": {
        "operationId": "fileRequest",
        "description": f"File a verified {kind} request for this member.",
        "requestBody": {"type": kind, "member_id": "$response.body#/external_id", "verified": True},
        "x-schemathesis": {"merge_body": False},
    }
    for kind in ("access", "portability")
}


def ingests(view):
    """The answers every ingest gives: the record created (201) or updated (200)."""
    view = bp.alt_response(200, schema=RecordOut, description="Updated", success=True)(view)
    return bp.response(201, RecordOut, description="Created")(view)


def _ingest(data: dict, upsert):
    provenance = {"source": data.pop("source"), "actor": data.pop("actor")}
    record, created = upsert(data, **provenance)
    return record, 201 if created else 200


@bp.post("/members", tags=TAGS)
@require("records:write")
@idempotent
@bp.doc(responses={code: {"links": MEMBER_LINKS} for code in (200, 201)})
@ingests
@bp.arguments(schemas.MemberIn)
def ingest_member(data):
    """Create or update a member (email, name, handle, address). Needs scope records:write."""
    return _ingest(data, records.upsert_member)


@bp.post("/perk-awards", tags=TAGS)
@require("records:write")
@idempotent
@ingests
@bp.arguments(schemas.PerkAwardIn)
def ingest_perk_award(data):
    """Create or update a perk award. Needs scope records:write."""
    return _ingest(data, records.upsert_award)


@bp.post("/disclosures", tags=TAGS)
@require("records:write")
@idempotent
@ingests
@bp.arguments(schemas.DisclosureIn)
def ingest_disclosure(data):
    """Create or update an FTC disclosure-list entry. Needs scope records:write."""
    return _ingest(data, records.upsert_disclosure)


@bp.post("/promotions", tags=TAGS)
@require("records:write")
@idempotent
@ingests
@bp.arguments(schemas.PromotionIn)
def ingest_promotion(data):
    """Record a use of a member's name or likeness. Needs scope records:write."""
    return _ingest(data, records.upsert_promotion)


@bp.post("/consents", tags=TAGS)
@require("records:write")
@idempotent
@ingests
@bp.arguments(schemas.ConsentIn)
def ingest_consent(data):
    """Record a consent given or withdrawn. Needs scope records:write."""
    return _ingest(data, records.upsert_consent)
