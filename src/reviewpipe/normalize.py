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
# A UTF-8 lead byte read as Latin-1/CP1252 followed by a continuation byte read the same way.
_MOJIBAKE = re.compile(
    "[ÃÂâ][\u0080-\u00bf\u2018-\u201e\u2020-\u2026\u20ac\u0152\u0153\u0160\u0161"
    "\u017d\u017e\u0178]"
)
# Letters that NFKD does not decompose; folded so "Sørensen" = "Sorensen", "Łukasz" = "Lukasz".
_FOLD = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i",
                       "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss", "þ": "th",
                       "ð": "d", "ħ": "h", "‐": "-", "‑": "-", "–": "-", "—": "-"})
# Combining diacritical marks (the blocks NFKD moves accents of Latin, Greek and Cyrillic
# letters to); a regex is ~50x faster than testing unicodedata.combining per character.
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Words that make two similar titles different publications, matched on the folded
# (lower-case) title in one pass; the group that matched names the flag.
_FLAGS = re.compile(
    r"(?P<protocol>\bprotocol\b)"
    r"|(?P<erratum>\b(?:erratum|corrigendum|correction)\b|\(vol \d+, pg \w+)"
    r"|(?P<reply>\b(?:reply|response to|letter|comment(?:ary)? on)\b)"
    r"|(?P<review>\b(?:systematic review|meta-?analysis|scoping review)\b)"
    r"|(?P<retraction>^\s*(?:retraction|retraction notice|notice of retraction)\b)")
# Substrings one of _FLAGS needs: testing them first skips the regex for most titles.
_FLAG_HINTS = ("protocol", "errat", "corrig", "correction", "(vol ", "repl", "respon", "letter",
               "comment", "review", "analysis", "retract")
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
_DIGITS = re.compile(r"\d+")
_PAGE_SPAN = re.compile(r"[a-z]?(\d+)(?:-[a-z]?(\d+))?")
_GROUP = re.compile(r"\b(?:group|study|trial|investigators|consortium|collaborat\w*|"
                    r"committee|network|society|association|inc|ltd|pharmaceuticals?)\b", re.I)
# Meeting names vary by indexer ("Americas Conference on Information Systems" = "AMCIS 2017
# Proceedings").
_MEETING = re.compile(r"\b(?:conference|proceedings|congress|symposium|meeting)\b", re.I)
# A journal's English edition prints the same article again under its own DOI and PMID.
_EDITION = re.compile(r"\b(?:engl(?:ish)? ed(?:ition)?)\b", re.I)
_NOT_LOWER = re.compile(r"[^a-z]+")
_NAME_BREAK = re.compile(r"[\s.\-]+")
_THOUSANDS = re.compile(r"(?<=\d) (?=\d{3}\b)")
# Words an ISO 4 abbreviation leaves out, in the languages journal titles come in.
_JOURNAL_STOP = frozenset((
    "the", "of", "and", "for", "in", "on", "a", "an", "de", "d", "del", "della", "des", "du",
    "di", "la", "le", "les", "y", "e", "et", "i", "da", "do", "dos", "das", "der", "die",
    "und", "fur", "fuer", "zur", "zum", "im", "van", "voor", "en", "og", "och", "pa"))
_JOURNAL_SPLIT = re.compile(r"\s*[:;=/]\s*|\s+-\s+|\.(?=[a-z]{3,})|\.\s+|[()\[\]]")


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
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text.translate(_FOLD)))
    return text.lower()


def _words(text: str) -> str:
    # "?" stands for a character an export could not encode ("Cobano?lu"): it is dropped so
    # that the word still resembles the original instead of splitting in two.
    return " ".join(_NON_WORD.sub(" ", text.replace("?", "")).split())


def _clean_title(title: str) -> tuple[str, list[str]]:
    """The title without markup and database notes, and any translated titles it carried."""
    text = fix_mojibake(title)
    if "&" in text:
        text = html.unescape(text)
    extra: list[str] = []
    if "<" in text:
        original = text.lower().find("<original>")
        if original >= 0:
            extra.append(text[original + len("<original>"):])
        text = _TAGS.sub("", text[:original] if original >= 0 else text)
    if "[" in text or "(author" in text or "(Author" in text:
        text = _NOTES.sub(" ", text)
    if "[" in text:
        # "[Chinese]", "[Review] [33 refs]" or a bracketed translation at the end; a long one
        # is the title in another language and is kept as a variant.
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
    return title_keys(title)[0]


def title_flags(title: str | None) -> frozenset[str]:
    """Words that make two similar titles different publications (protocol, erratum…).

    Database notes such as ``[Erratum appears in …]`` are removed first: they mark the
    original article, not an erratum.
    """
    return title_keys(title)[1]


def title_keys(title: str | None) -> tuple[tuple[str, ...], frozenset[str]]:
    """``(title_variants(title), title_flags(title))`` with the title cleaned once."""
    if not title:
        return (), frozenset()
    text, extra = _clean_title(title)
    low = fold(text)
    main = _words(low) or _words(fold(title))
    out = [main] if main else []
    if extra or ";" in text or "=" in text:
        for part in [*_VARIANT_SPLIT.split(low), *extra]:
            words = _words(fold(part))
            if len(words.split()) >= 4 and words not in out:
                out.append(words)
    flags = frozenset()
    if main and any(hint in low for hint in _FLAG_HINTS):
        flags = frozenset(str(m.lastgroup) for m in _FLAGS.finditer(low))
    return tuple(out), flags


def title_numbers(title: str) -> frozenset[str]:
    """The numbers in a normalised title ("Part 2", "phase 3", "HPV 16")."""
    # "10 000" and "10000" are one number.
    return frozenset(_DIGITS.findall(_THOUSANDS.sub("", title)))


