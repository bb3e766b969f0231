"""Helpers shared by the text readers: decoding with line-accurate errors, ids, dates, DOIs."""

from __future__ import annotations

import gzip
import hashlib
import re
import zlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote

from ..errors import InputError
from ..records import Record, find_registrations, make_record_id, normalize_doi

GZIP_MAGIC = b"\x1f\x8b"

_MONTHS = {
    "jan": "01", "feb": "02", "mar": "03", "apr": "04", "may": "05", "jun": "06",
    "jul": "07", "aug": "08", "sep": "09", "oct": "10", "nov": "11", "dec": "12",
}
_DOI_IN_TEXT = re.compile(r"\b(10\.\d{4,9}/[^\s&?#\"'<>\]\[]+)")
# Literal starts of the alternatives in records._REGISTRATION (tests check they stay in step).
REGISTRY_PREFIXES = ("NCT", "ISRCTN", "ACTRN", "IRCT", "CTRI", "CHICTR", "DRKS", "CRD", "EUCTR",
                     "JPRN", "KCT", "TCTR", "PACTR", "RBR", "NTR", "SLCTR")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# MEDLINE DP/RIS DA values: "2014 Aug 12", "2014/08/12", "2014-08", "2014 Aug-Sep".
_DATE = re.compile(
    r"^\s*(\d{4})(?:[\s/-]+(\d{1,2}|[A-Za-z]{3})[A-Za-z]*(?:[\s/-]+(\d{1,2})(?!\d))?)?"
)


def check_regular_file(path: str | Path) -> None:
    """InputError unless ``path`` is a regular file (a FIFO or device could block forever)."""
    target = Path(path)
    try:
        odd = target.exists() and not target.is_file()
    except (OSError, ValueError) as exc:  # e.g. a NUL byte or an over-long name
        raise InputError(str(path), f"cannot read file: {exc}") from exc
    if odd:
        kind = "a directory" if target.is_dir() else "not a regular file"
        raise InputError(str(path), f"cannot read file: {kind}")


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip; OS and gzip failures become InputError."""
    check_regular_file(path)
    try:
        data = Path(path).read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise InputError(str(path), f"cannot read file: {getattr(exc, 'strerror', None) or exc}"
                         ) from exc
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(str(path), f"corrupt gzip data: {exc}") from exc
    return data


def decode_text(path: str | Path, data: bytes) -> str:
    """UTF-8 text (BOM dropped), or InputError at the line of the first NUL or undecodable byte."""
    nul = data.find(b"\x00")
    if nul >= 0:
        # NUL never occurs in RIS/MEDLINE/CSV text: this is a binary or UTF-16 file.
        raise InputError(str(path), "binary data (NUL byte), not a UTF-8 text file",
                         line=data.count(b"\n", 0, nul) + 1)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        raise InputError(str(path), f"not valid UTF-8 (byte 0x{bad:02x}); re-export as UTF-8",
                         line=data.count(b"\n", 0, exc.start) + 1) from exc
    return text


def read_text(path: str | Path) -> str:
    """Decoded text of a (possibly gzipped) UTF-8 file."""
    return decode_text(path, read_bytes(path))


def split_lines(text: str) -> list[str]:
    """Lines split on \\n, \\r\\n or \\r only (``str.splitlines`` also splits on U+2028...)."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def may_hold_registration(text: str | None) -> bool:
    """False only when ``find_registrations`` surely finds nothing in ``text``.

    ``find_registrations`` runs a case-insensitive 16-way regex at every word boundary, about
    90 us per abstract: most of the XML parse budget. Every match starts, at a word boundary,
    with one of ``REGISTRY_PREFIXES``; plain substring search for them is four times cheaper.
    """
    if not text:
        return False
    upper = text.upper()
    for prefix in REGISTRY_PREFIXES:
        at = upper.find(prefix)
        while at >= 0:
            if at == 0 or not (upper[at - 1].isalnum() or upper[at - 1] == "_"):
                return True
            at = upper.find(prefix, at + 1)
    return False


def registrations_in(*texts: str | None) -> list[str]:
    """``find_registrations`` over the texts that can hold a registration number at all."""
    return find_registrations(*(t for t in texts if may_hold_registration(t)))


def find_doi(*texts: str | None) -> str | None:
    """The first DOI inside free text or a URL (percent-encoded ``%2F`` included)."""
    for text in texts:
        if not text or "10." not in text:
            continue
        match = _DOI_IN_TEXT.search(unquote(text))
        if match:
            doi = normalize_doi(match.group(1).rstrip(".,;)"))
            if doi:
                return doi
    return None


def is_digits(text: str | None) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts "²", which ``int()`` then rejects."""
    return bool(text) and text.isascii() and text.isdigit()  # type: ignore[union-attr]


def month_number(value: str | None) -> str | None:
    """``"Aug"``/``"8"``/``"08"`` -> ``"08"``; None for seasons and junk."""
    if not value:
        return None
    value = value.strip()
    if is_digits(value):
        number = int(value)
        return f"{number:02d}" if 1 <= number <= 12 else None
    return _MONTHS.get(value[:3].lower())


def partial_date(year: str | None, month: str | None = None, day: str | None = None) -> str | None:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` from parts; stops at the first missing part."""
    if not year or len(year) != 4 or not is_digits(year):
        return None
    mm = month_number(month)
    if not mm:
        return year
    if day and is_digits(day.strip()) and 1 <= int(day) <= 31:
        return f"{year}-{mm}-{int(day):02d}"
    return f"{year}-{mm}"


def parse_date_text(value: str | None) -> str | None:
    """A partial ISO date from free date text (``2014 Aug 12``, ``2019/06/01/``, ``2019///``)."""
    if not value:
        return None
    match = _DATE.match(value)
    if not match:
        return None
    return partial_date(match.group(1), match.group(2), match.group(3))


def fingerprint(parts: Sequence[object]) -> str:
    """A full-content digest, used only to order records whose short ids collide."""
    return hashlib.sha1(repr(list(parts)).encode("utf-8")).hexdigest()


def assign_ids(records: list[Record], base_ids: list[str], fingerprints: list[str],
               source: str) -> None:
    """Set ``source_id``/``record_id``; colliding ids get ``-2``, ``-3``… by content, not order.

    Colliding records are ranked by a digest of their whole content, so shuffling the file
    gives every record the same id. Records that are identical in content are interchangeable,
    so their relative order does not matter.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for index, base in enumerate(base_ids):
        groups[base].append(index)
    taken = set(groups)
    for base, members in groups.items():
        members.sort(key=lambda i: fingerprints[i])
        for rank, index in enumerate(members):
            source_id = base
            if rank:
                suffix = rank + 1
                # A generated "x-2" must not clash with a record whose own id is "x-2".
                while f"{base}-{suffix}" in taken:
                    suffix += 1
                source_id = f"{base}-{suffix}"
                taken.add(source_id)
            records[index].source_id = source_id
            records[index].record_id = make_record_id(source, source_id)


def source_name(path: str | Path) -> str:
    """A default source name: the file name without ``.gz`` and its format suffix."""
    name = Path(path).name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    return Path(name).stem or name
