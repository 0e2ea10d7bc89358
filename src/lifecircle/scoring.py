"""Scoring compounds against a planning standard.

For every compound (小区) the walking distance is measured from its gates (the
minimum over gates; the compound's inside point when it has none) to the
nearest facility of each type the standard names, and the facilities within
the type's threshold are counted. From these:

* ``<type>_ok``: at least ``min_count`` facilities of the type within its
  threshold;
* ``<category>_ok``: at least one member type within the category threshold;
* ``tier_<id>_pass``: every non-optional requirement and category of the tier
  is met. Tiers are not interchangeable: each requirement names its own type
  and threshold, so a 15-minute facility never satisfies a 5-minute one;
* ``score`` (0-100): the weighted share of the non-optional requirements and
  categories that are met, ``100 * sum(w_i * ok_i) / sum(w_i)``, with the
  weights of the profile (1 by default);
* ``missing``: the unmet items, semicolon-separated (type ids of unmet
  requirements, then ids of unmet categories).

Column names are stable; see the README for the full list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .engine import ReachEngine
from .standards import CategoryRule, Requirement, Standard

logger = logging.getLogger(__name__)

__all__ = ["ScoreItem", "missing_items", "score_communities", "score_items", "summarise"]

FACILITY_LAYER = "facilities"
ORIGIN_LAYER = "origins"


@dataclass(frozen=True)
class ScoreItem:
    """One thing a compound is checked for: a facility type or a category."""

    kind: str  # "requirement" or "category"
    id: str
    tier: str
    threshold_m: float
    weight: float
    optional: bool
    status: str
    source: str
    clause: str
    types: tuple[str, ...]
    min_count: int = 1


def item_met(
    item: ScoreItem,
    nearest_m: NDArray[np.float64],
    count: NDArray[np.integer[Any]] | None = None,
) -> NDArray[np.bool_]:
    """The one verdict rule: is ``item`` met, given distances and counts.

    ``nearest_m`` is the network distance to the nearest facility of the
    item's types (``inf`` when none is reachable). A requirement that needs
    ``min_count`` > 1 facilities is met when ``count`` (facilities of the type
    within the item's threshold) reaches it; any other item is met when the
    nearest facility lies within the threshold. Scores, gaps, robustness,
    scenarios and siting all decide through this function.

    Examples
    --------
    >>> item = ScoreItem("requirement", "clinic", "15min", 1000.0, 1.0, False,
    ...                  "ASSUMPTION", "", "", ("clinic",), min_count=2)
    >>> item_met(item, np.array([400.0, 400.0]), np.array([1, 2])).tolist()
    [False, True]
    """
    if item.kind == "requirement" and item.min_count > 1:
        if count is None:
            raise ValueError(f"item {item.id!r} needs {item.min_count} facilities: pass counts")
        return np.asarray(count) >= item.min_count
    return np.asarray(nearest_m, dtype=float) <= item.threshold_m


def score_items(standard: Standard) -> list[ScoreItem]:
    """The requirements and categories of a standard, with thresholds in metres."""
    items = [_requirement_item(standard, r) for r in standard.requirements]
    items += [_category_item(standard, c) for c in standard.categories]
    return items


def _requirement_item(standard: Standard, req: Requirement) -> ScoreItem:
    return ScoreItem(
        kind="requirement",
        id=req.type,
        tier=req.tier,
        threshold_m=float(standard.threshold_m(req)),
        weight=float(req.weight),
        optional=bool(req.optional),
        status=req.status,
        source=req.source,
        clause=req.clause or "",
        types=(req.type,),
        min_count=int(req.min_count),
    )


def _category_item(standard: Standard, cat: CategoryRule) -> ScoreItem:
    return ScoreItem(
        kind="category",
        id=cat.id,
        tier=cat.tier,
        threshold_m=float(standard.threshold_m(cat)),
        weight=float(cat.weight),
        optional=False,
        status=cat.status,
        source=cat.source,
        clause=cat.clause or "",
        types=tuple(cat.types),
    )


def score_communities(
    engine: ReachEngine,
    facilities: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    origin_groups: NDArray[np.int64],
    standard: Standard,
    *,
    score_basis: str = "all",
) -> gpd.GeoDataFrame:
    """Score every compound against ``standard``.

    Parameters
    ----------
    engine
        Holds the layers ``"facilities"`` (the rows of ``facilities``, in
        order) and ``"origins"`` (gates and fallback points).
    facilities
        Loaded facilities with a ``type`` column.
    communities
        Loaded compounds (``community_id``, ``name``, ``population``...).
    origin_groups
        For every origin point, the position of its compound in
        ``communities``.
    standard
        The planning standard.
    score_basis
        ``"all"``: ``score`` and the tiers count every item, and an item whose
        types have no facility at all in the data fails. ``"with_data"``: they
        count only the items the data hold facilities for. Both scores are
        kept (``score_all``, ``score_with_data``) either way.

    Returns
    -------
    geopandas.GeoDataFrame
        ``communities`` with the score columns added (see the module notes).
    """
    n = len(communities)
    speed = standard.walk_speed_m_per_min
    types = facilities["type"].to_numpy()
    columns: dict[str, Any] = {}
    nearest: dict[str, NDArray[np.float64]] = {}
    for type_id in standard.scored_types():
        source_index = np.flatnonzero(types == type_id)
        threshold = standard.type_threshold_m(type_id)
        dist = engine.nearest(
            FACILITY_LAYER,
            ORIGIN_LAYER,
            source_index=source_index,
            groups=origin_groups,
            n_groups=n,
        )
        nearest[type_id] = dist
        count = (
            engine.count_within(
                FACILITY_LAYER,
                ORIGIN_LAYER,
                threshold,
                source_index=source_index,
                groups=origin_groups,
                n_groups=n,
            )
            if source_index.size and threshold is not None
            else np.zeros(n, dtype=np.int64)
        )
        metres = np.where(np.isfinite(dist), np.round(dist, 1), np.nan)
        columns[f"{type_id}_m"] = metres
        columns[f"{type_id}_min"] = np.round(metres / speed, 1)
        columns[f"{type_id}_n"] = count
    items = score_items(standard)
    for item in items:
        if item.kind == "requirement":
            columns[f"{item.id}_ok"] = item_met(item, nearest[item.id], columns[f"{item.id}_n"])
        else:
            best = np.min(np.stack([nearest[t] for t in item.types]), axis=0)
            columns[f"{item.id}_ok"] = item_met(item, best)
            metres = np.where(np.isfinite(best), np.round(best, 1), np.nan)
            columns[f"{item.id}_m"] = metres
            columns[f"{item.id}_min"] = np.round(metres / speed, 1)
    for type_id in standard.scored_types():
        if f"{type_id}_ok" not in columns:
            threshold = standard.type_threshold_m(type_id)
            columns[f"{type_id}_ok"] = nearest[type_id] <= (threshold or 0.0)
    without = no_data_items(items, types)
    tiers, scores_by_basis, missing = _verdicts(items, columns, n, without, score_basis)
    new: dict[str, Any] = {
        "score": scores_by_basis[score_basis],
        "score_all": scores_by_basis["all"],
        "score_with_data": scores_by_basis["with_data"],
    }
    for tier_id, passed in tiers.items():
        new[f"tier_{tier_id}_pass"] = passed
    for item in items:
        if item.kind == "category":
            new[f"{item.id}_ok"] = columns[f"{item.id}_ok"]
            new[f"{item.id}_m"] = columns[f"{item.id}_m"]
            new[f"{item.id}_min"] = columns[f"{item.id}_min"]
    new["missing"] = missing
    new["no_data"] = ";".join(i.id for i in items if i.id in without and not i.optional)
    for type_id in standard.scored_types():
        for suffix in ("m", "min", "n", "ok"):
            new[f"{type_id}_{suffix}"] = columns[f"{type_id}_{suffix}"]
    kept = communities.drop(columns=[c for c in new if c in communities.columns])
    added = pd.DataFrame(new, index=communities.index)
    return gpd.GeoDataFrame(
        pd.concat([kept, added], axis=1), geometry=communities.geometry.name, crs=communities.crs
    )


def no_data_items(items: list[ScoreItem], facility_types: NDArray[Any]) -> set[str]:
    """Items none of whose types has a single facility in the data.

    For such an item the data cannot tell a real gap from a gap in the data,
    so its verdict is ``no_data``, kept apart from ``missing``.
    """
    present = set(pd.unique(np.asarray(facility_types, dtype=object)))
    return {item.id for item in items if not present.intersection(item.types)}


def _verdicts(
    items: list[ScoreItem],
    columns: dict[str, Any],
    n: int,
    without: set[str],
    basis: str,
) -> tuple[dict[str, NDArray[np.bool_]], dict[str, NDArray[np.float64]], list[str]]:
    if basis not in ("all", "with_data"):
        raise ValueError(f"score_basis must be all or with_data, got {basis!r}")
    tier_ids = list(dict.fromkeys(item.tier for item in items))
    tiers = {tier: np.ones(n, dtype=bool) for tier in tier_ids}
    met = {"all": np.zeros(n), "with_data": np.zeros(n)}
    total = {"all": 0.0, "with_data": 0.0}
    missing: list[list[str]] = [[] for _ in range(n)]
    for item in items:
        ok = np.asarray(columns[f"{item.id}_ok"], dtype=bool)
        if item.optional:
            continue
        has_data = item.id not in without
        if has_data or basis == "all":
            tiers[item.tier] &= ok
        met["all"] += item.weight * ok
        total["all"] += item.weight
        if has_data:
            met["with_data"] += item.weight * ok
            total["with_data"] += item.weight
            for i in np.flatnonzero(~ok):
                missing[i].append(item.id)
    score = {
        key: np.round(100.0 * met[key] / total[key], 1) if total[key] else np.full(n, np.nan)
        for key in met
    }
    return tiers, score, [";".join(m) for m in missing]


def missing_items(scores: pd.DataFrame, standard: Standard) -> pd.DataFrame:
    """One row per compound and unmet item, with the clause and source behind it.

    Columns: ``community_id``, ``name``, ``population``, ``item``, ``kind``,
    ``tier``, ``threshold_m``, ``nearest_m``, ``status``, ``source``,
    ``clause``.
    """
    rows = []
    without = _no_data_column(scores)
    for item in score_items(standard):
        if item.optional or item.id in without:
            continue
        failed = scores[~scores[f"{item.id}_ok"].astype(bool)]
        if failed.empty:
            continue
        nearest = failed[f"{item.id}_m"]
        rows.append(
            pd.DataFrame(
                {
                    "community_id": failed["community_id"].to_numpy(),
                    "name": failed["name"].to_numpy() if "name" in failed else None,
                    "population": failed["population"].to_numpy()
                    if "population" in failed
                    else np.nan,
                    "item": item.id,
                    "kind": item.kind,
                    "tier": item.tier,
                    "threshold_m": item.threshold_m,
                    "nearest_m": nearest.to_numpy(),
                    "status": item.status,
                    "source": item.source,
                    "clause": item.clause,
                }
            )
        )
    columns = [
        "community_id",
        "name",
        "population",
        "item",
        "kind",
        "tier",
        "threshold_m",
        "nearest_m",
        "status",
        "source",
        "clause",
    ]
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.concat(rows, ignore_index=True)[columns]


def _no_data_column(scores: pd.DataFrame) -> set[str]:
    if "no_data" not in scores or not len(scores):
        return set()
    return {i for i in str(scores["no_data"].iloc[0] or "").split(";") if i}


def _coverage(ok: pd.Series, population: pd.Series, *, no_data: bool = False) -> dict[str, Any]:
    if no_data:
        # no facility of the item in the data: a share would pass a data gap off as a service gap
        return {
            "verdict": "no_data",
            "compounds_share": None,
            "compounds_met": None,
            "population_share": None,
            "population_met": None,
        }
    ok = ok.astype(bool)
    known = population.notna()
    total_pop = float(population[known].sum())
    return {
        "compounds_share": round(float(ok.mean()), 4) if len(ok) else None,
        "compounds_met": int(ok.sum()),
        "population_share": round(float(population[known & ok].sum()) / total_pop, 4)
        if total_pop > 0
        else None,
        "population_met": round(float(population[known & ok].sum())) if total_pop > 0 else None,
    }


def summarise(scores: pd.DataFrame, standard: Standard, *, worst: int = 10) -> dict[str, Any]:
    """Coverage by type, category and tier, the worst-served compounds and 完善度.

    Coverage is given both counted by compounds and weighted by population.
    The overall completeness (完善度) is the population-weighted mean score
    divided by 100 (the compound mean when no population is known): the share
    of required items that residents have within reach. The standard texts
    give no formal definition, so this is a lifecircle convention.
    """
    population = scores["population"] if "population" in scores else pd.Series(np.nan, scores.index)
    without = _no_data_column(scores)
    coverage_types = {
        t: {
            "threshold_m": standard.type_threshold_m(t),
            **_coverage(scores[f"{t}_ok"], population, no_data=t in without),
        }
        for t in standard.scored_types()
    }
    coverage_categories = {
        c.id: {
            "threshold_m": standard.threshold_m(c),
            **_coverage(scores[f"{c.id}_ok"], population, no_data=c.id in without),
        }
        for c in standard.categories
    }
    coverage_tiers = {
        t.id: _coverage(scores[f"tier_{t.id}_pass"], population)
        for t in standard.tiers
        if f"tier_{t.id}_pass" in scores
    }
    completeness = _completeness(scores, "score", population)
    worst_rows = scores.sort_values(["score", "population"], ascending=[True, False]).head(worst)
    by_basis = {
        basis: {
            "completeness": round(_completeness(scores, f"score_{basis}", population), 4),
            "mean_score": round(float(scores[f"score_{basis}"].mean()), 2),
        }
        for basis in ("all", "with_data")
        if f"score_{basis}" in scores and len(scores)
    }
    items = [i for i in score_items(standard) if not i.optional]
    return {
        "compounds": len(scores),
        "population": round(float(population.sum())) if population.notna().any() else None,
        "completeness": round(completeness, 4),
        "mean_score": round(float(scores["score"].mean()), 2) if len(scores) else None,
        "scores": by_basis,
        "items": len(items),
        "items_with_data": sum(1 for i in items if i.id not in without),
        "no_data": [i.id for i in items if i.id in without],
        "coverage": {
            "types": coverage_types,
            "categories": coverage_categories,
            "tiers": coverage_tiers,
        },
        "worst_served": [
            {
                "community_id": str(r.community_id),
                "name": None if pd.isna(getattr(r, "name", None)) else str(r.name),
                "score": float(r.score),
                "population": None
                if pd.isna(getattr(r, "population", np.nan))
                else round(float(r.population)),
                "missing": r.missing,
            }
            for r in worst_rows.itertuples(index=False)
        ],
    }


def _completeness(scores: pd.DataFrame, column: str, population: pd.Series) -> float:
    """Population-weighted mean of a score column over 100 (compound mean without population)."""
    known = population.notna() & (population > 0)
    if known.any():
        return float(np.average(scores.loc[known, column], weights=population[known])) / 100
    return float(scores[column].mean()) / 100 if len(scores) else float("nan")
