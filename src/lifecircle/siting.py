"""Where to build: sites for new facilities that reach the most residents now out of reach.

This is the maximal covering location problem (MCLP). For one facility type
(or one category of the standard), the residents of compounds that already
meet it stay covered; every candidate site *covers* the compounds whose
nearest gate is within the type's walking threshold of it, measured over the
street network exactly as scoring measures it (the minimum over a compound's
gates; its inside point when it has none). The task is to choose ``k`` sites
that together cover the most residents not yet covered.

Candidates are points on the walkable network (junctions, dead ends and points
along the streets, about one per ``spacing_m``), or parcels and buildings the
planner supplies (polygons stand for their inside point).

Two solvers work on the sparse candidate x compound coverage matrix:

* ``greedy`` - add the site with the largest marginal gain, ``k`` times, with
  the gains updated by sparse products (any size). Coverage is submodular, so
  the greedy answer is never below ``1 - 1/e`` (about 63 %) of the optimum,
  and it is often optimal.
* ``exact`` - an integer programme solved by HiGHS through
  :func:`scipy.optimize.milp` (no extra dependency), after dropping
  candidates that cover nothing and merging candidates with the same coverage.
  Meant for small and medium instances; a time limit applies.

Requirements that need more than one facility (``min_count`` > 1) count a
compound as covered once enough new sites reach it; the greedy solver is then
myopic and its guarantee does not hold.

Examples
--------
>>> from lifecircle import Study
>>> study = Study.from_demo()
>>> result = recommend_sites(study, worst_covered_type(study), k=2)
>>> round(result.before), round(result.after)
(15833, 668)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from .coords import parse_crs, to_wgs84
from .errors import InputError, MissingDataError
from .network import WalkNetwork
from .outputs import refuse_to_overwrite, write_json, write_layers, write_table
from .scoring import ORIGIN_LAYER

if TYPE_CHECKING:
    from .study import Study

logger = logging.getLogger(__name__)

__all__ = [
    "CANDIDATE_LAYER",
    "DEFAULT_SPACING_M",
    "SITING_OUTPUT_NAMES",
    "SitingResult",
    "coverage_matrix",
    "exact_cover",
    "greedy_cover",
    "load_candidates",
    "network_candidates",
    "recommend_sites",
    "worst_covered_type",
    "write_siting_outputs",
]

CANDIDATE_LAYER = "candidates"
DEFAULT_SPACING_M = 100.0
DEFAULT_TIME_LIMIT_S = 60.0
SITING_OUTPUT_NAMES = ("sites.csv", "sites.gpkg", "sites.json")
METHODS = ("greedy", "exact")

_ID_COLUMNS = ("site_id", "candidate_id", "parcel_id", "id", "编号", "地块编号")
_NAME_COLUMNS = ("name", "名称", "地块名称")
_LON_COLUMNS = ("lon", "lng", "longitude", "x", "经度")
_LAT_COLUMNS = ("lat", "latitude", "y", "纬度")
_GEO_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb", ".parquet", ".zip")


# --------------------------------------------------------------------------- candidates


def network_candidates(
    network: WalkNetwork, *, spacing_m: float = DEFAULT_SPACING_M
) -> gpd.GeoDataFrame:
    """Candidate sites on the main walkable network.

    Junctions, dead ends and points every ``spacing_m`` along each segment are
    thinned to at most one per ``spacing_m`` square (junctions win, then dead
    ends), which leaves about one candidate per ``spacing_m`` of street.

    Parameters
    ----------
    network
        The walk network.
    spacing_m
        Target spacing of candidates along the streets, in metres.

    Returns
    -------
    geopandas.GeoDataFrame
        ``site_id`` (``N0001``...), ``kind`` (``junction``, ``dead_end`` or
        ``street``) and points in the network's CRS.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import LineString
    >>> from lifecircle.network import network_from_lines
    >>> net = network_from_lines(
    ...     gpd.GeoSeries([LineString([(0, 0), (1000, 0)])], crs="EPSG:32650"), crs="EPSG:32650")
    >>> cands = network_candidates(net, spacing_m=250)
    >>> sorted(cands.geometry.x.round().tolist())
    [0.0, 250.0, 500.0, 750.0, 1000.0]
    """
    if spacing_m <= 0:
        raise InputError(f"candidate spacing must be positive, got {spacing_m:g} m")
    main = network.node_in_main[network.seg_u]
    u, v, length = network.seg_u[main], network.seg_v[main], network.seg_len[main]
    degree = np.bincount(np.concatenate([u, v]), minlength=network.n_nodes)
    nodes = np.flatnonzero(degree > 0)
    node_priority = np.where(degree[nodes] >= 3, 0, np.where(degree[nodes] == 1, 1, 2))
    # interior points split every segment into pieces no longer than spacing_m
    per_seg = np.ceil(length / spacing_m).astype(np.int64) - 1
    per_seg = np.maximum(per_seg, 0)
    seg_of = np.repeat(np.arange(u.shape[0]), per_seg)
    step = np.arange(seg_of.shape[0]) - np.repeat(np.cumsum(per_seg) - per_seg, per_seg) + 1
    fraction = step / (per_seg[seg_of] + 1)
    a, b = network.node_xy[u[seg_of]], network.node_xy[v[seg_of]]
    along_xy = a + (b - a) * fraction[:, None]
    xy = np.concatenate([network.node_xy[nodes], along_xy])
    priority = np.concatenate([node_priority, np.full(along_xy.shape[0], 3)])
    keep = _thin_by_grid(xy, priority, spacing_m)
    kinds = np.array(["junction", "dead_end", "street", "street"])[priority[keep]]
    return gpd.GeoDataFrame(
        {"site_id": [f"N{i + 1:04d}" for i in range(keep.shape[0])], "kind": kinds},
        geometry=shapely.points(xy[keep]),
        crs=network.crs,
    )


def _thin_by_grid(
    xy: NDArray[np.float64], priority: NDArray[np.int64], cell: float
) -> NDArray[np.int64]:
    """Indices of the first point (lowest priority value) in each grid cell, in xy order."""
    keys = np.floor(xy / cell).astype(np.int64)
    order = np.lexsort((np.arange(xy.shape[0]), priority, keys[:, 1], keys[:, 0]))
    sorted_keys = keys[order]
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = np.any(sorted_keys[1:] != sorted_keys[:-1], axis=1)
    return np.sort(order[first])


def load_candidates(
    source: str | Path | gpd.GeoDataFrame | gpd.GeoSeries,
    *,
    crs: str = "wgs84",
    id_column: str | None = None,
) -> gpd.GeoDataFrame:
    """Read candidate parcels or buildings as points with ``site_id`` (and ``name``).

    Parameters
    ----------
    source
        A GeoDataFrame, or a file: GeoJSON, GeoPackage, Shapefile, GeoParquet
        (points or polygons; polygons stand for their inside point), or a CSV
        table with ``lon``/``lat`` (also ``lng``, ``longitude``, ``经度``...)
        columns.
    crs
        Coordinate system of a CSV table: ``wgs84``, ``gcj02``, ``bd09`` or
        ``EPSG:n``.
    id_column
        Column with the site ids; default the first of ``site_id``,
        ``candidate_id``, ``parcel_id``, ``id``, ``编号``; else ``S0001``...

    Returns
    -------
    geopandas.GeoDataFrame
        ``site_id``, ``name`` when given, and point geometries (WGS84 for files).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> parcels = gpd.GeoDataFrame({"id": [7]}, geometry=[box(0, 0, 10, 10)], crs="EPSG:32650")
    >>> cands = load_candidates(parcels)
    >>> cands["site_id"].tolist(), cands.geometry.iloc[0].wkt
    (['7'], 'POINT (5 5)')
    """
    if isinstance(source, gpd.GeoSeries):
        source = source.to_frame("geometry")
    if isinstance(source, gpd.GeoDataFrame):
        frame, origin = source.reset_index(drop=True), "candidates"
    else:
        frame, origin = _read_candidate_file(Path(source), crs), str(source)
    if frame.crs is None:
        raise InputError("the candidates have no coordinate reference system", file=origin)
    geoms = frame.geometry
    bad = geoms.isna() | geoms.is_empty
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise InputError("candidate without geometry", file=origin, row=row)
    points = geoms.where(geoms.geom_type == "Point", geoms.representative_point())
    ids = _candidate_ids(frame, id_column, origin)
    columns: dict[str, Any] = {"site_id": ids}
    name = next((c for c in _NAME_COLUMNS if c in frame.columns), None)
    if name is not None:
        columns["name"] = frame[name].astype(object).to_numpy()
    return gpd.GeoDataFrame(columns, geometry=points.to_numpy(), crs=frame.crs)


def _candidate_ids(frame: pd.DataFrame, id_column: str | None, origin: str) -> NDArray[np.object_]:
    if id_column is not None and id_column not in frame.columns:
        raise InputError(f"no id column {id_column!r}", file=origin, column=id_column)
    column = id_column or next((c for c in _ID_COLUMNS if c in frame.columns), None)
    if column is None:
        return np.array([f"S{i + 1:04d}" for i in range(len(frame))], dtype=object)
    ids = frame[column].astype(str).to_numpy(dtype=object)
    duplicated = pd.Series(ids).duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0]) + 2
        raise InputError(f"duplicate site id {ids[row - 2]!r}", file=origin, row=row, column=column)
    return ids


def _checked_candidates(
    study: Study, source: str | Path | gpd.GeoDataFrame | gpd.GeoSeries, crs: str
) -> gpd.GeoDataFrame:
    """Candidates read in their declared system (or the best fit, for ``auto``).

    Like every layer, they are checked against the streets under each
    coordinate reading; a clearly better reading is warned about.
    """
    from .datum import AUTO, fit_layer

    declared = crs
    frame = load_candidates(source, crs="wgs84" if declared.lower() == AUTO else declared)
    if not len(frame):
        return frame
    frame, fit = fit_layer(
        frame,
        declared,
        study.network,
        layer="candidates",
        source=str(source) if isinstance(source, str | Path) else "candidates",
        option="--candidates-crs",
    )
    if fit.mismatch and fit.message:
        study.warnings.append(fit.message)
    return frame


def _read_candidate_file(path: Path, crs: str) -> gpd.GeoDataFrame:
    from .loading import read_table

    table = read_table(path)
    if isinstance(table, gpd.GeoDataFrame) or path.suffix.lower() in _GEO_SUFFIXES:
        if not isinstance(table, gpd.GeoDataFrame):
            raise InputError("expected a geographic file", file=path)
        return table
    lower = {str(c).strip().lower(): c for c in table.columns}
    lon = next((lower[c] for c in _LON_COLUMNS if c in lower), None)
    lat = next((lower[c] for c in _LAT_COLUMNS if c in lower), None)
    if lon is None or lat is None:
        raise InputError(
            "candidate table needs lon/lat columns (lon, lng, longitude, 经度 / lat, latitude, "
            f"纬度); columns found: {', '.join(map(str, table.columns))}",
            file=path,
        )
    first_row = int(table.attrs.get("first_data_row", 2))
    values = {}
    for column in (lon, lat):
        numbers = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(numbers)
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + first_row
            raise InputError("not a number", file=path, row=row, column=str(column))
        values[column] = numbers
    name = parse_crs(crs)
    if name in ("wgs84", "gcj02", "bd09"):
        for column, limit in ((lon, 180.0), (lat, 90.0)):
            out = np.abs(values[column]) > limit
            if out.any():
                row = int(np.flatnonzero(out)[0]) + first_row
                raise InputError(
                    f"coordinate out of range (±{limit:g})", file=path, row=row, column=str(column)
                )
    x, y = to_wgs84(values[lon], values[lat], name)
    return gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(x, y), crs=4326)


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class _Target:
    """What is sited: a facility type or a category of the standard."""

    id: str
    kind: str  # "type" or "category"
    threshold_m: float
    types: tuple[str, ...]
    min_count: int


def _resolve_target(study: Study, target: str, threshold_m: float | None) -> _Target:
    standard = study.standard
    category = next((c for c in standard.categories if c.id == target), None)
    if category is not None:
        threshold = standard.threshold_m(category) if threshold_m is None else threshold_m
        return _Target(target, "category", float(threshold), tuple(category.types), 1)
    if target not in standard.scored_types():
        known = ", ".join([*standard.scored_types(), *(c.id for c in standard.categories)])
        raise InputError(
            f"standard {standard.id} does not score {target!r}; choose one of: {known}",
            column="type",
        )
    requirement = standard.requirement(target)
    found = standard.type_threshold_m(target) if threshold_m is None else threshold_m
    if found is None:
        raise InputError(f"standard {standard.id} gives no threshold for {target!r}", column="type")
    min_count = requirement.min_count if requirement is not None else 1
    return _Target(target, "type", float(found), (target,), int(min_count))


def _population_weights(communities: pd.DataFrame) -> tuple[NDArray[np.float64], str]:
    """Residents per compound; every compound counts one when no population is known."""
    population = pd.to_numeric(communities["population"], errors="coerce")
    if population.isna().all():
        logger.warning("no compound has a population; siting counts compounds instead")
        return np.ones(len(communities)), "compounds"
    return population.fillna(0.0).clip(lower=0.0).to_numpy(dtype=float), "residents"


def _still_needed(scores: pd.DataFrame, target: _Target) -> NDArray[np.int64]:
    """How many more facilities each compound needs within reach (0 when covered)."""
    ok = scores[f"{target.id}_ok"].to_numpy(dtype=bool)
    if target.kind == "type" and target.min_count > 1:
        have = scores[f"{target.id}_n"].to_numpy(dtype=np.int64)
        need = np.maximum(target.min_count - have, 1)
    else:
        need = np.ones(len(scores), dtype=np.int64)
    return np.where(ok, 0, need)


def worst_covered_type(study: Study) -> str:
    """The facility type whose absence leaves the most residents failing the standard.

    A resident counts against a type when the type is out of reach of their
    (routed) compound and a non-optional requirement or category containing
    the type fails there. Ties (members of one failing category) go to the type listed
    first in the profile. When every item is met, the type that the most
    residents lack within its threshold is returned.

    Parameters
    ----------
    study
        A :class:`~lifecircle.study.Study`.

    Returns
    -------
    str
        A facility type id (``elderly_daycare`` for the demo).

    Examples
    --------
    >>> from lifecircle import Study
    >>> study = Study.from_demo()
    >>> worst_covered_type(study)
    'elderly_daycare'
    """
    scores = study.score()
    weights, _ = _population_weights(scores)
    if "route_status" in scores:
        # no new site can serve a compound that cannot be routed
        weights = np.where(scores["route_status"].to_numpy() == "ok", weights, 0.0)
    standard = study.standard
    failing: dict[str, NDArray[np.bool_]] = {
        t: np.zeros(len(scores), dtype=bool) for t in standard.scored_types()
    }
    for requirement in standard.requirements:
        if not requirement.optional:
            failing[requirement.type] |= ~scores[f"{requirement.type}_ok"].to_numpy(dtype=bool)
    for category in standard.categories:
        fails = ~scores[f"{category.id}_ok"].to_numpy(dtype=bool)
        for type_id in category.types:
            failing[type_id] |= fails
    rows = []
    for order, type_id in enumerate(standard.scored_types()):
        lacking = ~scores[f"{type_id}_ok"].to_numpy(dtype=bool)
        rows.append(
            (
                float(weights[lacking & failing[type_id]].sum()),
                float(weights[lacking].sum()),
                -order,
                type_id,
            )
        )
    if not rows:
        raise MissingDataError(f"standard {standard.id} scores no facility type")
    best = max(rows, key=lambda row: (row[0], row[1] if row[0] == 0 else 0.0, row[2]))
    logger.info(
        "worst-covered type: %s (%.0f residents failing the standard, %.0f lacking it)",
        best[3],
        best[0],
        best[1],
    )
    return best[3]


# --------------------------------------------------------------------------- coverage


def coverage_matrix(
    study: Study,
    candidates: gpd.GeoDataFrame,
    threshold_m: float,
    compounds: NDArray[np.int64],
) -> sparse.csr_matrix:
    """Which candidate reaches which compound within ``threshold_m`` of walking.

    The candidates become the engine layer ``"candidates"``; one bounded
    Dijkstra runs from each candidate or from each gate of the given
    compounds, whichever are fewer (the network is undirected, so both give
    the same distances).

    Parameters
    ----------
    study
        The study (its engine holds the ``"origins"`` layer).
    candidates
        Candidate points in any CRS.
    threshold_m
        Walking distance within which a site serves a compound.
    compounds
        Positions of the compounds to test; the others get empty columns.

    Returns
    -------
    scipy.sparse.csr_matrix
        Boolean, candidates x all compounds of the study.

    Examples
    --------
    >>> from lifecircle import Study
    >>> study = Study.from_demo()
    >>> cands = network_candidates(study.network)
    >>> coverage_matrix(study, cands, 900.0, np.arange(3)).shape
    (323, 66)
    """
    engine = study.engine
    engine.add_layer(CANDIDATE_LAYER, candidates)
    groups = study.origins["group"].to_numpy(dtype=np.int64)
    n_compounds = len(study.communities)
    wanted = np.zeros(n_compounds, dtype=bool)
    wanted[np.asarray(compounds, dtype=np.int64)] = True
    origin_index = np.flatnonzero(wanted[groups])
    n_candidates = len(candidates)
    if origin_index.size == 0 or n_candidates == 0:
        return sparse.csr_matrix((n_candidates, n_compounds), dtype=bool)
    if origin_index.size <= n_candidates:
        pairs = engine.within(ORIGIN_LAYER, CANDIDATE_LAYER, threshold_m, source_index=origin_index)
        rows = pairs["target"].to_numpy(dtype=np.int64)
        cols = groups[pairs["source"].to_numpy(dtype=np.int64)]
    else:
        masked = np.where(wanted[groups], groups, -1)
        pairs = engine.within(CANDIDATE_LAYER, ORIGIN_LAYER, threshold_m, groups=masked)
        rows = pairs["source"].to_numpy(dtype=np.int64)
        cols = pairs["target"].to_numpy(dtype=np.int64)
    matrix = sparse.csr_matrix(
        (np.ones(rows.shape[0], dtype=bool), (rows, cols)), shape=(n_candidates, n_compounds)
    )
    matrix.sum_duplicates()
    return matrix


# --------------------------------------------------------------------------- solvers


def greedy_cover(
    matrix: sparse.spmatrix,
    weights: NDArray[np.float64],
    k: int,
    *,
    need: NDArray[np.int64] | None = None,
    stop_without_gain: bool = True,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Choose up to ``k`` rows of ``matrix`` by largest marginal covered weight.

    Gains are kept for every candidate and updated after each pick by a
    sparse product over the columns whose state changed, so each step costs
    the non-zeros touched, not a pass over the whole matrix. Ties go to the
    lower row. Stops early when no candidate adds anything, unless
    ``stop_without_gain`` is false (to rank a given set of sites whose
    coverage only adds up jointly, with ``min_count`` > 1).

    Parameters
    ----------
    matrix
        Candidates x compounds, non-zero where a candidate covers a compound.
    weights
        Weight (residents) of every compound.
    k
        Number of sites wanted.
    need
        Sites still needed by every compound (0 = already covered; default 1
        for all).

    Returns
    -------
    chosen, gains
        Row indices in the order picked and the weight each newly covered.

    Examples
    --------
    >>> from scipy import sparse
    >>> m = sparse.csr_matrix(np.array([[1, 1, 0], [0, 1, 1], [0, 0, 1]]))
    >>> chosen, gains = greedy_cover(m, np.array([5.0, 1.0, 4.0]), 2)
    >>> chosen.tolist(), gains.tolist()
    ([0, 1], [6.0, 4.0])
    """
    rows = sparse.csr_matrix(matrix, dtype=float)
    cols = rows.tocsc()
    remaining = np.ones(rows.shape[1], dtype=np.int64) if need is None else need.copy()
    weights = np.asarray(weights, dtype=float)
    gains = rows @ np.where(remaining == 1, weights, 0.0)
    # incremental updates leave round-off where a gain is really zero
    tolerance = 1e-9 * (float(np.abs(weights).sum()) + 1.0)
    chosen: list[int] = []
    gained: list[float] = []
    for _ in range(min(int(k), rows.shape[0])):
        pick = int(np.argmax(gains))
        if gains[pick] <= tolerance and stop_without_gain:
            break
        touched = rows.indices[rows.indptr[pick] : rows.indptr[pick + 1]]
        touched = touched[remaining[touched] > 0]
        completed = touched[remaining[touched] == 1]
        chosen.append(pick)
        gained.append(float(weights[completed].sum()))
        remaining[touched] -= 1
        # completed compounds stop counting; those now one site short start counting
        now = remaining[touched]
        delta = np.where(now == 0, -weights[touched], np.where(now == 1, weights[touched], 0.0))
        gains += cols[:, touched] @ delta
        gains[pick] = -np.inf
    return np.asarray(chosen, dtype=np.int64), np.asarray(gained)


