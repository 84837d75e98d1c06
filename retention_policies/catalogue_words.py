"""The words of the policy files that members read, for the translation catalogue.

A policy's ``description`` is shown to members (the access report: how long each kind of
record is kept), so ``make messages`` extracts it from every ``*.toml`` here through this
Babel extractor (babel.cfg names it); where it is shown it is translated with ``gettext``.
The other fields (legal basis, purpose, trigger) are for officers and stay English.
"""

import tomllib

MEMBER_FIELDS = ("description",)


def extract(fileobj, keywords, comment_tags, options):
    """Babel's extractor protocol: (line number, function name, message, comments) per
    member-facing field of one policy file."""
    text = fileobj.read().decode("utf-8")
    data = tomllib.loads(text)
    lines = text.splitlines()
    for field in MEMBER_FIELDS:
        value = data.get(field)
        if not isinstance(value, str) or not value:
            continue
        line = next((n for n, ln in enumerate(lines, 1) if ln.lstrip().startswith(field)), 1)
        yield line, None, value, []
