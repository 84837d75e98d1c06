"""Forgetting (Art. 17): the erasure run and its receipts, holdings statements for former
members, crypto-shredding and retention sweeps.

May use: rights.access, rights.lifecycle and everything below them; independent of
rights.contest.
"""
