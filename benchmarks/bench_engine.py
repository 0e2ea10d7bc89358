#!/usr/bin/env python
"""Benchmark of the lifecircle reach engine and isochrones against their peers.

One run builds synthetic city-scale street grids (about 10k, 40k and 160k
nodes by default) and, on the same inputs, times:

* ``lifecircle``  - ``ReachEngine`` from a built ``WalkNetwork``: snapping the
  origins and facilities, building the routing graph, the nearest distance
  from every origin to each facility type and the count of each type within
  1000 m;
* ``scipy_floor`` - the same queries as bare ``scipy.sparse.csgraph.dijkstra``
  calls on the prepared routing graph (origins and facilities already nodes):
  the floor lifecircle must stay within 2x of;
* ``networkx``    - one multi-source Dijkstra per type for the nearest distance
  and, the usual OSMnx-tutorial way, one bounded Dijkstra per origin for the
  counts (timed on a subsample of origins and extrapolated linearly);
* ``pandana``     - ``Network`` + ``precompute(1000)`` + ``nearest_pois`` and
  ``aggregate(type="count")`` per type (run in a child process so a crash or
  a missing install only skips it);
* isochrones      - ``lifecircle.isochrones`` for 1,000 origins at 5/10/15
  minutes against the OSMnx isolines-notebook method (``nx.ego_graph`` +
  node/edge buffers + union, timed on a subsample and extrapolated), both
  scored by IoU against an independent exact reference.

All methods must give the same answers (tolerances printed); any mismatch
ends the run with a non-zero exit status. The peak memory of the lifecircle
workload is measured in a fresh child process.

Run ``python benchmarks/bench_engine.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import hashlib
import inspect
import io
import json
import math
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import scipy
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from lifecircle.engine import ReachEngine, RoutingGraph
from lifecircle.isochrones import isochrones
from lifecircle.network import WalkNetwork, network_from_lines

# --------------------------------------------------------------------- workload
CRS = "EPSG:32650"
#: South-west corner of the synthetic city (UTM zone 50N, metres).
CITY_ORIGIN_XY = np.array([440_000.0, 4_410_000.0])
SPACING_M = 100.0
JITTER_M = 20.0
DROP_SHARE = 0.03
#: Origins lie up to this far to either side of a street.
ORIGIN_OFFSET_M = 30.0
N_TYPES = 8
PER_TYPE = 60
RADIUS_M = 1000.0
MINUTES = (5, 10, 15)
WALK_SPEED_M_PER_MIN = 60.0
BUFFER_M = 40.0
HOLE_FILL_M2 = 20_000.0
QUAD_SEGS = 4

# ------------------------------------------------------------------- tolerances
#: scipy floor and networkx against lifecircle (float64 everywhere).
TOL_EXACT_M = 1e-6
#: pandana's contraction hierarchy truncates every edge weight to whole millimetres
#: (at least 1 mm) and returns float32, so a path of k edges may be up to k mm short;
#: 0.05 m covers paths of 50 edges (measured: at most about 0.013 m at 1000 m).
TOL_PANDANA_M = 0.05
IOU_TARGET = 0.98

# ---------------------------------------------------------------------- targets
TARGET_FLOOR_RATIO = 0.5
TARGET_NETWORKX = 10.0
TARGET_PANDANA = 10.0
TARGET_ISOCHRONE = 10.0
TARGET_PEAK_MB = 1536.0
#: Largest accepted growth exponent of lifecircle time against network size.
TARGET_GROWTH_EXPONENT = 1.2

#: Isochrone origins in the memory probe: the isochrone loop holds one origin's
#: distances at a time, so its memory does not grow with the number of origins.
MEMORY_ISO_ORIGINS = 100

DEFAULT_SIZES = (10_000, 40_000, 160_000)
PEERS = ("scipy_floor", "networkx", "pandana", "osmnx_isochrone")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ==================================================================== the city
@dataclass
class City:
    """Street lines, origins and facilities of one synthetic city."""

    n_requested: int
    side: int
    lines: gpd.GeoSeries
    origins: gpd.GeoSeries
    facilities: gpd.GeoSeries
    facility_type: NDArray[np.int64]

    @property
    def type_index(self) -> list[NDArray[np.int64]]:
        """Positions of the facilities of each type."""
        return [np.flatnonzero(self.facility_type == t) for t in range(N_TYPES)]


def make_city(n_nodes: int, n_origins: int, seed: int) -> City:
    """A jittered square street grid of about ``n_nodes`` vertices, vectorised.

    Streets are two-point lines between neighbouring vertices (100 m apart,
    each vertex moved up to 20 m); 3 % of them are removed at random. Origins
    lie along random streets, up to 30 m to either side; facilities are
    uniform over the city's extent.
    """
    rng = np.random.default_rng(seed)
    side = max(2, round(math.sqrt(n_nodes)))
    ticks = np.arange(side) * SPACING_M
    xs, ys = np.meshgrid(ticks, ticks, indexing="ij")
    jitter = rng.uniform(-JITTER_M, JITTER_M, (side, side, 2))
    xy = np.stack([xs, ys], axis=-1) + jitter + CITY_ORIGIN_XY
    across = np.stack([xy[:-1, :], xy[1:, :]], axis=2).reshape(-1, 2, 2)
    along = np.stack([xy[:, :-1], xy[:, 1:]], axis=2).reshape(-1, 2, 2)
    segments = np.concatenate([across, along])
    segments = segments[rng.uniform(size=segments.shape[0]) >= DROP_SHARE]
    lines = gpd.GeoSeries(shapely.linestrings(segments), crs=CRS)

    pick = rng.integers(segments.shape[0], size=n_origins)
    start, end = segments[pick, 0], segments[pick, 1]
    direction = end - start
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    normal /= np.hypot(normal[:, 0], normal[:, 1])[:, None]
    position = rng.uniform(size=(n_origins, 1))
    offset = rng.uniform(-ORIGIN_OFFSET_M, ORIGIN_OFFSET_M, (n_origins, 1))
    origin_xy = start + position * direction + offset * normal

    lower, upper = xy.reshape(-1, 2).min(axis=0), xy.reshape(-1, 2).max(axis=0)
    facility_xy = rng.uniform(lower, upper, (N_TYPES * PER_TYPE, 2))
    return City(
        n_requested=n_nodes,
        side=side,
        lines=lines,
        origins=gpd.GeoSeries(shapely.points(origin_xy), crs=CRS),
        facilities=gpd.GeoSeries(shapely.points(facility_xy), crs=CRS),
        facility_type=np.repeat(np.arange(N_TYPES), PER_TYPE),
    )


#: Attributes each network holds once built (by ``id``): whatever else the engine
#: later caches on it (segment geometries, spatial indexes) is dropped before every
#: timed run, so every run pays for it.
_BUILT_ATTRIBUTES: dict[int, frozenset[str]] = {}


def build_network(city: City) -> WalkNetwork:
    """The lifecircle walk network of the city's streets."""
    net = network_from_lines(city.lines, crs=CRS, source="synthetic grid")
    _BUILT_ATTRIBUTES[id(net)] = frozenset(net.__dict__)
    return net


