"""The reach engine: snapping points to the walk network and compiled shortest paths.

Points (facilities, compound gates, grid cells, candidate sites) are grouped in
named *layers*. Each point snaps to the nearest walkable segment at its exact
position along it; the access leg from the point to the segment counts as
walking distance. The engine then inserts every snapped point into the segment
graph (splitting segments where points attach), so that partial edges at both
ends of a trip are exact and every query is a plain scipy Dijkstra run:

* :meth:`ReachEngine.nearest` - one multi-source pass per source set gives the
  distance from every point of a target layer to the nearest source;
* :meth:`ReachEngine.within` - bounded searches give every (target, source)
  pair within a radius, for counts and capacity-aware measures.

Targets may be grouped (a compound's gates): a group's distance is the minimum
over its members.

Examples
--------
>>> import geopandas as gpd
>>> from shapely.geometry import LineString, Point
>>> from lifecircle.network import network_from_lines
>>> net = network_from_lines(
...     gpd.GeoSeries([LineString([(0, 0), (1000, 0)])], crs="EPSG:32650"), crs="EPSG:32650")
>>> engine = ReachEngine(net)
>>> _ = engine.add_layer("shops", gpd.GeoSeries([Point(900, 10)], crs="EPSG:32650"))
>>> _ = engine.add_layer("homes", gpd.GeoSeries([Point(100, -5), Point(500, 0)], crs="EPSG:32650"))
>>> engine.nearest("shops", "homes").round(3).tolist()
[815.0, 410.0]
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from .csr import gather_rows, group_by_row
from .errors import InputError
from .network import WalkNetwork, symmetric_csr

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_SNAP_M",
    "SNAP_STATUSES",
    "ReachEngine",
    "RoutingGraph",
    "SnapResult",
    "snap_points",
]

#: Points farther than this from any walkable segment are not routed.
DEFAULT_MAX_SNAP_M = 250.0

SNAP_OK = "ok"
SNAP_TOO_FAR = "too_far"
SNAP_ISLAND = "island"
SNAP_NO_GEOMETRY = "no_geometry"
#: Every snap status, in the order summaries list them.
SNAP_STATUSES = (SNAP_OK, SNAP_ISLAND, SNAP_TOO_FAR, SNAP_NO_GEOMETRY)

# Offsets closer than this (metres) to a segment end attach to the end node;
# avoids zero-length edges, which scipy's sparse graphs cannot represent.
_EPS_M = 1e-6
_KEPT_PASSES = 32  # Dijkstra passes kept per engine (each one float per graph node)
# Slack (metres) on straight-line neighbourhoods, for rounding in edge lengths.
_NEAR_SLACK_M = 1e-3
# Counting sources per tile (see ReachEngine._source_tiles).
_SOURCES_PER_TILE = 8
# Upper bound on the dense Dijkstra output held at once (floats).
_MAX_BLOCK_FLOATS = 20_000_000


@dataclass(frozen=True)
class SnapResult:
    """Where points attach to the network.

    Attributes
    ----------
    segment
        Segment index, or -1 when the point is not attached.
    offset_m
        Distance along the segment from its ``seg_u`` end.
    access_m
        Straight-line access leg from the point to the segment.
    status
        ``"ok"`` (attached to the nearest main-network segment within the snap
        limit), ``"island"`` (no main-network segment within the limit, but a
        segment of a disconnected piece is; attached there, not routed),
        ``"too_far"`` (no segment within the limit) or ``"no_geometry"``.
    point_xy, snap_xy
        Projected coordinates of the point and of its attachment.
    main_m
        Distance to the nearest segment of the main network (exact; equal to
        ``access_m`` for routed points, ``nan`` without geometry or network).
    """

    segment: NDArray[np.int64]
    offset_m: NDArray[np.float64]
    access_m: NDArray[np.float64]
    status: NDArray[np.object_]
    point_xy: NDArray[np.float64]
    snap_xy: NDArray[np.float64]
    main_m: NDArray[np.float64]

    @property
    def ok(self) -> NDArray[np.bool_]:
        """True for points that are routed."""
        return self.status == SNAP_OK

    def __len__(self) -> int:
        return int(self.segment.shape[0])

    def to_frame(self, index: pd.Index | None = None) -> pd.DataFrame:
        """``snap_status``, ``snap_m`` and ``main_network_m`` columns, for outputs.

        ``snap_m`` is the access leg to the attachment (``nan`` when not
        attached); ``main_network_m`` the distance to the nearest main-network
        street, which says how far an unrouted point is from being routed.
        """
        return pd.DataFrame(
            {
                "snap_status": self.status,
                "snap_m": np.round(self.access_m, 2),
                "main_network_m": np.round(self.main_m, 2),
            },
            index=index,
        )

    def summary(self, max_snap_m: float | None = None) -> dict[str, object]:
        """Counts by status and, for unrouted points, how far the main network is.

        Returns
        -------
        dict
            ``n`` (points), ``by_status`` (count per status, every status
            listed), ``n_unrouted``, ``max_snap_m`` (when given) and
            ``unrouted_main_m``: the minimum, median and maximum distance from
            unrouted points with a geometry to the nearest main-network street
            (``None`` when there are none).

        Examples
        --------
        >>> import geopandas as gpd
        >>> from shapely.geometry import LineString, Point
        >>> from lifecircle.network import network_from_lines
        >>> net = network_from_lines(gpd.GeoSeries([LineString([(0, 0), (100, 0)])],
        ...                          crs="EPSG:32650"), crs="EPSG:32650")
        >>> snaps = snap_points(net, gpd.GeoSeries([Point(50, 10), Point(50, 400)],
        ...                     crs="EPSG:32650"))
        >>> summary = snaps.summary()
        >>> summary["by_status"], summary["unrouted_main_m"]["min"]
        ({'ok': 1, 'island': 0, 'too_far': 1, 'no_geometry': 0}, 400.0)
        """
        counts = pd.Series(self.status).value_counts()
        unrouted = ~self.ok
        far = self.main_m[unrouted & np.isfinite(self.main_m)]
        out: dict[str, object] = {
            "n": len(self),
            "by_status": {status: int(counts.get(status, 0)) for status in SNAP_STATUSES},
            "n_unrouted": int(unrouted.sum()),
            "unrouted_main_m": (
                {
                    "min": round(float(far.min()), 1),
                    "median": round(float(np.median(far)), 1),
                    "max": round(float(far.max()), 1),
                }
                if far.size
                else None
            ),
        }
        if max_snap_m is not None:
            out["max_snap_m"] = float(max_snap_m)
        return out


def _as_points(points: gpd.GeoSeries | gpd.GeoDataFrame, crs: object) -> gpd.GeoSeries:
    geoms = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    if geoms.crs is None:
        raise InputError("points have no coordinate reference system")
    geoms = geoms.to_crs(crs)
    is_point = geoms.geom_type == "Point"
    if not is_point.all():
        # areas and lines stand for their inside point
        geoms = geoms.where(is_point, geoms.representative_point())
    return geoms


def snap_points(
    network: WalkNetwork,
    points: gpd.GeoSeries | gpd.GeoDataFrame,
    *,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> SnapResult:
    """Snap points to the nearest main-network segment within the limit, vectorised.

    A point attaches to the nearest segment of the main connected network
    when one lies within ``max_snap_m``, even if a segment of a disconnected
    piece is nearer. Only points with no main-network segment within the
    limit look at the other pieces: they are ``island`` when one of those is
    within it, ``too_far`` otherwise.

    Parameters
    ----------
    network
        The walk network.
    points
        Geometries in any CRS; polygons use a representative inside point.
    max_snap_m
        The snap limit in metres.

    Returns
    -------
    SnapResult
    """
    geoms = _as_points(points, network.crs).to_numpy()
    n = geoms.shape[0]
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    point_xy = np.full((n, 2), np.nan)
    point_xy[~missing] = shapely.get_coordinates(geoms[~missing])
    segment = np.full(n, -1, dtype=np.int64)
    main_m = np.full(n, np.nan)
    status = np.full(n, SNAP_TOO_FAR, dtype=object)
    status[missing] = SNAP_NO_GEOMETRY
    query = np.flatnonzero(~missing)
    if network.n_segments and query.size:
        segment[query], main_m[query] = network.nearest_segments(
            point_xy[query], max_snap_m, main_only=True
        )
        status[query[segment[query] >= 0]] = SNAP_OK
        off_main = query[segment[query] < 0]
        if off_main.size:
            # how far the main network really is, for the warnings and outputs
            main_m[off_main] = network.nearest_segments(point_xy[off_main], np.inf, main_only=True)[
                1
            ]
            segment[off_main] = network.nearest_segments(point_xy[off_main], max_snap_m)[0]
            status[off_main[segment[off_main] >= 0]] = SNAP_ISLAND
    found = segment >= 0
    a = network.node_xy[network.seg_u[segment[found]]]
    b = network.node_xy[network.seg_v[segment[found]]]
    length = network.seg_len[segment[found]]
    direction = (b - a) / length[:, None]
    along = np.clip(np.einsum("ij,ij->i", point_xy[found] - a, direction), 0.0, length)
    offset = np.full(n, np.nan)
    offset[found] = along
    snap_xy = np.full((n, 2), np.nan)
    snap_xy[found] = a + direction * along[:, None]
    access = np.hypot(*(point_xy - snap_xy).T)
    routed = status == SNAP_OK
    # the same distance, computed once: keep them identical for routed points
    main_m[routed] = access[routed]
    return SnapResult(segment, offset, access, status, point_xy, snap_xy, main_m)


@dataclass(frozen=True)
class RoutingGraph:
    """The segment graph with every snapped point inserted as a node.

    Node ids ``0 .. network.n_nodes - 1`` are the network's nodes, followed by
    split nodes (where points attach inside a segment) and point nodes (the
    points themselves, joined by their access leg).
    """

    node_xy: NDArray[np.float64]
    edge_u: NDArray[np.int64]
    edge_v: NDArray[np.int64]
    edge_len: NDArray[np.float64]
    point_node: NDArray[np.int64]
    csr: sparse.csr_matrix
    #: split nodes by (segment, offset key), sorted: where points lie along each segment
    split_seg: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    split_key: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    split_node: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def n_nodes(self) -> int:
        """Number of nodes including inserted ones."""
        return int(self.node_xy.shape[0])

    @cached_property
    def incidence(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``(indptr, edges)``: node ``i`` touches ``edges[indptr[i]:indptr[i + 1]]``."""
        ends = np.concatenate([self.edge_u, self.edge_v])
        indptr, order = group_by_row(ends, self.n_nodes)
        return indptr, order % self.edge_u.shape[0]

    @cached_property
    def node_tree(self) -> cKDTree:
        """KD-tree over the node coordinates."""
        return cKDTree(self.node_xy, balanced_tree=False, compact_nodes=False)

    def nodes_near(self, nodes: NDArray[np.int64], radius: float) -> NDArray[np.int64]:
        """Nodes within ``radius`` (straight line) of any of ``nodes``, sorted.

        A hair of slack covers rounding in the edge lengths; an unbounded
        radius gives every node.
        """
        if not np.isfinite(radius):
            return np.arange(self.n_nodes)
        found = self.node_tree.query_ball_point(
            self.node_xy[nodes], radius + _NEAR_SLACK_M, return_sorted=False
        )
        return np.unique(np.concatenate([np.asarray(f, dtype=np.int64) for f in found]))

    @cached_property
    def _csr_rows(self) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float64]]:
        return self.csr.indptr.astype(np.int64), self.csr.indices, self.csr.data

    def subgraph(self, nodes: NDArray[np.int64]) -> sparse.csr_matrix:
        """The graph induced on ``nodes`` (sorted, unique), in their order.

        Built from the CSR arrays of those rows only, so the cost follows the
        subgraph's size, not the whole graph's.
        """
        indptr64, indices, data = self._csr_rows
        cols, row = gather_rows(indptr64, indices, nodes)
        weights = gather_rows(indptr64, data, nodes)[0]
        local = np.minimum(np.searchsorted(nodes, cols), nodes.shape[0] - 1)
        inside = nodes[local] == cols
        indptr = np.zeros(nodes.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(row[inside], minlength=nodes.shape[0]), out=indptr[1:])
        shape = (nodes.shape[0], nodes.shape[0])
        return sparse.csr_matrix((weights[inside], local[inside], indptr), shape=shape)

    def edges_touching(self, nodes: NDArray[np.int64]) -> NDArray[np.int64]:
        """Ids of the edges with an end among ``nodes`` (sorted, unique)."""
        indptr, edges = self.incidence
        return np.unique(gather_rows(indptr, edges, nodes)[0])


