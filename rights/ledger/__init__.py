"""The signed, append-only record: the audit trail and its checkpoints, the signing keys,
officers and API keys.

May use: storage and rights.errors only; every other area writes through it.
"""
