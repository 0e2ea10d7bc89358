"""The walking network: read streets from any source and build a routable graph.

Every source (OSM XML or PBF, an osmnx GraphML file, a road centre-line file, or
an osmnx download) ends up as a :class:`WalkNetwork`: a *segment graph* in a
local projected CRS (metres) whose nodes are all the vertices of the street
lines and whose edges are the straight segments between consecutive vertices.

Keeping every vertex as a node costs a few more nodes than a simplified graph,
but makes everything downstream exact and vectorisable: a point snaps to the
nearest straight segment by a closed-form projection, a partly reached edge is
a linear interpolation, and isochrone pieces are plain two-point lines.

Lines are noded where they share a vertex (after rounding to 1 mm), never where
they merely cross, so bridges and underpasses stay separate. Disconnected
pieces are kept but labelled; the engine routes only on the main component and
flags points that fall on the others.

Examples
--------
>>> import geopandas as gpd
>>> from shapely.geometry import LineString
>>> lines = gpd.GeoSeries(
...     [LineString([(0, 0), (100, 0)]), LineString([(100, 0), (100, 50)])], crs="EPSG:32650"
... )
>>> net = network_from_lines(lines)
>>> net.n_nodes, net.n_segments, round(net.total_length_m)
(3, 2, 150)
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .columns import per_distinct
from .config import read_yaml, read_yaml_text
from .csr import group_by_row
from .errors import InputError, MissingDataError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_WALK_SPEED_M_PER_MIN",
    "STREET_FILTER_FILE",
    "NetworkReport",
    "StreetFilter",
    "StreetRule",
    "TagCondition",
    "WalkNetwork",
    "download_network",
    "is_walkable",
    "load_network",
    "load_street_filter",
    "network_from_lines",
    "network_report",
    "symmetric_csr",
]

#: Default walking speed (metres per minute); standard profiles may override it.
DEFAULT_WALK_SPEED_M_PER_MIN = 60.0

# Vertices closer than this (metres) are the same node; avoids hair-line gaps
# from coordinate round-off in exported centre-line files.
_NODE_PRECISION_M = 0.001
# Snapping indexes segments by pieces at most this long, and checks this many
# nearest pieces per point before falling back to a radius search.
_PIECE_M = 100.0
_NEAREST_CANDIDATES = 8

#: The packaged street filter, under ``lifecircle/data``.
STREET_FILTER_FILE = "street_filter.yaml"

#: Way tags read from OSM sources besides those the street filter needs.
_OSM_BASE_TAGS = ("highway", "name", "service", "access", "foot", "sidewalk")


@dataclass(frozen=True)
class NetworkReport:
    """What was built, for logs, summaries and the report."""

    source: str
    n_nodes: int
    n_segments: int
    total_length_km: float
    n_components: int
    main_component_share: float
    dangling_ends: int
    ways_read: int
    ways_dropped_not_walkable: int
    excluded_by_rule: dict[str, int] = field(default_factory=dict)
    street_filter: str = "packaged"
    filter_tags_missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-serialisable dict."""
        out = dict(self.__dict__)
        out["excluded_by_rule"] = dict(self.excluded_by_rule)
        out["filter_tags_missing"] = list(self.filter_tags_missing)
        return out

    def exclusions(self) -> str:
        """The ways each street rule excluded, e.g. ``"major_road_bridge 12, motorroad 3"``."""
        parts = [f"{rule} {n}" for rule, n in self.excluded_by_rule.items() if n]
        return ", ".join(parts) if parts else "none"

    def summary(self) -> str:
        """One line for the log and the command line."""
        return (
            f"{self.source}: {self.n_nodes} nodes, {self.n_segments} segments, "
            f"{self.total_length_km:.1f} km of walkable ways; {self.n_components} connected "
            f"piece(s), the main one holds {self.main_component_share:.0%} of the length; "
            f"{self.dangling_ends} dangling ends; {self.ways_dropped_not_walkable} of "
            f"{self.ways_read} ways dropped as not walkable ({self.exclusions()})"
            + (
                f"; tags absent from the source, rules on them not applied: "
                f"{', '.join(self.filter_tags_missing)}"
                if self.filter_tags_missing
                else ""
            )
        )


