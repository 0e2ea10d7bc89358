"""Blind zones (盲区): where residents live and a required facility is out of reach.

A grid covers the study area (a boundary polygon, or the compounds each grown
by a margin), with square or hexagonal (H3) cells of 50-200 m. Each cell centre
is a point on the network like any other origin; the engine gives the walking
time from it to the nearest facility of each scored item (the standard's
requirements and categories), and for a requirement that needs several
facilities the number within reach; :func:`~lifecircle.scoring.item_met`
decides each item, exactly as for the compounds.

Residents are placed in cells by area: a compound's population is shared
among the cells its polygon overlaps, in proportion to the overlap (a point
compound puts everyone in the cell that contains it). A cell where residents
live and an item fails is a blind zone; touching blind cells of one item are
dissolved into gap polygons carrying the population affected. Cells of a
square grid are joined through their shared edges (connected components on
the lattice) and each gap's outline is traced from its cells' outer sides.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from .engine import ReachEngine
from .errors import InputError
from .scoring import FACILITY_LAYER, ScoreItem, item_met

logger = logging.getLogger(__name__)

__all__ = [
    "CELL_LAYER",
    "clip_to_area",
    "dissolve_gaps",
    "grid_cells",
    "score_cells",
    "square_lattice",
    "study_area",
    "union_of",
]

CELL_LAYER = "cells"
DEFAULT_MARGIN_M = 200.0
_MIN_CELL_M, _MAX_CELL_M = 50.0, 200.0
_BUFFER_QUAD_SEGS = 4
# relative tolerance (of the cell side) for recognising a square lattice
_LATTICE_TOL = 1e-6


def study_area(
    communities: gpd.GeoDataFrame,
    boundary: gpd.GeoDataFrame | None,
    crs: object,
    *,
    margin_m: float = DEFAULT_MARGIN_M,
) -> shapely.Geometry:
    """The boundary's union, or the compounds' neighbourhoods: each buffered by ``margin_m``.

    Without a boundary the area is the union of the compounds, each grown by
    ``margin_m``; never a hull spanning them, so a compound placed far away
    adds its own neighbourhood and not the land in between.
    """
    if boundary is not None and not boundary.empty:
        return union_of(boundary.to_crs(crs).geometry.to_numpy())
    geoms = communities.to_crs(crs).geometry.to_numpy()
    geoms = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]
    return shapely.union_all(shapely.buffer(geoms, margin_m, quad_segs=_BUFFER_QUAD_SEGS))


def union_of(geoms: NDArray[np.object_]) -> shapely.Geometry:
    """The union of polygons; one valid polygon is taken as it is (a city's outline
    has tens of thousands of vertices, and its union with nothing takes a second).

    Examples
    --------
    >>> import numpy as np, shapely
    >>> union_of(np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)])).area
    2.0
    """
    geoms = np.asarray(geoms, dtype=object)
    if geoms.size == 1 and shapely.is_valid(geoms[0]):
        return geoms[0]
    return shapely.union_all(geoms)


def clip_to_area(
    geoms: NDArray[np.object_],
    area: shapely.Geometry,
    groups: NDArray[np.object_] | None = None,
) -> NDArray[np.object_]:
    """Polygons cut to ``area`` (whole grid cells along its edge spill past it).

    The same as ``shapely.intersection(geoms, area)``, without paying for the
    whole area once per polygon: polygons the area covers are kept as they
    are (one prepared test each), and the others are cut in one overlay per
    group, then handed back to the polygon each piece lies in.

    Parameters
    ----------
    geoms
        Polygons in the CRS of ``area``.
    area
        The area to cut to.
    groups
        A group key per polygon; polygons of one group must not overlap (the
        gaps of one item never do). Without it each polygon is its own group.

    Returns
    -------
    numpy.ndarray
        One (possibly empty) polygon or multipolygon per input.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> cells = np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 3, 1)])
    >>> [g.area for g in clip_to_area(cells, shapely.box(0, 0, 2, 1), np.array(["a", "a"]))]
    [1.0, 1.0]
    """
    geoms = np.asarray(geoms, dtype=object)
    out = geoms.copy()
    if geoms.size == 0 or area is None or shapely.is_empty(area):
        return out
    shapely.prepare(area)
    crossing = _not_covered(geoms, area)
    if groups is None:
        parts, owner = shapely.get_parts(
            shapely.intersection(geoms[crossing], area), return_index=True
        )
        out[crossing] = _by_owner(parts, owner, crossing.size)
        return out
    codes = pd.factorize(np.asarray(groups, dtype=object)[crossing])[0]
    order = np.argsort(codes, kind="stable")
    for members in np.split(crossing[order], np.flatnonzero(np.diff(codes[order])) + 1):
        if members.size:
            out[members] = _cut_disjoint(geoms[members], area)
    return out


def _not_covered(geoms: NDArray[np.object_], area: shapely.Geometry) -> NDArray[np.int64]:
    """Positions of the polygons that ``area`` does not cover.

    A polygon whose box meets no segment of the area's edge lies wholly inside
    or wholly outside, which one vertex tells; only the others, along the
    edge, need the full test (a city's area has tens of thousands of edge
    vertices, and testing every gap against all of them took seconds).
    """
    rings = shapely.get_rings(shapely.get_parts(area))
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring[1:] == ring[:-1]
    segments = shapely.linestrings(np.stack([coords[:-1], coords[1:]], axis=1)[same_ring])
    near = np.zeros(geoms.size, dtype=bool)
    near[shapely.STRtree(geoms).query(segments)[1]] = True
    vertex, owner = shapely.get_coordinates(geoms, return_index=True)
    first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]) if owner.size else owner
    inside = np.zeros(geoms.size, dtype=bool)
    inside[owner[first]] = shapely.contains_xy(area, vertex[first, 0], vertex[first, 1])
    covered = ~near & inside
    edge = np.flatnonzero(near)
    covered[edge] = shapely.covers(area, geoms[edge])
    return np.flatnonzero(~covered)


def _cut_disjoint(geoms: NDArray[np.object_], area: shapely.Geometry) -> NDArray[np.object_]:
    """Non-overlapping polygons cut to ``area`` in one overlay, piece by owner."""
    cut = shapely.intersection(shapely.multipolygons(shapely.get_parts(geoms)), area)
    pieces = shapely.get_parts(cut)
    # a piece's inner point lies inside exactly one of the (disjoint) polygons
    piece, owner = shapely.STRtree(geoms).query(
        shapely.point_on_surface(pieces), predicate="within"
    )
    return _by_owner(pieces[piece], owner, geoms.size)


def _by_owner(parts: NDArray[np.object_], owner: NDArray[np.int64], n: int) -> NDArray[np.object_]:
    """The polygon parts of each owner as one (multi)polygon; empty where it has none.

    Points and lines (where a polygon only touches the area) are left out.
    """
    keep = shapely.get_type_id(parts) == shapely.GeometryType.POLYGON
    parts, owner = parts[keep], owner[keep]
    result = np.array([shapely.Polygon() for _ in range(n)], dtype=object)
    if owner.size == 0:
        return result
    order = np.argsort(owner, kind="stable")
    parts, owner = parts[order], owner[order]
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    for k, mine in zip(owner[starts].tolist(), np.split(parts, starts[1:]), strict=True):
        result[k] = mine[0] if mine.size == 1 else shapely.multipolygons(mine)
    return result


def grid_cells(
    area: shapely.Geometry, crs: object, *, cell_m: float = 100.0, kind: str = "square"
) -> gpd.GeoDataFrame:
    """Cells covering ``area`` (in ``crs``, metres).

    Parameters
    ----------
    area
        Study area polygon in the projected ``crs``.
    crs
        A projected CRS in metres.
    cell_m
        Cell size: the side of a square, or for hexagons the H3 resolution
        whose cells have about the same area as a ``cell_m`` square.
    kind
        ``"square"`` or ``"h3"``.

    Returns
    -------
    geopandas.GeoDataFrame
        ``cell_id`` and the cell polygon, in ``crs``. Cells are not clipped:
        every cell whose centre lies in the area (or on its edge) is kept
        whole. Square cells are enumerated over each part of the area on its
        own, so the work grows with the area covered, not with the extent
        between its parts.
    """
    if not _MIN_CELL_M <= cell_m <= _MAX_CELL_M:
        raise InputError(f"cell size must be between 50 and 200 m, got {cell_m:g}")
    if kind == "square":
        return _square_cells(area, crs, cell_m)
    if kind == "h3":
        return _h3_cells(area, crs, cell_m)
    raise InputError(f"unknown grid kind {kind!r}; use square or h3")


def _square_cells(area: shapely.Geometry, crs: object, cell_m: float) -> gpd.GeoDataFrame:
    parts = shapely.get_parts(area)
    parts = parts[~shapely.is_empty(parts)]
    if parts.size == 0:
        return gpd.GeoDataFrame({"cell_id": []}, geometry=[], crs=crs)
    bounds = shapely.bounds(parts)
    ix0 = np.floor(bounds[:, 0] / cell_m).astype(np.int64)
    iy0 = np.floor(bounds[:, 1] / cell_m).astype(np.int64)
    nx = np.maximum(np.ceil(bounds[:, 2] / cell_m).astype(np.int64) - ix0, 1)
    ny = np.maximum(np.ceil(bounds[:, 3] / cell_m).astype(np.int64) - iy0, 1)
    ix, iy = _windows(ix0, iy0, nx, ny)
    # parts may share cells: keep each once, in row-major order (y, then x)
    pairs = np.unique(np.stack([iy, ix], axis=1), axis=0)
    iy, ix = pairs[:, 0], pairs[:, 1]
    x, y = ix * cell_m, iy * cell_m
    shapely.prepare(area)
    inside = shapely.intersects_xy(area, x + cell_m / 2, y + cell_m / 2)
    x, y = x[inside], y[inside]
    boxes = shapely.box(x, y, x + cell_m, y + cell_m)
    ids = [f"sq_{int(a)}_{int(b)}" for a, b in zip(x, y, strict=True)]
    return gpd.GeoDataFrame({"cell_id": ids}, geometry=boxes, crs=crs)


def _windows(
    ix0: NDArray[np.int64], iy0: NDArray[np.int64], nx: NDArray[np.int64], ny: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Lattice indices of every cell of several rectangular windows, concatenated."""
    sizes = nx * ny
    window = np.repeat(np.arange(sizes.size), sizes)
    offset = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return ix0[window] + offset % nx[window], iy0[window] + offset // nx[window]


