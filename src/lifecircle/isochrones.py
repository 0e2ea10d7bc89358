"""Walking isochrones built from the reachable network.

Method
------
For each origin group (a compound's gates), one bounded multi-source Dijkstra
run gives the walking distance ``d`` to every node of the routing graph. For a
threshold ``T`` (metres = minutes x walking speed) an edge ``(a, b)`` of length
``L`` is covered

* entirely when ``(T - d_a) + (T - d_b) >= L`` (reached from both ends, or
  from one end with distance to spare);
* otherwise on the piece ``[0, T - d_a]`` from ``a`` and ``[L - (T - d_b), L]``
  from ``b`` (each only when positive).

Edges are straight segments, so pieces are exact linear interpolations. The
covered pieces are buffered by ``buffer_m`` (the street's walkable frontage),
holes smaller than ``hole_fill_m2`` (the insides of reached blocks) are
filled (see :func:`isochrone_polygon` for how this is done quickly), and each
polygon is unioned with the next smaller one so the bands nest by
construction (5 ⊆ 10 ⊆ 15). Nothing is reached across a barrier the
network does not cross; only the buffer can reach ``buffer_m`` past the last
reached street, which is why the buffer should stay narrower than half the
narrowest barrier (rivers, rail) of the study area.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry
from tqdm import tqdm

from .engine import ReachEngine, RoutingGraph
from .errors import InputError
from .network import DEFAULT_WALK_SPEED_M_PER_MIN

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BUFFER_M",
    "DEFAULT_HOLE_FILL_M2",
    "DEFAULT_MINUTES",
    "covered_pieces",
    "isochrone_polygon",
    "isochrones",
]

DEFAULT_MINUTES: tuple[int, ...] = (5, 10, 15)
#: Half-width of the band along reached streets (metres).
DEFAULT_BUFFER_M = 40.0
#: Holes smaller than this (square metres) are filled: the insides of reached blocks.
DEFAULT_HOLE_FILL_M2 = 20_000.0
_QUAD_SEGS = 4


def _workers(n_jobs: int | None, n_tasks: int) -> int:
    wanted = n_jobs if n_jobs is not None else (os.cpu_count() or 1)
    return max(1, min(wanted, n_tasks))


def covered_pieces(
    graph: RoutingGraph, dist: NDArray[np.float64], threshold_m: float
) -> NDArray[np.float64]:
    """Straight pieces of the network within ``threshold_m`` of the origin.

    Parameters
    ----------
    graph
        The routing graph the distances refer to.
    dist
        Distance from the origin to every node (``inf`` when unreached).
    threshold_m
        Walking distance in metres.

    Returns
    -------
    numpy.ndarray
        ``(n, 2, 2)`` start and end coordinates of covered pieces.

    Examples
    --------
    A 100 m edge reached at 0 m from one end, threshold 30 m: 30 m are covered.

    >>> import numpy as np
    >>> from scipy import sparse
    >>> g = RoutingGraph(np.array([[0.0, 0.0], [100.0, 0.0]]), np.array([0]), np.array([1]),
    ...                  np.array([100.0]), np.array([0]), sparse.csr_matrix((2, 2)))
    >>> covered_pieces(g, np.array([0.0, np.inf]), 30.0).tolist()
    [[[0.0, 0.0], [30.0, 0.0]]]
    """
    # only edges at a reached node can be covered; gathering them through the
    # node-edge incidence keeps the work local instead of scanning every edge
    touched = graph.edges_touching(np.flatnonzero(dist <= threshold_m))
    u, v = graph.edge_u[touched], graph.edge_v[touched]
    length = graph.edge_len[touched]
    reach_u = np.maximum(threshold_m - dist[u], 0.0)
    reach_v = np.maximum(threshold_m - dist[v], 0.0)
    xy_u, xy_v = graph.node_xy[u], graph.node_xy[v]
    full = reach_u + reach_v >= length

    pieces = [np.stack([xy_u[full], xy_v[full]], axis=1)]
    step = (xy_v - xy_u) / length[:, None]
    from_u = ~full & (reach_u > 0)
    pieces.append(
        np.stack([xy_u[from_u], xy_u[from_u] + step[from_u] * reach_u[from_u, None]], axis=1)
    )
    from_v = ~full & (reach_v > 0)
    pieces.append(
        np.stack([xy_v[from_v] - step[from_v] * reach_v[from_v, None], xy_v[from_v]], axis=1)
    )
    return np.concatenate(pieces)


def _fill_small_holes(geom: BaseGeometry, hole_fill_m2: float) -> BaseGeometry:
    if hole_fill_m2 <= 0 or geom.is_empty:
        return geom
    parts = shapely.get_parts(geom)
    filled = []
    for part in parts:
        rings = shapely.get_interior_ring(part, np.arange(shapely.get_num_interior_rings(part)))
        keep = [r for r in rings if shapely.area(shapely.polygons(r)) >= hole_fill_m2]
        filled.append(shapely.polygons(shapely.get_exterior_ring(part), holes=keep or None))
    return shapely.union_all(filled) if len(filled) > 1 else filled[0]


def isochrone_polygon(
    pieces: NDArray[np.float64],
    *,
    buffer_m: float = DEFAULT_BUFFER_M,
    hole_fill_m2: float = DEFAULT_HOLE_FILL_M2,
) -> BaseGeometry:
    """Buffer covered pieces into one polygon and fill small holes.

    The result is the ``buffer_m`` band around the pieces with holes under
    ``hole_fill_m2`` filled. It is built the cheap way round: blocks fully
    enclosed by covered streets whose inside (the block shrunk by
    ``buffer_m``) is under ``hole_fill_m2`` would only leave such holes, so
    they are filled first and buffered as one polygon; only the streets not
    on or inside them are buffered one by one. GEOS spends most isochrone
    time in the final union, and this leaves it a few large parts instead of
    hundreds of overlapping bands.

    Examples
    --------
    A 100 m square of reached streets: the block inside is filled.

    >>> import numpy as np
    >>> square = np.array([[[0, 0], [100, 0]], [[100, 0], [100, 100]],
    ...                    [[100, 100], [0, 100]], [[0, 100], [0, 0]]], dtype=float)
    >>> polygon = isochrone_polygon(square, buffer_m=10)
    >>> polygon.bounds, len(polygon.interiors)
    ((-10.0, -10.0, 110.0, 110.0), 0)
    """
    if pieces.shape[0] == 0:
        return shapely.Polygon()
    merged = shapely.line_merge(shapely.multilinestrings(shapely.linestrings(pieces)))
    lines = shapely.get_parts(merged)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.node(merged))))
    if faces.size:
        inside = shapely.area(shapely.buffer(faces, -buffer_m, quad_segs=_QUAD_SEGS))
        faces = faces[inside < hole_fill_m2]
    parts = []
    if faces.size:
        blocks = shapely.coverage_union_all(faces)
        parts.append(shapely.buffer(blocks, buffer_m, quad_segs=_QUAD_SEGS))
        lines = lines[~shapely.covered_by(lines, blocks)]
    parts.extend(shapely.buffer(lines, buffer_m, quad_segs=_QUAD_SEGS))
    return _fill_small_holes(shapely.union_all(parts), hole_fill_m2)


def isochrones(
    engine: ReachEngine,
    layer: str,
    groups: Sequence[object] | NDArray[np.object_] | pd.Series,
    *,
    minutes: Sequence[float] = DEFAULT_MINUTES,
    walk_speed: float = DEFAULT_WALK_SPEED_M_PER_MIN,
    buffer_m: float = DEFAULT_BUFFER_M,
    hole_fill_m2: float = DEFAULT_HOLE_FILL_M2,
    id_name: str = "community_id",
    progress: bool = True,
    n_jobs: int | None = None,
) -> gpd.GeoDataFrame:
    """Isochrones for every origin group of a point layer.

    Parameters
    ----------
    engine
        A :class:`~lifecircle.engine.ReachEngine` holding ``layer``.
    layer
        Name of the origin layer (e.g. ``"gates"``).
    groups
        For every point of the layer, the id of its group (e.g. the
        ``community_id`` of each gate). Points of one group act together: a
        place is reached when it is reached from any of them.
    minutes
        Thresholds in minutes (default 5, 10, 15).
    walk_speed
        Metres per minute.
    buffer_m, hole_fill_m2
        See the module notes.
    id_name
        Name of the group id column in the output.
    progress
        Show a progress bar.
    n_jobs
        Threads sharing the polygon work (default: one per CPU core).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per group and threshold: ``<id_name>``, ``minutes``,
        ``distance_m``, ``area_m2`` and the polygon, in WGS84. Groups whose
        points are all unrouted get empty geometries.
    """
    thresholds = sorted(float(m) for m in minutes)
    if not thresholds or thresholds[0] <= 0:
        raise InputError("isochrone minutes must be positive numbers")
    if walk_speed <= 0:
        raise InputError("walking speed must be positive")
    group_ids = pd.Series(np.asarray(groups, dtype=object))
    if len(group_ids) != len(engine.snaps(layer)):
        raise InputError(f"need one group id per point of layer {layer!r}")
    codes, uniques = pd.factorize(group_ids)
    members = pd.Series(np.arange(len(codes))).groupby(codes).apply(np.asarray)
    graph = engine.graph
    limit = thresholds[-1] * walk_speed

    def nested_polygons(code: int) -> list[BaseGeometry]:
        dist = engine.distances_from(layer, members.get(code, np.empty(0, int)), limit=limit)
        polygons: list[BaseGeometry] = []
        previous: BaseGeometry = shapely.Polygon()
        for minute in thresholds:
            polygon = isochrone_polygon(
                covered_pieces(graph, dist, minute * walk_speed),
                buffer_m=buffer_m,
                hole_fill_m2=hole_fill_m2,
            )
            previous = shapely.union(polygon, previous) if not previous.is_empty else polygon
            polygons.append(previous)
        return polygons

    # GEOS releases the GIL, so threads share the buffering and unions across cores;
    # map() keeps the output in input order.
    with ThreadPoolExecutor(max_workers=_workers(n_jobs, len(uniques))) as pool:
        results = list(
            tqdm(
                pool.map(nested_polygons, range(len(uniques))),
                total=len(uniques),
                desc="isochrones",
                unit="origin",
                disable=not progress,
                leave=False,
            )
        )
    rows = [
        {id_name: uniques[code], "minutes": minute, "distance_m": minute * walk_speed}
        for code in range(len(uniques))
        for minute in thresholds
    ]
    geoms = [polygon for polygons in results for polygon in polygons]
    frame = gpd.GeoDataFrame(rows, geometry=geoms, crs=engine.network.crs)
    frame["area_m2"] = frame.geometry.area.round(1)
    if all(float(m).is_integer() for m in thresholds):
        frame["minutes"] = frame["minutes"].astype(int)
    return frame.to_crs(4326)
