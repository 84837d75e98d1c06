"""Input rules shared by every door into Lethe (the JSON API and the public forms), so that a
value one refuses the other refuses too."""


def clean_text(value) -> bool:
    """True unless a string in ``value`` holds NUL or a lone surrogate: neither can be stored
    (PostgreSQL refuses NUL in text; UTF-8 has no surrogates), so both are input errors.
    Lists and dicts are checked item by item (keys too)."""
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list | tuple):
        return all(clean_text(v) for v in value)
    if isinstance(value, dict):
        return all(clean_text(k) and clean_text(v) for k, v in value.items())
    return True
