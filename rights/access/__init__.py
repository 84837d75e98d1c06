"""The rights to see and to take away (Art. 15, 20): the access report and the portable export.

May use: rights.lifecycle and everything below it.
"""
