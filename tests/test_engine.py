"""The reach engine against independent computations (networkx, shapely, by hand)."""

from __future__ import annotations

from unittest import mock

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon

from lifecircle.engine import ReachEngine, build_routing_graph, snap_points
from lifecircle.errors import InputError
from lifecircle.network import network_from_lines

from .conftest import METRIC_CRS, grid_lines


def _points(xy) -> gpd.GeoSeries:
    return gpd.GeoSeries([Point(x, y) for x, y in xy], crs=METRIC_CRS)


def _net(lines):
    return network_from_lines(lines, crs=METRIC_CRS)


def _independent_distance(net, graph_nx, p: Point, q: Point) -> float:
    """Shortest walk between two points, computed without the engine.

    Snap by brute force with shapely (nearest main-network segment,
    ``project``), then combine networkx node distances with the partial edges
    at both ends.
    """
    segs = net.segment_geometries
    main = net.node_in_main[net.seg_u]

    def attach(pt):
        d = np.where(main, shapely.distance(segs, pt), np.inf)
        s = int(np.argmin(d))
        offset = segs[s].project(pt)
        return s, offset, float(d[s])

    sp, op, lp = attach(p)
    sq, oq, lq = attach(q)
    ends_p = [(net.seg_u[sp], op), (net.seg_v[sp], net.seg_len[sp] - op)]
    ends_q = [(net.seg_u[sq], oq), (net.seg_v[sq], net.seg_len[sq] - oq)]
    best = abs(op - oq) if sp == sq else np.inf
    for a, ca in ends_p:
        lengths = nx.single_source_dijkstra_path_length(graph_nx, int(a), weight="length")
        for b, cb in ends_q:
            if int(b) in lengths:
                best = min(best, ca + lengths[int(b)] + cb)
    return lp + lq + best


def test_node_to_node_distances_match_networkx():
    net = _net(grid_lines(9, 7, spacing=80, jitter=15, drop=0.15, seed=11))
    graph_nx = net.to_networkx()
    engine = ReachEngine(net)
    sources = [0, 17, net.n_nodes - 1]
    engine.add_layer("at_nodes", _points(net.node_xy[sources]))
    for k, node in enumerate(sources):
        ours = engine.distances_from("at_nodes", np.array([k]))[: net.n_nodes]
        truth = nx.single_source_dijkstra_path_length(graph_nx, node, weight="length")
        expected = np.array([truth.get(i, np.inf) for i in range(net.n_nodes)])
        finite = np.isfinite(expected)
        assert np.array_equal(finite, np.isfinite(ours))
        np.testing.assert_allclose(ours[finite], expected[finite], atol=1e-6, rtol=0)


def test_partial_edges_on_a_square_by_hand():
    square = [
        LineString([(0, 0), (100, 0)]),
        LineString([(100, 0), (100, 100)]),
        LineString([(100, 100), (0, 100)]),
        LineString([(0, 100), (0, 0)]),
    ]
    engine = ReachEngine(_net(gpd.GeoSeries(square, crs=METRIC_CRS)))
    engine.add_layer("home", _points([(10, -4)]))
    engine.add_layer("shops", _points([(90, 3), (10, 100), (55, 106), (10, 0)]))
    dist = engine.nearest("home", "shops")
    # same edge: 80 along plus both legs; around the left side: 10 + 100 + 10
    np.testing.assert_allclose(dist, [4 + 80 + 3, 4 + 120, 4 + 10 + 100 + 55 + 6, 4], atol=1e-9)


def test_points_on_the_same_segment_share_and_split_correctly():
    engine = ReachEngine(_net(gpd.GeoSeries([LineString([(0, 0), (300, 0)])], crs=METRIC_CRS)))
    engine.add_layer("a", _points([(100, 0), (100, 0), (200, 5)]))
    engine.add_layer("b", _points([(100, 0), (250, -5), (0, 0), (300, 0)]))
    graph = engine.graph
    # two identical points share one split node; points at the ends use the end nodes
    assert graph.n_nodes == 2 + 3 + 2  # base, split at 100/200/250, two legs
    np.testing.assert_allclose(
        engine.nearest("a", "b", source_index=np.array([2])), [105, 60, 205, 105]
    )
    np.testing.assert_allclose(engine.nearest("a", "b"), [0, 60, 100, 105])
    # no zero-length edges reach scipy
    assert (graph.edge_len > 0).all()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    coords=st.lists(st.tuples(st.floats(-30, 430), st.floats(-30, 330)), min_size=2, max_size=8),
)
def test_point_to_point_matches_independent_computation(seed, coords):
    net = _net(grid_lines(5, 4, spacing=100, jitter=20, drop=0.2, seed=seed))
    engine = ReachEngine(net, max_snap_m=1e6)
    points = _points(coords)
    snaps = engine.add_layer("pts", points)
    if not snaps.ok[0]:
        return
    ours = engine.nearest("pts", "pts", source_index=np.array([0]))
    graph_nx = net.to_networkx()
    assert ours[0] == 0.0
    for i, q in enumerate(points):
        if i == 0:
            continue
        expected = (
            _independent_distance(net, graph_nx, points.iloc[0], q) if snaps.ok[i] else np.inf
        )
        if np.isfinite(expected):
            assert ours[i] == pytest.approx(expected, abs=1e-6)
        else:
            assert not np.isfinite(ours[i])