# ================================================================== utilities
@dataclass
class Answers:
    """Per type (rows) and origin (columns): nearest distance and count within the radius."""

    nearest: NDArray[np.float64]
    counts: NDArray[np.int64]


@dataclass
class Check:
    """One correctness comparison."""

    name: str
    ok: bool
    detail: str


@dataclass
class SizeResult:
    """Everything measured at one network size."""

    n_requested: int
    n_nodes: int = 0
    n_segments: int = 0
    n_graph_nodes: int = 0
    times: dict[str, float] = field(default_factory=dict)
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    iou: dict[str, dict[str, float]] = field(default_factory=dict)
    memory_mb: dict[str, float] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    def ratio(self, peer: str) -> float:
        """Peer time over lifecircle time for the comparison ``peer``."""
        lc_key = "lifecircle_isochrones" if peer == "osmnx_isochrone" else "lifecircle"
        peer_time = self.times.get(peer, math.nan)
        base = self.times.get(lc_key, math.nan)
        return peer_time / base if base and base > 0 else math.nan


def max_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB.

    Reads ``VmHWM`` from ``/proc/self/status`` on Linux: ``ru_maxrss`` survives
    ``exec`` and so would report the parent's size in a fresh child process.
    Falls back to ``ru_maxrss`` elsewhere.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def forget_engine_caches(net: WalkNetwork) -> None:
    """Drop everything cached on the network since it was built, so each timed run starts cold."""
    built = _BUILT_ATTRIBUTES.get(id(net), frozenset(net.__dict__))
    for name in set(net.__dict__) - built:
        del net.__dict__[name]


def best_of(
    repeat: int, run: Callable[[], tuple[Any, dict[str, float]]]
) -> tuple[Any, float, dict]:
    """Run ``repeat`` times; keep the fastest run's result, total and step times."""
    best: tuple[Any, float, dict] | None = None
    for _ in range(max(1, repeat)):
        result, steps = run()
        total = sum(steps.values())
        if best is None or total < best[1]:
            best = (result, total, steps)
    assert best is not None
    return best


def fmt_s(seconds: float) -> str:
    """Seconds with a sensible number of digits."""
    if not math.isfinite(seconds):
        return "n/a"
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


# ================================================================== lifecircle
def lifecircle_run(
    net: WalkNetwork, city: City
) -> tuple[tuple[ReachEngine, Answers], dict[str, float]]:
    """The timed lifecircle workload, from a built network to all answers."""
    forget_engine_caches(net)
    steps: dict[str, float] = {}
    t0 = time.perf_counter()
    engine = ReachEngine(net)
    engine.add_layer("origins", city.origins)
    engine.add_layer("facilities", city.facilities)
    t1 = time.perf_counter()
    _ = engine.graph
    t2 = time.perf_counter()
    nearest = np.stack(
        [engine.nearest("facilities", "origins", source_index=idx) for idx in city.type_index]
    )
    t3 = time.perf_counter()
    counts = np.stack(
        [
            engine.count_within("facilities", "origins", RADIUS_M, source_index=idx)
            for idx in city.type_index
        ]
    )
    t4 = time.perf_counter()
    steps.update(snap=t1 - t0, graph=t2 - t1, nearest=t3 - t2, counts=t4 - t3)
    return (engine, Answers(nearest, counts)), steps


# ================================================================= scipy floor
@dataclass
class Prepared:
    """Routing-graph nodes of the origins and of each type's facilities."""

    csr: sparse.csr_matrix
    origin_nodes: NDArray[np.int64]
    routed: NDArray[np.bool_]
    sources: list[NDArray[np.int64]]

    @property
    def targets(self) -> NDArray[np.int64]:
        """Nodes of the routed origins."""
        return self.origin_nodes[self.routed]


def prepare(engine: ReachEngine, city: City) -> Prepared:
    """Origins and facilities as routing-graph nodes (outside every timed section)."""
    origin_nodes = engine.nodes("origins").copy()
    facility_nodes = engine.nodes("facilities")
    sources = []
    for idx in city.type_index:
        nodes = facility_nodes[idx]
        sources.append(nodes[nodes >= 0].copy())
    return Prepared(engine.graph.csr, origin_nodes, origin_nodes >= 0, sources)


def floor_run(prep: Prepared, n_origins: int) -> tuple[Answers, dict[str, float]]:
    """The same queries as bare scipy Dijkstra calls on the prepared graph."""
    nearest = np.full((N_TYPES, n_origins), np.inf)
    counts = np.zeros((N_TYPES, n_origins), dtype=np.int64)
    targets, routed = prep.targets, prep.routed
    t0 = time.perf_counter()
    for t, src in enumerate(prep.sources):
        if src.shape[0]:
            dist = dijkstra(prep.csr, directed=True, indices=src, min_only=True)
            nearest[t, routed] = dist[targets]
    t1 = time.perf_counter()
    for t, src in enumerate(prep.sources):
        if src.shape[0]:
            dist = dijkstra(prep.csr, directed=True, indices=src, limit=RADIUS_M)
            counts[t, routed] = (dist[:, targets] <= RADIUS_M).sum(axis=0)
    t2 = time.perf_counter()
    return Answers(nearest, counts), {"nearest": t1 - t0, "counts": t2 - t1}


def boundary_pairs(prep: Prepared, n_origins: int, tolerance: float) -> NDArray[np.int64]:
    """Per type and origin: facility pairs whose distance is within ``tolerance`` of the radius.

    A count may legitimately differ by at most this many between two exact
    methods that add the same lengths in a different order (or in single
    precision).
    """
    out = np.zeros((N_TYPES, n_origins), dtype=np.int64)
    targets = prep.targets
    for t, src in enumerate(prep.sources):
        if src.shape[0]:
            dist = dijkstra(prep.csr, directed=True, indices=src, limit=RADIUS_M + tolerance)
            near_edge = np.abs(dist[:, targets] - RADIUS_M) <= tolerance
            out[t, prep.routed] = near_edge.sum(axis=0)
    return out


# ====================================================================== checks
def compare_nearest(
    name: str, peer: NDArray[np.float64], ref: NDArray[np.float64], tolerance: float
) -> Check:
    """Distances equal within ``tolerance``; unreached (inf) exactly where the reference has it."""
    inf_mismatch = int((np.isinf(peer) != np.isinf(ref)).sum())
    both = np.isfinite(peer) & np.isfinite(ref)
    worst = float(np.abs(peer[both] - ref[both]).max(initial=0.0))
    ok = inf_mismatch == 0 and worst <= tolerance
    detail = (
        f"{both.sum():,} distances, max |diff| {worst:.2e} m (tol {tolerance:g} m), "
        f"{inf_mismatch} unreached mismatches"
    )
    return Check(name, ok, detail)


