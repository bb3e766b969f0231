"""Read every input format (PubMed XML, RIS, MEDLINE text, CSV) into ``Record``s.

Every reader either returns records or raises ``InputError`` naming the file and, where it can,
the line or record: never another exception type.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError
from ..records import Record
from .csvfile import read_csv
from .medline import read_medline
from .pubmed_xml import iter_pubmed_xml, read_pubmed_xml
from .ris import read_ris
from .safexml import open_xml

FORMATS = ["pubmed-xml", "ris", "medline", "csv"]

__all__ = ["FORMATS", "iter_pubmed_xml", "read_csv", "read_medline", "read_pubmed_xml",
           "read_records", "read_ris", "sniff_format"]

_SUFFIXES = {".xml": "pubmed-xml", ".ris": "ris", ".nbib": "medline", ".medline": "medline",
             ".csv": "csv"}
_RIS_LINE = re.compile(r"^\ufeff?TY  -", re.MULTILINE)
_MEDLINE_LINE = re.compile(r"^PMID- ", re.MULTILINE)
_SNIFF_BYTES = 1 << 16


def sniff_format(path: str | Path) -> str:
    """The format of ``path`` from its suffix (``.gz`` ignored), else from its content.

    ``.txt`` and unknown suffixes are decided by content: XML markup, a ``TY  -`` line (RIS) or
    a ``PMID- `` line (MEDLINE), whichever comes first.

    Raises
    ------
    InputError
        The file cannot be read, or the format cannot be told.
    """
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    fmt = _SUFFIXES.get(Path(name).suffix)
    if fmt:
        return fmt
    try:
        with open_xml(path) as stream:  # gunzips transparently, like every reader
            raw = stream.read(_SNIFF_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(str(path), f"corrupt gzip data: {exc}") from exc
    head = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    if head.lstrip().startswith("<"):
        return "pubmed-xml"
    ris, medline = _RIS_LINE.search(head), _MEDLINE_LINE.search(head)
    if ris and (not medline or ris.start() < medline.start()):
        return "ris"
    if medline:
        return "medline"
    raise InputError(str(path), "cannot tell the file format (not XML, RIS or MEDLINE text); "
                     f"pass format= one of {', '.join(FORMATS)}")


def read_records(path: str | Path, *, source: str, format: str | None = None,
                 database: str | None = None, column_map: dict[str, str] | None = None,
                 list_separator: str = ";") -> list[Record]:
    """Read one input file into Records.

    Parameters
    ----------
    path
        The file; ``Record.file`` keeps it as given (``str(path)``).
    source
        The caller's name for the source (``"pubmed"``, a file stem…); ``record_id`` is
        ``f"{source}:{source_id}"``.
    format
        One of ``FORMATS``; None sniffs it (see ``sniff_format``).
    database
        ``Record.database`` for every record; None uses the record's own field (RIS ``DB``, a
        mapped CSV column) and then the format's default (``"PubMed"`` for XML and MEDLINE).
    column_map
        CSV only: our field name -> the file's column header.
    list_separator
        CSV only: separator inside list cells such as authors.

    Raises
    ------
    InputError
        Unknown format, or any problem reading the file.
    """
    fmt = format or sniff_format(path)
    readers: dict[str, Callable[[], list[Record]]] = {
        "pubmed-xml": lambda: read_pubmed_xml(path, source=source,
                                              database=database or "PubMed"),
        "medline": lambda: read_medline(path, source=source, database=database or "PubMed"),
        "ris": lambda: read_ris(path, source=source, database=database),
        "csv": lambda: read_csv(path, column_map=column_map, source=source, database=database,
                                list_separator=list_separator),
    }
    if fmt not in readers:
        raise InputError(str(path), f"unknown format {fmt!r}; expected one of "
                         f"{', '.join(FORMATS)}")
    return readers[fmt]()
