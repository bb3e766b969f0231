"""Read PMC full text (JATS XML) safely: metadata, abstract, body text and tables as cells.

The XML is parsed by ``defusedxml`` with entity declarations forbidden: a file declaring
``<!ENTITY`` is refused before anything is expanded, and the external DTD named in the
DOCTYPE is never fetched. Each table cell keeps its text and a source label
``pmc:<table label> r<i>c<j>`` (1-based, header rows counted, spans expanded), so every number
read from a table can be traced to its cell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from reviewpipe.errors import InputError
from reviewpipe.numbers import Stat, parse_cell
from reviewpipe.readers.safexml import ENTITIES_REFUSED

_SKIP_IN_BODY = {"table-wrap", "fig", "ref-list", "fn-group", "supplementary-material",
                 "disp-formula", "graphic", "media"}
_BREAKS = {"p", "title", "sec", "list-item", "caption", "label", "break", "tr"}


@dataclass(frozen=True)
class Cell:
    """One table cell: its grid position (1-based), text, value and source label."""

    row: int
    col: int
    text: str
    source: str
    header: bool
    value: Stat | None = None


@dataclass(frozen=True)
class Table:
    label: str
    caption: str
    rows: list[list[Cell]]
    foot: str = ""

    def cell(self, row: int, col: int) -> Cell | None:
        for cell in self.rows[row - 1] if 0 < row <= len(self.rows) else []:
            if cell.col == col:
                return cell
        return None

    @property
    def n_header_rows(self) -> int:
        return sum(1 for r in self.rows if r and all(c.header for c in r))


@dataclass(frozen=True)
class Article:
    """A JATS article: ids, title, abstract and body as plain text, and its tables."""

    pmcid: str | None
    pmid: str | None
    doi: str | None
    title: str
    abstract: str
    body: str
    tables: list[Table] = field(default_factory=list)


def read_jats(path_or_bytes: str | Path | bytes, *, name: str | None = None) -> Article:
    """Parse a JATS article from a path or bytes.

    Raises
    ------
    InputError
        Unreadable file, entity declarations (refused unexpanded) or malformed XML.
    """
    if isinstance(path_or_bytes, bytes):
        where, data = name or "<bytes>", path_or_bytes
    else:
        where = str(path_or_bytes)
        try:
            data = Path(path_or_bytes).read_bytes()
        except OSError as exc:
            raise InputError(where, f"cannot read file: {exc.strerror or exc}") from exc
    try:
        root = fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise InputError(where, ENTITIES_REFUSED) from exc
    except ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise InputError(where, f"malformed XML: {str(exc).split(': line ')[0]}",
                         line=line) from exc
    _strip_namespaces(root)
    meta = root.find("front/article-meta")
    ids = {}
    if meta is not None:
        for node in meta.findall("article-id"):
            ids[node.get("pub-id-type", "")] = (node.text or "").strip()
    pmcid = ids.get("pmc") or ids.get("pmcid")
    if pmcid and not pmcid.upper().startswith("PMC"):
        pmcid = f"PMC{pmcid}"
    title_node = meta.find("title-group/article-title") if meta is not None else None
    abstract_node = meta.find("abstract") if meta is not None else None
    body_node = root.find("body")
    tables = [_table(node, i) for i, node in enumerate(root.iter("table-wrap"), start=1)
              if node.find(".//table") is not None]
    return Article(
        pmcid=pmcid, pmid=ids.get("pmid"), doi=(ids.get("doi") or "").lower() or None,
        title=_text(title_node) if title_node is not None else "",
        abstract=_block_text(abstract_node) if abstract_node is not None else "",
        body=_block_text(body_node) if body_node is not None else "",
        tables=tables,
    )


def _strip_namespaces(root: Element) -> None:
    for node in root.iter():
        if isinstance(node.tag, str) and node.tag.startswith("{"):
            node.tag = node.tag.split("}", 1)[1]


def _text(node: Element) -> str:
    return re.sub(r"\s+", " ", "".join(node.itertext())).strip()


def _block_text(node: Element) -> str:
    """Paragraphs and titles as lines; tables and figures left out (tables are read apart)."""
    parts: list[str] = []

    def walk(el: Element) -> None:
        if el.tag in _SKIP_IN_BODY:
            if el.tail:
                parts.append(el.tail)
            return
        if el.tag in _BREAKS:
            parts.append("\n")
        if el.text:
            parts.append(el.text)
        for child in el:
            walk(child)
        if el.tag in _BREAKS:
            parts.append("\n")
        if el.tail:
            parts.append(el.tail)

    walk(node)
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in "".join(parts).split("\n")]
    return "\n".join(line for line in lines if line)


def _table(node: Element, index: int) -> Table:
    label_node = node.find("label")
    label = _text(label_node).rstrip(".:") if label_node is not None else ""
    label = label or node.get("id") or f"Table {index}"
    caption_node = node.find("caption")
    caption = _text(caption_node) if caption_node is not None else ""
    foot_node = node.find("table-wrap-foot")
    foot = _text(foot_node) if foot_node is not None else ""
    table = node.find(".//table")
    grid: dict[tuple[int, int], Cell] = {}
    row_index = 0
    assert table is not None
    for section in ("thead", "tbody", "tfoot", None):
        rows = (table.findall(f"{section}/tr") if section else table.findall("tr"))
        for tr in rows:
            row_index += 1
            col = 1
            for td in tr:
                if td.tag not in ("td", "th"):
                    continue
                while (row_index, col) in grid:
                    col += 1
                text = _text(td)
                rowspan = _span(td.get("rowspan"))
                colspan = _span(td.get("colspan"))
                header = section == "thead" or td.tag == "th"
                for r in range(row_index, row_index + rowspan):
                    for c in range(col, col + colspan):
                        grid[(r, c)] = Cell(r, c, text, f"pmc:{label} r{r}c{c}", header,
                                            parse_cell(text) if text else None)
                col += colspan
    n_rows = max((r for r, _ in grid), default=0)
    rows_out = [[grid[k] for k in sorted(grid) if k[0] == r] for r in range(1, n_rows + 1)]
    return Table(label=label, caption=caption, rows=rows_out, foot=foot)


def _span(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 1000))  # a hostile rowspan must not blow up the grid
    except ValueError:
        return 1
