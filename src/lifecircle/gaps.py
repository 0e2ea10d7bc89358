"""Blind zones (盲区): where residents live and a required facility is out of reach.

A grid covers the study area (a boundary polygon, or the compounds' hull plus
a margin), with square or hexagonal (H3) cells of 50-200 m. Each cell centre
is a point on the network like any other origin; the engine gives the walking
time from it to the nearest facility of each scored item (the standard's
categories, or its required types when it has no categories).

Residents are placed in cells by area: a compound's population is shared
among the cells its polygon overlaps, in proportion to the overlap (a point
compound puts everyone in the cell that contains it). A cell where residents
live and an item fails is a blind zone; touching blind cells of one item are
dissolved into gap polygons carrying the population affected.
"""

from __future__ import annotations

import logging
import math

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from .engine import ReachEngine
from .errors import InputError
from .scoring import FACILITY_LAYER, ScoreItem

logger = logging.getLogger(__name__)

__all__ = ["CELL_LAYER", "dissolve_gaps", "grid_cells", "score_cells", "study_area"]

CELL_LAYER = "cells"
DEFAULT_MARGIN_M = 200.0
_MIN_CELL_M, _MAX_CELL_M = 50.0, 200.0


def study_area(
    communities: gpd.GeoDataFrame,
    boundary: gpd.GeoDataFrame | None,
    crs: object,
    *,
    margin_m: float = DEFAULT_MARGIN_M,
) -> shapely.Geometry:
    """The boundary's union, or the compounds' convex hull plus ``margin_m``."""
    if boundary is not None and not boundary.empty:
        return shapely.union_all(boundary.to_crs(crs).geometry.to_numpy())
    hull = shapely.convex_hull(shapely.union_all(communities.to_crs(crs).geometry.to_numpy()))
    return shapely.buffer(hull, margin_m)


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
        every cell whose centre lies in the area is kept whole.
    """
    if not _MIN_CELL_M <= cell_m <= _MAX_CELL_M:
        raise InputError(f"cell size must be between 50 and 200 m, got {cell_m:g}")
    if kind == "square":
        return _square_cells(area, crs, cell_m)
    if kind == "h3":
        return _h3_cells(area, crs, cell_m)
    raise InputError(f"unknown grid kind {kind!r}; use square or h3")


def _square_cells(area: shapely.Geometry, crs: object, cell_m: float) -> gpd.GeoDataFrame:
    minx, miny, maxx, maxy = area.bounds
    xs = np.arange(math.floor(minx / cell_m) * cell_m, maxx, cell_m)
    ys = np.arange(math.floor(miny / cell_m) * cell_m, maxy, cell_m)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    boxes = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + cell_m, gy.ravel() + cell_m)
    centres = shapely.points(gx.ravel() + cell_m / 2, gy.ravel() + cell_m / 2)
    inside = shapely.contains(area, centres)
    ids = [
        f"sq_{int(x)}_{int(y)}" for x, y in zip(gx.ravel()[inside], gy.ravel()[inside], strict=True)
    ]
    return gpd.GeoDataFrame({"cell_id": ids}, geometry=boxes[inside], crs=crs)


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
    reachable), ``<item>_ok`` and ``<item>_gap`` (people live there, the cell
    is routed and the item fails). Cells whose centre is not routed (too far
    from a street, or on a disconnected piece) are never blind zones; their
    population is reported apart.
    """
    engine.add_layer(CELL_LAYER, cells.geometry.centroid)
    out = cells.copy()
    out["population"] = np.round(_cell_population(cells, communities), 1)
    snaps = engine.snaps(CELL_LAYER)
    out["snap_status"] = snaps.status
    for item in items:
        source_index = np.flatnonzero(np.isin(facility_types, item.types))
        dist = engine.nearest(FACILITY_LAYER, CELL_LAYER, source_index=source_index)
        minutes = np.where(np.isfinite(dist), np.round(dist / walk_speed, 1), np.nan)
        out[f"{item.id}_min"] = minutes
        out[f"{item.id}_ok"] = dist <= item.threshold_m
        # a cell whose centre cannot be routed is unknown, not blind
        out[f"{item.id}_gap"] = (out["population"] > 0) & snaps.ok & ~out[f"{item.id}_ok"]
    return out


def dissolve_gaps(cells: gpd.GeoDataFrame, items: list[ScoreItem]) -> gpd.GeoDataFrame:
    """Dissolve touching blind cells of each item into gap polygons.

    Returns
    -------
    geopandas.GeoDataFrame
        ``gap_id``, ``item``, ``kind``, ``threshold_m``, ``cells``,
        ``population``, ``area_m2``, ``max_min`` (worst walking minutes in the
        gap, empty when unreachable) and the polygon, sorted by population.
    """
    rows = []
    geoms = []
    for item in items:
        blind = cells[cells[f"{item.id}_gap"]]
        if blind.empty:
            continue
        merged = shapely.get_parts(shapely.union_all(blind.geometry.to_numpy()))
        tree = shapely.STRtree(merged)
        part_of = tree.query(blind.geometry.representative_point().to_numpy(), predicate="within")
        owner = np.full(len(blind), -1)
        owner[part_of[0]] = part_of[1]
        frame = pd.DataFrame(
            {
                "owner": owner,
                "population": blind["population"].to_numpy(),
                "minutes": blind[f"{item.id}_min"].to_numpy(),
            }
        )
        stats = frame.groupby("owner").agg(
            cells=("population", "size"),
            population=("population", "sum"),
            max_min=("minutes", "max"),
        )
        for part, stat in stats.iterrows():
            if part < 0:
                continue
            rows.append(
                {
                    "item": item.id,
                    "kind": item.kind,
                    "threshold_m": item.threshold_m,
                    "cells": int(stat["cells"]),
                    "population": round(stat["population"], 1),
                    "max_min": stat["max_min"],
                    "status": item.status,
                    "source": item.source,
                }
            )
            geoms.append(merged[part])
    gaps = gpd.GeoDataFrame(rows, geometry=geoms, crs=cells.crs)
    if gaps.empty:
        gaps = gpd.GeoDataFrame(
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
        return gaps
    gaps["area_m2"] = gaps.geometry.area.round(1)
    gaps = gaps.sort_values("population", ascending=False, ignore_index=True)
    gaps.insert(0, "gap_id", [f"G{i + 1:03d}" for i in range(len(gaps))])
    return gaps