def test_snap_limit_islands_and_bad_geometries():
    lines = gpd.GeoSeries(
        [
            LineString([(0, 0), (1000, 0)]),
            LineString([(0, 500), (50, 500)]),  # a short island
        ],
        crs=METRIC_CRS,
    )
    net = _net(lines)
    points = gpd.GeoSeries(
        [
            Point(500, 100),  # 100 m off the street: ok
            Point(500, 240),  # 240 m from the street, just within the limit
            Point(20, 490),  # beside the island
            Point(500, -300),  # beyond the 250 m limit
            None,
            Polygon([(600, 10), (700, 10), (700, 60), (600, 60)]),  # stands for an inside point
        ],
        crs=METRIC_CRS,
    )
    snaps = snap_points(net, points)
    assert snaps.status.tolist() == ["ok", "ok", "island", "too_far", "no_geometry", "ok"]
    assert snaps.access_m[0] == pytest.approx(100)
    assert snaps.access_m[2] == pytest.approx(10)
    engine = ReachEngine(net)
    engine.add_layer("pts", points)
    engine.add_layer("origin", _points([(0, 0)]))
    dist = engine.nearest("origin", "pts")
    assert dist[0] == pytest.approx(600)
    assert np.isinf(dist[2:5]).all()
    assert np.isfinite(dist[5])


def test_group_minimum_over_gates():
    net = _net(grid_lines(6, 6, spacing=100))
    engine = ReachEngine(net)
    engine.add_layer("shop", _points([(0, 0)]))
    gates = _points([(500, 500), (100, 0), (300, 300), (0, 200), (400, 0)])
    engine.add_layer("gates", gates)
    groups = np.array([0, 0, 1, 1, -1])
    assert engine.nearest("shop", "gates", groups=groups, n_groups=3).tolist() == [
        100.0,
        200.0,
        np.inf,
    ]


def test_within_and_counts_match_brute_force():
    net = _net(grid_lines(8, 8, spacing=90, jitter=12, drop=0.1, seed=5))
    rng = np.random.default_rng(1)
    engine = ReachEngine(net)
    facilities = _points(rng.uniform(0, 630, (25, 2)))
    homes = _points(rng.uniform(0, 630, (40, 2)))
    engine.add_layer("fac", facilities)
    engine.add_layer("homes", homes)
    radius = 250.0
    pairs = engine.within("fac", "homes", radius)
    full = np.stack([engine.nearest("fac", "homes", source_index=np.array([f])) for f in range(25)])
    expected = {(t, f) for f, t in zip(*np.nonzero(full <= radius), strict=True)}
    assert set(zip(pairs["target"], pairs["source"], strict=True)) == expected
    np.testing.assert_allclose(
        pairs["distance_m"], full[pairs["source"], pairs["target"]], atol=1e-9
    )
    counts = engine.count_within("fac", "homes", radius)
    assert counts.tolist() == (full <= radius).sum(axis=0).tolist()
    # grouped: a facility counts once per group when any member reaches it
    groups = np.arange(40) // 4
    grouped = engine.count_within("fac", "homes", radius, groups=groups, n_groups=10)
    by_group = np.stack([(full[:, groups == g] <= radius).any(axis=1) for g in range(10)])
    assert grouped.tolist() == by_group.sum(axis=1).tolist()


def test_routing_graph_keeps_base_distances():
    net = _net(grid_lines(4, 4, spacing=100))
    snaps = snap_points(net, _points([(50, 0), (50, 0), (120, 40)]))
    graph = build_routing_graph(net, snaps)
    # two split nodes (at (50, 0) and (100, 40)); one point node, for the only access leg
    assert graph.n_nodes == net.n_nodes + 2 + 1
    assert graph.edge_len.sum() == pytest.approx(net.total_length_m + 20)
    assert graph.point_node[0] == graph.point_node[1]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_nearest_segment_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    # short and very long segments, so that the radius fallback is exercised
    starts = rng.uniform(0, 3000, (40, 2))
    ends = starts + rng.normal(0, rng.choice([20, 1500], 40)[:, None], (40, 2))
    lines = gpd.GeoSeries(shapely.linestrings(np.stack([starts, ends], axis=1)), crs=METRIC_CRS)
    net = _net(lines)
    xy = rng.uniform(-500, 3500, (300, 2))
    segment, distance = net.nearest_segments(xy, max_distance=400.0)
    brute = shapely.distance(net.segment_geometries[None, :], shapely.points(xy)[:, None])
    best = brute.min(axis=1)
    within = best <= 400.0
    np.testing.assert_array_equal(segment >= 0, within)
    np.testing.assert_allclose(distance[within], best[within], atol=1e-9)
    chosen = brute[np.flatnonzero(within), segment[within]]
    np.testing.assert_allclose(chosen, best[within], atol=1e-9)


