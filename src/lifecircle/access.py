"""Capacity-aware access: the two-step floating catchment area (2SFCA) method.

Where facilities carry a capacity (kindergarten seats, nursing-home beds) and
the standard gives a per-capita demand, being within reach is not enough: a
kindergarten shared by five compounds may not have seats for all of them.

Step 1, for each facility ``j``: ``R_j = S_j / sum(P_k)`` over the compounds
``k`` within the catchment ``d0`` of ``j`` (``S_j`` capacity, ``P_k``
population). Step 2, for each compound ``i``: ``A_i = sum(R_j)`` over the
facilities within ``d0`` of ``i``. ``A_i`` is supply per resident; dividing by
the standard's demand per resident gives a ratio where 1.0 means supply meets
demand. The catchment is the type's threshold in the standard, and distances
are walking distances from the compound's gates.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .engine import ReachEngine
from .scoring import FACILITY_LAYER, ORIGIN_LAYER
from .standards import Standard

logger = logging.getLogger(__name__)

__all__ = ["two_step_fca", "two_step_fca_from_pairs"]


def two_step_fca_from_pairs(
    pairs: pd.DataFrame,
    capacity: NDArray[np.float64],
    population: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Supply per resident for each compound from (compound, facility) pairs.

    Parameters
    ----------
    pairs
        Columns ``target`` (compound position) and ``source`` (facility
        position): the pairs within the catchment.
    capacity
        Capacity of every facility.
    population
        Population of every compound (unknown counts as 0).

    Returns
    -------
    numpy.ndarray
        ``A_i`` for every compound (0 where nothing is in reach).

    Examples
    --------
    Two compounds of 100 and 300 people share one 40-seat kindergarten; the
    second also reaches a 20-seat one: 40/400 = 0.1 seat per person for the
    first, 0.1 + 20/300 for the second.

    >>> pairs = pd.DataFrame({"target": [0, 1, 1], "source": [0, 0, 1]})
    >>> two_step_fca_from_pairs(pairs, np.array([40.0, 20.0]), np.array([100.0, 300.0])).round(4)
    array([0.1   , 0.1667])
    """
    population = np.nan_to_num(np.asarray(population, dtype=float))
    capacity = np.nan_to_num(np.asarray(capacity, dtype=float))
    target = pairs["target"].to_numpy(dtype=np.int64)
    source = pairs["source"].to_numpy(dtype=np.int64)
    demand = np.bincount(source, weights=population[target], minlength=capacity.shape[0])
    ratio = np.divide(capacity, demand, out=np.zeros_like(capacity), where=demand > 0)
    return np.bincount(target, weights=ratio[source], minlength=population.shape[0])


def two_step_fca(
    engine: ReachEngine,
    facilities: pd.DataFrame,
    population: NDArray[np.float64],
    origin_groups: NDArray[np.int64],
    standard: Standard,
) -> pd.DataFrame:
    """2SFCA for every type the standard gives a demand for.

    Returns
    -------
    pandas.DataFrame
        One row per compound (in order) with ``<type>_supply_per_1000`` (units
        of capacity per 1,000 residents within reach) and
        ``<type>_supply_ratio`` (supply over the standard's demand; 1.0 means
        met). Types whose facilities carry no capacity are left out, with a
        log message.
    """
    n = len(population)
    out = pd.DataFrame(index=range(n))
    if "capacity" not in facilities:
        return out
    types = facilities["type"].to_numpy()
    capacity = facilities["capacity"].to_numpy(dtype=float)
    for demand in standard.demand:
        index = np.flatnonzero((types == demand.type) & np.isfinite(capacity))
        if index.size == 0:
            logger.info("2SFCA: no %s with a capacity; skipped", demand.type)
            continue
        catchment = standard.type_threshold_m(demand.type)
        if catchment is None:
            continue
        pairs = engine.within(
            FACILITY_LAYER, ORIGIN_LAYER, catchment, source_index=index, groups=origin_groups
        )
        cap = np.zeros(len(facilities))
        cap[index] = capacity[index]
        supply = two_step_fca_from_pairs(pairs, cap, population)
        out[f"{demand.type}_supply_per_1000"] = np.round(supply * 1000.0, 2)
        required = demand.per_1000_residents / 1000.0
        out[f"{demand.type}_supply_ratio"] = np.round(supply / required, 3) if required else np.nan
    return out