def compare_nearest_capped(
    name: str, peer: NDArray[np.float64], ref: NDArray[np.float64], tolerance: float, cap: float
) -> Check:
    """For a search capped at ``cap``: equal below it, unreached above, the edge band skipped."""
    below = ref <= cap - tolerance
    above = ref > cap + tolerance
    worst = float(np.abs(peer[below] - ref[below]).max(initial=0.0))
    missed = int((~np.isfinite(peer[below])).sum())
    spurious = int((np.isfinite(peer[above]) & (peer[above] < cap - tolerance)).sum())
    band = int((~below & ~above).sum())
    ok = worst <= tolerance and missed == 0 and spurious == 0
    detail = (
        f"{below.sum():,} distances <= {cap:g} m, max |diff| {worst:.2e} m (tol {tolerance:g} m),"
        f" {missed} missed, {spurious} spurious, {band} within tol of the cap not compared"
    )
    return Check(name, ok, detail)


def compare_counts(
    name: str,
    peer: NDArray[np.int64],
    ref: NDArray[np.int64],
    boundary: NDArray[np.int64],
) -> Check:
    """Counts equal, except by at most the number of pairs lying on the radius (``boundary``)."""
    diff = np.abs(peer.astype(np.int64) - ref.astype(np.int64))
    bad = int((diff > boundary).sum())
    excused = int(((diff > 0) & (diff <= boundary)).sum())
    detail = (
        f"{diff.size:,} counts, {bad} mismatches, {excused} differing only by pairs "
        f"on the {RADIUS_M:g} m edge"
    )
    return Check(name, bad == 0, detail)


# ==================================================================== networkx
def to_networkx(graph: RoutingGraph, *, with_xy: bool = False) -> nx.Graph:
    """The routing graph (same CSR the floor uses) as a networkx Graph with ``length``."""
    upper = sparse.triu(graph.csr, k=1).tocoo()
    out = nx.Graph()
    if with_xy:
        out.add_nodes_from((i, {"x": x, "y": y}) for i, (x, y) in enumerate(graph.node_xy.tolist()))
    else:
        out.add_nodes_from(range(graph.n_nodes))
    out.add_weighted_edges_from(
        zip(upper.row.tolist(), upper.col.tolist(), upper.data.tolist(), strict=True),
        weight="length",
    )
    return out


def networkx_nearest(
    graph_nx: nx.Graph, prep: Prepared, n_origins: int
) -> tuple[NDArray[np.float64], float]:
    """Nearest facility of each type: one multi-source Dijkstra per type."""
    nearest = np.full((N_TYPES, n_origins), np.inf)
    positions = np.flatnonzero(prep.routed).tolist()
    nodes = prep.targets.tolist()
    t0 = time.perf_counter()
    for t, src in enumerate(prep.sources):
        if not src.shape[0]:
            continue
        lengths = nx.multi_source_dijkstra_path_length(graph_nx, set(src.tolist()), weight="length")
        row = nearest[t]
        for pos, node in zip(positions, nodes, strict=True):
            row[pos] = lengths.get(node, math.inf)
    return nearest, time.perf_counter() - t0


def networkx_counts(
    graph_nx: nx.Graph, prep: Prepared, sample: NDArray[np.int64]
) -> tuple[NDArray[np.int64], float]:
    """Counts within the radius by one bounded Dijkstra per sampled origin."""
    facility_lists = [src.tolist() for src in prep.sources]
    counts = np.zeros((N_TYPES, sample.shape[0]), dtype=np.int64)
    t0 = time.perf_counter()
    for j, pos in enumerate(sample.tolist()):
        reached = nx.single_source_dijkstra_path_length(
            graph_nx, int(prep.origin_nodes[pos]), cutoff=RADIUS_M, weight="length"
        )
        for t, facilities in enumerate(facility_lists):
            counts[t, j] = sum(1 for node in facilities if node in reached)
    return counts, time.perf_counter() - t0


# ===================================================================== pandana
def pandana_worker(in_path: Path, out_path: Path) -> int:
    """Child-process side of the pandana comparison (reads and writes files)."""
    report: dict[str, Any] = {"omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset")}
    try:
        import pandana
    except Exception as exc:  # any import failure only skips the peer
        report["error"] = f"import failed: {exc!r}"
        out_path.with_suffix(".json").write_text(json.dumps(report))
        return 0
    data = np.load(in_path)
    node_xy, origin_nodes = data["node_xy"], data["origin_nodes"]
    facility_nodes, facility_type = data["facility_nodes"], data["facility_type"]
    report["version"] = pandana.__version__

    t0 = time.perf_counter()
    net = pandana.Network(
        pd.Series(node_xy[:, 0]),
        pd.Series(node_xy[:, 1]),
        pd.Series(data["edge_u"]),
        pd.Series(data["edge_v"]),
        pd.DataFrame({"length": data["edge_len"]}),
        twoway=True,
    )
    net.precompute(RADIUS_M)
    t1 = time.perf_counter()
    nearest = np.full((N_TYPES, origin_nodes.shape[0]), np.inf)
    counts = np.zeros((N_TYPES, origin_nodes.shape[0]), dtype=np.int64)
    for t in range(N_TYPES):
        nodes = facility_nodes[facility_type == t]
        if not nodes.shape[0]:
            continue
        name = f"type{t}"
        net.set_pois(
            category=name,
            maxdist=RADIUS_M,
            maxitems=1,
            x_col=pd.Series(node_xy[nodes, 0]),
            y_col=pd.Series(node_xy[nodes, 1]),
        )
        found = net.nearest_pois(RADIUS_M, name, num_pois=1, max_distance=np.inf)
        nearest[t] = found[1].to_numpy()[origin_nodes]
    t2 = time.perf_counter()
    for t in range(N_TYPES):
        nodes = facility_nodes[facility_type == t]
        if not nodes.shape[0]:
            continue
        name = f"count{t}"
        net.set(pd.Series(nodes), name=name)
        per_node = net.aggregate(RADIUS_M, type="count", decay="flat", name=name)
        counts[t] = np.rint(per_node.to_numpy()[origin_nodes]).astype(np.int64)
    t3 = time.perf_counter()
    np.savez(out_path, nearest=nearest, counts=counts)
    report.update(
        setup=t1 - t0, nearest=t2 - t1, counts=t3 - t2, peak_mb=max_rss_mb(), n_nodes=len(node_xy)
    )
    out_path.with_suffix(".json").write_text(json.dumps(report))
    return 0


