"""Numbers as trial reports write them: words, decimals, p-values, times, ``mean (SD)`` and CIs.

Pure functions over strings. Every finder returns character offsets into the string it was
given, so a caller can keep a span back to its source text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {
    "zero": 0, "no": 0, "none": 0, "a single": 1, "single": 1, "one": 1, "two": 2, "three": 3,
    "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
    "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
             "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "twelfth": 12}
_BASIC = "|".join(sorted([k for k in _UNITS if k not in ("no", "none", "a single", "single",
                                                          "zero")] + list(_TENS),
                         key=len, reverse=True))
# "One hundred and eleven", "Eighty-four", "twenty one": a scale word joins the parts.
WORD_NUMBER = (rf"(?:(?:{_BASIC})(?:[\s-](?:{_BASIC}))?(?:\s+(?:hundred|thousand)"
               rf"(?:\s+and)?(?:\s+(?:{_BASIC})(?:[\s-](?:{_BASIC}))?)?)?)")
# A decimal in text: 1,234.5 · .013 · −14.4 (a sign only where it cannot be a range dash).
DIGITS = (r"(?<![\w.])(?:[-−–](?=\d|\.\d))?"
          r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?![\d])")
NUMBER = rf"(?:{DIGITS}|\b{WORD_NUMBER}\b)"
WEEKS_PER = {"day": 1 / 7, "week": 1.0, "month": 52.143 / 12, "year": 52.143}


def parse_number_words(text: str) -> int | None:
    """``"One hundred and eleven"`` → 111, ``"Eighty-four"`` → 84; None if not a number.

    Examples
    --------
    >>> parse_number_words("One hundred and eleven"), parse_number_words("twenty-two")
    (111, 22)
    """
    words = re.sub(r"[\s-]+", " ", text.lower().strip()).replace(" and ", " ").split()
    if not words:
        return None
    if " ".join(words) in _UNITS:
        return _UNITS[" ".join(words)]
    total, current = 0, 0
    for word in words:
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
        else:
            return None
    return total + current


def parse_number(text: str) -> float | None:
    """A number written with digits or words (``"−14.4"``, ``".013"``, ``"Sixteen"``)."""
    raw = text.strip().replace("−", "-").replace("–", "-").replace(",", "")
    raw = re.sub(r"(?<=\d)[\s\u2009\u202f](?=\d{3}\b)", "", raw)  # "98 942" thin-space groups
    try:
        return float(raw)
    except ValueError:
        value = parse_number_words(text)
        return float(value) if value is not None else None


def to_weeks(value: float, unit: str) -> float:
    """Weeks after the reference point, rounded to 0.01 (``3 months`` → 13.04)."""
    unit = unit.lower().rstrip("s")
    unit = {"wk": "week", "mo": "month", "yr": "year"}.get(unit, unit)
    return round(value * WEEKS_PER[unit], 2)


@dataclass(frozen=True)
class TimeMention:
    """A time point in text: ``weeks`` (None for baseline), its label and offsets."""

    start: int
    end: int
    weeks: float | None
    label: str
    duration: bool = False  # "for six weeks": how long something lasted, not when it was measured
    reference: bool = False  # "from baseline": the comparison point, not the measurement

    @property
    def baseline(self) -> bool:
        return self.weeks is None


_UNIT = r"(?P<unit>days?|weeks?|wk|months?|mo|years?)\b"
_TIME_LIST = re.compile(
    rf"(?P<nums>{NUMBER}(?:\s*,\s*{NUMBER})*(?:,?\s+(?:and|or)\s+{NUMBER})?)[\s-]*{_UNIT}", re.I)
_WEEK_N = re.compile(r"\b(?:week|day|month)\s+(?P<num>\d+)\b", re.I)
_ORDINAL_WEEK = re.compile(rf"\b(?P<ord>{'|'.join(_ORDINALS)})\s+(?P<unit>week|month|day)\b",
                           re.I)
_BASELINE = re.compile(r"\b(?:at\s+)?baseline\b|\bbefore\s+(?:the\s+)?(?:treatment|intervention|"
                       r"therapy|needling)\b|\bpre-?(?:treatment|intervention)\b", re.I)
_POST = re.compile(r"\bimmediately\s+(?:after|post)[\w-]*(?:\s+(?:the\s+)?(?:treatment|"
                   r"intervention|session|needling))?|\b(?:after|following|post)[\s-]+(?:the\s+)?"
                   r"(?:treatment|intervention|therapy)\b|\bpost-?(?:treatment|intervention)\b|"
                   r"\bend of (?:the\s+)?(?:treatment|intervention)\b", re.I)
_DURATION_BEFORE = re.compile(
    r"(?:\bfor(?:\s+a\s+further)?|\bover(?:\s+the)?|\blasted(?:\s+at\s+least)?|\bduring|\bwithin|"
    r"\bprevious|\bpast|\blast|\bat\s+least|\bmore\s+than|\bup\s+to|\baged?|\bage\s+of|"
    r"\bevery|\bfollowed\s+for|\bspanning)\s*$", re.I)
_DURATION_AFTER = re.compile(r"^\s*(?:old|of\s+age|of\s+(?:treatment|intervention|follow-up|"
                             r"therapy|symptoms?)|a\s+week|per\s+week|duration|\+/-|±)", re.I)
_REFERENCE_BEFORE = re.compile(r"(?:\bfrom|\bsince|\bcompared\s+with|\brelative\s+to|\bover)\s*$",
                               re.I)


def find_times(text: str) -> list[TimeMention]:
    """Time expressions in ``text``, in order: numbers with units, baseline, end of treatment.

    A list ("at 4, 8 and 12 weeks") gives one mention per number, all with the list's unit.
    Durations ("for six weeks", "aged 18 to 65 years") are flagged, not dropped.
    """
    found: list[TimeMention] = []
    taken: list[tuple[int, int]] = []
    for match in _TIME_LIST.finditer(text):
        unit = match.group("unit")
        before = text[max(0, match.start() - 25):match.start()]
        after = text[match.end():match.end() + 20]
        duration = bool(_DURATION_BEFORE.search(before) or _DURATION_AFTER.match(after))
        if re.search(r"\b(?:after|at|by|following)\s*$", before, re.I):  # "after four weeks of …"
            duration = bool(_DURATION_BEFORE.search(before))
        if re.search(r"\d\s*(?:to|-|–)\s*$|(?:\+/-|±)\s*$", before):  # "18 to 65 years", "± 8"
            duration = True
        for num in re.finditer(NUMBER, match.group("nums"), re.I):
            value = parse_number(num.group(0))
            if value is None:
                continue
            start, end = match.start("nums") + num.start(), match.start("nums") + num.end()
            label = f"{num.group(0)} {unit}"
            found.append(TimeMention(start, end if num.end() < len(match.group("nums"))
                                     else match.end(), to_weeks(value, unit), label, duration))
        taken.append((match.start(), match.end()))
    for pattern in (_WEEK_N, _ORDINAL_WEEK):
        for match in pattern.finditer(text):
            if any(a <= match.start() < b for a, b in taken):
                continue
            raw = match.groupdict().get("num") or match.group("ord")
            value = parse_number(raw) if raw[0].isdigit() else _ORDINALS[raw.lower()]
            unit = match.group("unit") if "unit" in match.groupdict() else match.group(0).split()[0]
            found.append(TimeMention(match.start(), match.end(), to_weeks(value, unit),
                                     match.group(0)))
            taken.append((match.start(), match.end()))
    for pattern, weeks in ((_BASELINE, None), (_POST, 0.0)):
        for match in pattern.finditer(text):
            # "8 weeks after treatment": the number already said when.
            if any(a <= match.start() <= b + 3 for a, b in taken):
                continue
            before = text[max(0, match.start() - 25):match.start()]
            found.append(TimeMention(match.start(), match.end(), weeks, match.group(0),
                                     reference=bool(_REFERENCE_BEFORE.search(before))))
            taken.append((match.start(), match.end()))
    return sorted(found, key=lambda t: (t.start, t.end))


@dataclass(frozen=True)
class PValue:
    start: int
    end: int
    text: str  # normalised: "0.002", "<0.001", "<=0.05", ">0.05"


_P = re.compile(r"\b[Pp](?:\s*-?\s*value)?\s*(?P<op><=|>=|≤|≥|=|<|>|below|under|less than)\s*"
                r"(?P<v>0?\.\d+|[01](?:\.\d+)?)(?!\d)")
_OPS = {"=": "", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "≤": "<=", "≥": ">=",
        "below": "<", "under": "<", "less than": "<"}


def find_p_values(text: str) -> list[PValue]:
    """``p=0.002``, ``P < .001``, ``p <= .05``, ``P below 0.001`` → normalised strings."""
    out = []
    for match in _P.finditer(text):
        value = match.group("v")
        if value.startswith("."):
            value = "0" + value
        out.append(PValue(match.start(), match.end(), _OPS[match.group("op")] + value))
    return out


def normalise_p(text: str) -> str:
    """A p-value string as ``find_p_values`` writes it (``"P < .001"`` → ``"<0.001"``)."""
    found = find_p_values(text if re.match(r"\s*[Pp]\b", text) else f"p {text.strip()}")
    if found:
        return found[0].text
    return text.strip().replace(" ", "")


@dataclass(frozen=True)
class Stat:
    """One reported statistic with its offsets in the text it was found in."""

    start: int
    end: int
    kind: str  # mean_sd · mean_se · ci · median_iqr · count_pct · percent · number · p · range
    value: float | None = None
    spread: float | None = None  # SD or SE
    low: float | None = None
    high: float | None = None
    p: str | None = None
    unit: str = ""


def _num(name: str) -> str:
    return f"(?P<{name}>{DIGITS})"


_UNIT_TAIL = r"(?:\s*(?P<unit>mm|cm|points?|kg/cm2|kg))?"
_MEAN_SD = re.compile(
    _num("m") + _UNIT_TAIL + r"\s*(?:\(\s*(?:SD|s\.d\.|sd)\s*[=:]?\s*" + _num("s")
    + r"\s*\)|(?:±|\+/-|\+-|&#x000b1;)\s*" + _num("s2") + r")")
_MEAN_PAREN = re.compile(_num("m") + _UNIT_TAIL + r"\s*\(\s*" + _num("s")
                         + r"\s*(?P<u2>mm|cm|points?)?\s*(?:\)|;)")
_CI = re.compile(
    _num("m") + _UNIT_TAIL + r"(?P<mid>[^()\d]{0,60}?)[\s,]*[(\[]\s*(?:95\s*%\s*"
    r"(?:CI|confidence interval)\s*[:,=]?\s*)" + _num("lo") + r"\s*(?:to|–|,|-|—)\s*"
    + _num("hi") + r"\s*(?P<tail>[^()\]]*)[)\]]")
# "(0.32 points, 95% CI -1.12 to 1.18; P = 0.92)", "(mean difference 4.4, 95% CI 2.3 to 6.5)"
_CI_INSIDE = re.compile(
    r"\(\s*(?P<label>[A-Za-z][A-Za-z\s-]{0,30}?\s)?\s*" + _num("m") + _UNIT_TAIL
    + r"\s*[,;]\s*95\s*%\s*(?:CI|confidence interval)\s*[:,=]?\s*" + _num("lo")
    + r"\s*(?:to|–|,|-|—)\s*" + _num("hi") + r"\s*(?P<tail>[^()]*)\)")
_MEDIAN_IQR = re.compile(r"\bmedian\b[^()\d]{0,40}?" + _num("m") + r"\s*\(\s*(?:IQR|"
                         r"interquartile range)\s*[:,=]?\s*" + _num("lo")
                         + r"\s*(?:to|–|-|,)\s*" + _num("hi") + r"\s*\)", re.I)


def _f(text: str | None) -> float | None:
    return parse_number(text) if text else None


def find_stats(text: str) -> list[Stat]:
    """``mean (SD x)``, ``mean ± SD``, ``estimate (95% CI a to b; p=…)``, ``median (IQR a–b)``.

    Non-overlapping, in text order. A bare ``a (b)`` is reported as ``mean_sd`` only when the
    caller passes text that speaks of means (it cannot be told from ``26 (51%)`` otherwise).
    """
    stats: list[Stat] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s.start or a >= s.end for s in stats)

    for match in _CI.finditer(text):
        tail = match.group("tail") or ""
        ps = find_p_values(tail)
        if free(match.start("m"), match.end()):
            stats.append(Stat(match.start("m"), match.end(), "ci", _f(match.group("m")),
                              low=_f(match.group("lo")), high=_f(match.group("hi")),
                              p=ps[0].text if ps else None, unit=match.group("unit") or ""))
    for match in _CI_INSIDE.finditer(text):
        ps = find_p_values(match.group("tail") or "")
        if free(match.start(), match.end()):
            stats.append(Stat(match.start(), match.end(), "ci", _f(match.group("m")),
                              low=_f(match.group("lo")), high=_f(match.group("hi")),
                              p=ps[0].text if ps else None, unit=match.group("unit") or ""))
    for match in _MEDIAN_IQR.finditer(text):
        if free(match.start("m"), match.end()):
            stats.append(Stat(match.start("m"), match.end(), "median_iqr", _f(match.group("m")),
                              low=_f(match.group("lo")), high=_f(match.group("hi"))))
    for match in _MEAN_SD.finditer(text):
        if free(match.start(), match.end()):
            spread = match.group("s") or match.group("s2")
            stats.append(Stat(match.start(), match.end(), "mean_sd", _f(match.group("m")),
                              _f(spread), unit=match.group("unit") or ""))
    return sorted(stats, key=lambda s: s.start)


def find_bare_mean_sd(text: str) -> list[Stat]:
    """``2.57 (3.45)``: mean (SD) without the label; percentages and CIs are not matched."""
    out = []
    for match in _MEAN_PAREN.finditer(text):
        if "%" in text[match.end("s"):match.end("s") + 2]:
            continue
        out.append(Stat(match.start(), match.end(), "mean_sd", _f(match.group("m")),
                        _f(match.group("s")), unit=match.group("unit") or match.group("u2") or ""))
    return out


def find_numbers(text: str) -> list[tuple[int, int, float]]:
    """Every number (digits or words) in ``text`` with its offsets."""
    out = []
    for match in re.finditer(NUMBER, text, re.I):
        value = parse_number(match.group(0))
        if value is not None and match.group(0).strip():
            out.append((match.start(), match.end(), value))
    return out


_ABBREV_DOT = re.compile(r"(?:\b(?:vs|al|e\.g|i\.e|approx|Fig|no|Dr|St)|\b[A-Z])\.$")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence offsets: a full stop, ? or ! followed by space and a capital, digit or quote."""
    spans, start = [], 0
    for match in re.finditer(r"[.?!](?=\s+[A-Z0-9\"'(])", text):
        if _ABBREV_DOT.search(text[max(start, match.start() - 6):match.end()]):
            continue
        spans.append((start, match.end()))
        start = match.end()
        while start < len(text) and text[start].isspace():
            start += 1
    if start < len(text):
        spans.append((start, len(text.rstrip())))
    return [(a, b) for a, b in spans if b > a]


