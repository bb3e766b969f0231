"""Field normalisers used to compare records: titles, authors, journals, pages.

Every function is pure and cheap: dedupe calls them once per record (100k records in a few
seconds), and the comparisons they feed are explained in ``reviewpipe.dedupe``.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache

_TAGS = re.compile(r"</?[a-zA-Z][^<>]{0,40}>")
_NON_WORD = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")
# A UTF-8 lead byte read as Latin-1/CP1252 followed by a continuation byte read the same way.
_MOJIBAKE = re.compile(
    "[ÃÂâ][\u0080-\u00bf\u2018-\u201e\u2020-\u2026\u20ac\u0152\u0153\u0160\u0161"
    "\u017d\u017e\u0178]"
)
# Letters that NFKD does not decompose; folded so "Sørensen" = "Sorensen", "Łukasz" = "Lukasz".
_FOLD = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i",
                       "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss", "þ": "th",
                       "ð": "d", "ħ": "h", "‐": "-", "‑": "-", "–": "-", "—": "-"})
_PUBLICATION_WORDS = {
    "protocol": re.compile(r"\bprotocol\b", re.I),
    "erratum": re.compile(r"\b(?:erratum|corrigendum|correction)\b|\(vol \d+, pg \w+", re.I),
    "reply": re.compile(r"\b(?:reply|response to|letter|comment(?:ary)? on)\b", re.I),
    "review": re.compile(r"\b(?:systematic review|meta-?analysis|scoping review)\b", re.I),
    "retraction": re.compile(r"^\s*(?:retraction|retraction notice|notice of retraction)\b",
                             re.I),
}
# Database notes appended to a title: they say something about the record, not the title.
# A truncated export can cut a note before its closing bracket, hence ``(?:\]|$)``.
_NOTES = re.compile(
    r"\[(?:published )?(?:erratum|corrected|comment|see comments|retracted|retraction|"
    r"review|abstract|editorial|letter|\d+ refs?|english abstract|article in [a-z ]+)"
    r"[^\]]*(?:\]|$)|\.\.\.\s*\[corrected\].*$|\(author'?s transl\)|<original>.*$",
    re.I,
)
_TRAILING_BRACKETS = re.compile(r"\s*\[([^\[\]]*)\]\s*[.;,]?\s*$")
_WHOLE_BRACKETED = re.compile(r"^\s*\[(.+)\]\s*[.;,]?\s*$")
_VARIANT_SPLIT = re.compile(r"\s+=\s+|;\s+|<original>", re.I)
_SPECIAL = re.compile(r"[\[<(;=&]")
_DIGITS = re.compile(r"\d+")
# Words an ISO 4 abbreviation leaves out, in the languages journal titles come in.
_JOURNAL_STOP = frozenset(
    "the of and for in on a an de d del della des du di la le les y e et i da do dos das "
    "der die das und fur fuer zur zum im van voor en og och pa".split())
_JOURNAL_SPLIT = re.compile(
    r"\s+[:=]\s*|:\s+|\s+-\s+|\.(?=[a-z]{3,})|\.\s+|\s*\(.*?\)\s*|\s*\[.*?\]\s*")


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
    """Drop combining marks (``é`` → ``e``); the length of the text is kept."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold(text: str) -> str:
    """ASCII-ish lower case for comparison: mojibake fixed, accents and ``ø``/``ß``/``æ`` folded.

    Unlike ``strip_accents`` this may change the length of the text, so it is only for keys.
    """
    text = fix_mojibake(text)
    if not text.isascii():
        text = strip_accents(text.translate(_FOLD))
    return text.lower()


def _words(text: str) -> str:
    # "?" stands for a character an export could not encode ("Cobano?lu"): it is dropped so
    # that the word still resembles the original instead of splitting in two.
    text = _NON_WORD.sub(" ", text.replace("?", "")).replace("?", "")
    return _SPACES.sub(" ", text).strip()


def _clean_title(title: str) -> tuple[str, list[str]]:
    """The title without markup and database notes, and any translated titles it carried."""
    text = fix_mojibake(title)
    if "&" in text:
        text = html.unescape(text)
    extra: list[str] = []
    if not _SPECIAL.search(text):
        return text, extra
    if "<" in text:
        original = text.lower().find("<original>")
        if original >= 0:
            extra.append(text[original + len("<original>"):])
        text = _TAGS.sub("", text[:original] if original >= 0 else text)
    text = _NOTES.sub(" ", text)
    # "[Chinese]", "[Review] [33 refs]" or a bracketed translation at the end; a long one is
    # the title in another language and is kept as a variant.
    while True:
        match = _TRAILING_BRACKETS.search(text)
        if not match or not text[:match.start()].strip():
            break
        if len(match.group(1).split()) >= 4:
            extra.append(match.group(1))
        text = text[:match.start()]
    whole = _WHOLE_BRACKETED.match(text)
    if whole and "[" not in whole.group(1):
        text = whole.group(1)  # MEDLINE brackets a title translated into English
    return text, extra