def run_pandana(
    graph: RoutingGraph, prep: Prepared, n_origins: int, workdir: Path
) -> tuple[Answers | None, dict[str, Any]]:
    """Run the pandana comparison in a child process; ``None`` answers when it cannot run."""
    upper = sparse.triu(graph.csr, k=1).tocoo()
    facility_nodes = np.concatenate(prep.sources)
    facility_type = np.concatenate(
        [np.full(src.shape[0], t, dtype=np.int64) for t, src in enumerate(prep.sources)]
    )
    in_path, out_path = workdir / "pandana_in.npz", workdir / "pandana_out.npz"
    np.savez(
        in_path,
        node_xy=graph.node_xy,
        edge_u=upper.row.astype(np.int64),
        edge_v=upper.col.astype(np.int64),
        edge_len=upper.data,
        origin_nodes=prep.targets,
        facility_nodes=facility_nodes,
        facility_type=facility_type,
    )
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "pandana"]
    command += ["--worker-in", str(in_path), "--worker-out", str(out_path)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    json_path = out_path.with_suffix(".json")
    if proc.returncode != 0 or not json_path.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return None, {"error": f"exit status {proc.returncode}: {' | '.join(tail)}"}
    report = json.loads(json_path.read_text())
    if "error" in report:
        return None, report
    data = np.load(out_path)
    nearest = np.full((N_TYPES, n_origins), np.inf)
    counts = np.zeros((N_TYPES, n_origins), dtype=np.int64)
    nearest[:, prep.routed] = data["nearest"]
    counts[:, prep.routed] = data["counts"]
    return Answers(nearest, counts), report


# ================================================================== isochrones
def fill_small_holes(geom: BaseGeometry, min_area: float) -> BaseGeometry:
    """Drop interior rings smaller than ``min_area`` (same rule as lifecircle, written apart)."""
    polygons = []
    for part in shapely.get_parts(geom):
        if part.geom_type != "Polygon":
            continue
        keep = [ring for ring in part.interiors if shapely.Polygon(ring).area >= min_area]
        polygons.append(shapely.Polygon(part.exterior, keep))
    if not polygons:
        return shapely.Polygon()
    return polygons[0] if len(polygons) == 1 else shapely.union_all(polygons)


def lifecircle_isochrones(
    net: WalkNetwork, points: gpd.GeoSeries, n_jobs: int | None = None
) -> tuple[tuple[ReachEngine, gpd.GeoDataFrame], dict[str, float]]:
    """The timed lifecircle isochrone workload: one engine, one layer, all origins.

    ``n_jobs`` is passed on when :func:`~lifecircle.isochrones.isochrones` takes
    it (``None``: the library default).
    """
    options: dict[str, Any] = {}
    if n_jobs is not None and "n_jobs" in inspect.signature(isochrones).parameters:
        options["n_jobs"] = n_jobs
    forget_engine_caches(net)
    t0 = time.perf_counter()
    engine = ReachEngine(net)
    engine.add_layer("iso", points)
    frame = isochrones(
        engine,
        "iso",
        np.arange(len(points)),
        minutes=MINUTES,
        walk_speed=WALK_SPEED_M_PER_MIN,
        buffer_m=BUFFER_M,
        hole_fill_m2=HOLE_FILL_M2,
        progress=False,
        **options,
    )
    return (engine, frame), {"isochrones": time.perf_counter() - t0}


def isochrone_threads() -> str:
    """How many threads lifecircle's isochrones use by default, as text."""
    parameter = inspect.signature(isochrones).parameters.get("n_jobs")
    if parameter is None:
        return "single thread (no n_jobs option)"
    default = parameter.default
    if default is None:
        from lifecircle.isochrones import _workers

        default = _workers(None, os.cpu_count() or 1)
    return f"default n_jobs ({default} thread{'s' if default != 1 else ''})"


def osmnx_example_isochrones(
    graph_nx: nx.Graph, center: int, distances: Sequence[float]
) -> list[BaseGeometry]:
    """The OSMnx isolines-notebook method for one origin (smallest distance first).

    Per threshold: ``nx.ego_graph`` by length, a GeoDataFrame of its nodes,
    one straight line per subgraph edge looked up through the node frame,
    buffer nodes and edges, union. Buffer widths are set to lifecircle's
    (40 m) and small holes are filled by the same rule so the comparison is
    about reachability; like the notebook it ignores partly reached edges.
    """
    polygons = []
    for distance in sorted(distances, reverse=True):
        subgraph = nx.ego_graph(graph_nx, center, radius=distance, distance="length")
        node_points = [Point((data["x"], data["y"])) for _, data in subgraph.nodes(data=True)]
        nodes_gdf = gpd.GeoDataFrame({"id": list(subgraph.nodes)}, geometry=node_points)
        nodes_gdf = nodes_gdf.set_index("id")
        edge_lines = []
        for n_fr, n_to in subgraph.edges():
            f = nodes_gdf.loc[n_fr].geometry
            t = nodes_gdf.loc[n_to].geometry
            edge_lines.append(LineString([f, t]))
        n = nodes_gdf.buffer(BUFFER_M, quad_segs=QUAD_SEGS).geometry
        e = gpd.GeoSeries(edge_lines).buffer(BUFFER_M, quad_segs=QUAD_SEGS).geometry
        new_iso = gpd.GeoSeries(list(n) + list(e)).union_all()
        polygons.append(fill_small_holes(new_iso, HOLE_FILL_M2))
    return polygons[::-1]


def reference_isochrones(
    graph_nx: nx.Graph,
    node_xy: NDArray[np.float64],
    center: int,
    distances: Sequence[float],
    foreign: frozenset[int] = frozenset(),
) -> list[BaseGeometry]:
    """Independent exact isochrones: networkx distances, partial edges cut with ``substring``.

    ``foreign`` are the point nodes of other origins: their access legs are
    not streets, so they are not banded.
    """
    lengths = nx.single_source_dijkstra_path_length(
        graph_nx, center, cutoff=max(distances), weight="length"
    )
    polygons = []
    for limit in sorted(distances):
        pieces: list[BaseGeometry] = []
        seen: set[tuple[int, int]] = set()
        for a, d_a in lengths.items():
            if d_a > limit:
                continue
            if a in foreign:
                continue
            for b in graph_nx[a]:
                u, v = (a, b) if a < b else (b, a)
                if (u, v) in seen or b in foreign:
                    continue
                seen.add((u, v))
                line = LineString([node_xy[u], node_xy[v]])
                spare_u = limit - lengths.get(u, math.inf)
                spare_v = limit - lengths.get(v, math.inf)
                if spare_u + spare_v >= line.length:
                    pieces.append(line)
                    continue
                if spare_u > 0:
                    pieces.append(substring(line, 0.0, spare_u))
                if spare_v > 0:
                    pieces.append(substring(line, line.length - spare_v, line.length))
        areas = shapely.buffer(np.array(pieces, dtype=object), BUFFER_M, quad_segs=QUAD_SEGS)
        polygons.append(fill_small_holes(shapely.union_all(areas), HOLE_FILL_M2))
    return polygons


def iou(a: BaseGeometry, b: BaseGeometry) -> float:
    """Intersection over union of two polygons (1 when both are empty)."""
    union = shapely.union(a, b).area
    return shapely.intersection(a, b).area / union if union > 0 else 1.0


# ====================================================================== memory
def memory_worker(size: int, n_origins: int, seed: int, n_iso: int, out_path: Path) -> int:
    """Child-process side of the memory probe: the whole lifecircle workload at one size."""
    marks = {"after_imports": max_rss_mb()}
    city = make_city(size, n_origins, seed)
    marks["after_city"] = max_rss_mb()
    net = build_network(city)
    marks["after_network"] = max_rss_mb()
    lifecircle_run(net, city)
    marks["after_queries"] = max_rss_mb()
    lifecircle_isochrones(net, city.origins.iloc[:n_iso].reset_index(drop=True))
    marks["after_isochrones"] = max_rss_mb()
    marks["peak"] = max_rss_mb()
    out_path.write_text(json.dumps(marks))
    return 0


def run_memory_probe(
    size: int, n_origins: int, seed: int, n_iso: int, workdir: Path
) -> dict[str, float]:
    """Peak RSS of the lifecircle workload (network build, queries, isochrones) alone."""
    out_path = workdir / f"memory_{size}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "memory"]
    command += ["--sizes", str(size), "--origins", str(n_origins), "--seed", str(seed)]
    command += ["--iso-origins", str(n_iso), "--worker-out", str(out_path)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out_path.exists():
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        print(f"  memory probe failed: {tail}")
        return {"peak": math.nan}
    return json.loads(out_path.read_text())


# ======================================================================== main
class _InlineExecutor:
    """A stand-in thread pool that runs tasks in the calling thread (for profiling)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> _InlineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, fn: Callable[..., Any], *iterables: Any) -> Any:
        """Plain ``map``: results in input order, computed on demand."""
        return map(fn, *iterables)


def profile_lifecircle(net: WalkNetwork, city: City, n_iso: int) -> str:
    """cProfile of the lifecircle workload and isochrones; the top functions by own time.

    cProfile sees only the calling thread, so any thread pool the isochrone
    module uses is swapped for an inline one while profiling.
    """
    iso_module = sys.modules[isochrones.__module__]
    saved = getattr(iso_module, "ThreadPoolExecutor", None)
    if saved is not None:
        iso_module.ThreadPoolExecutor = _InlineExecutor  # type: ignore[attr-defined]
    profiler = cProfile.Profile()
    try:
        profiler.enable()
        lifecircle_run(net, city)
        lifecircle_isochrones(net, city.origins.iloc[:n_iso].reset_index(drop=True), n_jobs=1)
        profiler.disable()
    finally:
        if saved is not None:
            iso_module.ThreadPoolExecutor = saved  # type: ignore[attr-defined]
    stream = io.StringIO()
    stream.write(f"\n  cProfile of the lifecircle queries and {n_iso:,} isochrones (1 thread):\n")
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(15)
    return stream.getvalue()


def bench_size(size: int, args: argparse.Namespace, workdir: Path) -> SizeResult:
    """Every comparison at one network size."""
    res = SizeResult(n_requested=size)
    rng = np.random.default_rng(args.seed + 1)
    city = make_city(size, args.origins, args.seed)
    t0 = time.perf_counter()
    net = build_network(city)
    res.times["network_build"] = time.perf_counter() - t0
    res.n_nodes, res.n_segments = net.n_nodes, net.n_segments
    print(
        f"\n=== size {size:,}: {net.n_nodes:,} nodes, {net.n_segments:,} segments "
        f"({city.side}x{city.side} grid), {args.origins:,} origins, "
        f"{N_TYPES}x{PER_TYPE} facilities ===",
        flush=True,
    )
    bench_queries(res, net, city, args, rng, workdir)
    bench_isochrones(res, net, city, args, rng)
    if not args.no_memory_probe:
        n_iso = min(args.iso_origins, args.origins, MEMORY_ISO_ORIGINS)
        res.memory_mb.update(run_memory_probe(size, args.origins, args.seed, n_iso, workdir))
    if args.profile and size == max(args.sizes):
        print(profile_lifecircle(net, city, min(args.iso_origins, args.origins)).rstrip())
    print_size(res, args)
    return res


def bench_queries(
    res: SizeResult,
    net: WalkNetwork,
    city: City,
    args: argparse.Namespace,
    rng: np.random.Generator,
    workdir: Path,
) -> None:
    """Nearest distances and counts: lifecircle, the scipy floor, networkx and pandana."""
    # lifecircle and the scipy floor, interleaved so both see the same machine load
    (engine, lc), res.times["lifecircle"], res.breakdown["lifecircle"] = best_of(
        1, lambda: lifecircle_run(net, city)
    )
    graph = engine.graph
    res.n_graph_nodes = graph.n_nodes
    prep = prepare(engine, city)
    n_routed = int(prep.routed.sum())
    res.notes["routed_origins"] = f"{n_routed:,} of {args.origins:,}"
    floor, res.times["scipy_floor"], res.breakdown["scipy_floor"] = best_of(
        1, lambda: floor_run(prep, args.origins)
    )
    for _ in range(args.repeat - 1):
        _, total, steps = best_of(1, lambda: lifecircle_run(net, city))
        if total < res.times["lifecircle"]:
            res.times["lifecircle"], res.breakdown["lifecircle"] = total, steps
        _, total, steps = best_of(1, lambda: floor_run(prep, args.origins))
        if total < res.times["scipy_floor"]:
            res.times["scipy_floor"], res.breakdown["scipy_floor"] = total, steps
    exact_edge = boundary_pairs(prep, args.origins, TOL_EXACT_M)
    res.checks.append(
        compare_nearest("scipy_floor nearest", floor.nearest, lc.nearest, TOL_EXACT_M)
    )
    res.checks.append(compare_counts("scipy_floor counts", floor.counts, lc.counts, exact_edge))
    print(
        f"  lifecircle {fmt_s(res.times['lifecircle'])} s, "
        f"floor {fmt_s(res.times['scipy_floor'])} s",
        flush=True,
    )

    # networkx
    t0 = time.perf_counter()
    graph_nx = to_networkx(graph)
    res.times["networkx_graph_build"] = time.perf_counter() - t0
    nx_nearest, t_nearest = networkx_nearest(graph_nx, prep, args.origins)
    size = min(args.nx_sample, n_routed)
    sample = np.sort(rng.choice(np.flatnonzero(prep.routed), size=size, replace=False))
    nx_counts, t_counts = networkx_counts(graph_nx, prep, sample)
    del graph_nx
    t_counts_all = t_counts / max(sample.shape[0], 1) * args.origins
    res.times["networkx"] = t_nearest + t_counts_all
    res.breakdown["networkx"] = {
        "nearest": t_nearest,
        "counts_extrapolated": t_counts_all,
        "counts_measured": t_counts,
        "counts_sample": float(sample.shape[0]),
    }
    res.checks.append(compare_nearest("networkx nearest", nx_nearest, lc.nearest, TOL_EXACT_M))
    res.checks.append(
        compare_counts(
            f"networkx counts ({sample.shape[0]} sampled origins)",
            nx_counts,
            lc.counts[:, sample],
            exact_edge[:, sample],
        )
    )
    print(f"  networkx {fmt_s(res.times['networkx'])} s (counts extrapolated)", flush=True)

    # pandana
    pd_answers, pd_report = run_pandana(graph, prep, args.origins, workdir)
    if pd_answers is None:
        res.notes["pandana"] = f"skipped: {pd_report.get('error')}"
        res.times["pandana"] = math.nan
        print(f"  pandana {res.notes['pandana']}", flush=True)
        return
    res.times["pandana"] = pd_report["setup"] + pd_report["nearest"] + pd_report["counts"]
    res.breakdown["pandana"] = {k: pd_report[k] for k in ("setup", "nearest", "counts")}
    res.memory_mb["pandana_process_peak"] = pd_report["peak_mb"]
    res.notes["pandana"] = (
        f"pandana {pd_report['version']}, OMP_NUM_THREADS={pd_report['omp_num_threads']}"
    )
    loose_edge = boundary_pairs(prep, args.origins, TOL_PANDANA_M)
    res.checks.append(
        compare_nearest_capped(
            "pandana nearest", pd_answers.nearest, lc.nearest, TOL_PANDANA_M, RADIUS_M
        )
    )
    res.checks.append(compare_counts("pandana counts", pd_answers.counts, lc.counts, loose_edge))
    print(f"  pandana {fmt_s(res.times['pandana'])} s", flush=True)


def bench_isochrones(
    res: SizeResult,
    net: WalkNetwork,
    city: City,
    args: argparse.Namespace,
    rng: np.random.Generator,
) -> None:
    """lifecircle isochrones against the OSMnx-example method, both scored against a reference."""
    n_iso = min(args.iso_origins, args.origins)
    iso_points = city.origins.iloc[:n_iso].reset_index(drop=True)
    # single thread (like the OSMnx method) for the ratio; the library default for reference
    (iso_engine, iso_frame), res.times["lifecircle_isochrones"], _ = best_of(
        1, lambda: lifecircle_isochrones(net, iso_points, n_jobs=1)
    )
    _, res.times["lifecircle_isochrones_default"], _ = best_of(
        1, lambda: lifecircle_isochrones(net, iso_points)
    )
    res.notes["isochrone_threads"] = isochrone_threads()
    iso_graph = iso_engine.graph
    iso_nodes = iso_engine.nodes("iso")
    iso_frame = iso_frame.to_crs(CRS)
    by_origin = {
        (int(row.community_id), int(row.minutes)): row.geometry
        for row in iso_frame.itertuples(index=False)
    }
    t0 = time.perf_counter()
    iso_nx = to_networkx(iso_graph, with_xy=True)
    res.times["osmnx_graph_build"] = time.perf_counter() - t0
    routed = np.flatnonzero(iso_nodes >= 0)
    size = min(args.iso_sample, routed.shape[0])
    picked = np.sort(rng.choice(routed, size=size, replace=False)).tolist()
    distances = [m * WALK_SPEED_M_PER_MIN for m in MINUTES]
    osmnx_polys: dict[int, list[BaseGeometry]] = {}
    t0 = time.perf_counter()
    for pos in picked:
        osmnx_polys[pos] = osmnx_example_isochrones(iso_nx, int(iso_nodes[pos]), distances)
    t_osmnx = time.perf_counter() - t0
    per_origin = t_osmnx / max(len(picked), 1)
    res.times["osmnx_isochrone"] = per_origin * n_iso
    res.breakdown["osmnx_isochrone"] = {
        "measured": t_osmnx,
        "sample": float(len(picked)),
        "per_origin": per_origin,
    }
    res.breakdown["lifecircle_isochrones"] = {
        "per_origin": res.times["lifecircle_isochrones"] / max(n_iso, 1),
        "per_origin_default_threads": res.times["lifecircle_isochrones_default"] / max(n_iso, 1),
        "origins": float(n_iso),
    }
    lc_iou, nb_iou = [], []
    has_leg = (iso_nodes >= 0) & (iso_engine.snaps("iso").access_m > 1e-6)
    legs = zip(np.flatnonzero(has_leg), iso_nodes[has_leg], strict=True)
    leg_nodes = {int(node): int(pos) for pos, node in legs}
    for pos in picked:
        foreign = frozenset(node for node, owner in leg_nodes.items() if owner != pos)
        reference = reference_isochrones(
            iso_nx, iso_graph.node_xy, int(iso_nodes[pos]), distances, foreign
        )
        for minute, ref_poly, nb_poly in zip(MINUTES, reference, osmnx_polys[pos], strict=True):
            lc_iou.append(iou(by_origin[(pos, minute)], ref_poly))
            nb_iou.append(iou(nb_poly, ref_poly))
    res.iou = {
        "lifecircle": {"min": float(np.min(lc_iou)), "mean": float(np.mean(lc_iou))},
        "osmnx_example": {"min": float(np.min(nb_iou)), "mean": float(np.mean(nb_iou))},
        "polygons": float(len(lc_iou)),
    }
    res.checks.append(
        Check(
            f"lifecircle isochrone IoU vs reference ({len(lc_iou)} polygons)",
            res.iou["lifecircle"]["min"] >= IOU_TARGET,
            f"min {res.iou['lifecircle']['min']:.4f}, mean {res.iou['lifecircle']['mean']:.4f} "
            f"(required >= {IOU_TARGET})",
        )
    )
    print(
        f"  isochrones: lifecircle {fmt_s(res.times['lifecircle_isochrones'])} s "
        f"(1 thread; {fmt_s(res.times['lifecircle_isochrones_default'])} s with the default), "
        f"OSMnx example {fmt_s(res.times['osmnx_isochrone'])} s (extrapolated)",
        flush=True,
    )


def print_size(res: SizeResult, args: argparse.Namespace) -> None:
    """The readable table of one size."""
    b = res.breakdown
    lc = b["lifecircle"]
    nxb = b["networkx"]
    rows: list[tuple[str, float, str]] = [
        (
            "lifecircle",
            res.times["lifecircle"],
            f"snap {lc['snap']:.3f} + graph {lc['graph']:.3f} + nearest {lc['nearest']:.3f} "
            f"+ counts {lc['counts']:.3f} (best of {args.repeat})",
        ),
        (
            "scipy_floor",
            res.times["scipy_floor"],
            f"nearest {b['scipy_floor']['nearest']:.3f} + counts {b['scipy_floor']['counts']:.3f}"
            f" (dijkstra calls only, best of {args.repeat})",
        ),
        (
            "networkx",
            res.times["networkx"],
            f"nearest {nxb['nearest']:.2f} (8 multi-source passes) + counts "
            f"{nxb['counts_extrapolated']:.1f} EXTRAPOLATED from {int(nxb['counts_sample'])} "
            f"origins ({nxb['counts_measured']:.2f} s measured); graph build "
            f"{res.times['networkx_graph_build']:.2f} s not counted",
        ),
    ]
    if "pandana" in b:
        p = b["pandana"]
        rows.append(
            (
                "pandana",
                res.times["pandana"],
                f"setup {p['setup']:.2f} (Network + precompute) + nearest_pois {p['nearest']:.2f}"
                f" + aggregate count {p['counts']:.2f}; {res.notes['pandana']}",
            )
        )
    else:
        rows.append(("pandana", math.nan, res.notes.get("pandana", "")))
    iso = b["osmnx_isochrone"]
    rows += [
        (
            "lifecircle_isochrones",
            res.times["lifecircle_isochrones"],
            f"{int(b['lifecircle_isochrones']['origins']):,} origins x {len(MINUTES)} thresholds"
            f" ({b['lifecircle_isochrones']['per_origin'] * 1000:.0f} ms/origin), 1 thread, "
            "snapping and graph included",
        ),
        (
            "  (library default)",
            res.times["lifecircle_isochrones_default"],
            f"{b['lifecircle_isochrones']['per_origin_default_threads'] * 1000:.0f} ms/origin "
            f"with {res.notes['isochrone_threads']}",
        ),
        (
            "osmnx_isochrone",
            res.times["osmnx_isochrone"],
            f"EXTRAPOLATED from {int(iso['sample'])} origins ({iso['measured']:.2f} s measured, "
            f"{iso['per_origin'] * 1000:.0f} ms/origin); graph build "
            f"{res.times['osmnx_graph_build']:.2f} s not counted",
        ),
    ]
    print(
        f"\n  size {res.n_requested:,}: network {res.n_nodes:,} nodes / {res.n_segments:,} "
        f"segments (built in {res.times['network_build']:.2f} s, not counted); routing graph "
        f"{res.n_graph_nodes:,} nodes; routed origins {res.notes['routed_origins']}"
    )
    print(f"  {'method':<22} {'time (s)':>10} {'x lifecircle':>13}  notes")
    for name, seconds, note in rows:
        iso_row = "isochrone" in name or name.strip().startswith("(")
        base = res.times["lifecircle_isochrones" if iso_row else "lifecircle"]
        ratio = seconds / base if base > 0 else math.nan
        ratio_s = f"{ratio:.2f}" if math.isfinite(ratio) else "n/a"
        print(f"  {name:<22} {fmt_s(seconds):>10} {ratio_s:>13}  {note}")
    print(
        f"  isochrone IoU vs exact reference: lifecircle min {res.iou['lifecircle']['min']:.4f} "
        f"mean {res.iou['lifecircle']['mean']:.4f}; OSMnx example min "
        f"{res.iou['osmnx_example']['min']:.4f} mean {res.iou['osmnx_example']['mean']:.4f}"
    )
    if res.memory_mb:
        marks = ", ".join(f"{k} {v:.0f}" for k, v in res.memory_mb.items())
        print(f"  memory (MB, peak RSS): {marks}")
    print(f"  checks (scipy/networkx tol {TOL_EXACT_M:g} m, pandana tol {TOL_PANDANA_M:g} m):")
    for check in res.checks:
        print(f"    [{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")


def growth_table(results: list[SizeResult]) -> list[dict[str, float]]:
    """Time per node and growth exponent between consecutive sizes."""
    rows = []
    print("\n=== growth (time per network node) ===")
    print(f"  {'nodes':>9} {'lifecircle us/node':>19} {'floor us/node':>14} {'exponent':>9}")
    previous: SizeResult | None = None
    for res in results:
        exponent = math.nan
        if previous is not None and res.n_nodes > previous.n_nodes:
            exponent = math.log(res.times["lifecircle"] / previous.times["lifecircle"]) / math.log(
                res.n_nodes / previous.n_nodes
            )
        per_node = res.times["lifecircle"] / res.n_nodes * 1e6
        floor_per_node = res.times["scipy_floor"] / res.n_nodes * 1e6
        exp_s = f"{exponent:.2f}" if math.isfinite(exponent) else "-"
        print(f"  {res.n_nodes:>9,} {per_node:>19.2f} {floor_per_node:>14.2f} {exp_s:>9}")
        rows.append(
            {
                "n_nodes": res.n_nodes,
                "lifecircle_us_per_node": per_node,
                "floor_us_per_node": floor_per_node,
                "exponent": exponent,
            }
        )
        previous = res
    return rows


def targets_table(results: list[SizeResult], growth: list[dict[str, float]]) -> dict[str, bool]:
    """Each target with its measured value, met or missed."""
    largest = results[-1]

    def per_size(values: Sequence[float], digits: int = 2) -> str:
        return ", ".join(
            f"{r.n_nodes:,}: {v:.{digits}f}" for r, v in zip(results, values, strict=True)
        )

    exponents = [g["exponent"] for g in growth if math.isfinite(g["exponent"])]
    floor_ratios = [r.ratio("scipy_floor") for r in results]
    lc_iou = [r.iou["lifecircle"]["min"] for r in results]
    peak = largest.memory_mb.get("peak", math.nan)
    rows = [
        (
            f"within 2x of the scipy floor at every size (floor/lifecircle >= "
            f"{TARGET_FLOOR_RATIO})",
            all(r >= TARGET_FLOOR_RATIO for r in floor_ratios),
            per_size(floor_ratios),
        ),
        (
            f">= {TARGET_NETWORKX:g}x faster than networkx",
            largest.ratio("networkx") >= TARGET_NETWORKX,
            per_size([r.ratio("networkx") for r in results], 1),
        ),
        (
            f">= {TARGET_PANDANA:g}x faster than pandana incl. setup",
            largest.ratio("pandana") >= TARGET_PANDANA,
            per_size([r.ratio("pandana") for r in results], 1),
        ),
        (
            f"near-linear growth (time exponent <= {TARGET_GROWTH_EXPONENT})",
            all(e <= TARGET_GROWTH_EXPONENT for e in exponents),
            ", ".join(f"{e:.2f}" for e in exponents) or "one size only",
        ),
        (
            f"peak memory < {TARGET_PEAK_MB:g} MB at the largest size",
            peak < TARGET_PEAK_MB,
            f"{peak:.0f} MB",
        ),
        (
            f"isochrones >= {TARGET_ISOCHRONE:g}x faster than the OSMnx example",
            largest.ratio("osmnx_isochrone") >= TARGET_ISOCHRONE,
            per_size([r.ratio("osmnx_isochrone") for r in results]),
        ),
        (
            f"isochrone IoU >= {IOU_TARGET} vs the reference at every size",
            all(v >= IOU_TARGET for v in lc_iou),
            "min " + per_size(lc_iou, 4),
        ),
    ]
    print("\n=== targets (RATIO and PEAK_MB lines below use the largest size) ===")
    for name, met, value in rows:
        state = "n/a" if "nan" in value else "met" if met else "MISSED"
        print(f"  [{state}] {name}: {value}")
    return {name: met for name, met, value in rows if "nan" not in value}


def write_json(
    results: list[SizeResult],
    growth: list[dict[str, float]],
    targets: dict[str, bool],
    args: argparse.Namespace,
    main_peak_mb: float,
    load: dict[str, list[float]],
) -> Path:
    """Save everything to benchmarks/results/bench_engine-<timestamp>.json."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"bench_engine-{stamp}.json"
    largest = results[-1]
    payload = {
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "arguments": vars(args),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "networkx": nx.__version__,
            "shapely": shapely.__version__,
            "geos": ".".join(map(str, shapely.geos_version)),
            "load_average": load,
        },
        "lifecircle_sources": source_digests(),
        "tolerances_m": {"exact": TOL_EXACT_M, "pandana": TOL_PANDANA_M},
        "sizes": [
            {
                "n_requested": r.n_requested,
                "n_nodes": r.n_nodes,
                "n_segments": r.n_segments,
                "n_graph_nodes": r.n_graph_nodes,
                "times_s": r.times,
                "breakdown_s": r.breakdown,
                "ratios": {
                    **{p: r.ratio(p) for p in PEERS},
                    "osmnx_isochrone_vs_default_threads": r.times["osmnx_isochrone"]
                    / r.times["lifecircle_isochrones_default"],
                },
                "iou": r.iou,
                "memory_mb": r.memory_mb,
                "notes": r.notes,
                "checks": [c.__dict__ for c in r.checks],
            }
            for r in results
        ],
        "growth": growth,
        "targets": targets,
        "ratios_largest": {p: largest.ratio(p) for p in PEERS},
        "peak_mb": largest.memory_mb.get("peak", math.nan),
        "benchmark_process_peak_mb": main_peak_mb,
    }
    path.write_text(json.dumps(clean_json(payload), indent=2))
    return path


def source_digests() -> dict[str, str]:
    """Short SHA-256 of each lifecircle module, to tie the numbers to the code measured."""
    package = Path(inspect.getfile(ReachEngine)).parent
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        for path in sorted(package.glob("*.py"))
    }


