"""Column helpers shared by the readers and the pages.

A city's tables repeat a few values many times over (street classes, tag
values, populations, item names); a function of one value is worth computing
once per distinct value, not once per row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["per_distinct"]


def per_distinct(values: pd.Series, function: Callable[[Any], Any]) -> np.ndarray:
    """``function`` of every value, called once per distinct value.

    Missing values (None, NaN, NA) are passed as None. Columns whose values
    cannot be hashed (lists) fall back to one call per row.

    Examples
    --------
    >>> per_distinct(pd.Series(["a", None, "a", ["b"]]), repr).tolist()
    ["'a'", 'None', "'a'", "['b']"]
    >>> per_distinct(pd.Series([2.0, float("nan"), 2.0]), str).tolist()
    ['2.0', 'None', '2.0']
    """
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    except TypeError:  # unhashable values
        return np.array(
            [function(None if _missing(v) else v) for v in values.tolist()], dtype=object
        )
    table = np.empty(len(uniques) + 1, dtype=object)
    for index, value in enumerate(uniques.tolist()):
        table[index] = function(value)
    if (codes < 0).any():
        table[-1] = function(None)
    return table[codes]


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
