"""The life of a request, whatever the right: filing, verification, deadlines, notices,
evidence, idempotency, and the handler registry each right plugs into.

May use: rights.recipients, rights.holdings, rights.delivery, rights.ledger and storage; never a
right's own package (rights.catalogue registers them).
"""