def exact_cover(
    matrix: sparse.spmatrix,
    weights: NDArray[np.float64],
    k: int,
    *,
    need: NDArray[np.int64] | None = None,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> tuple[NDArray[np.int64], bool]:
    """An optimal set of at most ``k`` rows, by integer programming (HiGHS).

    Maximise ``sum(w_j y_j)`` subject to ``need_j y_j <= sum_i a_ij x_i`` and
    ``sum(x_i) <= k`` with binary ``x`` (and ``y``; continuous when every
    need is 1). Candidates that cover nothing are dropped and candidates with
    identical coverage merged first.

    Returns
    -------
    chosen, optimal
        Row indices (unordered) and whether optimality was proven within the
        time limit; if not, the better of the solver's best and the greedy
        answer.

    Examples
    --------
    >>> from scipy import sparse
    >>> m = sparse.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1]]))
    >>> chosen, optimal = exact_cover(m, np.array([3.0, 3.0, 2.0, 2.0]), 2)
    >>> sorted(chosen.tolist()), optimal
    ([1, 2], True)
    """
    rows = sparse.csr_matrix(matrix, dtype=float)
    weights = np.asarray(weights, dtype=float)
    remaining = np.ones(rows.shape[1], dtype=np.int64) if need is None else need.copy()
    active = (remaining > 0) & (weights > 0) & (np.asarray(rows.sum(axis=0)).ravel() > 0)
    reduced = rows[:, np.flatnonzero(active)]
    useful = np.flatnonzero(np.diff(reduced.indptr) > 0)
    if useful.size == 0 or k <= 0:
        return np.empty(0, dtype=np.int64), True
    w, n = weights[active], remaining[active].astype(float)
    if not (n > 1).any():
        # interchangeable sites; with min_count > 1 two alike sites may both be needed
        useful = _distinct_rows(reduced, useful)
    a = reduced[useful]
    n_x, n_y = a.shape
    objective = np.concatenate([np.zeros(n_x), -w])
    cover = sparse.hstack([-a.T, sparse.diags(n)]).tocsr()
    budget = sparse.hstack([sparse.csr_matrix(np.ones((1, n_x))), sparse.csr_matrix((1, n_y))])
    constraints = [
        LinearConstraint(cover, -np.inf, 0.0),
        LinearConstraint(budget.tocsr(), -np.inf, float(k)),
    ]
    y_integer = 1 if (n > 1).any() else 0
    integrality = np.concatenate([np.ones(n_x), np.full(n_y, y_integer)])
    result = milp(
        objective,
        constraints=constraints,
        integrality=integrality,
        bounds=Bounds(0.0, 1.0),
        options={"time_limit": float(time_limit_s), "disp": False, "mip_rel_gap": 0.0},
    )
    optimal = bool(result.status == 0)
    picked = useful[result.x[:n_x] > 0.5] if result.x is not None else None
    if not optimal:
        # the greedy answer is a floor: never return less than it
        greedy, _ = greedy_cover(rows, weights, k, need=remaining)
        if picked is None or _covered(rows, weights, remaining, greedy) > _covered(
            rows, weights, remaining, picked
        ):
            picked = greedy
        logger.warning(
            "exact siting stopped before proving optimality (%s); returning the best "
            "solution known",
            result.message,
        )
    assert picked is not None
    return np.sort(picked).astype(np.int64), optimal


def _covered(
    matrix: sparse.csr_matrix,
    weights: NDArray[np.float64],
    need: NDArray[np.int64],
    rows: NDArray[np.int64],
) -> float:
    """Weight of the compounds whose need the given rows meet."""
    hits = np.asarray(matrix[np.asarray(rows, dtype=np.int64)].astype(bool).sum(axis=0)).ravel()
    return float(weights[(need > 0) & (hits >= need)].sum())


def _distinct_rows(matrix: sparse.csr_matrix, rows: NDArray[np.int64]) -> NDArray[np.int64]:
    """The first of every group of rows with the same set of columns.

    Rows are compared by two random projections and their length; distinct
    0/1 rows collide with negligible probability.
    """
    rng = np.random.default_rng(0)
    pattern = sparse.csr_matrix(matrix[rows], dtype=float)
    pattern.data[:] = 1.0
    keys = np.column_stack(
        [
            np.diff(pattern.indptr).astype(float),
            pattern @ rng.random(matrix.shape[1]),
            pattern @ rng.random(matrix.shape[1]),
        ]
    )
    _, first = np.unique(keys, axis=0, return_index=True)
    return rows[np.sort(first)]


# --------------------------------------------------------------------------- results


@dataclass
class SitingResult:
    """Ranked sites for one facility type (or category) and what they change.

    Attributes
    ----------
    target, target_kind
        The type (or category) id sited, and ``"type"`` or ``"category"``.
    threshold_m
        Walking distance within which a site serves a compound.
    k, method, optimal
        Sites asked for, solver used, and whether the answer is proven
        optimal (``None`` for greedy).
    sites
        One row per chosen site, best first: ``rank``, ``site_id``, ``name``,
        ``lon``, ``lat``, ``residents_newly_covered``, ``cumulative_covered``
        (residents newly covered by this and all better-ranked sites),
        ``coverage_share_after``, ``compounds_newly_served`` (``;``-separated
        ids), ``snap_m``, point geometry (WGS84).
    compounds
        Every compound with ``covered_before``, ``served_by_rank``,
        ``served_by_site`` and ``covered_after`` (geometry WGS84).
    population_total, before, after
        Residents in all compounds, and those not covered before and after
        the new sites (compounds are counted when no population is known,
        see ``unit``).
    not_reachable
        Residents not covered whom no candidate reaches within the threshold.
    candidates_total, candidates_routed, candidates_useful
        Candidates given, snapped to the main network, and reaching at least
        one uncovered compound.
    """

    target: str
    target_kind: str
    threshold_m: float
    k: int
    method: str
    optimal: bool | None
    sites: gpd.GeoDataFrame
    compounds: gpd.GeoDataFrame
    population_total: float
    before: float
    after: float
    not_reachable: float
    candidates_total: int
    candidates_routed: int
    candidates_useful: int
    unit: str = "residents"
    notes: list[str] = field(default_factory=list)

    @property
    def newly_covered(self) -> float:
        """Residents the new sites bring within reach."""
        return self.before - self.after

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers for reports and the command line."""
        return {
            "target": self.target,
            "target_kind": self.target_kind,
            "threshold_m": self.threshold_m,
            "k": self.k,
            "sites_chosen": len(self.sites),
            "method": self.method,
            "optimal": self.optimal,
            "unit": self.unit,
            "population_total": round(self.population_total),
            "uncovered_before": round(self.before),
            "uncovered_after": round(self.after),
            "newly_covered": round(self.newly_covered),
            "not_reachable_from_any_candidate": round(self.not_reachable),
            "candidates_total": self.candidates_total,
            "candidates_routed": self.candidates_routed,
            "candidates_useful": self.candidates_useful,
            "notes": list(self.notes),
        }


def recommend_sites(
    study: Study,
    type_id: str,
    k: int,
    *,
    candidates: str | Path | gpd.GeoDataFrame | None = None,
    candidates_crs: str = "wgs84",
    spacing_m: float = DEFAULT_SPACING_M,
    method: str = "greedy",
    threshold_m: float | None = None,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> SitingResult:
    """Recommend ``k`` new sites for a facility type that cover the most uncovered residents.

    Parameters
    ----------
    study
        A :class:`~lifecircle.study.Study`; its existing facilities stay.
    type_id
        A facility type the standard scores, or a category id (a site then
        stands for any member type; compounds meeting the category are
        covered).
    k
        Number of sites.
    candidates
        Candidate parcels or buildings (GeoDataFrame or file, see
        :func:`load_candidates`); default points on the network (see
        :func:`network_candidates`).
    candidates_crs
        Coordinate system of a CSV candidate table.
    spacing_m
        Spacing of the network candidates.
    method
        ``"greedy"`` or ``"exact"``.
    threshold_m
        Override the standard's walking threshold for the type.
    time_limit_s
        Time limit of the exact solver.

    Returns
    -------
    SitingResult

    Examples
    --------
    >>> from lifecircle import Study
    >>> study = Study.from_demo()
    >>> result = recommend_sites(study, "elderly_daycare", 2)
    >>> result.sites["residents_newly_covered"].tolist()
    [9186.0, 5979.0]
    """
    if method not in METHODS:
        raise InputError(f"unknown siting method {method!r}; use greedy or exact")
    if int(k) < 1:
        raise InputError(f"the number of sites must be at least 1, got {k}")
    target = _resolve_target(study, type_id, threshold_m)
    scores = study.score()
    weights, unit = _population_weights(scores)
    need = _still_needed(scores, target)
    if candidates is None:
        sites_frame = network_candidates(study.network, spacing_m=spacing_m)
    else:
        sites_frame = _checked_candidates(study, candidates, candidates_crs)
    uncovered = np.flatnonzero((need > 0) & (weights > 0))
    matrix = coverage_matrix(study, sites_frame, target.threshold_m, uncovered)
    snaps = study.engine.snaps(CANDIDATE_LAYER)
    if method == "greedy":
        chosen, gains = greedy_cover(matrix, weights, k, need=need)
        optimal = None
    else:
        picked, optimal = exact_cover(matrix, weights, k, need=need, time_limit_s=time_limit_s)
        chosen, gains = _rank_sites(matrix, picked, weights, need)
    notes = _notes(len(chosen), int(k), snaps.ok, candidates is not None)
    reachable = np.asarray(matrix.sum(axis=0)).ravel() > 0
    before = float(weights[need > 0].sum())
    served = _served_by(matrix, chosen, need) >= 0
    result = SitingResult(
        target=target.id,
        target_kind=target.kind,
        threshold_m=target.threshold_m,
        k=int(k),
        method=method,
        optimal=optimal,
        sites=_sites_frame(sites_frame, snaps.access_m, matrix, chosen, gains, need, scores),
        compounds=_compounds_frame(scores, matrix, chosen, need, sites_frame),
        population_total=float(weights.sum()),
        before=before,
        after=float(weights[(need > 0) & ~served].sum()),
        not_reachable=float(weights[(need > 0) & ~reachable].sum()),
        candidates_total=len(sites_frame),
        candidates_routed=int(snaps.ok.sum()),
        candidates_useful=int((np.diff(matrix.indptr) > 0).sum()),
        unit=unit,
        notes=notes,
    )
    result.sites["coverage_share_after"] = (
        np.round(
            (result.population_total - before + result.sites["cumulative_covered"])
            / result.population_total,
            4,
        )
        if result.population_total > 0
        else np.nan
    )
    logger.info(
        "siting %s (%s, k=%d): %.0f %s uncovered before, %.0f after",
        target.id,
        method,
        int(k),
        result.before,
        unit,
        result.after,
    )
    return result


def _rank_sites(
    matrix: sparse.csr_matrix,
    picked: NDArray[np.int64],
    weights: NDArray[np.float64],
    need: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Order a chosen set best first; drop sites that add nothing."""
    jointly = bool((need > 1).any())
    order, gains = greedy_cover(
        matrix[picked], weights, len(picked), need=need, stop_without_gain=not jointly
    )
    last = np.flatnonzero(gains > 0)
    keep = last[-1] + 1 if last.size else 0
    return picked[order[:keep]], gains[:keep]


def _notes(n_chosen: int, k: int, routed: NDArray[np.bool_], user_candidates: bool) -> list[str]:
    notes = []
    if n_chosen < k:
        notes.append(
            f"only {n_chosen} of {k} sites add coverage; more sites would reach nobody new"
        )
    unrouted = int((~routed).sum())
    if user_candidates and unrouted:
        notes.append(f"{unrouted} candidate(s) are off the main walking network and were skipped")
    for note in notes:
        logger.warning(note)
    return notes


def _sites_frame(
    candidates: gpd.GeoDataFrame,
    access_m: NDArray[np.float64],
    matrix: sparse.csr_matrix,
    chosen: NDArray[np.int64],
    gains: NDArray[np.float64],
    need: NDArray[np.int64],
    scores: pd.DataFrame,
) -> gpd.GeoDataFrame:
    served = _served_by(matrix, chosen, need)
    ids = scores["community_id"].astype(str).to_numpy()
    newly = [";".join(ids[served == rank]) for rank in range(len(chosen))]
    points = candidates.geometry.iloc[chosen].to_crs(4326)
    frame = pd.DataFrame(
        {
            "rank": np.arange(1, len(chosen) + 1),
            "site_id": candidates["site_id"].astype(str).to_numpy()[chosen],
            "lon": points.x.round(7).to_numpy(),
            "lat": points.y.round(7).to_numpy(),
            "residents_newly_covered": np.round(gains, 1),
            "cumulative_covered": np.round(np.cumsum(gains), 1),
            "compounds_newly_served": newly,
            "snap_m": np.round(access_m[chosen], 1),
        }
    )
    if "name" in candidates:
        frame.insert(2, "name", candidates["name"].to_numpy()[chosen])
    return gpd.GeoDataFrame(frame, geometry=points.to_numpy(), crs=4326)


def _served_by(
    matrix: sparse.csr_matrix, chosen: NDArray[np.int64], need: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Rank (0-based) of the site that completes each compound's coverage, or -1."""
    remaining = need.copy()
    served = np.full(matrix.shape[1], -1, dtype=np.int64)
    for rank, row in enumerate(chosen):
        cols = matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]
        cols = cols[remaining[cols] > 0]
        remaining[cols] -= 1
        served[cols[remaining[cols] == 0]] = rank
    return served


def _compounds_frame(
    scores: gpd.GeoDataFrame,
    matrix: sparse.csr_matrix,
    chosen: NDArray[np.int64],
    need: NDArray[np.int64],
    candidates: gpd.GeoDataFrame,
) -> gpd.GeoDataFrame:
    served = _served_by(matrix, chosen, need)
    site_ids = candidates["site_id"].astype(str).to_numpy()[chosen]
    columns = [c for c in ("community_id", "name", "population", "route_status") if c in scores]
    frame = pd.DataFrame(scores[columns]).reset_index(drop=True)
    frame["covered_before"] = need == 0
    frame["served_by_rank"] = pd.array(np.where(served >= 0, served + 1, -1), dtype="Int64")
    frame.loc[served < 0, "served_by_rank"] = pd.NA
    frame["served_by_site"] = pd.Series(
        [site_ids[rank] if rank >= 0 else None for rank in served], dtype=object
    )
    frame["covered_after"] = frame["covered_before"] | (served >= 0)
    return gpd.GeoDataFrame(frame, geometry=scores.geometry.to_crs(4326).to_numpy(), crs=4326)


# --------------------------------------------------------------------------- outputs


def write_siting_outputs(
    result: SitingResult, out_dir: str | Path, *, inputs: Iterable[str | Path] = ()
) -> list[Path]:
    """Write ``sites.csv`` (UTF-8 with BOM), ``sites.gpkg`` and ``sites.json``.

    ``sites.gpkg`` holds the layers ``sites`` (the ranked points) and
    ``compounds`` (which site serves which compound). Every file is written
    to a temporary name and moved into place.

    Parameters
    ----------
    result
        From :func:`recommend_sites`.
    out_dir
        Output folder (created when missing).
    inputs
        Input files that must not be overwritten (e.g. ``study.inputs.values()``).

    Returns
    -------
    list of pathlib.Path
        The files written.

    Examples
    --------
    >>> import tempfile
    >>> from lifecircle import Study
    >>> study = Study.from_demo()
    >>> result = recommend_sites(study, "fresh_market", 2)
    >>> [p.name for p in write_siting_outputs(result, tempfile.mkdtemp())]
    ['sites.csv', 'sites.gpkg', 'sites.json']
    """
    out = Path(out_dir)
    targets = [out / name for name in SITING_OUTPUT_NAMES]
    refuse_to_overwrite(targets, inputs)
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(result.sites.drop(columns=result.sites.geometry.name))
    table.insert(1, "type", result.target)
    write_table(table, targets[0])
    sites = result.sites.copy()
    sites.insert(1, "type", result.target)
    write_layers({"sites": sites, "compounds": result.compounds}, targets[1])
    write_json(result.summary(), targets[2])
    logger.info("wrote %s", ", ".join(str(t) for t in targets))
    return targets