def _h3_resolution(cell_m: float) -> int:
    target = cell_m * cell_m
    areas = {res: h3.average_hexagon_area(res, unit="m^2") for res in range(7, 13)}
    return min(areas, key=lambda res: abs(math.log(areas[res] / target)))


def _h3_cells(area: shapely.Geometry, crs: object, cell_m: float) -> gpd.GeoDataFrame:
    res = _h3_resolution(cell_m)
    area_wgs = gpd.GeoSeries([area], crs=crs).to_crs(4326).iloc[0]
    cells = h3.geo_to_cells(area_wgs.__geo_interface__, res)
    cells = sorted(cells)
    polygons = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in cells]
    return gpd.GeoDataFrame({"cell_id": cells}, geometry=polygons, crs=4326).to_crs(crs)


def _cell_population(cells: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> NDArray[np.float64]:
    population = np.zeros(len(cells))
    comm = communities.to_crs(cells.crs)
    pop = comm["population"].fillna(0.0).to_numpy(dtype=float) if "population" in comm else None
    if pop is None:
        pop = np.ones(len(comm))  # unknown population: count compounds, one each
    geoms = comm.geometry.to_numpy()
    areas = shapely.area(geoms)
    tree = shapely.STRtree(cells.geometry.to_numpy())
    is_area = areas > 0
    if is_area.any():
        comm_idx, cell_idx = tree.query(geoms[is_area], predicate="intersects")
        parts = shapely.area(
            shapely.intersection(geoms[is_area][comm_idx], cells.geometry.to_numpy()[cell_idx])
        )
        share = parts / areas[is_area][comm_idx]
        np.add.at(population, cell_idx, pop[is_area][comm_idx] * share)
    if (~is_area).any():
        comm_idx, cell_idx = tree.query(geoms[~is_area], predicate="within")
        first = np.unique(comm_idx, return_index=True)[1]
        np.add.at(population, cell_idx[first], pop[~is_area][comm_idx[first]])
    return population


def score_cells(
    engine: ReachEngine,
    cells: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    facility_types: NDArray[np.object_],
    items: list[ScoreItem],
    walk_speed: float,
) -> gpd.GeoDataFrame:
    """Walking minutes from each cell to each item, population, and blind-zone flags.

    Adds ``population``, ``snap_status``, and per item ``<item>_min``
    (minutes to the nearest facility of the item, empty when none is
    reachable), ``<item>_n`` for a requirement that needs ``min_count`` > 1
    facilities (how many lie within its threshold), ``<item>_ok`` (decided
    by :func:`~lifecircle.scoring.item_met`) and ``<item>_gap`` (people live
    there, the cell is routed and the item fails). Cells whose centre is not
    routed (too far from a street, or on a disconnected piece) are never
    blind zones; their population is reported apart.
    """
    # counts within a radius walk from the cells' own nodes; distances alone are
    # read off the graph as it is, with the passes already made for the compounds
    snaps = engine.add_layer(CELL_LAYER, cells.geometry.centroid, insert=cells_are_counted(items))
    out = cells.copy()
    out["population"] = np.round(_cell_population(cells, communities), 1)
    out["snap_status"] = snaps.status
    populated = out["population"].to_numpy() > 0
    for item in items:
        source_index = np.flatnonzero(np.isin(facility_types, item.types))
        dist = engine.nearest(FACILITY_LAYER, CELL_LAYER, source_index=source_index)
        count = _cell_counts(engine, item, source_index, len(cells))
        minutes = np.where(np.isfinite(dist), np.round(dist / walk_speed, 1), np.nan)
        out[f"{item.id}_min"] = minutes
        if count is not None:
            out[f"{item.id}_n"] = count
        ok = item_met(item, dist, count)
        out[f"{item.id}_ok"] = ok
        # a cell whose centre cannot be routed is unknown, not blind
        out[f"{item.id}_gap"] = populated & snaps.ok & ~ok
    return out


def cells_are_counted(items: Sequence[ScoreItem]) -> bool:
    """Whether some item counts the facilities within its threshold of each cell (then
    the cells must be nodes of the routing graph)."""
    return any(item.kind == "requirement" and item.min_count > 1 for item in items)


def _cell_counts(
    engine: ReachEngine, item: ScoreItem, source_index: NDArray[np.int64], n_cells: int
) -> NDArray[np.int64] | None:
    """Facilities of a requirement within its threshold of each cell, when it needs several."""
    if item.kind != "requirement" or item.min_count <= 1:
        return None
    if source_index.size == 0:
        return np.zeros(n_cells, dtype=np.int64)
    return engine.count_within(
        FACILITY_LAYER, CELL_LAYER, item.threshold_m, source_index=source_index
    )


def dissolve_gaps(cells: gpd.GeoDataFrame, items: list[ScoreItem]) -> gpd.GeoDataFrame:
    """Dissolve touching blind cells of each item into gap polygons.

    Cells that share an edge belong to one gap (cells touching only at a
    corner do not, as in a polygon union). Square cells are joined on their
    lattice and outlined from their outer sides; other cells (H3) by a union.

    Returns
    -------
    geopandas.GeoDataFrame
        ``gap_id``, ``item``, ``kind``, ``threshold_m``, ``cells``,
        ``population``, ``area_m2``, ``max_min`` (worst walking minutes in the
        gap, empty when unreachable) and the polygon, sorted by population
        (ties in the order of the items, then of the gaps' first cells).
    """
    frames: list[pd.DataFrame] = []
    geoms: list[NDArray[np.object_]] = []
    lattice = square_lattice(cells)
    all_geoms = cells.geometry.to_numpy()
    if lattice is not None:
        bounds = shapely.bounds(all_geoms)
        origin = (float(bounds[:, 0].min()), float(bounds[:, 1].min()))
        side = float(bounds[0, 2] - bounds[0, 0])
    for item in items:
        where = np.flatnonzero(cells[f"{item.id}_gap"].to_numpy(dtype=bool))
        if where.size == 0:
            continue
        if lattice is not None:
            owner, parts = _dissolve_on_lattice(lattice[0][where], lattice[1][where], origin, side)
        else:
            owner, parts = _dissolve_by_union(all_geoms[where])
        frames.append(
            _gap_rows(
                item,
                owner,
                cells["population"].to_numpy(dtype=float)[where],
                cells[f"{item.id}_min"].to_numpy(dtype=float)[where],
            )
        )
        geoms.append(parts)
    if frames:
        rows = pd.concat(frames, ignore_index=True)
        gaps = gpd.GeoDataFrame(rows, geometry=np.concatenate(geoms), crs=cells.crs)
    else:
        gaps = gpd.GeoDataFrame(geometry=[], crs=cells.crs)
    if gaps.empty:
        return gpd.GeoDataFrame(
            columns=[
                "gap_id",
                "item",
                "kind",
                "threshold_m",
                "cells",
                "population",
                "max_min",
                "status",
                "source",
                "area_m2",
                "geometry",
            ],
            geometry="geometry",
            crs=cells.crs,
        )
    gaps["area_m2"] = gaps.geometry.area.round(1)
    gaps = gaps.sort_values("population", ascending=False, ignore_index=True, kind="stable")
    gaps.insert(0, "gap_id", [f"G{i + 1:03d}" for i in range(len(gaps))])
    return gaps


def _gap_rows(
    item: ScoreItem,
    owner: NDArray[np.int64],
    population: NDArray[np.float64],
    minutes: NDArray[np.float64],
) -> pd.DataFrame:
    """One row per component of an item's blind cells: size, population, worst minutes."""
    n_parts = int(owner.max(initial=-1)) + 1
    held = owner >= 0
    worst = np.full(n_parts, -np.inf)
    np.fmax.at(worst, owner[held], minutes[held])  # fmax skips unreachable (NaN) cells
    return pd.DataFrame(
        {
            "item": item.id,
            "kind": item.kind,
            "threshold_m": item.threshold_m,
            "cells": np.bincount(owner[held], minlength=n_parts),
            "population": np.round(
                np.bincount(owner[held], weights=population[held], minlength=n_parts), 1
            ),
            "max_min": np.where(np.isfinite(worst), worst, np.nan),
            "status": item.status,
            "source": item.source,
        }
    )


def square_lattice(
    cells: gpd.GeoDataFrame,
) -> tuple[NDArray[np.int64], NDArray[np.int64]] | None:
    """Column and row of every cell when the cells are distinct squares of one lattice.

    Returns ``None`` for any other cells (hexagons, squares of mixed sizes or
    off the lattice, repeated cells).
    """
    geoms = cells.geometry.to_numpy()
    if geoms.size == 0 or shapely.is_missing(geoms).any():
        return None
    bounds = shapely.bounds(geoms)
    width, height = bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]
    side = float(width[0])
    tol = _LATTICE_TOL * side
    if side <= 0 or np.abs(width - side).max() > tol or np.abs(height - side).max() > tol:
        return None
    is_box = (shapely.get_num_coordinates(geoms) == 5) & (
        np.abs(shapely.area(geoms) - side * side) <= tol * side
    )
    if not is_box.all():
        return None
    x0, y0 = bounds[:, 0].min(), bounds[:, 1].min()
    col = np.rint((bounds[:, 0] - x0) / side)
    row = np.rint((bounds[:, 1] - y0) / side)
    if (
        np.abs(col * side + x0 - bounds[:, 0]).max() > tol
        or np.abs(row * side + y0 - bounds[:, 1]).max() > tol
    ):
        return None
    col_i, row_i = col.astype(np.int64), row.astype(np.int64)
    keys = row_i * (int(col_i.max()) + 1) + col_i
    if np.unique(keys).size != keys.size:
        return None
    return col_i, row_i