def build_routing_graph(network: WalkNetwork, snaps: SnapResult) -> RoutingGraph:
    """Insert snapped points into the network (vectorised).

    Parameters
    ----------
    network
        The walk network.
    snaps
        Snap results of all points; only ``ok`` points are inserted.

    Returns
    -------
    RoutingGraph
        ``point_node[i]`` is the node of point ``i``, or -1 when not routed.
    """
    n_base = network.n_nodes
    ok = np.flatnonzero(snaps.ok)
    seg = snaps.segment[ok]
    offset = snaps.offset_m[ok]
    seg_len = network.seg_len[seg]
    u, v = network.seg_u[seg], network.seg_v[seg]
    at_u = offset <= _EPS_M
    at_v = ~at_u & (offset >= seg_len - _EPS_M)
    interior = ~at_u & ~at_v

    attach = np.where(at_u, u, v)
    split_nodes, split_edges, split_segments, split_xy, table = _split_segments(
        network, seg[interior], offset[interior], n_base
    )
    attach[interior] = split_nodes

    # point nodes: only where the access leg has length
    leg = snaps.access_m[ok]
    needs_node = leg > _EPS_M
    first_point_node = n_base + split_xy.shape[0]
    point_ids = first_point_node + np.arange(int(needs_node.sum()))
    node_of_point = attach.copy()
    node_of_point[needs_node] = point_ids
    point_node = np.full(len(snaps), -1, dtype=np.int64)
    point_node[ok] = node_of_point

    keep = np.ones(network.n_segments, dtype=bool)
    keep[split_segments] = False
    edge_u = np.concatenate([network.seg_u[keep], split_edges[0], attach[needs_node]])
    edge_v = np.concatenate([network.seg_v[keep], split_edges[1], point_ids])
    edge_len = np.concatenate([network.seg_len[keep], split_edges[2], leg[needs_node]])
    node_xy = np.concatenate([network.node_xy, split_xy, snaps.point_xy[ok][needs_node]])
    csr = symmetric_csr(edge_u, edge_v, edge_len, node_xy.shape[0])
    return RoutingGraph(node_xy, edge_u, edge_v, edge_len, point_node, csr, *table)


