"""Record keys: the former member's only credential, made to survive being copied by hand.

A key is 27 symbols of Crockford's Base32 (``0-9`` and ``A-Z`` without I, L, O and U: 134.8
random bits, see :func:`new`) and a 28th, Crockford's check symbol — the key as a number,
modulo 37. Because 37 is prime and larger than 32, the check catches every wrong character
and every swap of two neighbouring characters: such a key is refused as a typo before anything
is looked up, and nothing about any stored key is learnt from that answer (the check is
arithmetic on what was typed). Read back, case, spaces and dashes do not matter, and O is read
as 0, I and L as 1 (Crockford's rule): a key copied with a look-alike letter still works.

Keys issued before this format (32 symbols of RFC 4648 Base32, ``A-Z`` and ``2-7``, 160
bits, no check symbol) keep working. The two are told apart by length alone (28 symbols or
32), so reading a key never needs a second look-up. An old key is read as it always was,
except that 0 and 1, which its alphabet lacks, are read as O and I; its fingerprint is the
one stored when it was issued.

Pure functions: no database, no app.
"""

import hashlib
import secrets

from storage.wording import N_

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Crockford's check symbols: the alphabet, then the values 32-36 (never issued: see new()).
CHECK_SYMBOLS = ALPHABET + "*~$=U"
RANDOM_SYMBOLS = 27
LENGTH = RANDOM_SYMBOLS + 1
LEGACY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
LEGACY_LENGTH = 32
GROUP = 4

# Both said by the API as they are (English) and by the records page in the reader's language
# (gettext there: the catalogue has them).
TYPO = N_("This key has a typo in it: check each character against your email.")
# The answer to too many failed look-ups; ``when`` in words ("in a minute", said in the same
# language: web.extensions.try_again_in). Translations keep "{when}" as it is.
TOO_MANY_TRIES = N_("Too many tries with a wrong key. Try again {when}.")

_IGNORED = str.maketrans("", "", " -\t\r\n")
_ALIASES = str.maketrans("OIL", "011")
_LEGACY_ALIASES = str.maketrans("01", "OI")
_VALUES = {ch: i for i, ch in enumerate(ALPHABET)}


def _value(symbols: str) -> int:
    number = 0
    for ch in symbols:
        number = number * 32 + _VALUES[ch]
    return number


def check_symbol(symbols: str) -> str:
    """Crockford's check symbol for ``symbols`` (canonical Base32, no check of its own)."""
    return CHECK_SYMBOLS[_value(symbols) % 37]


def new() -> str:
    """A fresh key, printed in groups of four (``XXXX-XXXX-…``, 28 symbols).

    27 random symbols are 135 bits; keys whose check would be one of the five extra check
    symbols (``*~$=U``, awkward to read aloud and type) are drawn again, which keeps
    log2(32**27 * 32/37) = 134.8 bits of randomness: well above the 128 asked of it."""
    while True:
        symbols = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_SYMBOLS))
        check = check_symbol(symbols)
        if check in ALPHABET:
            return format_key(symbols + check)


def _cleaned(text: object) -> str | None:
    if not isinstance(text, str):
        return None
    return text.translate(_IGNORED).upper()


def normalise(text: object) -> str | None:
    """The key as Lethe spells it (upper case, no separators, aliases resolved): 28 symbols
    with a matching check symbol, or 32 of an old key. None for anything else — a key with a
    typo in it (:func:`has_typo` tells it apart) and text that is no key at all."""
    cleaned = _cleaned(text)
    if cleaned is None:
        return None
    if len(cleaned) == LENGTH:
        key = cleaned.translate(_ALIASES)
        body, check = key[:-1], key[-1]
        if all(ch in _VALUES for ch in body) and check == check_symbol(body):
            return key
        return None
    if len(cleaned) == LEGACY_LENGTH:
        key = cleaned.translate(_LEGACY_ALIASES)
        return key if all(ch in LEGACY_ALPHABET for ch in key) else None
    return None


def has_typo(text: object) -> bool:
    """Whether ``text`` is meant as a key but cannot be one: 27 to 33 symbols (a key's 28 or
    an old key's 32, give or take one) and not a valid key. Such a key is refused with
    :data:`TYPO` before any look-up; shorter or longer text, which no one copying a key
    types, gets the answer any unknown key gets."""
    cleaned = _cleaned(text)
    if cleaned is None or not LENGTH - 1 <= len(cleaned) <= LEGACY_LENGTH + 1:
        return False
    return normalise(cleaned) is None


def format_key(text: object) -> str | None:
    """The key as Lethe prints it (groups of four, dashes between), however it was typed."""
    key = normalise(text)
    if key is None:
        return None
    return "-".join(key[i : i + GROUP] for i in range(0, len(key), GROUP))


def fingerprint(text: object) -> str | None:
    """What Lethe stores of a key (SHA-256 of its normalised spelling, hex), or None for
    text that is not a key. An old key's fingerprint is the one stored when it was issued."""
    key = normalise(text)
    return hashlib.sha256(key.encode()).hexdigest() if key else None