def _dissolve_on_lattice(
    col: NDArray[np.int64],
    row: NDArray[np.int64],
    origin: tuple[float, float],
    side: float,
) -> tuple[NDArray[np.int64], NDArray[np.object_]]:
    """Edge-connected components of lattice cells and their outlines.

    The outline is traced from the cell sides that face a cell outside the
    set: those sides are polygonised, and each face that lies on a member
    cell is one component (the other faces are holes). Returns the component
    of every cell (numbered in the order of the cells' first member) and one
    polygon per component.
    """
    # one empty column and row on every side, so neighbours never wrap around
    c = col - col.min() + 1
    r = row - row.min() + 1
    width = int(c.max()) + 2
    keys = r * width + c
    order = np.argsort(keys)
    sorted_keys = keys[order]

    def member(target: NDArray[np.int64]) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
        pos = np.minimum(np.searchsorted(sorted_keys, target), keys.size - 1)
        return sorted_keys[pos] == target, order[pos]

    right, right_of = member(keys + 1)
    above, above_of = member(keys + width)
    n = keys.size
    u = np.concatenate([np.flatnonzero(right), np.flatnonzero(above)])
    v = np.concatenate([right_of[right], above_of[above]])
    adjacency = sparse.coo_matrix((np.ones(u.size, dtype=np.int8), (u, v)), shape=(n, n))
    n_parts, owner = connected_components(adjacency, directed=False)
    left, below = member(keys - 1)[0], member(keys - width)[0]
    parts = np.empty(n_parts, dtype=object)
    # a cell alone is its own outline; only larger components are traced
    single = np.bincount(owner, minlength=n_parts)[owner] == 1
    parts[owner[single]] = _lattice_boxes(col[single], row[single], origin, side)
    if single.all():
        return owner.astype(np.int64), parts
    traced = ~single
    below, above, left, right = (
        (below | single),
        (above | single),
        (left | single),
        (right | single),
    )
    # the outer sides, merged into runs along each lattice line; every corner is
    # origin + index * side, one formula for all, so shared corners are equal floats
    runs = [
        _runs(col[~below], row[~below]),
        _runs(col[~above], row[~above] + 1),
        _runs(row[~left], col[~left]),
        _runs(row[~right], col[~right] + 1),
    ]
    horizontal = np.concatenate(runs[:2])
    vertical = np.concatenate(runs[2:])
    x = np.concatenate(
        [
            _lattice_coord(origin[0], horizontal[:, [1, 2]], side),
            _lattice_coord(origin[0], vertical[:, [0, 0]], side),
        ]
    )
    y = np.concatenate(
        [
            _lattice_coord(origin[1], horizontal[:, [0, 0]], side),
            _lattice_coord(origin[1], vertical[:, [1, 2]], side),
        ]
    )
    edges = np.asarray(shapely.linestrings(np.stack([x, y], axis=2)), dtype=object)
    faces = shapely.get_parts(shapely.polygonize(edges))
    inner = shapely.get_coordinates(shapely.point_on_surface(faces))
    fcol = np.floor((inner[:, 0] - origin[0]) / side).astype(np.int64)
    frow = np.floor((inner[:, 1] - origin[1]) / side).astype(np.int64)
    found, cell = member((frow - row.min() + 1) * width + (fcol - col.min() + 1))
    # faces on a lone cell are holes around it (lone cells have no traced sides)
    found &= traced[cell]
    label = owner[cell[found]]
    if np.unique(label).size == label.size == np.unique(owner[traced]).size:
        parts[label] = faces[found]
        return owner.astype(np.int64), parts
    # faces that cannot be matched through the lattice: match cells by containment
    cells = _lattice_boxes(col, row, origin, side)
    return _owners_by_containment(cells, shapely.get_parts(shapely.coverage_union_all(cells)))


