"""Exceptions raised by lifecircle.

Three kinds, so that callers (and the command line) can react differently:

* :class:`InputError` - the user's input is wrong (a missing column, an
  unreadable file, an out-of-range coordinate). The message names the file,
  row and column where known. The CLI exits with code 2.
* :class:`MissingDataError` - the input is well formed but something needed
  is absent (no walkable network, no facility of a required type, no
  internet for a download). The CLI exits with code 2.
* :class:`InternalError` - a bug in lifecircle. The CLI exits with code 1.
"""

from __future__ import annotations

from os import PathLike


class LifecircleError(Exception):
    """Base class of every error lifecircle raises on purpose."""

    exit_code: int = 1


class InputError(LifecircleError, ValueError):
    """Bad user input, located as precisely as possible.

    Parameters
    ----------
    message
        What is wrong, in words a planner understands.
    file, row, column
        Where it is wrong. ``row`` is the spreadsheet row number (the header is
        row 1, the first data row is row 2) for tables, or the 1-based feature
        number for geographic files.

    Examples
    --------
    >>> err = InputError("not a number", file="pois.csv", row=7, column="lng")
    >>> str(err)
    'pois.csv, row 7, column lng: not a number'
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | PathLike[str] | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class MissingDataError(LifecircleError):
    """Well-formed input that lacks something the analysis needs."""

    exit_code = 2


class InternalError(LifecircleError, RuntimeError):
    """A bug in lifecircle; please report it with the input that caused it."""

    exit_code = 1


class OutputError(LifecircleError):
    """The outputs could not be written (a full disk, a read-only folder).

    The CLI exits with code 2; the previous complete set of outputs, if any,
    is left as it was.
    """

    exit_code = 2