def _offset_keys(offset: NDArray[np.float64]) -> NDArray[np.int64]:
    """Offsets along a segment as integer keys: points closer than ``_EPS_M`` share a node."""
    return np.round(offset / _EPS_M).astype(np.int64)


def distances_at(
    graph: RoutingGraph,
    network: WalkNetwork,
    snaps: SnapResult,
    dist_node: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Distances at points that are not in ``graph``, from its node distances.

    The same as inserting the points and running Dijkstra again: a point is a
    leaf on the piece of its segment between the graph's nodes either side
    of it (the segment's ends or other points' split nodes), so its distance
    is its access leg plus the shorter way in from either end of that piece.
    ``dist_node`` is ``(n_nodes,)`` or ``(rows, n_nodes)``; unrouted points
    are ``inf``.
    """
    out = np.full((*dist_node.shape[:-1], len(snaps)), np.inf)
    ok = np.flatnonzero(snaps.ok)
    if ok.size == 0:
        return out
    seg, offset = snaps.segment[ok], snaps.offset_m[ok]
    seg_len = network.seg_len[seg]
    u, v = network.seg_u[seg], network.seg_v[seg]
    at_u = offset <= _EPS_M
    at_v = ~at_u & (offset >= seg_len - _EPS_M)
    # the piece of the segment each point lies on: the graph's nodes at its two ends
    key = _offset_keys(offset)
    scale = int(max(key.max(), graph.split_key.max(initial=0))) + 1
    table = graph.split_seg * scale + graph.split_key  # sorted by (segment, key)
    pos = np.searchsorted(table, seg * scale + key)
    # a sentinel row past the end, so that pos and pos - 1 can always be looked up
    split_seg = np.append(graph.split_seg, -1)
    split_off = np.append(graph.split_key, 0) * _EPS_M
    split_node = np.append(graph.split_node, 0)
    before = np.maximum(pos - 1, 0)
    has_prev = (pos > 0) & (split_seg[before] == seg)
    has_next = split_seg[pos] == seg
    prev_node, prev_off = (
        np.where(has_prev, split_node[before], u),
        np.where(has_prev, split_off[before], 0.0),
    )
    next_node, next_off = (
        np.where(has_next, split_node[pos], v),
        np.where(has_next, split_off[pos], seg_len),
    )
    at = key * _EPS_M
    on_next = has_next & (split_off[pos] == at)  # a split node of the graph is right there
    found = np.minimum(
        dist_node[..., prev_node] + (at - prev_off), dist_node[..., next_node] + (next_off - at)
    )
    found = np.where(on_next, dist_node[..., next_node], found)
    found = np.where(at_u, dist_node[..., u], found)
    found = np.where(at_v, dist_node[..., v], found)
    leg = snaps.access_m[ok]
    out[..., ok] = found + np.where(leg > _EPS_M, leg, 0.0)
    return out


def _split_segments(
    network: WalkNetwork, seg: NDArray[np.int64], offset: NDArray[np.float64], first_id: int
) -> tuple[
    NDArray[np.int64],
    tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]],
    NDArray[np.int64],
    NDArray[np.float64],
    tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]],
]:
    """Split segments at interior offsets; points at the same place share a node.

    Returns the split node of every input point, the chain of new edges
    ``(u, v, length)``, the replaced segment ids and the new nodes' coordinates.
    """
    if seg.shape[0] == 0:
        empty_i = np.empty(0, dtype=np.int64)
        empty = (empty_i, empty_i, np.empty(0))
        return empty_i, empty, empty_i, np.empty((0, 2)), (empty_i, empty_i, empty_i)
    key = _offset_keys(offset)
    pairs = np.stack([seg, key], axis=1)
    unique_pairs, which = np.unique(pairs, axis=0, return_inverse=True)
    useg = unique_pairs[:, 0]
    uoff = unique_pairs[:, 1] * _EPS_M
    node_ids = first_id + np.arange(useg.shape[0])
    a = network.seg_u[useg]
    b = network.seg_v[useg]
    length = network.seg_len[useg]
    new_seg = np.ones(useg.shape[0], dtype=bool)
    new_seg[1:] = useg[1:] != useg[:-1]
    last_in_seg = np.ones(useg.shape[0], dtype=bool)
    last_in_seg[:-1] = new_seg[1:]
    prev_node = np.where(new_seg, a, np.roll(node_ids, 1))
    prev_off = np.where(new_seg, 0.0, np.roll(uoff, 1))
    chain_u = np.concatenate([prev_node, node_ids[last_in_seg]])
    chain_v = np.concatenate([node_ids, b[last_in_seg]])
    chain_len = np.concatenate([uoff - prev_off, (length - uoff)[last_in_seg]])
    xy_a = network.node_xy[a]
    xy_b = network.node_xy[b]
    split_xy = xy_a + (xy_b - xy_a) * (uoff / length)[:, None]
    table = (useg, unique_pairs[:, 1], node_ids)
    return node_ids[which.ravel()], (chain_u, chain_v, chain_len), np.unique(useg), split_xy, table


@dataclass(frozen=True)
class _Layer:
    name: str
    start: int
    stop: int
    snaps: SnapResult
    ids: pd.Index
    inserted: bool = True


class ReachEngine:
    """Shortest walking distances between layers of points on a network.

    Parameters
    ----------
    network
        The walk network.
    max_snap_m
        Snap limit in metres (default 250).

    Notes
    -----
    Layers can be added at any time; the routing graph is rebuilt lazily on
    the next query. All distances are in metres; unreachable is ``inf``.
    """

    def __init__(self, network: WalkNetwork, *, max_snap_m: float = DEFAULT_MAX_SNAP_M) -> None:
        self.network = network
        self.max_snap_m = float(max_snap_m)
        self._layers: dict[str, _Layer] = {}
        self._graph: RoutingGraph | None = None
        # recent Dijkstra passes on this graph, by source nodes and limit: scoring
        # the compounds and then the gap cells asks for the same ones
        self._passes: dict[tuple[bytes, float], NDArray[np.float64]] = {}

    # ----------------------------------------------------------------- layers
    def add_layer(
        self,
        name: str,
        points: gpd.GeoSeries | gpd.GeoDataFrame,
        *,
        ids: pd.Index | None = None,
        insert: bool = True,
    ) -> SnapResult:
        """Snap a set of points and register it under ``name`` (replacing any).

        ``insert=False`` leaves the routing graph as it is: the layer can then
        only be a target of :meth:`nearest` and :meth:`at`, its distances read
        off the graph (see :func:`distances_at`), and the Dijkstra passes
        already made serve it. For a layer as large as a city's gap cells.
        """
        snaps = snap_points(self.network, points, max_snap_m=self.max_snap_m)
        index = pd.Index(ids) if ids is not None else pd.RangeIndex(len(snaps))
        replaced = self._layers.pop(name, None)
        self._layers[name] = _Layer(name, 0, 0, snaps, index, inserted=insert)
        self._restack()
        if insert or (replaced is not None and replaced.inserted):
            self._graph = None
            self._passes.clear()
        summary = snaps.summary(self.max_snap_m)
        logger.info("layer %s: %d points snapped %s", name, len(snaps), summary["by_status"])
        return snaps

    def _restack(self) -> None:
        start = 0
        for key, layer in list(self._layers.items()):
            size = len(layer.snaps) if layer.inserted else 0
            self._layers[key] = replace(layer, start=start, stop=start + size)
            start += size

    def snaps(self, name: str) -> SnapResult:
        """The snap result of a layer."""
        return self._layer(name).snaps

    def snap_summary(self, name: str) -> dict[str, object]:
        """Counts by snap status of a layer, and how far its unrouted points are.

        See :meth:`SnapResult.summary`; ``max_snap_m`` is the engine's limit.
        """
        return self.snaps(name).summary(self.max_snap_m)

    def _layer(self, name: str) -> _Layer:
        try:
            return self._layers[name]
        except KeyError:
            raise InputError(f"no point layer named {name!r}") from None

    @property
    def graph(self) -> RoutingGraph:
        """The routing graph with all layers inserted (built on first use)."""
        if self._graph is None:
            layers = [layer for layer in self._layers.values() if layer.inserted]
            if layers:
                all_snaps = SnapResult(
                    *(
                        np.concatenate([getattr(layer.snaps, f) for layer in layers])
                        for f in SnapResult.__dataclass_fields__
                    )
                )
            else:
                all_snaps = snap_points(self.network, gpd.GeoSeries([], crs=self.network.crs))
            self._graph = build_routing_graph(self.network, all_snaps)
        return self._graph

    def nodes(self, name: str) -> NDArray[np.int64]:
        """Routing-graph node of every point of a layer (-1 when not routed)."""
        layer = self._layer(name)
        if not layer.inserted:
            raise InputError(
                f"layer {name!r} is not in the routing graph (added with insert=False); "
                "add it with insert=True to search from it or within a radius of it"
            )
        return self.graph.point_node[layer.start : layer.stop]

    def is_inserted(self, name: str) -> bool:
        """Whether a layer's points are nodes of the routing graph."""
        return self._layer(name).inserted

    def at(self, name: str, dist_node: NDArray[np.float64]) -> NDArray[np.float64]:
        """Node distances (``(n_nodes,)`` or ``(rows, n_nodes)``) at a layer's points;
        ``inf`` for unrouted points."""
        layer = self._layer(name)
        if not layer.inserted:
            return distances_at(self.graph, self.network, layer.snaps, dist_node)
        nodes = self.nodes(name)
        return np.where(nodes >= 0, dist_node[..., nodes], np.inf)

    def _source_nodes(self, name: str, index: NDArray[np.int64] | None) -> NDArray[np.int64]:
        nodes = self.nodes(name)
        if index is not None:
            nodes = nodes[np.asarray(index, dtype=np.int64)]
        return np.unique(nodes[nodes >= 0])

    # ---------------------------------------------------------------- queries
    def distances_from(
        self,
        name: str,
        index: NDArray[np.int64] | None = None,
        *,
        limit: float = np.inf,
    ) -> NDArray[np.float64]:
        """Distance from the nearest selected point of a layer to every graph node.

        One multi-source Dijkstra pass (``min_only``); ``inf`` beyond ``limit``.
        """
        sources = self._source_nodes(name, index)
        if sources.shape[0] == 0:
            return np.full(self.graph.n_nodes, np.inf)
        key = (sources.tobytes(), float(limit))
        found = self._passes.get(key)
        if found is None:
            found = dijkstra(
                self.graph.csr, directed=True, indices=sources, min_only=True, limit=limit
            )
            found.flags.writeable = False  # shared by later calls
            self._passes[key] = found
            while len(self._passes) > _KEPT_PASSES:
                self._passes.pop(next(iter(self._passes)))
        return found

    def nearest(
        self,
        source: str,
        target: str,
        *,
        source_index: NDArray[np.int64] | None = None,
        groups: NDArray[np.int64] | None = None,
        n_groups: int | None = None,
        limit: float = np.inf,
    ) -> NDArray[np.float64]:
        """Distance from each target point (or group) to the nearest source point.

        Parameters
        ----------
        source, target
            Layer names.
        source_index
            Positions of the source points to use (default all).
        groups, n_groups
            Group code (0..n_groups-1) of every target point; the result is the
            minimum over each group's points. Negative codes are ignored.
        limit
            Stop searching beyond this distance (result ``inf``).
        """
        dist = self.at(target, self.distances_from(source, source_index, limit=limit))
        return dist if groups is None else _group_min(dist, groups, n_groups)

    def within(
        self,
        source: str,
        target: str,
        radius: float,
        *,
        source_index: NDArray[np.int64] | None = None,
        groups: NDArray[np.int64] | None = None,
    ) -> pd.DataFrame:
        """Every (target, source) pair within ``radius`` metres.

        Returns
        -------
        pandas.DataFrame
            Columns ``target`` (point position, or group code when ``groups``
            is given), ``source`` (position in the source layer) and
            ``distance_m``, sorted by target then distance.
        """
        frames = [
            pd.DataFrame(
                {"target": codes[cols], "source": sources[rows], "distance_m": dist[rows, cols]}
            )
            for sources, codes, dist in self._blocks_within(
                source, target, radius, source_index, groups
            )
            for rows, cols in [np.nonzero(dist <= radius)]
        ]
        if not frames:
            return pd.DataFrame(
                {
                    "target": pd.Series(dtype=np.int64),
                    "source": pd.Series(dtype=np.int64),
                    "distance_m": pd.Series(dtype=float),
                }
            )
        pairs = pd.concat(frames, ignore_index=True)
        return pairs.sort_values(["target", "distance_m"], ignore_index=True)

    def _blocks_within(
        self,
        source: str,
        target: str,
        radius: float,
        source_index: NDArray[np.int64] | None,
        groups: NDArray[np.int64] | None,
    ) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]]:
        """Bounded Dijkstra from blocks of sources: (source positions, target codes, distances).

        Distances are ``(sources, targets)``; with ``groups`` the columns are
        groups (minimum over members). Only targets that can lie within
        ``radius`` are returned.

        Sources are taken tile by tile (see :meth:`_source_tiles`), each tile
        on the subgraph of nodes within ``radius`` (straight line) of one of
        its sources.
        A walk of length at most ``radius`` never leaves that subgraph (no
        edge is shorter than the straight line between its ends), so the
        distances within ``radius`` are exactly those of the whole graph,
        while the work and memory grow with the sources' neighbourhoods,
        not with the whole graph.
        """
        src_pos = np.arange(len(self.snaps(source))) if source_index is None else source_index
        src_pos = np.asarray(src_pos, dtype=np.int64)
        src_nodes = self.nodes(source)[src_pos]
        routed = src_nodes >= 0
        src_pos, src_nodes = src_pos[routed], src_nodes[routed]
        target_nodes = self.nodes(target)
        target_ok = np.flatnonzero(target_nodes >= 0)
        if groups is not None:
            groups = np.asarray(groups, dtype=np.int64)
            target_ok = target_ok[groups[target_ok] >= 0]
            target_ok = target_ok[np.argsort(groups[target_ok], kind="stable")]
        if src_nodes.shape[0] == 0 or target_ok.shape[0] == 0:
            return
        graph = self.graph
        tiles = list(self._source_tiles(src_pos, src_nodes, radius))
        for tile_pos, tile_nodes in tiles:
            whole = len(tiles) == 1
            sub_nodes = np.arange(graph.n_nodes) if whole else graph.nodes_near(tile_nodes, radius)
            local_target = np.searchsorted(sub_nodes, target_nodes[target_ok])
            local_target = np.minimum(local_target, sub_nodes.shape[0] - 1)
            present = sub_nodes[local_target] == target_nodes[target_ok]
            if not present.any():
                continue
            codes_all, columns = target_ok[present], local_target[present]
            sub = graph.csr if whole else graph.subgraph(sub_nodes)
            local_source = np.searchsorted(sub_nodes, tile_nodes)
            block = max(1, _MAX_BLOCK_FLOATS // max(sub_nodes.shape[0], 1))
            for start in range(0, tile_nodes.shape[0], block):
                chunk = local_source[start : start + block]
                dist = dijkstra(sub, directed=True, indices=chunk, limit=radius)[:, columns]
                codes = codes_all
                if groups is not None:
                    dist, codes = _group_min_columns(dist, groups[codes_all])
                yield tile_pos[start : start + block], codes, dist

    def _source_tiles(
        self, src_pos: NDArray[np.int64], src_nodes: NDArray[np.int64], radius: float
    ) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64]]]:
        """Sources grouped by square tiles at least ``radius`` wide.

        Tiles are sized to hold about ``_SOURCES_PER_TILE`` sources on
        average, which keeps the fixed cost per tile small against the
        searches. All sources form one tile when the radius is unbounded or
        when one dense pass over the whole graph is small anyway.
        """
        n_src = src_nodes.shape[0]
        if not np.isfinite(radius) or n_src * self.graph.n_nodes <= _MAX_BLOCK_FLOATS:
            yield src_pos, src_nodes
            return
        xy = self.graph.node_xy[src_nodes]
        low = xy.min(axis=0)
        extent = np.maximum(xy.max(axis=0) - low, radius)
        side = max(radius, float(np.sqrt(extent.prod() * _SOURCES_PER_TILE / n_src)))
        cell = np.floor((xy - low) / side).astype(np.int64)
        key = cell[:, 0] * (int(cell[:, 1].max()) + 1) + cell[:, 1]
        order = np.argsort(key, kind="stable")
        starts = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1]])
        for part in np.split(order, starts[1:]):
            yield src_pos[part], src_nodes[part]

    def count_within(
        self,
        source: str,
        target: str,
        radius: float,
        *,
        source_index: NDArray[np.int64] | None = None,
        groups: NDArray[np.int64] | None = None,
        n_groups: int | None = None,
    ) -> NDArray[np.int64]:
        """Number of source points within ``radius`` of each target point (or group)."""
        size = len(self.snaps(target)) if groups is None else n_groups
        if size is None:
            assert groups is not None
            size = int(np.max(groups, initial=-1)) + 1
        counts = np.zeros(size, dtype=np.int64)
        for _, codes, dist in self._blocks_within(source, target, radius, source_index, groups):
            np.add.at(counts, codes, (dist <= radius).sum(axis=0))
        return counts


def _group_min(
    values: NDArray[np.float64], groups: NDArray[np.int64], n_groups: int | None
) -> NDArray[np.float64]:
    """Minimum of ``values`` within each group (``inf`` for empty groups)."""
    groups = np.asarray(groups, dtype=np.int64)
    size = n_groups if n_groups is not None else int(np.max(groups, initial=-1)) + 1
    out = np.full(size, np.inf)
    valid = groups >= 0
    np.minimum.at(out, groups[valid], values[valid])
    return out


def _group_min_columns(
    dist: NDArray[np.float64], sorted_groups: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Column-wise minimum over runs of equal (sorted) group codes."""
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    return np.minimum.reduceat(dist, starts, axis=1), sorted_groups[starts]