def _runs(along: NDArray[np.int64], line: NDArray[np.int64]) -> NDArray[np.int64]:
    """Unit sides on lattice lines merged into runs: rows of (line, first, last + 1).

    ``along`` is the position of each unit side on its line. Sides of one kind
    (say, bottom sides) never meet a side crossing their line inside a run, so
    the runs stay noded for polygonising.
    """
    if along.size == 0:
        return np.empty((0, 3), dtype=np.int64)
    order = np.lexsort((along, line))
    a, b = along[order], line[order]
    start = np.r_[True, (b[1:] != b[:-1]) | (a[1:] != a[:-1] + 1)]
    first = np.flatnonzero(start)
    last = np.r_[first[1:], a.size] - 1
    return np.stack([b[first], a[first], a[last] + 1], axis=1)


def _lattice_boxes(
    col: NDArray[np.int64], row: NDArray[np.int64], origin: tuple[float, float], side: float
) -> NDArray[np.object_]:
    """The cells at the given lattice positions, as boxes."""
    return shapely.box(
        _lattice_coord(origin[0], col, side),
        _lattice_coord(origin[1], row, side),
        _lattice_coord(origin[0], col + 1, side),
        _lattice_coord(origin[1], row + 1, side),
    )


def _lattice_coord(origin: float, index: NDArray[np.int64], side: float) -> NDArray[np.float64]:
    """Coordinate of a lattice line."""
    return np.asarray(origin + index * side, dtype=np.float64)


def _dissolve_by_union(geoms: NDArray[np.object_]) -> tuple[NDArray[np.int64], NDArray[np.object_]]:
    """Components of arbitrary cells (H3): the parts of their union."""
    return _owners_by_containment(geoms, shapely.get_parts(shapely.union_all(geoms)))


def _owners_by_containment(
    geoms: NDArray[np.object_], merged: NDArray[np.object_]
) -> tuple[NDArray[np.int64], NDArray[np.object_]]:
    """The part of ``merged`` holding each cell, parts renumbered by their first cell."""
    tree = shapely.STRtree(merged)
    cell_idx, part_idx = tree.query(shapely.point_on_surface(geoms), predicate="within")
    owner = np.full(geoms.size, -1, dtype=np.int64)
    owner[cell_idx] = part_idx
    held = owner >= 0
    first = np.unique(owner[held], return_index=True)
    rank = np.empty(merged.size, dtype=np.int64)
    rank[first[0][np.argsort(first[1])]] = np.arange(first[0].size)
    parts = np.empty(first[0].size, dtype=object)
    parts[rank[first[0]]] = merged[first[0]]
    owner[held] = rank[owner[held]]
    return owner, parts
