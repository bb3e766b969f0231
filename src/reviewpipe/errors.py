"""Typed errors. The library raises these; the CLI turns each into one line and an exit code."""

from __future__ import annotations


class ReviewpipeError(Exception):
    """Base class. ``exit_code`` is 2 for bad input or usage, 1 for a failure at run time."""

    exit_code = 1


class ProtocolError(ReviewpipeError):
    """The protocol file is missing, unreadable, or has an unknown key or a bad value."""

    exit_code = 2

    def __init__(self, path: str, key: str | None, message: str) -> None:
        self.path = str(path)
        self.key = key
        self.message = message
        where = f"{self.path}: '{key}'" if key else self.path
        super().__init__(f"{where}: {message}")


class InputError(ReviewpipeError):
    """An input file (XML, RIS, MEDLINE, CSV) cannot be read; names file and line or record."""

    exit_code = 2

    def __init__(self, path: str, message: str, *, line: int | None = None,
                 record: str | int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.record = record
        self.message = message
        where = self.path
        if line is not None:
            where += f":{line}"
        if record is not None:
            where += f" (record {record})"
        super().__init__(f"{where}: {message}")


class MissingInput(ReviewpipeError):
    """A stage needs an artifact an earlier stage has not written yet."""

    exit_code = 2


class StaleStore(ReviewpipeError):
    """The SQLite store has a schema version this code does not know."""

    exit_code = 2


class EntrezError(ReviewpipeError):
    """NCBI E-utilities failed after retries, or answered with an error."""

    exit_code = 1