def _is_initials(word: str) -> bool:
    """"MP", "M.P.", "M." or "J-P": initials, as opposed to a given name ("Li", "Matthew")."""
    letters = word.replace(".", "").replace("-", "")
    return bool(letters) and letters.isalpha() and letters.isupper() and len(letters) <= 3


@lru_cache(maxsize=1 << 17)
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
    family = _NOT_LOWER.sub("", fold(family))
    given = given.strip()
    compact = given.replace(".", "").replace(" ", "").replace("-", "")
    if compact.isalpha() and compact.isupper() and len(compact) <= 3:
        initials = compact  # "MP", "M. P.", "J-P"
    else:
        initials = "".join(w[0] for w in _NAME_BREAK.split(given) if w)
    return (family, fold(initials) if not initials.isascii() else initials.lower())


_PARTICLES = frozenset(("van", "von", "der", "den", "de", "del", "della", "di", "da", "du",
                        "le", "la", "dos", "das", "ter", "ten"))


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
    """The journal as printed, then each part of it: title, subtitle, place, translation.

    ``"Journal of clinical oncology : official journal of ASCO"`` gives the whole,
    ``"journal of clinical oncology"`` and ``"official journal of asco"``;
    ``"Stroke (00392499)"`` gives ``"stroke"`` too.
    """
    if not journal:
        return ()
    whole = normalize_journal(journal)
    forms = [whole] if whole else []
    for part in _JOURNAL_SPLIT.split(fold(journal).replace("&", " and ")):
        words = _words(part).removeprefix("the ")
        if words and words not in forms and not words.isdigit():
            forms.append(words)
    return tuple(forms)


def _acronym(short: list[str], full: list[str]) -> bool:
    """"CMAJ" for "Canadian Medical Association Journal"."""
    initials = "".join(w[0] for w in full if w not in _JOURNAL_STOP)
    return len(short) == 1 and len(initials) >= 3 and short[0] == initials


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
            if _acronym(wa, wb) or _acronym(wb, wa):
                return True
            if "".join(wa) == "".join(wb):
                return True  # "Dtsch-Med-Wochenschr" vs "Dtsch Med Wochenschr"
    return False


def journal_prefix(a: str, b: str) -> bool:
    """One journal name is the other's first words ("Nephron" of "Nephron Clinical Practice").

    Too weak alone ("Cancer" vs "Cancer Research"); dedupe uses it only when volume and pages
    agree as well.
    """
    wa, wb = normalize_journal(a).split(), normalize_journal(b).split()
    short, long = sorted((wa, wb), key=len)
    return bool(short) and long[:len(short)] == short


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
    match = re.search(r"\d+", volume)
    return match.group(0) if match else ""  # "(Jul)", "Ph.D.": not a volume


def normalize_issue(issue: str | None) -> str:
    """An issue number of one or two digits, else "".

    Supplements ("Suppl 2") and the accession numbers some exports put in the issue field
    ("1011") are not issues to compare.
    """
    text = (issue or "").strip()
    return text if text.isdigit() and len(text) <= 2 else ""


def pages_agree(a: str, b: str) -> bool:
    """Same first page, and the same last page when both print one (normalised pages)."""
    ends_a, ends_b = a.split("-"), b.split("-")
    return ends_a[0] == ends_b[0] and (len(ends_a) < 2 or len(ends_b) < 2 or ends_a == ends_b)


def pages_overlap(a: str, b: str) -> bool:
    """Do two normalised page ranges share a page? Unknown (missing, not numeric) is yes."""
    spans = []
    for pages in (a, b):
        match = _PAGE_SPAN.fullmatch(pages)
        if not match:
            return True
        start = int(match.group(1))
        spans.append((start, int(match.group(2) or start)))
    (a0, a1), (b0, b1) = spans
    return a0 <= b1 and b0 <= a1


def doi_versions(a: str, b: str) -> bool:
    """Two versions of one item: ``….CD002273.pub2`` vs ``.pub3``, ``….14677.1`` vs ``.2``."""
    base_a, _, tail_a = a.rpartition(".")
    base_b, _, tail_b = b.rpartition(".")
    return (base_a == base_b and bool(base_a)
            and all(t.removeprefix("pub").removeprefix("v").isdigit() for t in (tail_a, tail_b)))


def author_overlap(a: frozenset[str], b: frozenset[str]) -> float | None:
    """Share of the shorter list of family names found in the other, or None if one is empty.

    A compound family name printed whole in one export and cut in another counts as found
    ("silvestretorner" and "torner").
    """
    if not a or not b:
        return None
    shared = len(a & b)
    if shared < min(len(a), len(b)):
        shared += sum(1 for x in a - b if any(
            len(x) >= 4 and len(y) >= 4 and (x.endswith(y) or y.endswith(x)) for y in b - a))
    return min(1.0, shared / min(len(a), len(b)))


def name_words(authors: list[str]) -> frozenset[str]:
    """Name words of the first author, in any order ("Wang Weiming" = "Weiming Wang")."""
    for author in authors:
        words = {w for w in fold(author).replace(".", " ").replace(",", " ").split()
                 if len(w) > 1 and w.isalpha()}
        if words and not {"et", "al"} >= words:
            return frozenset(words)
    return frozenset()


def is_group_author(author: str) -> bool:
    """A study group, company or committee rather than a person."""
    return bool(_GROUP.search(author))


def is_meeting(journal: str) -> bool:
    """A conference or proceedings name rather than a journal."""
    return bool(_MEETING.search(journal))


def is_english_edition(journal: str) -> bool:
    """A journal's English edition ("An Pediatr (Engl Ed)")."""
    return bool(_EDITION.search(journal))