# ------------------------------------------------------------------ table cells

_CELL_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("p", re.compile(r"^\s*(?:[Pp]\s*)?(?P<op><=|>=|≤|≥|<|>|=)\s*(?P<v>0?\.\d+)\s*$")),
    ("mean_sd", re.compile(r"^\s*" + _num("m") + r"\s*(?:±|\+/-|\+-)\s*"
                           + _num("s") + r"\s*$")),
    ("ci", re.compile(r"^\s*" + _num("m") + r"\s*[(\[]\s*" + _num("lo")
                      + r"\s*(?:to|–|-|—|,)\s*" + _num("hi") + r"\s*[)\]]\s*$")),
    ("count_pct", re.compile(r"^\s*" + _num("m") + r"\s*(?:\(\s*" + _num("s")
                             + r"\s*%\s*\)|" + _num("s2") + r"\s*%)\s*$")),
    ("mean_sd", re.compile(r"^\s*" + _num("m") + r"\s*\(\s*" + _num("s")
                           + r"\s*\)\s*$")),
    ("range", re.compile(r"^\s*[\[(]?\s*" + _num("lo") + r"\s*(?:to|–|,|—)\s*"
                         + _num("hi") + r"\s*[\])]?\s*$")),
    ("percent", re.compile(r"^\s*" + _num("m") + r"\s*%\s*$")),
    ("number", re.compile(r"^\s*" + _num("m") + r"\s*[a-z*†‡§]{0,3}\s*$")),
]