@dataclass
class WalkNetwork:
    """An undirected segment graph in a projected CRS (metres).

    Attributes
    ----------
    crs
        The projected CRS of ``node_xy``.
    node_xy
        ``(n_nodes, 2)`` coordinates in metres.
    seg_u, seg_v
        Node indices of each straight segment (``seg_u < seg_v``).
    seg_len
        Segment lengths in metres.
    seg_way
        Row of :attr:`ways` that each segment came from.
    ways
        Attributes of the source lines (``highway``, ``name`` and so on).
    report
        A :class:`NetworkReport`.
    """

    crs: pyproj.CRS
    node_xy: NDArray[np.float64]
    seg_u: NDArray[np.int64]
    seg_v: NDArray[np.int64]
    seg_len: NDArray[np.float64]
    seg_way: NDArray[np.int64]
    ways: pd.DataFrame
    report: NetworkReport = field(repr=False)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.node_xy.shape[0])

    @property
    def n_segments(self) -> int:
        """Number of straight segments (undirected edges)."""
        return int(self.seg_u.shape[0])

    @property
    def total_length_m(self) -> float:
        """Total length of all segments in metres."""
        return float(self.seg_len.sum())

    @cached_property
    def component(self) -> NDArray[np.int64]:
        """Connected-component label of every node."""
        _, labels = connected_components(self.adjacency(), directed=False)
        return labels.astype(np.int64)

    @cached_property
    def main_component(self) -> int:
        """Label of the component with the greatest total length."""
        if self.n_segments == 0:
            return 0
        length = np.bincount(self.component[self.seg_u], weights=self.seg_len)
        return int(np.argmax(length))

    @cached_property
    def node_in_main(self) -> NDArray[np.bool_]:
        """True for nodes in the main component."""
        return self.component == self.main_component

    @cached_property
    def segment_geometries(self) -> NDArray[np.object_]:
        """Shapely two-point LineStrings of every segment (projected CRS)."""
        coords = np.stack([self.node_xy[self.seg_u], self.node_xy[self.seg_v]], axis=1)
        return shapely.linestrings(coords)

    @cached_property
    def segment_tree(self) -> shapely.STRtree:
        """Spatial index over :attr:`segment_geometries`."""
        return shapely.STRtree(self.segment_geometries)

    @cached_property
    def piece_index(self) -> tuple[cKDTree, NDArray[np.int64], float]:
        """KD-tree over the midpoints of segment pieces at most ``_PIECE_M`` long.

        Returns the tree, the segment of every piece and the largest piece
        half-length, which bounds how much closer a segment can be than its
        pieces' midpoints (see :meth:`nearest_segments`).
        """
        return self._pieces_of(np.arange(self.n_segments))

    @cached_property
    def main_piece_index(self) -> tuple[cKDTree, NDArray[np.int64], float]:
        """:attr:`piece_index` restricted to the segments of the main component."""
        return self._pieces_of(np.flatnonzero(self.node_in_main[self.seg_u]))

    def _pieces_of(self, segments: NDArray[np.int64]) -> tuple[cKDTree, NDArray[np.int64], float]:
        seg_len = self.seg_len[segments]
        pieces = np.maximum(np.ceil(seg_len / _PIECE_M), 1).astype(np.int64)
        segment = np.repeat(segments, pieces)
        piece_len = np.repeat(seg_len / pieces, pieces)
        first = np.repeat(np.cumsum(pieces) - pieces, pieces)
        count = np.repeat(pieces, pieces)
        fraction = (np.arange(segment.shape[0]) - first + 0.5) / count
        a, b = self.node_xy[self.seg_u[segment]], self.node_xy[self.seg_v[segment]]
        midpoints = a + (b - a) * fraction[:, None]
        half = float(piece_len.max() / 2) if segment.size else 0.0
        return cKDTree(midpoints, balanced_tree=False, compact_nodes=False), segment, half

    def nearest_segments(
        self, xy: NDArray[np.float64], max_distance: float, *, main_only: bool = False
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The nearest segment to each point (exact), within ``max_distance``.

        A k-nearest query on piece midpoints gives candidates; a segment not
        among them is at least ``r_k - half`` away (``r_k`` the k-th midpoint
        distance), so the best candidate is exact when it is closer than that.
        The few points where it is not are settled by a radius query.

        Parameters
        ----------
        xy
            ``(n, 2)`` projected coordinates.
        max_distance
            Search limit in metres (may be ``inf``).
        main_only
            Look only at segments of the main connected component.

        Returns
        -------
        segment, distance
            Segment index (-1 beyond ``max_distance``) and distance in metres
            (exact up to ``max_distance``; beyond it only a lower bound is
            guaranteed to exceed the limit).
        """
        n = xy.shape[0]
        segment = np.full(n, -1, dtype=np.int64)
        distance = np.full(n, np.inf)
        tree, piece_segment, half = self.main_piece_index if main_only else self.piece_index
        if n == 0 or tree.n == 0:
            return segment, distance
        k = min(_NEAREST_CANDIDATES, tree.n)
        mid_dist, piece = tree.query(xy, k=k)
        mid_dist, piece = mid_dist.reshape(n, k), piece.reshape(n, k)
        candidates = piece_segment[piece]
        dist = self._point_segment_distance(np.repeat(xy, k, axis=0), candidates.ravel())
        dist = dist.reshape(n, k)
        best = np.argmin(dist, axis=1)
        segment = candidates[np.arange(n), best]
        distance = dist[np.arange(n), best]
        unsure = np.flatnonzero(
            (distance > mid_dist[:, -1] - half)
            & (k < tree.n)
            & (mid_dist[:, 0] - half <= max_distance)
        )
        if unsure.size:
            radius = np.minimum(distance[unsure], max_distance) + half
            found = tree.query_ball_point(xy[unsure], radius)
            sizes = np.fromiter((len(f) for f in found), dtype=np.int64, count=unsure.size)
            owner = np.repeat(unsure, sizes)
            if owner.size:
                segs = piece_segment[np.concatenate([np.asarray(f, dtype=np.int64) for f in found])]
                d = self._point_segment_distance(xy[owner], segs)
                order = np.lexsort((d, owner))
                first = np.ones(order.size, dtype=bool)
                first[1:] = owner[order][1:] != owner[order][:-1]
                pick = order[first]
                better = d[pick] < distance[owner[pick]]
                segment[owner[pick][better]] = segs[pick][better]
                distance[owner[pick][better]] = d[pick][better]
        far = distance > max_distance
        segment[far] = -1
        return segment, distance

    def _point_segment_distance(
        self, xy: NDArray[np.float64], segment: NDArray[np.int64]
    ) -> NDArray[np.float64]:
        a = self.node_xy[self.seg_u[segment]]
        ab = self.node_xy[self.seg_v[segment]] - a
        t = np.clip(np.einsum("ij,ij->i", xy - a, ab) / np.einsum("ij,ij->i", ab, ab), 0.0, 1.0)
        return np.hypot(*(xy - a - ab * t[:, None]).T)

    def adjacency(self) -> sparse.csr_matrix:
        """Symmetric sparse adjacency matrix weighted by segment length."""
        return symmetric_csr(self.seg_u, self.seg_v, self.seg_len, self.n_nodes)

    def to_networkx(self) -> nx.Graph:
        """The same graph as a networkx ``Graph`` (``length`` edge attribute), for checks."""
        graph = nx.Graph()
        graph.add_nodes_from(range(self.n_nodes))
        graph.add_weighted_edges_from(
            zip(self.seg_u.tolist(), self.seg_v.tolist(), self.seg_len.tolist(), strict=True),
            weight="length",
        )
        return graph

    def segments(self, *, to_crs: Any = None) -> gpd.GeoDataFrame:
        """Segments as a GeoDataFrame with their way attributes.

        Parameters
        ----------
        to_crs
            Output CRS; defaults to the network's projected CRS.
        """
        frame = self.ways.iloc[self.seg_way].reset_index(drop=True)
        frame.insert(0, "u", self.seg_u)
        frame.insert(1, "v", self.seg_v)
        frame["length_m"] = self.seg_len
        frame["in_main"] = self.node_in_main[self.seg_u]
        gdf = gpd.GeoDataFrame(frame, geometry=self.segment_geometries, crs=self.crs)
        return gdf if to_crs is None else gdf.to_crs(to_crs)

    def lines_wgs84(self) -> gpd.GeoSeries:
        """All segments as a WGS84 GeoSeries (for maps and coordinate checks)."""
        return gpd.GeoSeries(self.segment_geometries, crs=self.crs).to_crs(4326)


def symmetric_csr(
    u: NDArray[np.int64], v: NDArray[np.int64], w: NDArray[np.float64], n: int
) -> sparse.csr_matrix:
    """Both directions of every edge, keeping the shortest of parallel edges.

    scipy would *sum* duplicate entries, so parallel edges are reduced to
    their minimum first (one sort on a single int64 key); the CSR arrays are
    then assembled directly, which is much faster than a COO conversion.
    """
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    key = lo.astype(np.int64) * n + hi
    order = np.argsort(key)
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    w = np.minimum.reduceat(w[order], starts) if starts.size else w[:0]
    lo, hi = lo[order[starts]], hi[order[starts]]
    rows = np.concatenate([lo, hi])
    cols = np.concatenate([hi, lo])
    weights = np.concatenate([w, w])
    indptr, by_row = group_by_row(rows, n)
    return sparse.csr_matrix((weights[by_row], cols[by_row], indptr), shape=(n, n))


def _local_projected_crs(geoms: gpd.GeoSeries) -> pyproj.CRS:
    """A UTM zone for the data (metres), chosen from its extent."""
    crs = geoms.estimate_utm_crs()
    if crs is None:
        raise InputError("cannot choose a projected CRS for the network: empty extent")
    return crs


def _unique_rows(keys: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``np.unique(keys, axis=0, return_inverse=True)`` for (x, y) integer keys, by one
    integer per row where the extent allows (ten times faster, same order).

    Examples
    --------
    >>> rows, inverse = _unique_rows(np.array([[3, 1], [0, 5], [3, 1], [0, -2]]))
    >>> rows.tolist(), inverse.tolist()
    ([[0, -2], [0, 5], [3, 1]], [2, 1, 2, 0])
    """
    if keys.shape[0] == 0:
        return keys.reshape(0, 2), np.zeros(0, dtype=np.int64)
    low = keys.min(axis=0)
    span = keys.max(axis=0) - low + 1
    if float(span[0]) * float(span[1]) >= 2.0**62:
        rows, inverse = np.unique(keys, axis=0, return_inverse=True)
        return rows, inverse.ravel()
    # (x, y) -> x * height + y keeps numpy's row order: by x, then y
    code = (keys[:, 0] - low[0]) * span[1] + (keys[:, 1] - low[1])
    unique_codes, inverse = np.unique(code, return_inverse=True)
    rows = np.column_stack([unique_codes // span[1] + low[0], unique_codes % span[1] + low[1]])
    return rows, inverse.ravel()


def network_from_lines(
    lines: gpd.GeoSeries | gpd.GeoDataFrame,
    *,
    source: str = "lines",
    crs: Any = None,
    ways_read: int | None = None,
    dropped: int = 0,
    excluded_by_rule: Mapping[str, int] | None = None,
    street_filter: str = "packaged",
    filter_tags_missing: Sequence[str] = (),
) -> WalkNetwork:
    """Build a :class:`WalkNetwork` from line geometries, noded at shared vertices.

    Parameters
    ----------
    lines
        LineStrings or MultiLineStrings with a CRS. A GeoDataFrame's other
        columns (``highway``, ``name``...) are kept as way attributes.
    source
        A label for the report.
    crs
        The projected CRS to work in; by default the UTM zone of the data.
    ways_read, dropped, excluded_by_rule
        Counts for the report when the caller filtered the lines (ways read,
        ways dropped, and ways dropped by each street rule).
    street_filter, filter_tags_missing
        For the report: which street filter was used, and the tags its rules
        read that the source does not have.

    Returns
    -------
    WalkNetwork

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import LineString
    >>> square = [LineString([(0, 0), (0, 10), (10, 10)]), LineString([(10, 10), (10, 0), (0, 0)])]
    >>> net = network_from_lines(gpd.GeoSeries(square, crs="EPSG:3857"), crs="EPSG:3857")
    >>> net.n_nodes, net.n_segments, net.report.dangling_ends
    (4, 4, 0)
    """
    frame = lines.to_frame("geometry") if isinstance(lines, gpd.GeoSeries) else lines.copy()
    if frame.crs is None:
        raise InputError(f"{source}: the street lines have no coordinate reference system")
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    frame = frame.explode(index_parts=False, ignore_index=True)
    frame = frame[frame.geom_type == "LineString"].reset_index(drop=True)
    if frame.empty:
        raise MissingDataError(f"{source}: no walkable street lines found")
    target_crs = pyproj.CRS.from_user_input(crs) if crs is not None else None
    target_crs = target_crs or _local_projected_crs(frame.geometry)
    frame = frame.to_crs(target_crs)

    coords, line_index = shapely.get_coordinates(frame.geometry.values, return_index=True)
    keys = np.round(coords / _NODE_PRECISION_M).astype(np.int64)
    unique_keys, node_of_vertex = _unique_rows(keys)
    node_xy = unique_keys.astype(np.float64) * _NODE_PRECISION_M

    same_line = line_index[1:] == line_index[:-1]
    a = node_of_vertex[:-1][same_line]
    b = node_of_vertex[1:][same_line]
    way = line_index[:-1][same_line]
    keep = a != b
    a, b, way = a[keep], b[keep], way[keep]
    u, v = np.minimum(a, b), np.maximum(a, b)
    length = np.hypot(*(node_xy[v] - node_xy[u]).T)
    u, v, length, way = _dedupe_segments(u, v, length, way)
    # drop vertices no segment uses (isolated points from degenerate lines)
    used = np.zeros(node_xy.shape[0], dtype=bool)
    used[u] = used[v] = True
    remap = np.cumsum(used) - 1
    node_xy, u, v = node_xy[used], remap[u], remap[v]

    ways = frame.drop(columns=frame.geometry.name)
    ways = pd.DataFrame(ways).reset_index(drop=True)
    net = WalkNetwork(
        crs=target_crs,
        node_xy=node_xy,
        seg_u=u.astype(np.int64),
        seg_v=v.astype(np.int64),
        seg_len=length,
        seg_way=way.astype(np.int64),
        ways=ways,
        report=None,  # type: ignore[arg-type]  # filled just below
    )
    net.report = network_report(
        net,
        source,
        ways_read if ways_read is not None else len(frame),
        dropped,
        excluded_by_rule=excluded_by_rule,
        street_filter=street_filter,
        filter_tags_missing=filter_tags_missing,
    )
    logger.info(net.report.summary())
    return net


def _dedupe_segments(
    u: NDArray[np.int64], v: NDArray[np.int64], length: NDArray[np.float64], way: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """Keep one segment per node pair (two lines drawn over each other are one way)."""
    order = np.lexsort((length, v, u))
    u, v, length, way = u[order], v[order], length[order], way[order]
    first = np.ones(u.shape[0], dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    return u[first], v[first], length[first], way[first]


def network_report(
    net: WalkNetwork,
    source: str,
    ways_read: int,
    dropped: int,
    *,
    excluded_by_rule: Mapping[str, int] | None = None,
    street_filter: str = "packaged",
    filter_tags_missing: Sequence[str] = (),
) -> NetworkReport:
    """Size, components and dangling ends of a built network, for its ``report``."""
    degree = np.bincount(np.concatenate([net.seg_u, net.seg_v]), minlength=net.n_nodes)
    n_components = int(np.unique(net.component).shape[0]) if net.n_nodes else 0
    total = net.total_length_m
    main_length = float(net.seg_len[net.node_in_main[net.seg_u]].sum())
    return NetworkReport(
        source=source,
        n_nodes=net.n_nodes,
        n_segments=net.n_segments,
        total_length_km=total / 1000.0,
        n_components=n_components,
        main_component_share=main_length / total if total else 0.0,
        dangling_ends=int((degree == 1).sum()),
        ways_read=ways_read,
        ways_dropped_not_walkable=dropped,
        excluded_by_rule=dict(excluded_by_rule or {}),
        street_filter=street_filter,
        filter_tags_missing=tuple(filter_tags_missing),
    )


_CONDITION_KEYS = frozenset({"not_in"})
_RULE_KEYS = frozenset(
    {"id", "description", "source", "exclude_when", "unless", "only_over_streets"}
)


@dataclass(frozen=True)
class TagCondition:
    """A test on one tag: its value is (or, with ``negate``, is not) among ``values``."""

    tag: str
    values: frozenset[str]
    negate: bool = False

    def test(self, tags: Callable[[str], pd.Series]) -> pd.Series:
        """Boolean Series over the ways, given a tag lookup."""
        hit = tags(self.tag).isin(self.values)
        return ~hit if self.negate else hit


@dataclass(frozen=True)
class StreetRule:
    """One exclusion rule of the street filter (see ``data/street_filter.yaml``)."""

    id: str
    description: str
    source: str
    exclude_when: tuple[TagCondition, ...]
    unless: tuple[tuple[TagCondition, ...], ...] = ()
    # (metres, share): exclude only a way that runs above ground-level streets,
    # i.e. with at least ``share`` of its length within ``metres`` of one
    only_over_streets: tuple[float, float] | None = None

    @property
    def tags(self) -> frozenset[str]:
        """Every tag the rule reads."""
        conditions = [*self.exclude_when, *(c for group in self.unless for c in group)]
        return frozenset(c.tag for c in conditions)

    def excludes(self, tags: Callable[[str], pd.Series], index: pd.Index) -> pd.Series:
        """Which ways the rule excludes."""
        hit = pd.Series(True, index=index)
        for condition in self.exclude_when:
            hit &= condition.test(tags)
        for group in self.unless:
            kept = pd.Series(True, index=index)
            for condition in group:
                kept &= condition.test(tags)
            hit &= ~kept
        return hit


@dataclass(frozen=True)
class StreetFilter:
    """The ordered exclusion rules that decide which ways are walkable.

    A way is excluded by the first rule that matches it. Frames without a
    ``highway`` column (plain centre-line files) are taken whole.
    """

    rules: tuple[StreetRule, ...]
    source: str = "packaged"

    @property
    def tags(self) -> tuple[str, ...]:
        """Every tag the rules read, sorted."""
        return tuple(sorted(set().union(*(rule.tags for rule in self.rules))))

    def excluding_rule(self, ways: pd.DataFrame) -> pd.Series:
        """The id of the rule that excludes each way, ``""`` for kept ways."""
        verdict = pd.Series("", index=ways.index, dtype=object)
        if "highway" not in ways.columns:
            return verdict
        cache: dict[str, pd.Series] = {}

        def tags(name: str) -> pd.Series:
            if name not in cache:
                cache[name] = _tag_values(ways, name)
            return cache[name]

        for rule in self.rules:
            open_ = verdict.eq("")
            hit = open_ & rule.excludes(tags, ways.index)
            if rule.only_over_streets is not None and hit.any():
                over = _runs_over_streets(ways, hit, _on_ground(tags), *rule.only_over_streets)
                spared = hit & ~over
                if spared.any():
                    logger.info(
                        "%d way(s) matched %s but run above no street (a river or rail "
                        "bridge): kept",
                        int(spared.sum()),
                        rule.id,
                    )
                hit &= over
            verdict[hit] = rule.id
        return verdict

    def counts(self, verdict: pd.Series, way_id: pd.Series | None = None) -> dict[str, int]:
        """Ways excluded by each rule (every rule listed, in order).

        ``way_id`` counts distinct ways where a way comes in several pieces
        (an OSM way split at its nodes, in both directions).
        """
        excluded = verdict.ne("")
        ids = way_id if way_id is not None else pd.Series(np.arange(len(verdict)), verdict.index)
        found = ids[excluded].groupby(verdict[excluded]).nunique()
        return {rule.id: int(found.get(rule.id, 0)) for rule in self.rules}


StreetFilterSpec = str | Path | Mapping[str, Any] | StreetFilter | None
"""What ``street_filter=`` accepts: a YAML path, a table, a built filter or None (packaged)."""


def _on_ground(tags: Callable[[str], pd.Series]) -> pd.Series:
    """Ways at ground level: no bridge, no tunnel, layer 0 or none."""
    bridge = tags("bridge").isin(["", "no"])
    tunnel = tags("tunnel").isin(["", "no"])
    layer = tags("layer").isin(["", "0"])
    return bridge & tunnel & layer


def _runs_over_streets(
    ways: pd.DataFrame,
    candidates: pd.Series,
    ground: pd.Series,
    within_m: float,
    share: float,
) -> pd.Series:
    """Which candidate ways run above ground-level streets for ``share`` of their length.

    An elevated expressway follows the ground road under it, so most of its
    length lies within a few metres of one; a bridge over a river or a railway
    meets streets only at its ends. The candidates are few (major-road bridges),
    so they are measured one by one against the streets an STRtree finds near them.
    """
    if not isinstance(ways, gpd.GeoDataFrame):
        # tags without geometry: the rule cannot be refined, and applies as written
        return candidates.copy()
    out = pd.Series(False, index=ways.index)
    geometry = gpd.GeoSeries(ways.geometry, crs=getattr(ways, "crs", None) or 4326)
    if geometry.crs is not None and geometry.crs.is_geographic:
        geometry = geometry.to_crs(geometry.estimate_utm_crs())
    lines = geometry.to_numpy()
    ground_lines = lines[(ground & ~candidates).to_numpy()]
    if not len(ground_lines):
        return out
    tree = shapely.STRtree(ground_lines)
    for position in np.flatnonzero(candidates.to_numpy()):
        line = lines[position]
        length = shapely.length(line)
        if not length:
            continue
        near = tree.query(line, predicate="dwithin", distance=within_m)
        if not len(near):
            continue
        band = shapely.union_all(shapely.buffer(ground_lines[near], within_m, quad_segs=4))
        alongside = shapely.length(shapely.intersection(line, band))
        out.iloc[position] = alongside >= share * length
    return out


def _tag_values(ways: pd.DataFrame, name: str) -> pd.Series:
    """A tag column as lower-case strings, ``""`` where absent."""
    if name not in ways.columns:
        return pd.Series("", index=ways.index)
    return _first_tag_values(ways[name]).fillna("").astype(str).str.strip().str.lower()


def _yaml_text(value: Any) -> str:
    """A tag value as written in the YAML (``yes``/``no`` parse as booleans there)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value).strip().lower()


def _parse_condition(tag: str, raw: Any, where: str) -> TagCondition:
    if isinstance(raw, Mapping):
        if set(raw) != _CONDITION_KEYS or not isinstance(raw["not_in"], list):
            raise InputError(f"{where}: condition on {tag!r} must be a list or {{not_in: [...]}}")
        return TagCondition(str(tag), frozenset(map(_yaml_text, raw["not_in"])), negate=True)
    if isinstance(raw, list):
        return TagCondition(str(tag), frozenset(map(_yaml_text, raw)))
    raise InputError(f"{where}: condition on {tag!r} must be a list or {{not_in: [...]}}")


def _parse_conditions(raw: Any, where: str) -> tuple[TagCondition, ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise InputError(f"{where}: expected a table of tag conditions")
    return tuple(_parse_condition(tag, value, where) for tag, value in raw.items())


def _parse_rule(raw: Any, where: str) -> StreetRule:
    if not isinstance(raw, Mapping) or "id" not in raw or "exclude_when" not in raw:
        raise InputError(f"{where}: each rule needs an id and exclude_when")
    where = f"{where}, rule {raw['id']!r}"
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise InputError(f"{where}: unknown keys {sorted(unknown)}")
    unless = raw.get("unless") or []
    if not isinstance(unless, list):
        raise InputError(f"{where}: unless must be a list of tag-condition tables")
    return StreetRule(
        id=str(raw["id"]),
        description=str(raw.get("description", "")).strip(),
        source=str(raw.get("source", "")).strip(),
        exclude_when=_parse_conditions(raw["exclude_when"], where),
        unless=tuple(_parse_conditions(group, where) for group in unless),
        only_over_streets=_parse_over_streets(raw.get("only_over_streets"), where),
    )


def _parse_over_streets(raw: Any, where: str) -> tuple[float, float] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) != {"within_m", "share"}:
        raise InputError(f"{where}: only_over_streets needs within_m and share")
    within, share = float(raw["within_m"]), float(raw["share"])
    if not (within > 0 and 0 < share <= 1):
        raise InputError(f"{where}: only_over_streets needs within_m > 0 and 0 < share <= 1")
    return within, share


def _parse_rules(raw: Any, where: str) -> tuple[StreetRule, ...]:
    if not isinstance(raw, list):
        raise InputError(f"{where}: rules must be a list")
    rules = tuple(_parse_rule(item, f"{where}, rule {i + 1}") for i, item in enumerate(raw))
    ids = [rule.id for rule in rules]
    if len(set(ids)) != len(ids):
        raise InputError(f"{where}: rule ids must be unique, got {ids}")
    return rules


def _packaged_filter_table() -> dict[str, Any]:
    text = resources.files("lifecircle").joinpath("data", STREET_FILTER_FILE).read_text("utf-8")
    table: dict[str, Any] = read_yaml_text(text, source=STREET_FILTER_FILE)
    return table


def load_street_filter(spec: StreetFilterSpec = None) -> StreetFilter:
    """The street filter: the packaged table, a YAML file or a table in its layout.

    Parameters
    ----------
    spec
        None for the packaged ``data/street_filter.yaml``; a path to a YAML
        file or a mapping in the same layout. A table with ``rules`` replaces
        the packaged rules; one with only ``disable`` (rule ids) and/or
        ``add`` (rules, checked after the packaged ones) changes them.

    Raises
    ------
    InputError
        Unreadable file, unknown rule id to disable, or a malformed rule.

    Examples
    --------
    >>> [rule.id for rule in load_street_filter().rules][-3:]
    ['major_road_bridge', 'major_road_tunnel', 'major_road_off_ground_layer']
    >>> lenient = load_street_filter({"disable": ["major_road_bridge"]})
    >>> "major_road_bridge" in [rule.id for rule in lenient.rules]
    False
    """
    if isinstance(spec, StreetFilter):
        return spec
    packaged = _packaged_filter_table()
    if spec is None:
        return StreetFilter(_parse_rules(packaged["rules"], STREET_FILTER_FILE), "packaged")
    if isinstance(spec, Mapping):
        table, where = dict(spec), "street filter"
    else:
        path = Path(spec)
        where = str(path)
        table = read_yaml(path)
        if not isinstance(table, dict):
            raise InputError("the street filter must be a YAML table", file=path)
    unknown = set(table) - {"version", "rules", "disable", "add"}
    if unknown:
        raise InputError(f"{where}: unknown keys {sorted(unknown)}")
    if "rules" in table:
        rules = _parse_rules(table["rules"], where)
    else:
        rules = _parse_rules(packaged["rules"], STREET_FILTER_FILE)
        disable = {str(d) for d in table.get("disable") or []}
        missing = disable - {rule.id for rule in rules}
        if missing:
            raise InputError(f"{where}: no packaged street rule named {sorted(missing)}")
        rules = tuple(rule for rule in rules if rule.id not in disable)
        rules = _parse_rules(
            [_rule_table(rule) for rule in rules] + list(table.get("add") or []), where
        )
    return StreetFilter(rules, where)


def _rule_table(rule: StreetRule) -> dict[str, Any]:
    """A parsed rule back in its YAML layout (to re-check ids with added rules)."""

    def conditions(group: tuple[TagCondition, ...]) -> dict[str, Any]:
        return {
            c.tag: {"not_in": sorted(c.values)} if c.negate else sorted(c.values) for c in group
        }

    return {
        "id": rule.id,
        "description": rule.description,
        "source": rule.source,
        "exclude_when": conditions(rule.exclude_when),
        "unless": [conditions(group) for group in rule.unless],
        **(
            {
                "only_over_streets": dict(
                    zip(("within_m", "share"), rule.only_over_streets, strict=True)
                )
            }
            if rule.only_over_streets
            else {}
        ),
    }


def is_walkable(ways: pd.DataFrame, street_filter: StreetFilterSpec = None) -> pd.Series:
    """Which OSM-tagged ways people may walk along.

    The rules are a data table, ``data/street_filter.yaml`` (see
    :func:`load_street_filter`): among others, ways whose ``highway`` value
    nobody walks along, ``foot=no``, ``access=no|private`` without a foot
    permission, ``motorroad=yes``, ``expressway=yes``, and trunk or primary
    roads and their ramps on bridges, in tunnels or off layer 0 unless
    ``foot``, ``sidewalk`` or ``footway`` says people walk there. Frames
    without a ``highway`` column are taken as walkable (plain centre-line
    files).

    Examples
    --------
    >>> ways = pd.DataFrame({"highway": ["footway", "motorway", "service", "residential", "trunk"],
    ...                      "access": [None, None, "private", None, None],
    ...                      "foot": [None, None, None, "no", None],
    ...                      "bridge": [None, None, None, None, "yes"]})
    >>> is_walkable(ways).tolist()
    [True, False, False, False, False]
    """
    return load_street_filter(street_filter).excluding_rule(ways).eq("")


def _first_tag_value(value: Any) -> str | None:
    """osmnx stores merged tags as lists; the first value speaks for the way."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)


def _first_tag_values(values: pd.Series) -> pd.Series:
    """:func:`_first_tag_value` of each row, worked out once per distinct value."""
    return pd.Series(per_distinct(values, _first_tag_value), index=values.index)


def _way_columns(edges: pd.DataFrame, tags: Sequence[str]) -> list[str]:
    return [c for c in (*tags, "osmid", "geometry") if c in edges.columns]


@contextmanager
def _plain_xml(path: Path) -> Iterator[Path]:
    """The file itself, or for ``.osm.gz`` a decompressed copy (osmnx reads .bz2 only)."""
    if not path.name.lower().endswith(".gz"):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="lifecircle-osm-") as folder:
        plain = Path(folder) / path.name[: -len(".gz")]
        with gzip.open(path, "rb") as source, plain.open("wb") as target:
            shutil.copyfileobj(source, target)
        yield plain


def _read_osm_xml_lines(path: Path, tags: Sequence[str]) -> gpd.GeoDataFrame:
    import osmnx as ox

    useful = list(ox.settings.useful_tags_way)
    ox.settings.useful_tags_way = sorted(set(useful) | set(tags))
    try:
        with _plain_xml(path) as xml:
            graph = ox.graph_from_xml(xml, simplify=False, retain_all=True, bidirectional=True)
    except Exception as exc:  # osmnx raises many kinds on malformed files
        raise InputError(f"cannot read OSM file: {exc}", file=path) from exc
    finally:
        ox.settings.useful_tags_way = useful
    if graph.number_of_edges() == 0:
        raise MissingDataError(f"{path}: the OSM file holds no highway ways")
    edges = ox.graph_to_gdfs(graph, nodes=False, edges=True).reset_index()
    return edges[_way_columns(edges, tags)]


def _read_osm_pbf_lines(path: Path, tags: Sequence[str]) -> gpd.GeoDataFrame:
    import pyrosm
    from pyrosm.config import Conf

    # pyrosm keeps a fixed list of highway tags; the others are asked for by name
    extra = sorted(set(tags) - set(Conf.tags.highway))
    try:
        edges = pyrosm.OSM(str(path)).get_network(
            network_type="all", extra_attributes=extra or None
        )
    except Exception as exc:
        raise InputError(f"cannot read OSM PBF file: {exc}", file=path) from exc
    if edges is None or edges.empty:
        raise MissingDataError(f"{path}: the PBF file holds no highway ways")
    edges = edges.rename(columns={"id": "osmid"})
    return edges[_way_columns(edges, tags)]


def _read_graphml_lines(path: Path, tags: Sequence[str]) -> gpd.GeoDataFrame:
    import osmnx as ox

    try:
        graph = ox.load_graphml(path)
    except Exception as exc:
        raise InputError(f"cannot read GraphML file: {exc}", file=path) from exc
    edges = ox.graph_to_gdfs(graph, nodes=False, edges=True).reset_index()
    missing = sorted(set(tags) - set(edges.columns))
    if missing:
        logger.info("%s: no %s tags in the GraphML file; rules on them see none", path, missing)
    return edges[_way_columns(edges, tags)]


def _read_line_file(path: Path, layer: str | None) -> gpd.GeoDataFrame:
    try:
        frame = (
            gpd.read_parquet(path)
            if path.suffix == ".parquet"
            else gpd.read_file(path, layer=layer)
        )
    except Exception as exc:
        raise InputError(f"cannot read street file: {exc}", file=path) from exc
    if frame.empty:
        raise InputError("the street file has no features", file=path)
    bad = ~frame.geom_type.isin(["LineString", "MultiLineString"])
    if bad.all():
        raise InputError(
            f"expected street centre-lines, found {frame.geom_type.iloc[0]} features", file=path
        )
    if bad.any():
        logger.warning("%s: ignoring %d non-line features", path, int(bad.sum()))
    from .loading import check_network_crs

    # from the features read, not the file's header: a GeoJSON has no extent to read
    check_network_crs(frame, name=str(path))
    return frame[~bad]


def load_network(
    source: str | Path | gpd.GeoDataFrame,
    *,
    layer: str | None = None,
    street_filter: StreetFilterSpec = None,
) -> WalkNetwork:
    """Load a walking network from a file or a GeoDataFrame of lines.

    Parameters
    ----------
    source
        ``.osm``, ``.osm.bz2`` or ``.osm.pbf`` (OpenStreetMap; walkable ways
        only, see :func:`is_walkable`), ``.graphml`` (an osmnx graph), a road
        centre-line file (GeoJSON, GeoPackage, Shapefile, GeoParquet), or a
        GeoDataFrame of lines.
    layer
        Layer name for multi-layer files such as GeoPackage.
    street_filter
        The rules that decide which ways are walkable: None for the packaged
        ``data/street_filter.yaml``, or a YAML path or table (see
        :func:`load_street_filter`). ``report.excluded_by_rule`` counts what
        each rule excluded.

    Returns
    -------
    WalkNetwork

    Raises
    ------
    InputError
        Unreadable or unsupported file, or a malformed street filter.
    MissingDataError
        No walkable ways in it.
    """
    rules = load_street_filter(street_filter)
    tags = tuple(sorted(set(_OSM_BASE_TAGS) | set(rules.tags)))
    if isinstance(source, gpd.GeoDataFrame | gpd.GeoSeries):
        from .loading import check_network_crs

        check_network_crs(source)
        return _filtered_network(source, "GeoDataFrame", rules)
    path = Path(source)
    if not path.exists():
        raise InputError("file not found", file=path)
    from .formats import file_format

    kind = file_format(path, "network")  # the one suffix table: refuses what no reader takes
    name = path.name.lower()
    osm = kind == "osm"
    if osm and name.endswith(".pbf"):
        lines = _read_osm_pbf_lines(path, tags)
    elif osm:
        lines = _read_osm_xml_lines(path, tags)
    elif kind == "graphml":
        lines = _read_graphml_lines(path, tags)
    else:
        lines = _read_line_file(path, layer)
    return _filtered_network(lines, str(path), rules, tags_requested=osm)


def _filtered_network(
    lines: gpd.GeoDataFrame | gpd.GeoSeries,
    source: str,
    rules: StreetFilter,
    *,
    tags_requested: bool = False,
) -> WalkNetwork:
    """Apply the street filter; ``tags_requested`` when the reader asked for every tag."""
    if isinstance(lines, gpd.GeoSeries):
        return network_from_lines(lines, source=source, street_filter=rules.source)
    verdict = rules.excluding_rule(lines)
    walkable = verdict.eq("").to_numpy()
    kept = lines[walkable]
    missing: list[str] = []
    if "highway" in lines.columns and not tags_requested:
        missing = [tag for tag in rules.tags if tag not in lines.columns]
        if missing:
            logger.warning(
                "%s: no way has a %s column (none carries the tag, or it was not kept when "
                "the file was written), so the street rules on them excluded nothing",
                source,
                "/".join(missing),
            )
    for column in (*rules.tags, *_OSM_BASE_TAGS, "osmid"):
        if column in kept.columns:
            kept = kept.assign(**{column: _first_tag_values(kept[column])})
    way_id = _way_ids(lines)
    return network_from_lines(
        kept,
        source=source,
        ways_read=int(way_id.nunique()),
        dropped=int(way_id[~walkable].nunique()),
        excluded_by_rule=rules.counts(verdict, way_id),
        street_filter=rules.source,
        filter_tags_missing=missing,
    )


def _way_ids(lines: pd.DataFrame) -> pd.Series:
    """One id per source way: the OSM id where there is one, else the row."""
    if "osmid" in lines.columns:
        return _first_tag_values(lines["osmid"]).fillna("").astype(str)
    return pd.Series(np.arange(len(lines)), index=lines.index)  # only ever counted


def _cache_dir() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lifecircle" / "networks"


def download_network(
    place: str | None = None,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    cache_dir: str | Path | None = None,
) -> WalkNetwork:
    """Download a walking network through osmnx, cached on disk.

    Parameters
    ----------
    place
        A place name osmnx can geocode, e.g. ``"Haidian District, Beijing"``.
    bbox
        ``(west, south, east, north)`` in WGS84, instead of ``place``.
    cache_dir
        Where downloaded networks are kept as GraphML (default
        ``~/.cache/lifecircle/networks``). A cached network is used without
        going online.

    Raises
    ------
    MissingDataError
        When the machine is offline and nothing is cached.
    """
    if (place is None) == (bbox is None):
        raise InputError("give either a place name or a bounding box, not both")
    key = json.dumps({"place": place, "bbox": bbox}, sort_keys=True)
    cache = Path(cache_dir) if cache_dir is not None else _cache_dir()
    cached = cache / f"walk-{hashlib.sha256(key.encode()).hexdigest()[:16]}.graphml"
    if cached.exists():
        logger.info("using cached network %s", cached)
        return load_network(cached)

    import osmnx as ox

    useful = list(ox.settings.useful_tags_way)
    # keep every tag the street filter reads in the cached GraphML
    ox.settings.useful_tags_way = sorted(
        set(useful) | set(_OSM_BASE_TAGS) | set(load_street_filter().tags)
    )
    try:
        if place is not None:
            graph = ox.graph_from_place(place, network_type="walk", retain_all=True)
        else:
            assert bbox is not None  # checked by the caller: a place or a bbox
            graph = ox.graph_from_bbox(bbox, network_type="walk", retain_all=True)
    except Exception as exc:  # requests' connection errors and osmnx's own
        raise MissingDataError(
            f"could not download the street network for {place or bbox} ({exc}); "
            "the machine may be offline. Pass a local file with --network instead."
        ) from exc
    finally:
        ox.settings.useful_tags_way = useful
    cache.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    ox.save_graphml(graph, partial)
    partial.replace(cached)
    return load_network(cached)
