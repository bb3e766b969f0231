"""The report: self-contained HTML, a PRISMA diagram that adds up, and a real browser render."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REVIEW
from reviewpipe.cli import cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def report(project: Path) -> Path:
    result = CliRunner().invoke(cli, ["run", "--review", REVIEW, "--root", str(project)])
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1]) / "report.html"


def test_report_is_self_contained_and_shows_prisma_counts(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert "<script" not in html
    assert not re.search(r"""(?:src|href)=["']https?://""", html)  # no external resources
    prisma = json.loads((report.parent / "prisma.json").read_text())
    assert f"Records identified (n = {prisma['identification']['total']})" in html
    assert f"Records screened (n = {prisma['records_screened']})" in html
    assert f"Studies included (n = {prisma['included']['studies']})" in html
    for svg in re.findall(r"<svg.*?</svg>", html, flags=re.S):
        ET.fromstring(svg)  # every inline figure is well-formed SVG
    for section in ("PRISMA 2020 flow", "Search (PRISMA-S)", "Included studies",
                    "Pooled effects", "Excluded records, with reasons",
                    "What changed since the previous run"):
        assert section in html


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install "
                                             "chromium)")
def test_report_renders_in_headless_chromium_without_console_errors(report: Path,
                                                                     tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", "--window-size=1200,1600", f"--screenshot={shot}", report.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