def clean_json(value: Any) -> Any:
    """JSON-safe copy: numpy scalars as numbers, paths as text, NaN and inf as null."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--quick`` shrinks everything to under a minute)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small size, under a minute")
    parser.add_argument("--sizes", help="comma-separated node counts (default 10000,40000,160000)")
    parser.add_argument("--origins", type=int, help="origin points (default 20000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, help="best-of runs for lifecircle and the floor")
    parser.add_argument("--iso-origins", type=int, help="isochrone origins (default 1000)")
    parser.add_argument("--nx-sample", type=int, help="origins timed for networkx counts")
    parser.add_argument("--iso-sample", type=int, help="origins for the OSMnx method and IoU")
    parser.add_argument("--profile", action="store_true", help="cProfile lifecircle at the end")
    parser.add_argument("--no-memory-probe", action="store_true", help="skip the memory child")
    parser.add_argument("--strict", action="store_true", help="also fail on missed targets")
    parser.add_argument("--worker", choices=("pandana", "memory"), help=argparse.SUPPRESS)
    parser.add_argument("--worker-in", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = {"sizes": "4900", "origins": 2000, "repeat": 3, "iso_origins": 100}
    quick |= {"nx_sample": 100, "iso_sample": 15}
    full = {"sizes": ",".join(map(str, DEFAULT_SIZES)), "origins": 20_000, "repeat": 5}
    full |= {"iso_origins": 1000, "nx_sample": 200, "iso_sample": 40}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.sizes = sorted(int(s) for s in str(args.sizes).split(",") if s.strip())
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; non-zero exit when any answer differs."""
    args = parse_args(argv)
    if args.worker == "pandana":
        return pandana_worker(args.worker_in, args.worker_out)
    if args.worker == "memory":
        return memory_worker(
            args.sizes[0], args.origins, args.seed, args.iso_origins, args.worker_out
        )

    print(
        f"lifecircle engine benchmark: sizes {args.sizes}, {args.origins:,} origins, "
        f"{N_TYPES} types x {PER_TYPE} facilities, radius {RADIUS_M:g} m, seed {args.seed}; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    load = {"start": list(os.getloadavg())}
    print(f"load average at start: {load['start'][0]:.2f} (other work on this machine skews times)")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_engine-") as tmp:
        results = [bench_size(size, args, Path(tmp)) for size in args.sizes]
    growth = growth_table(results)
    targets = targets_table(results, growth)
    main_peak = max_rss_mb()
    load["end"] = list(os.getloadavg())
    path = write_json(results, growth, targets, args, main_peak, load)
    failed = [c for r in results for c in r.checks if not c.ok]
    print(f"\nwall time {time.perf_counter() - started:.0f} s; results written to {path}")
    print(f"peak RSS of this benchmark process (all peers): {main_peak:.0f} MB")
    largest = results[-1]
    print(
        f"RATIO lines use the largest size ({largest.n_nodes:,} nodes); networkx counts and the "
        "OSMnx isochrones are extrapolated from subsamples; PEAK_MB is the lifecircle workload "
        "alone, measured in a fresh process"
    )
    default_iso = largest.times["osmnx_isochrone"] / largest.times["lifecircle_isochrones_default"]
    print(
        "the osmnx_isochrone ratio compares single-threaded runs; with lifecircle's "
        f"{largest.notes['isochrone_threads']} it is {default_iso:.3f}"
    )
    if not math.isfinite(largest.ratio("pandana")):
        print(f"pandana {largest.notes.get('pandana', 'skipped')}")
    for peer in PEERS:
        print(f"RATIO {peer}/lifecircle {largest.ratio(peer):.3f}")
    print(f"PEAK_MB {largest.memory_mb.get('peak', math.nan):.1f}")
    if failed:
        for check in failed:
            print(f"FAILED {check.name}: {check.detail}", file=sys.stderr)
        return 1
    if args.strict and not all(targets.values()):
        print("FAILED: targets missed (--strict)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
