"""The catalogues (issue 16): every word a member can meet is in translations/, and German has
all of it.

- Every string marked for translation where babel.cfg looks (public templates, the words of
  rights/ and storage/, web/public/) has a German entry: present, not empty, not fuzzy, its
  placeholders the same as the English ones.
- A public template has no words outside a ``{% trans %}`` block or ``_()`` call: its text and
  the attributes a person reads (alt, title, placeholder, aria-label, a button's value) are
  checked once the template's own syntax is taken out.

That German pages and emails come out in German, rendered, is tests/test_languages.py.
"""

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("de",)
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "lazy_gettext": None,
    "_l": None,
    "lazy_ngettext": (1, 2),
    "N_": None,
}


def _extracted() -> dict[str, tuple]:
    """Every marked message: msgid -> its plural (or None)."""
    with open(ROOT / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = {}
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        if isinstance(message, tuple):
            found[message[0]] = message
        else:
            found[message] = None
    return found


@pytest.fixture(scope="module")
def extracted():
    return _extracted()


def catalogue(language: str):
    with open(ROOT / "translations" / language / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_string_is_translated(extracted, language):
    german = catalogue(language)
    missing, empty, fuzzy = [], [], []
    for msgid, plural in extracted.items():
        entry = german.get(msgid)
        if entry is None:
            missing.append(msgid)
            continue
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if not all(strings) or (plural and not isinstance(entry.string, tuple)):
            empty.append(msgid)
        if entry.fuzzy:
            fuzzy.append(msgid)
    assert not missing, (
        f"{len(missing)} strings not in the {language} catalogue (make messages): {missing[:10]}"
    )
    assert not empty, f"{len(empty)} strings without a {language} translation: {empty[:10]}"
    assert not fuzzy, f"{len(fuzzy)} fuzzy {language} entries (check and unmark): {fuzzy[:10]}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_placeholders_match(language):
    """A translation keeps every %(name)s of its English (a missing one would raise or drop a
    value at run time); babel's own checks, as ``pybabel compile`` runs them."""
    problems = [
        (message.id, [str(e) for e in errors])
        for message, errors in catalogue(language).check()
        if errors
    ]
    assert not problems, problems[:10]


def test_catalogue_template_is_current(extracted):
    """translations/messages.pot holds what the code marks today (make messages rewrites it)."""
    with open(ROOT / "translations" / "messages.pot", "rb") as f:
        pot = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    new, gone = sorted(set(extracted) - pot)[:5], sorted(pot - set(extracted))[:5]
    assert set(extracted) == pot, f"run make messages: new {new}, gone {gone}"


# --- no bare words in public templates -------------------------------------------------------

PUBLIC_TEMPLATES = sorted(
    [*(ROOT / "web/templates/public").rglob("*.html")]
    + [ROOT / "web/templates" / name for name in ("base.html", "error.html", "macros.html")]
)
TRANS_BLOCK = re.compile(r"{%-?\s*trans\b.*?{%-?\s*endtrans\s*-?%}", re.S)
JINJA = re.compile(r"{#.*?#}|{{.*?}}|{%.*?%}", re.S)
HIDDEN = re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I)
READ_ATTRS = re.compile(
    r"""\b(alt|title|placeholder|aria-label|aria-description)\s*=\s*("[^"]*"|'[^']*')""", re.I
)
TAG = re.compile(r"<[^>]*>", re.S)
ENTITY = re.compile(r"&#?\w+;")
WORD = re.compile(r"[^\W\d_]{2,}")  # two letters or more: a word, not a unit or a bullet


def bare_words(source: str) -> list[str]:
    text = HIDDEN.sub(" ", TRANS_BLOCK.sub(" ", source))
    text = JINJA.sub(" ", text)
    found = [value.strip("\"'") for _name, value in READ_ATTRS.findall(text) if WORD.search(value)]
    for chunk in ENTITY.sub(" ", TAG.sub("\n", text)).split("\n"):
        if WORD.search(chunk):
            found.append(chunk.strip())
    return found


def test_the_bare_word_check_finds_words():
    assert bare_words('<p>Hello {{ name }}</p><img alt="A photo">') == ["A photo", "Hello"]
    assert bare_words('<p>{% trans %}Hello{% endtrans %} · {{ _("x") }}</p>') == []


@pytest.mark.parametrize("template", PUBLIC_TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_public_template_words_are_all_marked(template):
    assert bare_words(template.read_text()) == []
