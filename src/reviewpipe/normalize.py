"""Field normalisers used to compare records: titles, authors, journals, pages."""

from __future__ import annotations

import re
import unicodedata

_TAGS = re.compile(r"<[^>]+>")
_BRACKETED_TAIL = re.compile(r"\s*\[[^\]]*\]\s*\.?\s*$")
_NON_WORD = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")
# A UTF-8 lead byte read as Latin-1/CP1252 followed by a continuation byte read the same way.
_MOJIBAKE = re.compile(
    "[ÃÂâ][\u0080-\u00bf\u2018-\u201e\u2020-\u2026\u20ac\u0152\u0153\u0160\u0161"
    "\u017d\u017e\u0178]"
)
_PUBLICATION_WORDS = {
    "protocol": re.compile(r"\bprotocol\b", re.I),
    "erratum": re.compile(r"\b(?:erratum|corrigendum|correction)\b", re.I),
    "reply": re.compile(r"\b(?:reply|response to|letter|comment(?:ary)? on)\b", re.I),
    "review": re.compile(r"\b(?:systematic review|meta-?analysis|scoping review)\b", re.I),
}


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 read as Latin-1/CP1252 (``Ã©`` → ``é``) when that is what happened."""
    if not text or not _MOJIBAKE.search(text):
        return text
    for codec in ("cp1252", "latin-1"):
        try:
            return text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return text


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalize_title(title: str | None) -> str:
    """Lower case, no markup, accents, punctuation, trailing period or bracketed translation."""
    if not title:
        return ""
    text = fix_mojibake(title)
    text = _TAGS.sub(" ", text)
    text = _BRACKETED_TAIL.sub("", text) or text
    text = strip_accents(text).lower()
    text = _NON_WORD.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def title_flags(title: str | None) -> frozenset[str]:
    """Words that make two similar titles different publications (protocol, erratum…)."""
    return frozenset(k for k, pattern in _PUBLICATION_WORDS.items() if pattern.search(title or ""))


def author_key(author: str) -> tuple[str, str]:
    """(surname, first initial) from "Family, Given", "Given Family" or "Family GI"."""
    text = strip_accents(fix_mojibake(author)).strip().strip(".")
    if not text:
        return ("", "")
    if "," in text:
        family, _, given = text.partition(",")
    else:
        parts = text.split()
        if len(parts) > 1 and parts[-1].isupper() and len(parts[-1]) <= 3:
            family, given = " ".join(parts[:-1]), parts[-1]  # "Cotchett MP"
        else:
            family, given = parts[-1], " ".join(parts[:-1])  # "Matthew P. Cotchett"
    family = _NON_WORD.sub("", family.lower()).replace(" ", "")
    given = _NON_WORD.sub("", given.strip().lower())
    return (family, given[:1])


def first_author_surname(authors: list[str]) -> str:
    for author in authors:
        if "et al" in author.lower():
            continue
        family, _ = author_key(author)
        if family:
            return family
    return ""


def normalize_journal(journal: str | None) -> str:
    if not journal:
        return ""
    text = strip_accents(fix_mojibake(journal)).lower()
    text = re.sub(r"^the\s+", "", text)
    text = _NON_WORD.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def normalize_pages(pages: str | None) -> str:
    """``123-9`` → ``123-129``; e-locators and single pages unchanged; lower case."""
    if not pages:
        return ""
    text = pages.strip().lower().replace("–", "-").replace("—", "-").replace(" ", "")
    match = re.fullmatch(r"([a-z]*)(\d+)-([a-z]*)(\d+)", text)
    if match:
        prefix, start, _, end = match.groups()
        if len(end) < len(start):
            end = start[: len(start) - len(end)] + end
        return f"{prefix}{start}-{prefix}{end}" if prefix else f"{start}-{end}"
    return text


def first_page(pages: str | None) -> str:
    return normalize_pages(pages).split("-")[0]
