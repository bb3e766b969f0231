"""Protocol loading and validation, through the library and the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import PROJECT, REVIEW
from reviewpipe.cli import cli
from reviewpipe.errors import ProtocolError
from reviewpipe.protocol import load_protocol

PROTOCOL = PROJECT / "queries" / f"{REVIEW}.toml"


def test_bundled_protocol_loads_with_defaults() -> None:
    protocol = load_protocol(PROTOCOL)
    assert protocol.review_id == REVIEW
    assert protocol.pubmed["maxdate"] == "2024/10/31"
    assert protocol.pubmed["datetype"] == "pdat"
    assert "Search end 2024/10/31 assumed" in protocol.pubmed["window_assumption"]
    assert [e["kind"] for e in protocol.exports] == ["database", "register", "other"]
    assert {c["id"] for c in protocol.data["comparisons"]} >= {
        "dn_plus_routine_vs_routine", "dn_vs_other"}
    instruments = {i["name"] for o in protocol.data["outcomes"] for i in o["instruments"]}
    assert {"VAS", "NPRS", "FFI", "FHSQ", "FAAM", "LEFS"} <= instruments
    assert len(protocol.sha256) == 64


def _write(tmp_path: Path, text: str) -> Path:
    queries = tmp_path / "queries"
    queries.mkdir(exist_ok=True)
    path = queries / f"{REVIEW}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("old", "new", "key", "message"), [
    ("[screen]\n", "[screen]\nthreshold = 0.3\n", "screen.threshold", "unknown key"),
    ("[screen]\n", "[screen]\nrct_threshold = 1.5\n", "screen.rct_threshold",
     "must be in the range [0.0, 1.0]. Got 1.5 instead."),
    ('datetype = "pdat"', 'datetype = "published"', "search.pubmed.datetype",
     "must be one of pdat, edat, mdat. Got 'published'."),
    ('maxdate = "2024/10/31"', 'maxdate = "31.10.2024"', "search.pubmed.maxdate",
     "must be a date YYYY/MM/DD, YYYY/MM or YYYY. Got '31.10.2024'."),
    ('format = "ris"\nlabel = "Publisher', 'format = "endnote"\nlabel = "Publisher',
     "search.exports[0].format", "must be one of ris, medline, pubmed-xml, csv."),
    ('id = "dry-needling-pf"', 'id = "Dry Needling"', "review.id",
     "must be lower-case letters"),
    ('seed = 20241031', 'seed = "x"', "review.seed", "must be an integer"),
    ("[screen]\n", "[screen]\nrct_threshold = 0.005\n", "screen.uncertain_from",
     "must not be above rct_threshold"),
])
def test_bad_values_name_file_and_key(tmp_path: Path, old: str, new: str, key: str,
                                      message: str) -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    assert old in text
    path = _write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(ProtocolError) as caught:
        load_protocol(path)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{path}: '{key}': ")
    assert message in str(caught.value)


def test_missing_required_table_and_not_toml(tmp_path: Path) -> None:
    path = _write(tmp_path, '[review]\nid = "x"\ntitle = "t"\n')
    with pytest.raises(ProtocolError, match=r"'search': is required"):
        load_protocol(path)
    path.write_text("[review\n", encoding="utf-8")
    with pytest.raises(ProtocolError, match="not valid TOML"):
        load_protocol(path)
    with pytest.raises(ProtocolError, match="cannot read protocol file"):
        load_protocol(tmp_path / "nope.toml")


def test_cli_bad_protocol_is_one_line_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    text = PROTOCOL.read_text(encoding="utf-8").replace("[screen]\n", "[screen]\nfoo = 1\n")
    path = _write(tmp_path, text)
    result = CliRunner().invoke(cli, ["run", "--review", REVIEW, "--root", str(tmp_path)])
    assert result.exit_code == 2
    expected = (f"Error: {path}: 'screen.foo': unknown key (allowed here: include_from, "
                "rct_threshold, uncertain_from)\n")
    assert result.stderr == expected
    assert result.stdout == ""
    assert not (tmp_path / "data").exists()


def test_cli_validate_ok() -> None:
    result = CliRunner().invoke(cli, ["validate", "--root", str(PROJECT)])
    assert result.exit_code == 0, result.output
    assert "ok (review dry-needling-pf" in result.stdout