def normalize_title(title: str | None) -> str:
    """Lower case, no markup, accents, punctuation, database notes or bracketed translation.

    Examples
    --------
    >>> normalize_title("<i>Dry</i> needling: a trial. [Chinese]")
    'dry needling a trial'
    """
    if not title:
        return ""
    text, _ = _clean_title(title)
    return _words(fold(text)) or _words(fold(title))


def title_variants(title: str | None) -> tuple[str, ...]:
    """Normalised forms of a title: the whole title first, then each language's part.

    Bilingual exports join an original and a translated title with ``;``, ``=`` or
    ``<ORIGINAL>``, or add the translation in brackets; each part of at least four words is a
    variant, so a record carrying only one of them can still be matched.
    """
    if not title:
        return ()
    text, extra = _clean_title(title)
    main = _words(fold(text)) or _words(fold(title))
    out = [main] if main else []
    for part in [*_VARIANT_SPLIT.split(text), *extra]:
        words = _words(fold(part))
        if len(words.split()) >= 4 and words not in out:
            out.append(words)
    if len(out) == 2 and out[1] == main:
        out.pop()
    return tuple(out)


def title_flags(title: str | None) -> frozenset[str]:
    """Words that make two similar titles different publications (protocol, erratum…).

    Database notes such as ``[Erratum appears in …]`` are removed first: they mark the
    original article, not an erratum.
    """
    if not title:
        return frozenset()
    text, _ = _clean_title(title)
    return frozenset(k for k, pattern in _PUBLICATION_WORDS.items() if pattern.search(text))


def title_numbers(title: str) -> frozenset[str]:
    """The numbers in a normalised title ("Part 2", "phase 3", "HPV 16")."""
    return frozenset(_DIGITS.findall(title))


def _is_initials(word: str) -> bool:
    """"MP", "M.P.", "M." or "J-P": initials, as opposed to a given name ("Li", "Matthew")."""
    letters = word.replace(".", "").replace("-", "")
    return bool(letters) and letters.isalpha() and letters.isupper() and len(letters) <= 3


def parse_author(author: str) -> tuple[str, str]:
    """(family name, initials) of one author, lower case and folded.

    Reads "Family, Given", "Family GI", "Given Family", "G. I. Family" and "Family G.I.":
    "Cotchett MP", "Matthew P. Cotchett" and "Cotchett, M. P." all give
    ``("cotchett", "mp")``. The family name keeps no spaces or punctuation ("van Kemenade"
    → ``vankemenade``), so particles and hyphens do not split it.

    Examples
    --------
    >>> parse_author("Matthew P. Cotchett")
    ('cotchett', 'mp')
    """
    text = fix_mojibake(author).strip().strip(".,;").strip()
    if not text or text.lower().startswith("et al"):
        return ("", "")
    if "," in text:
        family, _, given = text.partition(",")
    else:
        parts = text.split()
        if len(parts) > 1 and _is_initials(parts[-1]):
            family, given = " ".join(parts[:-1]), parts[-1]
        elif len(parts) > 1:
            # The family name is the last word, with any lower-case particle before it
            # ("Ludwig van Beethoven").
            cut = len(parts) - 1
            while cut > 1 and parts[cut - 1] in _PARTICLES:
                cut -= 1
            family, given = " ".join(parts[cut:]), " ".join(parts[:cut])
        else:
            family, given = text, ""
    family = re.sub(r"[^a-z]", "", fold(family))
    given = given.strip()
    if _is_initials(given.replace(" ", "")):
        initials = given.replace(".", "").replace(" ", "").replace("-", "")  # "MP", "M. P."
    else:
        initials = "".join(w[0] for w in re.split(r"[\s.\-]+", given) if w)
    return (family, fold(initials))


_PARTICLES = frozenset("van von der den de del della di da du le la dos das ter ten".split())


def author_key(author: str) -> tuple[str, str]:
    """(surname, first initial) from "Family, Given", "Given Family" or "Family GI"."""
    family, initials = parse_author(author)
    return (family, initials[:1])


