"""The suite hashes officers' passwords at argon2's lowest cost (tests/helpers.py says why).
This checks the cost production pays: argon2id with RFC 9106's low-memory parameters, for
the hash stored and for the stand-in an unknown email is checked against."""

from argon2 import Type, extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY

from rights.ledger import officers
from storage.db import db
from tests.helpers import PRODUCTION_DUMMY_HASH, PRODUCTION_PASSWORD_HASHER


def test_production_hashes_passwords_with_argon2id_at_rfc_9106_low_memory_cost(
    app, monkeypatch
):
    monkeypatch.setattr(officers, "_hasher", PRODUCTION_PASSWORD_HASHER)
    with app.app_context():
        officer, _ = officers.create(
            "cost@perkly.example",
            name="Cost",
            role="officer",
            password="correct horse battery staple",
            by="test",
        )
        db.session.commit()
        stored = officer.password_hash
    for hashed in (stored, PRODUCTION_DUMMY_HASH):
        params = extract_parameters(hashed)
        assert params.type is Type.ID
        assert (params.time_cost, params.memory_cost, params.parallelism) == (
            RFC_9106_LOW_MEMORY.time_cost,
            RFC_9106_LOW_MEMORY.memory_cost,
            RFC_9106_LOW_MEMORY.parallelism,
        )
        assert (params.time_cost, params.memory_cost, params.parallelism) == (3, 65536, 4)
    assert PRODUCTION_PASSWORD_HASHER.verify(stored, "correct horse battery staple")
