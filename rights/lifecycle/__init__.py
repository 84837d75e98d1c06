"""The life of a request, whatever the right: filing, verification, deadlines, notices,
evidence, idempotency, and the handler registry each right plugs into.

``requests`` holds the transitions (and re-exports what callers read: ``lookup`` finds and
reads requests, ``links`` sends links back to them, ``states`` holds the states and the journal);
``handlers`` is the base class a right's handler extends, ``registry`` where it is looked up;
``notices`` what the subject is told, ``outcomes`` the lines a completion notice lists (records
named by :mod:`rights.holdings.names`).

May use: rights.recipients, rights.holdings, rights.delivery, rights.ledger and storage; never a
right's own package (rights.catalogue registers them).
"""
