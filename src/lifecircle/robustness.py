"""How much do the gaps depend on the assumptions? Re-running coverage over a range.

A study rests on assumptions nobody can pin down exactly: the walking speed
(elderly residents walk 50 m/min, adults 80), how far a point may sit from a
mapped street and still be routed (the snap limit), and how complete the POI
data are. :func:`assess_robustness` re-runs coverage one assumption at a time
around the study's own settings and labels every gap:

* ``robust`` - the gap persists in every run;
* ``fragile`` - at least one run clears it; ``disappears_at`` lists those
  runs, e.g. ``walk_speed=80``.

Labels are given for the compound x item failures of
:meth:`~lifecircle.study.Study.score` and for the blind-zone cells and gap
polygons of :meth:`~lifecircle.study.Study.gaps`. A gap polygon is
``robust`` when all its cells are, ``fragile`` when all its cells are, and
``mixed`` otherwise (its ``robust_population`` says how many residents live
in the robust part); ``disappears_at`` lists the runs that clear the whole
polygon, ``shrinks_at`` those that clear part of it.

Method
------
Walking distances in metres do not depend on the speed, so speed runs re-use
the base distances and only re-derive the thresholds: under the ``minutes``
threshold rule an item given in minutes gets ``walk_min x speed`` metres;
under the ``metres`` rule items given in metres do not move at all (the runs
table says so in ``thresholds_changed``). Snap-limit runs route only the points
within their limit: the study's own engine serves every run at its limit or
below (the points beyond the run's limit are left out), and one engine
snapped at the largest limit serves the runs above it, built only when such
a run routes a point the study's limit does not. POI-drop runs remove a
random share of the facilities (one run per seed) on the base routing graph.
One Dijkstra pass per facility type serves both the compounds and the grid
cells, and is shared by every run that routes the same facilities. Every
item is decided by :func:`~lifecircle.scoring.item_met`, so a requirement
that needs several facilities counts them in every run, for compounds and
cells alike.

A run in which a compound or cell cannot be routed neither confirms nor
clears its gap. Failures of compounds that no run can route are labelled
``unrouted``. Dropping POIs and slower speeds can only add gaps; those runs
show up in :attr:`RobustnessResult.emerging`: items met in the base run that
fail in some run (``appears_at``), i.e. verdicts that hang on one facility
or on the speed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from tqdm import tqdm

from .engine import SNAP_TOO_FAR, ReachEngine, snap_points
from .errors import InputError
from .gaps import CELL_LAYER, grid_cells
from .outputs import refuse_to_overwrite, write_json, write_layers, write_table
from .scoring import FACILITY_LAYER, ORIGIN_LAYER, ScoreItem, item_met, score_items

if TYPE_CHECKING:
    from .study import Study

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_SNAP_LIMITS",
    "DEFAULT_WALK_SPEEDS",
    "ROBUSTNESS_OUTPUT_NAMES",
    "AssumptionRun",
    "RobustnessResult",
    "assess_robustness",
    "write_robustness_outputs",
]

DEFAULT_WALK_SPEEDS = (50.0, 60.0, 67.0, 80.0)
DEFAULT_SNAP_LIMITS = (150.0, 250.0, 400.0)
ROBUSTNESS_OUTPUT_NAMES = (
    "robustness_failures.csv",
    "robustness_runs.csv",
    "robustness.gpkg",
    "robustness_summary.json",
)
ROBUST, FRAGILE, MIXED, UNROUTED = "robust", "fragile", "mixed", "unrouted"


@dataclass(frozen=True)
class AssumptionRun:
    """One set of assumptions; ``label`` names it in ``disappears_at``."""

    label: str
    parameter: str  # base, walk_speed, max_snap_m or drop_share
    walk_speed: float
    max_snap_m: float
    drop_share: float = 0.0
    seed: int | None = None


@dataclass
class _Reach:
    """Distances of one run, per type: from compounds (group minimum) and from cells.

    ``*_nearest`` is the distance to the nearest facility of the type;
    ``*_kdist`` holds, for types some requirement needs several of, the
    distances to the ``k`` nearest (ascending, ``inf`` padded) within the
    largest threshold of any run.
    """

    compound_nearest: dict[str, NDArray[np.float64]]
    compound_kdist: dict[str, NDArray[np.float64]]
    compound_routed: NDArray[np.bool_]
    cell_nearest: dict[str, NDArray[np.float64]]
    cell_kdist: dict[str, NDArray[np.float64]]
    cell_routed: NDArray[np.bool_]


@dataclass
class _Verdicts:
    """Item verdicts of one run."""

    compound_ok: dict[str, NDArray[np.bool_]]
    compound_routed: NDArray[np.bool_]
    cell_ok: dict[str, NDArray[np.bool_]]
    cell_routed: NDArray[np.bool_]
    thresholds: dict[str, float]


@dataclass
class RobustnessResult:
    """Robustness labels of a study's gaps.

    Attributes
    ----------
    runs
        One row per run: ``label``, ``parameter``, ``walk_speed``,
        ``max_snap_m``, ``drop_share``, ``seed``, ``thresholds_changed``,
        ``failures`` (compound x item), ``gap_cells`` (cell x item).
    failures
        Base-run failures, one row per compound and non-optional item:
        ``community_id``, ``name``, ``population``, ``item``, ``kind``,
        ``tier``, ``threshold_m``, ``robustness`` (robust, fragile,
        unrouted), ``runs_failing``, ``runs_routed``, ``disappears_at``.
    emerging
        Items met in the base run that fail in some run, with ``appears_at``
        and ``runs_failing``.
    compounds
        Per compound (WGS84): ``n_failures``, ``n_robust``, ``n_fragile``,
        ``robust_items``, ``fragile_items`` and ``robustness`` (robust,
        fragile, mixed; empty when nothing fails).
    cells
        Base blind-zone cells, one row per cell and item (WGS84):
        ``cell_id``, ``item``, ``population``, ``gap_id``, ``robustness``,
        ``disappears_at``.
    gaps
        The gap polygons of :meth:`Study.gaps` with ``robustness`` (robust,
        fragile, mixed), ``robust_cells``, ``fragile_cells``,
        ``robust_population``, ``disappears_at`` and ``shrinks_at``.
    """

    runs: pd.DataFrame
    failures: pd.DataFrame
    emerging: pd.DataFrame
    compounds: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    gaps: gpd.GeoDataFrame
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts of robust and fragile gaps, for reports and the command line."""
        failures = self.failures["robustness"].value_counts().to_dict()
        population = self.failures.groupby("robustness")["population"].sum().round(1).to_dict()
        return {
            "runs": self.runs["label"].tolist(),
            "failures": {str(k): int(v) for k, v in failures.items()},
            "failure_population": {str(k): float(v) for k, v in population.items()},
            "emerging_failures": len(self.emerging),
            "gap_cells": {
                str(k): int(v) for k, v in self.cells["robustness"].value_counts().items()
            },
            "gap_polygons": {
                str(k): int(v) for k, v in self.gaps["robustness"].value_counts().items()
            }
            if len(self.gaps)
            else {},
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- runs


def _runs(
    speed: float,
    snap: float,
    walk_speeds: Iterable[float],
    snap_limits: Iterable[float],
    drop_shares: Iterable[float],
    seeds: Iterable[int],
) -> list[AssumptionRun]:
    runs = [AssumptionRun("base", "base", speed, snap)]
    for value in dict.fromkeys(float(v) for v in walk_speeds):
        if value != speed:
            runs.append(AssumptionRun(f"walk_speed={value:g}", "walk_speed", value, snap))
    for value in dict.fromkeys(float(v) for v in snap_limits):
        if value <= 0:
            raise InputError(f"snap limits must be positive, got {value:g} m")
        if value != snap:
            runs.append(AssumptionRun(f"max_snap_m={value:g}", "max_snap_m", speed, value))
    seeds = list(seeds)
    for share in dict.fromkeys(float(v) for v in drop_shares):
        if not 0 < share < 1:
            raise InputError(f"a POI drop share must be between 0 and 1, got {share:g}")
        for seed in seeds:
            label = f"drop={share:.0%},seed={seed}"
            runs.append(AssumptionRun(label, "drop_share", speed, snap, share, int(seed)))
    return runs


def _kept_facilities(n: int, run: AssumptionRun) -> NDArray[np.bool_]:
    keep = np.ones(n, dtype=bool)
    if run.drop_share > 0:
        rng = np.random.default_rng(run.seed)
        keep[rng.permutation(n)[: round(run.drop_share * n)]] = False
    return keep


# --------------------------------------------------------------------------- distances


def _group_min(values: NDArray[np.float64], groups: NDArray[np.int64], n: int) -> NDArray[Any]:
    out = np.full(n, np.inf)
    np.minimum.at(out, groups, values)
    return out


_LAYERS = (FACILITY_LAYER, ORIGIN_LAYER, CELL_LAYER)


class _Measurer:
    """Distances of every run from as few engines and Dijkstra passes as possible.

    A snap limit only decides which points are routed: a point's attachment
    (its nearest segment) is the same under any limit it is within. Every
    routed point is a leaf of the routing graph, so it never lies on a path
    between others, and the distances between routed points do not depend on
    which other points are inserted. Hence runs at the study's limit or below
    use the study's own engine, with the points beyond the run's limit left
    out; runs above it share one engine snapped at the largest limit. Runs
    whose routed points are the same share their distances, and types whose
    routed facilities are the same share their Dijkstra passes.
    """

    def __init__(
        self,
        study: Study,
        snap_limits: Sequence[float],
        kth: dict[str, tuple[int, float]],
    ) -> None:
        self.study = study
        self.base = study.engine
        self.base_limit = float(study.max_snap_m)
        self.wide_limit = max([self.base_limit, *snap_limits])
        self.kth = kth
        self.types = study.facilities["type"].astype(str).to_numpy(dtype=object)
        self.groups = study.origins["group"].to_numpy(dtype=np.int64)
        self.n_compounds = len(study.communities)
        self.scored = list(study.standard.scored_types())
        self._wide: ReachEngine | None = None
        self._beyond: float | None = None
        self._reaches: dict[bytes, _Reach] = {}
        self._passes: dict[tuple[str, bytes], tuple[NDArray[Any], ...]] = {}

    def _wide_engine(self) -> ReachEngine:
        """One engine snapped at the largest limit (snapping now, the graph when first used)."""
        if self._wide is None:
            engine = ReachEngine(self.study.network, max_snap_m=self.wide_limit)
            engine.add_layer(FACILITY_LAYER, self.study.facilities)
            engine.add_layer(ORIGIN_LAYER, self.study.origins)
            engine.add_layer(CELL_LAYER, self._cell_points(), insert=bool(self.kth))
            self._wide = engine
        return self._wide

    def _beyond_base_limit(self) -> float:
        """The shortest access leg of the points too far for the study's limit (inf if none).

        Only those points are snapped again, so that runs with a larger limit
        that would route nothing new need no engine of their own.
        """
        if self._beyond is None:
            self._beyond = np.inf
            sources = {
                FACILITY_LAYER: lambda: self.study.facilities.geometry,
                ORIGIN_LAYER: lambda: self.study.origins.geometry,
                CELL_LAYER: self._cell_points,
            }
            for layer, points in sources.items():
                far = np.flatnonzero(self.base.snaps(layer).status == SNAP_TOO_FAR)
                if far.size:
                    snaps = snap_points(
                        self.study.network, points().iloc[far], max_snap_m=self.wide_limit
                    )
                    legs = snaps.access_m[snaps.ok]
                    self._beyond = min(self._beyond, float(legs.min(initial=np.inf)))
        return self._beyond

    def _cell_points(self) -> gpd.GeoSeries:
        cell_xy = self.base.snaps(CELL_LAYER).point_xy
        return gpd.GeoSeries(shapely.points(cell_xy), crs=self.study.network.crs)

    def _routed(self, engine: ReachEngine, limit: float) -> list[NDArray[np.bool_]]:
        masks = []
        for layer in _LAYERS:
            snaps = engine.snaps(layer)
            masks.append(snaps.ok & (snaps.access_m <= limit))
        return masks

    def reach(self, run: AssumptionRun) -> _Reach:
        """The distances of one run (shared with every run that routes the same points)."""
        engine = self.base
        routed = self._routed(engine, min(run.max_snap_m, self.base_limit))
        if run.max_snap_m > self.base_limit and self._beyond_base_limit() <= run.max_snap_m:
            wide = self._routed(self._wide_engine(), run.max_snap_m)
            if any((w != r).any() for w, r in zip(wide, routed, strict=True)):
                engine, routed = self._wide_engine(), wide
        facilities, origins, cells = routed
        facilities = facilities & _kept_facilities(len(self.types), run)
        key = b"".join(
            [b"w" if engine is not self.base else b"b"]
            + [np.packbits(m).tobytes() for m in (facilities, origins, cells)]
        )
        if key not in self._reaches:
            self._reaches[key] = self._measure(engine, key[:1], facilities, origins, cells)
        return self._reaches[key]

    def _measure(
        self,
        engine: ReachEngine,
        tag: bytes,
        facilities: NDArray[np.bool_],
        origins: NDArray[np.bool_],
        cells: NDArray[np.bool_],
    ) -> _Reach:
        """One Dijkstra pass per scored type serves compounds and cells; k nearest if needed."""
        groups = np.where(origins, self.groups, -1)
        compound_nearest, cell_nearest, compound_kdist, cell_kdist = {}, {}, {}, {}
        for type_id in self.scored:
            index = np.flatnonzero((self.types == type_id) & facilities)
            at_origin, at_cell, *pairs = self._pass(engine, tag, type_id, index)
            valid = origins & np.isfinite(at_origin)
            compound_nearest[type_id] = _group_min(
                at_origin[valid], groups[valid], self.n_compounds
            )
            cell_nearest[type_id] = np.where(cells, at_cell, np.inf)
            if type_id in self.kth:
                count = self.kth[type_id][0]
                origin_pairs, cell_pairs = pairs
                keep = origins[origin_pairs["target"].to_numpy()]
                by_compound = origin_pairs[keep].assign(
                    target=groups[origin_pairs["target"].to_numpy()[keep]]
                )
                by_compound = by_compound.groupby(["target", "source"], as_index=False)[
                    "distance_m"
                ].min()
                compound_kdist[type_id] = _k_nearest(by_compound, self.n_compounds, count)
                in_run = cell_pairs[cells[cell_pairs["target"].to_numpy()]]
                cell_kdist[type_id] = _k_nearest(in_run, cells.size, count)
        compound_routed = np.zeros(self.n_compounds, dtype=bool)
        compound_routed[self.groups[origins]] = True
        return _Reach(
            compound_nearest, compound_kdist, compound_routed, cell_nearest, cell_kdist, cells
        )

    def _pass(
        self, engine: ReachEngine, tag: bytes, type_id: str, index: NDArray[np.int64]
    ) -> tuple[Any, ...]:
        """Distances from the given facilities to every origin and cell (and pairs in reach)."""
        key = (type_id, tag + index.tobytes())
        if key not in self._passes:
            node_dist = engine.distances_from(FACILITY_LAYER, index)
            result: tuple[Any, ...] = tuple(
                engine.at(layer, node_dist) for layer in (ORIGIN_LAYER, CELL_LAYER)
            )
            if type_id in self.kth:
                radius = self.kth[type_id][1]
                result += tuple(
                    engine.within(FACILITY_LAYER, layer, radius, source_index=index)
                    for layer in (ORIGIN_LAYER, CELL_LAYER)
                )
            self._passes[key] = result
        return self._passes[key]


def _k_nearest(pairs: pd.DataFrame, size: int, count: int) -> NDArray[np.float64]:
    """The ``count`` smallest distances of each target, ascending, ``inf`` padded."""
    out = np.full((size, count), np.inf)
    if len(pairs):
        pairs = pairs.sort_values(["target", "distance_m"], kind="stable")
        rank = pairs.groupby("target").cumcount().to_numpy()
        hit = rank < count
        out[pairs["target"].to_numpy()[hit], rank[hit]] = pairs["distance_m"].to_numpy()[hit]
    return out


def _item_distance(
    nearest: dict[str, NDArray[np.float64]], types: Sequence[str], size: int
) -> NDArray[np.float64]:
    present = [nearest[t] for t in types if t in nearest]
    return np.min(np.stack(present), axis=0) if present else np.full(size, np.inf)


def _item_count(
    kdist: dict[str, NDArray[np.float64]], item: ScoreItem, size: int
) -> NDArray[np.int64] | None:
    """Facilities of a several-facility requirement within its threshold (up to the need)."""
    if item.kind != "requirement" or item.min_count <= 1:
        return None
    if item.id not in kdist:
        return np.zeros(size, dtype=np.int64)
    return (kdist[item.id] <= item.threshold_m).sum(axis=1)


def _verdicts(reach: _Reach, items: list[ScoreItem], n_compounds: int, n_cells: int) -> _Verdicts:
    """Item verdicts through the one rule of scoring and the gap grid."""
    compound_ok, cell_ok, thresholds = {}, {}, {}
    for item in items:
        thresholds[item.id] = item.threshold_m
        compound_ok[item.id] = item_met(
            item,
            _item_distance(reach.compound_nearest, item.types, n_compounds),
            _item_count(reach.compound_kdist, item, n_compounds),
        )
        cell_ok[item.id] = item_met(
            item,
            _item_distance(reach.cell_nearest, item.types, n_cells),
            _item_count(reach.cell_kdist, item, n_cells),
        )
    return _Verdicts(compound_ok, reach.compound_routed, cell_ok, reach.cell_routed, thresholds)


# --------------------------------------------------------------------------- labelling


def _joined(mask: NDArray[np.bool_], labels: Sequence[str]) -> NDArray[np.str_]:
    """For each column of a (runs x n) mask, the labels of the true runs, ';'-joined."""
    out = np.full(mask.shape[1], "", dtype=object)
    for row, label in zip(mask, labels, strict=True):
        out = np.where(row, np.where(out == "", label, out + ";" + label), out)
    return out


def _label(clears: NDArray[np.bool_], evidence: NDArray[np.bool_]) -> NDArray[np.object_]:
    fragile = clears.any(axis=0)
    known = evidence.any(axis=0)
    return np.where(fragile, FRAGILE, np.where(known, ROBUST, UNROUTED)).astype(object)


def _failure_tables(
    study: Study,
    runs: list[AssumptionRun],
    verdicts: list[_Verdicts],
    items: list[ScoreItem],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    communities = study.communities
    ids = communities["community_id"].astype(str).to_numpy()
    names = communities["name"].to_numpy() if "name" in communities else np.full(len(ids), None)
    population = pd.to_numeric(communities["population"], errors="coerce").to_numpy(dtype=float)
    labels = [run.label for run in runs]
    evidence = np.stack([v.compound_routed for v in verdicts])
    failure_frames, emerging_frames = [], []
    for item in items:
        if item.optional:
            continue
        ok = np.stack([v.compound_ok[item.id] for v in verdicts])
        clears, fails = evidence & ok, evidence & ~ok
        base_fail = ~ok[0]
        common = {
            "item": item.id,
            "kind": item.kind,
            "tier": item.tier,
            "threshold_m": item.threshold_m,
        }
        where = np.flatnonzero(base_fail)
        failure_frames.append(
            pd.DataFrame(
                {
                    "community_id": ids[where],
                    "name": names[where],
                    "population": population[where],
                    **common,
                    "robustness": _label(clears[:, where], evidence[:, where]),
                    "runs_failing": fails[:, where].sum(axis=0),
                    "runs_routed": evidence[:, where].sum(axis=0),
                    "disappears_at": _joined(clears[:, where], labels),
                }
            )
        )
        appears = ~base_fail & fails.any(axis=0)
        where = np.flatnonzero(appears)
        emerging_frames.append(
            pd.DataFrame(
                {
                    "community_id": ids[where],
                    "name": names[where],
                    "population": population[where],
                    **common,
                    "runs_failing": fails[:, where].sum(axis=0),
                    "runs_routed": evidence[:, where].sum(axis=0),
                    "appears_at": _joined(fails[:, where], labels),
                }
            )
        )
    return _concat(failure_frames), _concat(emerging_frames)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate, keeping the columns when every frame is empty."""
    filled = [f for f in frames if len(f)]
    if filled:
        return pd.concat(filled, ignore_index=True)
    return frames[0] if frames else pd.DataFrame(columns=["community_id", "item", "robustness"])


def _compound_layer(study: Study, failures: pd.DataFrame) -> gpd.GeoDataFrame:
    communities = study.communities
    frame = pd.DataFrame(
        {
            "community_id": communities["community_id"].astype(str).to_numpy(),
            "name": communities["name"].to_numpy() if "name" in communities else None,
            "population": communities["population"].to_numpy(),
        }
    )
    if len(failures):
        grouped = failures.groupby("community_id")
        robust = failures[failures["robustness"] == ROBUST].groupby("community_id")["item"]
        fragile = failures[failures["robustness"] == FRAGILE].groupby("community_id")["item"]
        frame["n_failures"] = frame["community_id"].map(grouped.size()).fillna(0).astype(int)
        frame["n_robust"] = frame["community_id"].map(robust.size()).fillna(0).astype(int)
        frame["n_fragile"] = frame["community_id"].map(fragile.size()).fillna(0).astype(int)
        frame["robust_items"] = _joined_items(robust, frame["community_id"])
        frame["fragile_items"] = _joined_items(fragile, frame["community_id"])
    else:
        for column in ("n_failures", "n_robust", "n_fragile"):
            frame[column] = 0
        frame["robust_items"] = frame["fragile_items"] = ""
    frame["robustness"] = np.select(
        [
            frame["n_failures"] == 0,
            frame["n_robust"] == frame["n_failures"],
            frame["n_fragile"] == frame["n_failures"],
        ],
        ["", ROBUST, FRAGILE],
        default=MIXED,
    )
    return gpd.GeoDataFrame(frame, geometry=communities.geometry.to_crs(4326).to_numpy(), crs=4326)


def _joined_items(items: Any, ids: pd.Series) -> NDArray[np.object_]:
    """Items of each compound, ';'-joined ('' when none)."""
    joined = items.agg(";".join).reindex(ids.to_numpy()).astype(object)
    return joined.fillna("").to_numpy()


def _cell_tables(
    cells: gpd.GeoDataFrame,
    gaps: gpd.GeoDataFrame,
    runs: list[AssumptionRun],
    verdicts: list[_Verdicts],
    items: list[ScoreItem],
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Label the base gap cells, then the gap polygons from their cells."""
    labels = [run.label for run in runs]
    populated = cells["population"].to_numpy(dtype=float) > 0
    evidence = np.stack([v.cell_routed for v in verdicts])
    frames, clears_parts = [], []
    for item in items:
        ok = np.stack([v.cell_ok[item.id] for v in verdicts])
        where = np.flatnonzero(populated & evidence[0] & ~ok[0])
        clears = evidence[:, where] & ok[:, where]
        clears_parts.append(clears.T)
        frames.append(
            pd.DataFrame(
                {
                    "cell_id": cells["cell_id"].to_numpy()[where],
                    "item": item.id,
                    "population": cells["population"].to_numpy()[where],
                    "robustness": _label(clears, evidence[:, where]),
                    "disappears_at": _joined(clears, labels),
                    "geometry": cells.geometry.to_numpy()[where],
                }
            )
        )
    gap_cells = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=cells.crs)
    gap_cells["gap_id"] = _owning_gap(gap_cells, gaps)
    clears = np.concatenate(clears_parts) if clears_parts else np.empty((0, len(runs)), bool)
    return gap_cells, _polygon_labels(gaps, gap_cells, clears, labels)


def _owning_gap(gap_cells: gpd.GeoDataFrame, gaps: gpd.GeoDataFrame) -> NDArray[np.object_]:
    """The gap polygon (of the same item) that holds each gap cell, one item at a time."""
    owner = np.full(len(gap_cells), None, dtype=object)
    if not len(gaps) or not len(gap_cells):
        return owner
    points = gap_cells.geometry.representative_point().to_numpy()
    cell_items = gap_cells["item"].to_numpy()
    gap_items = gaps["item"].to_numpy()
    gap_ids = gaps["gap_id"].to_numpy()
    polygons = gaps.geometry.to_numpy()
    for item in np.unique(gap_items):
        mine = np.flatnonzero(cell_items == item)
        theirs = np.flatnonzero(gap_items == item)
        tree = shapely.STRtree(polygons[theirs])
        cell_idx, gap_idx = tree.query(points[mine], predicate="within")
        owner[mine[cell_idx]] = gap_ids[theirs[gap_idx]]
    return owner


def _polygon_labels(
    gaps: gpd.GeoDataFrame,
    gap_cells: gpd.GeoDataFrame,
    clears: NDArray[np.bool_],
    labels: list[str],
) -> gpd.GeoDataFrame:
    """Robust when all cells are, fragile when all are, else mixed; runs clearing all/part."""
    out = gaps.copy()
    owned = gap_cells["gap_id"].notna().to_numpy()
    by_gap = pd.DataFrame(clears[owned], columns=labels).groupby(
        gap_cells["gap_id"].to_numpy()[owned]
    )
    whole, part = by_gap.all(), by_gap.any()
    part = part & ~whole
    robust = (gap_cells["robustness"] == ROBUST).to_numpy()[owned]
    cells = pd.DataFrame(
        {
            "gap_id": gap_cells["gap_id"].to_numpy()[owned],
            "robust": robust,
            "robust_population": np.where(robust, gap_cells["population"].to_numpy()[owned], 0),
        }
    ).groupby("gap_id")
    gap_ids = out["gap_id"]
    out["robust_cells"] = gap_ids.map(cells["robust"].sum()).fillna(0).astype(int)
    out["fragile_cells"] = gap_ids.map(cells["robust"].size() - cells["robust"].sum())
    out["fragile_cells"] = out["fragile_cells"].fillna(0).astype(int)
    out["robust_population"] = gap_ids.map(cells["robust_population"].sum().round(1))
    out["disappears_at"] = gap_ids.map(_row_labels(whole)).fillna("").to_numpy(dtype=object)
    out["shrinks_at"] = gap_ids.map(_row_labels(part)).fillna("").to_numpy(dtype=object)
    out["robustness"] = np.select(
        [out["fragile_cells"] == 0, out["robust_cells"] == 0], [ROBUST, FRAGILE], default=MIXED
    )
    return out


def _row_labels(mask: pd.DataFrame) -> pd.Series:
    """For each row of a boolean frame, the names of its true columns, ';'-joined."""
    joined = _joined(mask.to_numpy().T, list(mask.columns))
    return pd.Series(joined, index=mask.index, dtype=object)


# --------------------------------------------------------------------------- entry point


def assess_robustness(
    study: Study,
    *,
    walk_speeds: Sequence[float] = DEFAULT_WALK_SPEEDS,
    snap_limits: Sequence[float] = DEFAULT_SNAP_LIMITS,
    drop_shares: Sequence[float] = (),
    seeds: Sequence[int] = (0,),
    cell_m: float = 100.0,
    kind: str = "square",
    progress: bool = True,
) -> RobustnessResult:
    """Label every gap of a study robust or fragile over a range of assumptions.

    Parameters
    ----------
    study
        A :class:`~lifecircle.study.Study`; it is not modified.
    walk_speeds
        Walking speeds to try (metres per minute).
    snap_limits
        Snap limits to try (metres).
    drop_shares
        Shares of POIs to drop at random (e.g. ``(0.1,)``), once per seed.
    seeds
        Random seeds of the POI-drop runs.
    cell_m, kind
        The gap grid, as for :meth:`Study.gaps`.
    progress
        Show a progress bar over the runs.

    Returns
    -------
    RobustnessResult

    Examples
    --------
    >>> from lifecircle import Study
    >>> study = Study.from_demo()
    >>> result = assess_robustness(study, drop_shares=(0.1,), seeds=(0, 1), progress=False)
    >>> result.failures["robustness"].value_counts().to_dict()
    {'fragile': 5, 'robust': 1}
    >>> result.gaps.loc[2, ["gap_id", "robustness", "disappears_at"]].tolist()
    ['G003', 'fragile', 'walk_speed=80']
    """
    standard = study.standard
    runs = _runs(
        standard.walk_speed_m_per_min,
        study.max_snap_m,
        walk_speeds,
        snap_limits,
        drop_shares,
        seeds,
    )
    standards = {run.walk_speed: _at_speed(standard, run.walk_speed) for run in runs}
    item_sets = {speed: score_items(s) for speed, s in standards.items()}
    cells, gaps = study.gaps(cell_m=cell_m, kind=kind)
    kth = _kth_requests(standard, standards.values())
    _ensure_cell_layer(study, cells, cell_m, kind, insert=bool(kth))
    measurer = _Measurer(study, [run.max_snap_m for run in runs], kth)
    n_compounds, n_cells = len(study.communities), len(cells)
    verdicts = []
    for run in tqdm(runs, desc="robustness runs", disable=not progress):
        reach = measurer.reach(run)
        verdicts.append(_verdicts(reach, item_sets[run.walk_speed], n_compounds, n_cells))
    base_items = item_sets[runs[0].walk_speed]
    failures, emerging = _failure_tables(study, runs, verdicts, base_items)
    gap_cells, polygons = _cell_tables(cells, gaps, runs, verdicts, base_items)
    result = RobustnessResult(
        runs=_runs_table(runs, verdicts, base_items, cells),
        failures=failures,
        emerging=emerging,
        compounds=_compound_layer(study, failures),
        cells=gap_cells,
        gaps=polygons,
        notes=_notes(runs, verdicts),
    )
    logger.info("robustness over %d runs: %s", len(runs), result.summary()["failures"])
    return result


def _at_speed(standard: Any, speed: float) -> Any:
    return (
        standard
        if speed == standard.walk_speed_m_per_min
        else standard.with_overrides(walk_speed=speed)
    )


def _kth_requests(standard: Any, variants: Iterable[Any]) -> dict[str, tuple[int, float]]:
    """Types needing the k-th nearest facility, with the largest threshold of any run."""
    requests: dict[str, tuple[int, float]] = {}
    variants = list(variants)
    for requirement in standard.requirements:
        if requirement.min_count > 1:
            radius = max(s.threshold_m(s.requirement(requirement.type)) for s in variants)
            requests[requirement.type] = (requirement.min_count, radius)
    return requests


def _ensure_cell_layer(
    study: Study, cells: gpd.GeoDataFrame, cell_m: float, kind: str, *, insert: bool
) -> None:
    """The study's engine holds the gap cells' centres (as :meth:`Study.gaps` leaves it),
    inserted into the routing graph when some type is counted within a radius of them."""
    engine = study.engine
    try:
        if len(engine.snaps(CELL_LAYER)) == len(cells) and (
            engine.is_inserted(CELL_LAYER) or not insert
        ):
            return
    except InputError:
        pass
    metric = grid_cells(
        study.study_area(),
        study.network.crs,
        cell_m=cell_m,
        kind=kind,
    )
    engine.add_layer(CELL_LAYER, metric.geometry.centroid, insert=insert)


def _runs_table(
    runs: list[AssumptionRun],
    verdicts: list[_Verdicts],
    items: list[ScoreItem],
    cells: pd.DataFrame,
) -> pd.DataFrame:
    populated = cells["population"].to_numpy(dtype=float) > 0
    required = [item.id for item in items if not item.optional]
    base = verdicts[0].thresholds
    rows = []
    for run, verdict in zip(runs, verdicts, strict=True):
        failing = sum(int((~verdict.compound_ok[i]).sum()) for i in required)
        gap_cells = sum(
            int((populated & verdict.cell_routed & ~verdict.cell_ok[item.id]).sum())
            for item in items
        )
        rows.append(
            {
                "label": run.label,
                "parameter": run.parameter,
                "walk_speed": run.walk_speed,
                "max_snap_m": run.max_snap_m,
                "drop_share": run.drop_share,
                "seed": run.seed,
                "thresholds_changed": verdict.thresholds != base,
                "compounds_routed": int(verdict.compound_routed.sum()),
                "failures": failing,
                "gap_cells": gap_cells,
            }
        )
    return pd.DataFrame(rows)


def _notes(runs: list[AssumptionRun], verdicts: list[_Verdicts]) -> list[str]:
    base = verdicts[0].thresholds
    speed_runs = [v for r, v in zip(runs, verdicts, strict=True) if r.parameter == "walk_speed"]
    notes = []
    if speed_runs and all(v.thresholds == base for v in speed_runs):
        notes.append(
            "no threshold depends on the walking speed (every item is given in metres under "
            "the metres rule), so the speed runs change nothing"
        )
    for note in notes:
        logger.info(note)
    return notes


def write_robustness_outputs(
    result: RobustnessResult, out_dir: str | Path, *, inputs: Iterable[str | Path] = ()
) -> list[Path]:
    """Write the labelled failures, the runs, the map layers and a summary.

    Files: ``robustness_failures.csv`` and ``robustness_runs.csv`` (UTF-8
    with BOM), ``robustness.gpkg`` (layers ``compounds``, ``cells``,
    ``gaps``) and ``robustness_summary.json``; each written atomically.

    Examples
    --------
    >>> import tempfile
    >>> from lifecircle import Study
    >>> study = Study.from_demo()
    >>> result = assess_robustness(study, progress=False)
    >>> [p.name for p in write_robustness_outputs(result, tempfile.mkdtemp())][2]
    'robustness.gpkg'
    """
    out = Path(out_dir)
    targets = [out / name for name in ROBUSTNESS_OUTPUT_NAMES]
    refuse_to_overwrite(targets, inputs)
    out.mkdir(parents=True, exist_ok=True)
    write_table(result.failures, targets[0])
    write_table(result.runs, targets[1])
    layers = {"compounds": result.compounds, "cells": result.cells}
    if len(result.gaps):
        layers["gaps"] = result.gaps
    write_layers(layers, targets[2])
    write_json({**result.summary(), "runs_table": result.runs.to_dict("records")}, targets[3])
    return targets
