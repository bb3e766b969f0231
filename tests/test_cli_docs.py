"""Every command has help text and a README entry; every Makefile target dry-runs."""

from __future__ import annotations

import re
import shutil
import subprocess

import click
import pytest
from click.testing import CliRunner

from conftest import PROJECT
from reviewpipe.cli import cli

README = (PROJECT / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in sorted(group.commands.items()):
        out.append((*prefix, name))
        if isinstance(command, click.Group):
            out.extend(_commands(command, (*prefix, name)))
    return out


@pytest.mark.parametrize("path", _commands(cli), ids=" ".join)
def test_every_command_has_help_and_readme_entry(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert len(result.stdout.split("\n\n")[1].strip()) > 10  # a real summary line
    assert f"reviewpipe {' '.join(path)}" in README, f"README lacks `reviewpipe {path}`"


def _targets() -> list[str]:
    text = (PROJECT / "Makefile").read_text(encoding="utf-8")
    return re.findall(r"^([a-z-]+):.*## ", text, flags=re.M)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target", _targets())
def test_every_make_target_dry_runs_and_is_documented(target: str) -> None:
    done = subprocess.run(["make", "-n", target], cwd=PROJECT, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert f"`make {target}`" in README
    cli_calls = re.findall(r"\.venv/bin/reviewpipe ([a-z-]+(?: [a-z-]+)?)", done.stdout)
    for call in cli_calls:
        words = call.split()
        command = cli.commands.get(words[0])
        assert command is not None, f"make {target} calls an unknown command: {call}"