def _street_with_islands():
    lines = gpd.GeoSeries(
        [
            LineString([(0, 0), (1000, 0)]),  # the main street
            LineString([(400, 95), (460, 95)]),  # a small island 95 m north of it
            LineString([(0, 600), (40, 600)]),  # an island far from the main street
        ],
        crs=METRIC_CRS,
    )
    return _net(lines)


def test_points_beside_islands_snap_to_the_main_network():
    net = _street_with_islands()
    points = _points(
        [
            (430, 100),  # 5 m from the island, 100 m from the main street: main
            (430, 300),  # 205 m from the island, 300 m from the main street: island
            (20, 590),  # beside the far island, 590 m from the main street
            (2000, 2000),  # far from everything
        ]
    )
    snaps = snap_points(net, points)
    assert snaps.status.tolist() == ["ok", "island", "island", "too_far"]
    assert net.node_in_main[net.seg_u[snaps.segment[0]]]
    assert snaps.access_m[0] == pytest.approx(100)
    assert snaps.access_m[1] == pytest.approx(205)
    far = np.hypot(1000, 2000)
    np.testing.assert_allclose(snaps.main_m, [100, 300, 590, far])
    engine = ReachEngine(net)
    engine.add_layer("pts", points)
    engine.add_layer("origin", _points([(0, 0)]))
    assert engine.nearest("origin", "pts")[0] == pytest.approx(430 + 100)
    summary = engine.snap_summary("pts")
    assert summary["by_status"] == {"ok": 1, "island": 2, "too_far": 1, "no_geometry": 0}
    assert summary["n_unrouted"] == 3
    assert summary["max_snap_m"] == 250.0
    assert summary["unrouted_main_m"] == {"min": 300.0, "median": 590.0, "max": round(far, 1)}
    frame = snaps.to_frame()
    assert frame["main_network_m"].tolist() == [100.0, 300.0, 590.0, round(far, 2)]


