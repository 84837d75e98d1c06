"""The rights to contest what is held (Art. 16, 18, 21, 7(3)): rectification, restriction,
objection and consent, and incidents that correct many members at once.

May use: rights.lifecycle and everything below it; independent of rights.erasure.
"""
