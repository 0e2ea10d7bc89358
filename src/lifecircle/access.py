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

Demand is counted among the residents the type serves: a standard's demand
entry names its ``beneficiaries`` (children of 3-6 for kindergarten seats,
residents of 60+ for nursing-home beds), and ``P_k`` is that group's population
(:func:`lifecircle.census.group_populations`). The required supply per member
of the group is ``per_1000_beneficiaries / 1000`` when the profile gives it;
otherwise ``per_1000_residents`` is converted with the group's share of the
study's residents (DERIVED: 30 seats per 1,000 residents with 3.6 % of them
aged 3-6 is 0.84 seats per child).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .census import group_column, group_populations
from .engine import ReachEngine
from .scoring import FACILITY_LAYER, ORIGIN_LAYER
from .standards import ALL_RESIDENTS, Demand, Standard

logger = logging.getLogger(__name__)

__all__ = ["required_per_member", "two_step_fca", "two_step_fca_from_pairs"]


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
    return np.bincount(target, weights=ratio[source], minlength=population.shape[0]).astype(float)


def two_step_fca(
    engine: ReachEngine,
    facilities: pd.DataFrame,
    population: NDArray[np.float64],
    origin_groups: NDArray[np.int64],
    standard: Standard,
    group_pops: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """2SFCA for every type the standard gives a demand for.

    Parameters
    ----------
    engine, facilities, origin_groups
        The reach engine (layers ``facilities`` and ``origins``), the facilities
        in layer order and the compound of every origin point.
    population
        All residents of every compound (NaN unknown).
    standard
        Gives the demand entries and catchments.
    group_pops
        :func:`lifecircle.census.group_populations` of the compounds, in order;
        when not given, groups are estimated from ``population`` with the
        default census shares.

    Returns
    -------
    pandas.DataFrame
        One row per compound (in order) with ``<type>_supply_per_1000`` (units
        of capacity per 1,000 residents of the beneficiary group within reach)
        and ``<type>_supply_ratio`` (supply over the standard's demand; 1.0
        means met). Types whose facilities carry no capacity are left out, with
        a log message.
    """
    n = len(population)
    out = pd.DataFrame(index=range(n))
    if "capacity" not in facilities:
        return out
    if group_pops is None:
        group_pops = group_populations(pd.DataFrame({"population": population}))
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
        served = _group_array(group_pops, demand.beneficiaries, population)
        pairs = engine.within(
            FACILITY_LAYER, ORIGIN_LAYER, catchment, source_index=index, groups=origin_groups
        )
        cap = np.zeros(len(facilities))
        cap[index] = capacity[index]
        supply = two_step_fca_from_pairs(pairs, cap, served)
        out[f"{demand.type}_supply_per_1000"] = np.round(supply * 1000.0, 2)
        required = required_per_member(demand, population, served)
        out[f"{demand.type}_supply_ratio"] = np.round(supply / required, 3) if required else np.nan
    return out


def _group_array(
    group_pops: pd.DataFrame, group: str, population: NDArray[np.float64]
) -> NDArray[np.float64]:
    if group == ALL_RESIDENTS:
        return np.asarray(population, dtype=float)
    return group_pops[group_column(group)].astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def required_per_member(
    demand: Demand, population: NDArray[np.float64], served: NDArray[np.float64]
) -> float:
    """Capacity each member of the demand's group needs.

    ``per_1000_beneficiaries / 1000`` when given; else ``per_1000_residents``
    over the group's share of all residents (DERIVED).

    Examples
    --------
    >>> d = Demand("kindergarten", 30.0, "seats", "ASSUMPTION", "S", "", "age_3_6")
    >>> required_per_member(d, np.array([1000.0]), np.array([40.0]))
    0.75
    """
    if demand.per_1000_beneficiaries is not None:
        return demand.per_1000_beneficiaries / 1000.0
    per_resident = (demand.per_1000_residents or 0.0) / 1000.0
    if demand.beneficiaries == ALL_RESIDENTS:
        return per_resident
    total = float(np.nansum(population))
    members = float(np.nansum(served))
    if members <= 0:
        return 0.0
    return per_resident * total / members