def parse_cell(text: str) -> Stat | None:
    """One table cell's value: ``57.4 (8.0)``, ``0.93 (0.84–1.03)``, ``0.12±0.02``, ``<0.001``.

    Thousands written with a (thin) space, ``98 942``, are read as one number. Returns None
    for text cells. Offsets span the whole value inside ``text``.
    """
    cleaned = re.sub(r"(?<=\d)[ \u2009\u202f](?=\d{3}\b)", "\u2009", text)
    probe = cleaned.replace("\u2009", "")
    shift = _offsets(cleaned)
    for kind, pattern in _CELL_PATTERNS:
        match = pattern.match(probe)
        if not match:
            continue
        groups = match.groupdict()
        start, end = _strip_bounds(probe)
        if kind == "p":
            value = match.group("v")
            value = "0" + value if value.startswith(".") else value
            op = _OPS.get(groups.get("op") or "=", "")
            return Stat(shift[start], shift[end], "p", p=op + value)
        spread = groups.get("s") or groups.get("s2")
        return Stat(shift[start], shift[end], kind, _f(groups.get("m")), _f(spread),
                    _f(groups.get("lo")), _f(groups.get("hi")))
    return None


def _offsets(cleaned: str) -> list[int]:
    """Map offsets in ``cleaned`` with thin spaces removed back to offsets in ``cleaned``."""
    out = [i for i, ch in enumerate(cleaned) if ch != "\u2009"]
    out.append(len(cleaned))
    return out


