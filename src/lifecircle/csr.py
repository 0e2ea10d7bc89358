"""Tables grouped by row in CSR form: the index helpers several modules share.

A table of values grouped by row is ``(indptr, values)``: the values of row
``i`` are ``values[indptr[i]:indptr[i + 1]]``. The network's adjacency, the
routing graph's node-edge incidence and the street blocks' edge lists all
take this form.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["gather_rows", "group_by_row"]


def group_by_row(
    row_of: NDArray[np.int64], n_rows: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Row pointers, and the stable order that puts values row by row.

    Parameters
    ----------
    row_of
        The row of every value.
    n_rows
        Number of rows (rows without values are empty).

    Returns
    -------
    indptr, order
        ``values[order]`` grouped by row, row ``i`` at ``indptr[i]:indptr[i + 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> indptr, order = group_by_row(np.array([2, 0, 2]), 3)
    >>> indptr.tolist(), order.tolist()
    ([0, 1, 1, 3], [1, 0, 2])
    """
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_of, minlength=n_rows), out=indptr[1:])
    return indptr, np.argsort(row_of, kind="stable")


def gather_rows(
    indptr: NDArray[np.int64], values: NDArray[Any], rows: NDArray[np.int64]
) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Concatenate the rows ``rows`` of a grouped table ``(indptr, values)``.

    Returns the values and, for each, its position in ``rows``.

    Examples
    --------
    >>> import numpy as np
    >>> values, owner = gather_rows(np.array([0, 2, 2, 5]), np.arange(5), np.array([2, 0]))
    >>> values.tolist(), owner.tolist()
    ([2, 3, 4, 0, 1], [0, 0, 0, 1, 1])
    """
    starts, stops = indptr[rows], indptr[rows + 1]
    sizes = stops - starts
    offsets = np.repeat(starts - (np.cumsum(sizes) - sizes), sizes)
    return values[np.arange(int(sizes.sum())) + offsets], np.repeat(np.arange(len(rows)), sizes)