def author_keys(authors: list[str], limit: int = 12) -> list[tuple[str, str]]:
    """``parse_author`` of the first ``limit`` distinct authors, without "et al.".

    A list that repeats itself (some pages print the author list twice) counts once.
    """
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for author in authors:
        if len(out) >= limit:
            break
        family, initials = parse_author(author)
        if family and family not in seen:
            seen.add(family)
            out.append((family, initials))
    return out


def first_author_surname(authors: list[str]) -> str:
    """The family name of the first author that is a person or group, not "et al."."""
    keys = author_keys(authors, limit=1)
    return keys[0][0] if keys else ""


def normalize_journal(journal: str | None) -> str:
    """Folded, lower-case journal words without punctuation or a leading "The"."""
    if not journal:
        return ""
    text = _words(fold(journal).replace("&", " and "))
    return text.removeprefix("the ")


@lru_cache(maxsize=65536)
def journal_forms(journal: str) -> tuple[str, ...]:
    """The journal as printed and its main title without subtitle, place or section.

    ``"Journal of clinical oncology : official journal of ASCO"`` gives the whole and
    ``"journal of clinical oncology"``; ``"Pediatric Nephrology.Conference: 44th …"`` gives
    ``"pediatric nephrology"`` too.
    """
    if not journal:
        return ()
    whole = normalize_journal(journal)
    forms = [whole] if whole else []
    head = _JOURNAL_SPLIT.split(fold(journal).replace("&", " and "), maxsplit=1)[0]
    head_words = _words(head).removeprefix("the ")
    if head_words and head_words not in forms:
        forms.append(head_words)
    return tuple(forms)


def _abbreviates(short: str, full: str) -> bool:
    """True when ``short`` can be an abbreviation of ``full`` ("engl" of "england")."""
    if short == full:
        return True
    if not short or not full or short[0] != full[0] or len(short) > len(full):
        return False
    if full.startswith(short):
        return True
    position = 0
    for char in short:  # a subsequence keeping the first letter: "natl" of "national"
        position = full.find(char, position) + 1
        if not position:
            return False
    return True


def _abbreviation_of(short: list[str], full: list[str]) -> bool:
    """Every word of ``short`` abbreviates the next non-skipped word of ``full``, in order."""
    # A one-letter word of the short form is an initial ("U S A"), not "a" or "y".
    short = [w for w in short if len(w) == 1 or w not in _JOURNAL_STOP]
    full = [w for w in full if w not in _JOURNAL_STOP]
    if not short or len(short) != len(full):
        return False
    return all(_abbreviates(s, f) for s, f in zip(short, full, strict=True))


@lru_cache(maxsize=262144)
def journals_match(a: str, b: str) -> bool:
    """True when two printed journal names can name the same journal.

    Full title vs ISO abbreviation ("New England Journal of Medicine" = "N Engl J Med"),
    subtitle or place left out, ``&`` vs "and", case and accents. Both must be non-empty.
    """
    for fa in journal_forms(a):
        for fb in journal_forms(b):
            if fa == fb:
                return True
            wa, wb = fa.split(), fb.split()
            if _abbreviation_of(wa, wb) or _abbreviation_of(wb, wa):
                return True
            if "".join(wa) == "".join(wb):
                return True  # "Dtsch-Med-Wochenschr" vs "Dtsch Med Wochenschr"
    return False


def normalize_pages(pages: str | None) -> str:
    """``123-9`` → ``123-129``; e-locators and single pages unchanged; lower case."""
    if not pages:
        return ""
    text = pages.strip().lower().replace("–", "-").replace("—", "-").replace(" ", "")
    text = text.replace("--", "-")
    match = re.fullmatch(r"([a-z]*)(\d+)-([a-z]*)(\d+)", text)
    if match:
        prefix, start, _, end = match.groups()
        if len(end) < len(start):
            end = start[: len(start) - len(end)] + end
        return f"{prefix}{start}-{prefix}{end}" if prefix else f"{start}-{end}"
    return text


def first_page(pages: str | None) -> str:
    """The first page of a range, or the e-locator (``e12724``), normalised."""
    text = normalize_pages(pages)
    for sep in ("-", ",", ";", "+"):
        text = text.split(sep)[0]
    return text


def normalize_volume(volume: str | None) -> str:
    """The volume number without supplements, issue or notes (``"4 (1) (no pagination)"`` → 4)."""
    if not volume:
        return ""
    match = re.match(r"\s*(\d+)", volume)
    return match.group(1) if match else fold(volume).strip()
