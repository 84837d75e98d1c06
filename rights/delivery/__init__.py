"""Getting messages out: the transactional outbox and the mail it sends.

May use: rights.ledger and storage.
"""