def _strip_bounds(text: str) -> tuple[int, int]:
    start = len(text) - len(text.lstrip())
    return start, len(text.rstrip())


# ------------------------------------------------------------------ words and brackets


def stem_word(word: str) -> str:
    word = word.lower()
    for suffix in ("ing", "es", "s", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


def find_abbreviations(text: str) -> dict[str, str]:
    """``dry needling (DN)`` → {"DN": "dry needling"}: the shortest preceding words that start
    with the abbreviation's first letter."""
    out: dict[str, str] = {}
    for match in re.finditer(r"\(([A-Z][A-Za-z0-9-]{1,9})[),;]", text):
        abbr = match.group(1)
        if sum(c.isupper() for c in abbr) < 2 or abbr in out:
            continue
        words = re.findall(r"[A-Za-z][\w'-]*", text[max(0, match.start() - 80):match.start()])
        for k in range(1, min(len(words), len(abbr) + 2) + 1):
            expansion = " ".join(words[-k:])
            if expansion[0].lower() == abbr[0].lower() and _in_order(abbr, expansion):
                out[abbr] = expansion
                break
    return out


def _in_order(abbr: str, expansion: str) -> bool:
    """Every letter of the abbreviation appears in the expansion, in order."""
    rest = expansion.lower()
    for letter in abbr.lower():
        if not letter.isalnum():
            continue
        at = rest.find(letter)
        if at < 0:
            return False
        rest = rest[at + 1:]
    return True


def word_pattern(alias: str) -> re.Pattern[str]:
    body = r"[\s-]*".join(re.escape(part) for part in alias.split())  # "shock wave" = "shockwave"
    flags = 0 if alias.isupper() or re.search(r"[A-Z]{2}", alias) else re.I
    return re.compile(rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])", flags)


