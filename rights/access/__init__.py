"""The rights to see and to take away (Art. 15, 20): the access report and the portable export.

``access`` builds the report (streamed, a batch of records at a time), ``summary`` what it says
first in plain words, ``stories`` each record's history a sentence a change (records are named
by :mod:`rights.holdings.names`), ``portability`` the export, ``handlers`` the two rights in the
request lifecycle.

May use: rights.lifecycle and everything below it.
"""
