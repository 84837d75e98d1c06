"""Who else holds the data and must be told (Art. 19): downstream events, signed webhooks,
the SSRF-safe HTTP client and the FTC disclosure list.

May use: rights.holdings, rights.delivery, rights.ledger and storage.
"""
