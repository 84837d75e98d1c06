"""What Lethe holds about a subject and what holds it back: the records through the data map,
holds (restrictions), the suppression list and subject ids.

May use: rights.ledger and storage.
"""