def test_a_layer_with_every_point_routed_has_no_unrouted_distances():
    snaps = snap_points(_street_with_islands(), _points([(10, 10), (900, -200)]))
    summary = snaps.summary()
    assert summary["by_status"]["ok"] == 2
    assert summary["unrouted_main_m"] is None
    assert "max_snap_m" not in summary


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_snapping_prefers_the_main_network_like_brute_force(seed):
    rng = np.random.default_rng(seed)
    # a sparse grid leaves many small disconnected pieces
    net = _net(grid_lines(9, 9, spacing=120, jitter=20, drop=0.45, seed=seed))
    xy = rng.uniform(-300, 1260, (250, 2))
    max_snap = 150.0
    snaps = snap_points(net, _points(xy), max_snap_m=max_snap)
    brute = shapely.distance(net.segment_geometries[None, :], shapely.points(xy)[:, None])
    main = net.node_in_main[net.seg_u]
    best_main = brute[:, main].min(axis=1)
    best_any = brute.min(axis=1)
    expected = np.where(
        best_main <= max_snap, "ok", np.where(best_any <= max_snap, "island", "too_far")
    )
    assert snaps.status.tolist() == expected.tolist()
    np.testing.assert_allclose(snaps.main_m, best_main, atol=1e-9)
    attached = snaps.segment >= 0
    chosen = brute[np.flatnonzero(attached), snaps.segment[attached]]
    wanted = np.where(expected == "ok", best_main, best_any)[attached]
    np.testing.assert_allclose(chosen, wanted, atol=1e-9)
    np.testing.assert_allclose(snaps.access_m[attached], wanted, atol=1e-6)
    ok = expected == "ok"
    assert main[snaps.segment[ok]].all()


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    radius=st.one_of(st.floats(20, 900), st.just(np.inf)),
    grouped=st.booleans(),
)
@example(seed=1004, radius=np.inf, grouped=False)  # one facility is unrouted
def test_counts_on_local_subgraphs_match_whole_graph_dijkstra(seed, radius, grouped):
    from scipy.sparse.csgraph import dijkstra

    rng = np.random.default_rng(seed)
    net = _net(grid_lines(12, 10, spacing=80, jitter=15, drop=0.2, seed=seed))
    engine = ReachEngine(net)
    engine.add_layer("fac", _points(rng.uniform(-50, 950, (60, 2))))
    engine.add_layer("homes", _points(rng.uniform(-50, 950, (90, 2))))
    engine.add_layer("cells", _points(rng.uniform(0, 900, (200, 2))))
    pick = np.flatnonzero(rng.uniform(size=60) < 0.7)
    graph = engine.graph
    # brute force: one unbounded Dijkstra per source over the whole graph
    src = engine.nodes("fac")[pick]
    dst = engine.nodes("homes")
    full = np.full((pick.size, 90), np.inf)
    ok_src, ok_dst = src >= 0, dst >= 0
    if ok_src.any():
        whole = dijkstra(graph.csr, directed=True, indices=src[ok_src])
        full[np.ix_(ok_src, ok_dst)] = whole[:, dst[ok_dst]]
    # an unrouted facility (inf) is within no radius, not even an unbounded one
    inside = np.isfinite(full) & (full <= radius)
    groups = rng.integers(-1, 25, 90) if grouped else None
    if grouped:
        expected = [int(inside[:, groups == g].any(axis=1).sum()) for g in range(25)]
    else:
        expected = inside.sum(axis=0).tolist()
    # a tiny memory bound sends this small graph through the tiled, local searches too
    for bound in (20_000_000, 500):
        with mock.patch("lifecircle.engine._MAX_BLOCK_FLOATS", bound):
            counts = engine.count_within(
                "fac",
                "homes",
                radius,
                source_index=pick,
                groups=groups,
                n_groups=25 if grouped else None,
            )
            pairs = engine.within("fac", "homes", radius, source_index=pick)
        assert counts.tolist() == expected
        rows = np.searchsorted(pick, pairs["source"].to_numpy())
        assert len(pairs) == int(inside.sum())
        np.testing.assert_array_equal(pairs["distance_m"], full[rows, pairs["target"]])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), limit=st.sampled_from([250.0, 900.0]))
@example(seed=7, limit=250.0)
def test_points_read_off_the_graph_equal_inserting_them(seed, limit):
    # a layer queried without being inserted (gap cells) gets the distances that
    # inserting it and running Dijkstra again gives: on streets, at the
    # facilities' own places, at street ends, beside them, on islands, too far
    rng = np.random.default_rng(seed)
    net = _net(grid_lines(10, 8, spacing=80, jitter=15, drop=0.2, seed=seed))
    engine = ReachEngine(net, max_snap_m=limit)
    facilities = rng.uniform(-50, 800, (40, 2))
    engine.add_layer("fac", _points(facilities))
    engine.add_layer("homes", _points(rng.uniform(-50, 800, (30, 2))))
    fac_snaps = engine.snaps("fac")
    on_street = fac_snaps.snap_xy[fac_snaps.ok]
    ends = net.node_xy[rng.integers(0, net.n_nodes, 10)]
    along = shapely.line_interpolate_point(
        net.segment_geometries[rng.integers(0, net.n_segments, 20)],
        rng.uniform(0, 1, 20),
        normalized=True,
    )
    query = np.concatenate(
        [
            rng.uniform(-300, 1100, (120, 2)),  # anywhere, some beyond the snap limit
            facilities[:10],  # where facilities are
            on_street[:10],  # on the street at a facility's own split node
            ends,  # on street corners and dead ends
            shapely.get_coordinates(along),  # on the streets themselves (no leg)
            shapely.get_coordinates(along) + rng.normal(0, 3, (20, 2)),  # just beside them
        ]
    )
    pick = np.flatnonzero(rng.uniform(size=40) < 0.6)
    graph = engine.graph
    engine.add_layer("read_off", _points(query), insert=False)
    assert engine.graph is graph  # the graph stays as it is
    read_off = engine.nearest("fac", "read_off", source_index=pick)
    engine.add_layer("query", _points(query))
    inserted = engine.nearest("fac", "query", source_index=pick)
    # the layer read off is still answered on the new graph, and the same
    again = engine.nearest("fac", "read_off", source_index=pick)
    np.testing.assert_allclose(again, read_off, rtol=0, atol=1e-9)
    with pytest.raises(InputError, match="not in the routing graph"):
        engine.count_within("fac", "read_off", 100.0)
    np.testing.assert_array_equal(np.isfinite(read_off), np.isfinite(inserted))
    finite = np.isfinite(inserted)
    np.testing.assert_allclose(read_off[finite], inserted[finite], rtol=0, atol=1e-9)
    assert finite.sum() > 100
