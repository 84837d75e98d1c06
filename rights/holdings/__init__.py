"""What Lethe holds about a subject and what holds it back: the records through the data map,
holds (restrictions), the suppression list and subject ids; and what those records are called
(``names``: a record and its values in words, as the report and the notices name them, loaded
a batch at a time).

May use: rights.ledger and storage.
"""