def mask_brackets(text: str, start: int, end: int) -> str:
    """``text[start:end]`` with everything inside brackets blanked, offsets unchanged."""
    out, depth = [], 0
    for ch in text[start:end]:
        depth += ch in "(["
        out.append("_" if depth > 0 else ch)
        depth -= ch in ")]" and depth > 0
    return "".join(out)


_DELIM = re.compile(r"[,;:]|\b(?:and|or|but|whereas|while)\b")


def list_items(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """List items of ``text[start:end]`` split at commas and conjunctions outside brackets."""
    masked, out, last = mask_brackets(text, start, end), [], 0
    for m in _DELIM.finditer(masked):
        out.append((start + last, start + m.start()))
        last = m.end()
    out.append((start + last, end))
    return [(x, y) for x, y in out if text[x:y].strip()]


def enclosing_brackets(text: str, lo: int, pos: int) -> tuple[int, int] | None:
    """The innermost bracket pair around ``pos`` that opens at or after ``lo``."""
    depth = 0
    for i in range(pos - 1, lo - 1, -1):
        if text[i] in ")]":
            depth += 1
        elif text[i] in "([":
            if depth == 0:
                close = i
                level = 0
                for j in range(i, len(text)):
                    level += text[j] in "(["
                    level -= text[j] in ")]"
                    if level == 0:
                        close = j
                        break
                return i, close
            depth -= 1
    return None


def split_clauses(text: str, a: int, b: int) -> list[tuple[int, int]]:
    """Parts of a sentence that can carry their own result: split at semicolons and at
    "but", "except", "whereas", "while", "although" outside brackets."""
    masked, out, last = mask_brackets(text, a, b), [], a
    for m in re.finditer(r";|,?\s+\b(?:but|except|whereas|while|although)\b", masked):
        out.append((last, a + m.start()))
        last = a + m.end()
    out.append((last, b))
    return out
