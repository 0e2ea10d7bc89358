"""Isochrones: exact pieces, nesting, containment and barriers."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point

from lifecircle.engine import ReachEngine
from lifecircle.isochrones import (
    DEFAULT_HOLE_FILL_M2,
    covered_pieces,
    isochrone_polygon,
    isochrones,
)
from lifecircle.network import network_from_lines

from .conftest import METRIC_CRS, grid_lines


def _engine(lines, origins, max_snap_m=250.0):
    engine = ReachEngine(network_from_lines(lines, crs=METRIC_CRS), max_snap_m=max_snap_m)
    engine.add_layer("gates", gpd.GeoSeries([Point(p) for p in origins], crs=METRIC_CRS))
    return engine


def _metric(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return frame.to_crs(METRIC_CRS)


def test_straight_street_by_hand():
    engine = _engine(gpd.GeoSeries([LineString([(0, 0), (1000, 0)])], crs=METRIC_CRS), [(500, 0)])
    iso = _metric(isochrones(engine, "gates", ["c1"], minutes=[5], buffer_m=40, progress=False))
    assert iso["community_id"].tolist() == ["c1"]
    assert iso["minutes"].tolist() == [5]
    assert iso["distance_m"].tolist() == [300.0]
    minx, miny, maxx, maxy = iso.geometry.iloc[0].bounds
    # 300 m each way from x=500, plus the 40 m band
    assert (minx, maxx) == pytest.approx((160, 840), abs=0.1)
    assert (miny, maxy) == pytest.approx((-40, 40), abs=0.1)
    # a 600 m x 80 m band with round ends (16-gon approximation of the circle)
    assert iso.geometry.iloc[0].area == pytest.approx(
        600 * 80 + 8 * 40**2 * np.sin(np.pi / 8), rel=1e-6
    )
    assert iso["area_m2"].iloc[0] == pytest.approx(iso.geometry.iloc[0].area, rel=1e-3)


def test_partly_reached_edge_from_both_ends():
    # a 200 m street reached at both ends (distances set by hand), threshold 100 m
    engine = _engine(gpd.GeoSeries([LineString([(0, 0), (200, 0)])], crs=METRIC_CRS), [(0, 0)])
    graph = engine.graph
    dist = np.full(graph.n_nodes, np.inf)
    a = int(np.flatnonzero((graph.node_xy == [0, 0]).all(axis=1))[0])
    b = int(np.flatnonzero((graph.node_xy == [200, 0]).all(axis=1))[0])
    dist[a], dist[b] = 80.0, 60.0
    pieces = covered_pieces(graph, dist, 100.0)
    lengths = sorted(np.hypot(*(pieces[:, 1] - pieces[:, 0]).T).round(9).tolist())
    assert lengths == [20.0, 40.0]
    dist[a], dist[b] = 80.0, 10.0  # 20 m + 90 m < 200 m: still two pieces
    assert sorted(np.hypot(*(p[1] - p[0])) for p in covered_pieces(graph, dist, 100.0)) == [
        pytest.approx(20.0),
        pytest.approx(90.0),
    ]
    dist[a], dist[b] = 0.0, 0.0  # 100 m + 100 m: the whole edge
    full = covered_pieces(graph, dist, 100.0)
    assert len(full) == 1
    assert np.hypot(*(full[0, 1] - full[0, 0])) == pytest.approx(200.0)


def test_river_without_bridge_is_not_crossed():
    south = LineString([(0, 0), (2000, 0)])
    north = LineString([(0, 200), (2000, 200)])
    bridge = LineString([(2000, 0), (2000, 200)])
    engine = _engine(gpd.GeoSeries([south, north, bridge], crs=METRIC_CRS), [(100, 0)])
    iso = _metric(
        isochrones(engine, "gates", ["c"], minutes=[5, 10, 15], buffer_m=40, progress=False)
    )
    far_bank = shapely.box(0, 150, 1500, 250)
    for polygon in iso.geometry:
        assert polygon.intersection(far_bank).area == 0
    # the 15-minute walk (900 m) reaches x=1000 on its own bank only
    assert iso.geometry.iloc[-1].bounds[2] == pytest.approx(100 + 900 + 40, abs=0.1)


def test_group_of_gates_is_the_union_of_its_gates():
    lines = grid_lines(8, 8, spacing=100, jitter=10, seed=2)
    gates = [(110, 300), (520, 610)]
    engine = _engine(lines, gates)
    both = _metric(isochrones(engine, "gates", ["c", "c"], minutes=[5], progress=False))
    each = _metric(isochrones(engine, "gates", ["a", "b"], minutes=[5], progress=False))
    union = shapely.union_all(each.geometry.to_numpy())
    assert len(both) == 1
    assert both.geometry.iloc[0].symmetric_difference(union).area < 1.0


def test_unrouted_group_gives_an_empty_polygon():
    engine = _engine(gpd.GeoSeries([LineString([(0, 0), (100, 0)])], crs=METRIC_CRS), [(0, 900)])
    iso = isochrones(engine, "gates", ["far"], minutes=[5, 10], progress=False)
    assert iso.geometry.is_empty.all()
    assert iso["area_m2"].tolist() == [0.0, 0.0]


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 1000),
    origin=st.tuples(st.floats(0, 600), st.floats(0, 600)),
    buffer_m=st.floats(5, 60),
)
def test_nested_and_containing_every_reached_node(seed, origin, buffer_m):
    engine = _engine(grid_lines(7, 7, spacing=100, jitter=20, drop=0.25, seed=seed), [origin])
    if not engine.snaps("gates").ok[0]:
        return
    minutes = [2, 4, 7]
    iso = _metric(
        isochrones(
            engine,
            "gates",
            ["x"],
            minutes=minutes,
            walk_speed=60,
            buffer_m=buffer_m,
            progress=False,
        )
    )
    polys = iso.geometry.to_numpy()
    for inner, outer in itertools.pairwise(polys):
        assert inner.difference(outer).area < 1e-6
    dist = engine.distances_from("gates")
    nodes = engine.graph.node_xy
    for minute, polygon in zip(minutes, polys, strict=True):
        reached = nodes[dist <= minute * 60]
        inside = shapely.contains_xy(polygon.buffer(1e-6), reached[:, 0], reached[:, 1])
        assert inside.all()


def _plain_isochrone(pieces, buffer_m, hole_fill_m2):
    """The slow way, all GEOS: buffer every piece, union, drop holes under the limit."""
    union = shapely.union_all(shapely.buffer(shapely.linestrings(pieces), buffer_m, quad_segs=4))
    parts = [
        shapely.Polygon(
            part.exterior, [r for r in part.interiors if shapely.Polygon(r).area >= hole_fill_m2]
        )
        for part in shapely.get_parts(union)
    ]
    return shapely.union_all(parts)


def _hole_areas(polygon, limit):
    areas = [
        shapely.Polygon(ring).area for part in shapely.get_parts(polygon) for ring in part.interiors
    ]
    return sorted(a for a in areas if abs(a - limit) > 0.02 * limit)


def _iou(a, b):
    return a.intersection(b).area / a.union(b).area


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 1000),
    minutes=st.floats(2, 12),
    buffer_m=st.floats(8, 50),
    hole_fill_m2=st.floats(500, 30_000),
)
def test_block_filling_matches_the_plain_construction(seed, minutes, buffer_m, hole_fill_m2):
    # dropped streets merge blocks, so some are too big to fill and keep their hole
    engine = _engine(grid_lines(8, 8, spacing=90, jitter=20, drop=0.2, seed=seed), [(300, 300)])
    if not engine.snaps("gates").ok[0]:
        return
    iso = isochrones(
        engine,
        "gates",
        ["x"],
        minutes=[minutes],
        walk_speed=60,
        buffer_m=buffer_m,
        hole_fill_m2=hole_fill_m2,
        progress=False,
    )
    ours = _metric(iso).geometry.iloc[0]
    pieces = covered_pieces(engine.graph, engine.distances_from("gates"), minutes * 60)
    plain = _plain_isochrone(pieces, buffer_m, hole_fill_m2)
    # blocks are banded as polygons (one round join per corner) rather than as
    # the union of street stadiums, so corners differ within the arc approximation
    assert _iou(ours, plain) > 0.999
    assert len(shapely.get_parts(ours)) == len(shapely.get_parts(plain))
    # the same holes are filled and kept (leaving out any within 2 % of the limit)
    ours_holes, plain_holes = _hole_areas(ours, hole_fill_m2), _hole_areas(plain, hole_fill_m2)
    assert len(ours_holes) == len(plain_holes)
    np.testing.assert_allclose(ours_holes, plain_holes, rtol=0.02)
    # without blocks given in advance, the band of the pieces alone is the same
    alone = isochrone_polygon(pieces, buffer_m=buffer_m, hole_fill_m2=hole_fill_m2)
    assert _iou(alone, plain) > 0.99995


def test_big_blocks_keep_their_hole():
    # a 400 m square: its inside (320 m x 320 m once shrunk by 40 m) is over the limit
    ring = [(0, 0), (400, 0), (400, 400), (0, 400), (0, 0)]
    engine = _engine(gpd.GeoSeries([LineString(ring)], crs=METRIC_CRS), [(0, 0)])
    iso = _metric(isochrones(engine, "gates", ["x"], minutes=[30], buffer_m=40, progress=False))
    polygon = iso.geometry.iloc[0]
    assert len(polygon.interiors) == 1
    assert shapely.Polygon(polygon.interiors[0]).area == pytest.approx(320 * 320, rel=1e-6)
    filled = _metric(
        isochrones(
            engine,
            "gates",
            ["x"],
            minutes=[30],
            buffer_m=40,
            hole_fill_m2=320 * 320 + 1,
            progress=False,
        )
    ).geometry.iloc[0]
    assert len(filled.interiors) == 0
    assert filled.area == pytest.approx(480 * 480 - (4 - np.pi) * 40**2, rel=1e-3)


def test_streets_crossing_without_a_junction():
    # a footbridge loop crosses the square's south street without a shared node;
    # the result is still the plain band of the reached pieces
    square = LineString([(0, 0), (100, 0), (100, 100), (0, 100), (0, 0)])
    bridge = LineString([(0, 0), (0, -60), (50, -60), (50, 50), (100, 100)])
    engine = _engine(gpd.GeoSeries([square, bridge], crs=METRIC_CRS), [(0, 0)])
    for minutes, buffer_m in [(1.5, 10), (10, 10), (10, 20)]:
        iso = isochrones(
            engine, "gates", ["x"], minutes=[minutes], buffer_m=buffer_m, progress=False
        )
        pieces = covered_pieces(engine.graph, engine.distances_from("gates"), minutes * 60)
        plain = _plain_isochrone(pieces, buffer_m, DEFAULT_HOLE_FILL_M2)
        assert _iou(_metric(iso).geometry.iloc[0], plain) > 0.9999


def _study_like_engine(lines, gates, facilities):
    engine = ReachEngine(network_from_lines(lines, crs=METRIC_CRS))
    engine.add_layer("facilities", gpd.GeoSeries([Point(p) for p in facilities], crs=METRIC_CRS))
    engine.add_layer("gates", gpd.GeoSeries([Point(p) for p in gates], crs=METRIC_CRS))
    _ = engine.graph
    return engine


def test_isochrones_do_not_depend_on_other_layers():
    rng = np.random.default_rng(7)
    lines = grid_lines(9, 9, spacing=100, jitter=15, drop=0.15, seed=3)
    gates = rng.uniform(50, 750, (12, 2))
    group = np.repeat([f"c{i}" for i in range(6)], 2)
    # facilities 5 to 60 m off the streets, some on the same streets as the gates
    facilities = rng.uniform(0, 800, (80, 2))
    options = {"minutes": [3, 6, 9], "walk_speed": 60, "buffer_m": 30, "progress": False}
    base = isochrones(_study_like_engine(lines, gates, facilities), "gates", group, **options)
    for changed in (facilities[:20], np.concatenate([facilities, rng.uniform(0, 800, (300, 2))])):
        other = isochrones(_study_like_engine(lines, gates, changed), "gates", group, **options)
        assert other[["community_id", "minutes"]].equals(base[["community_id", "minutes"]])
        for ours, theirs in zip(base.geometry, other.geometry, strict=True):
            assert ours.equals_exact(theirs, 0.0), ours.symmetric_difference(theirs).area
    # and with no facility layer at all
    alone = ReachEngine(network_from_lines(lines, crs=METRIC_CRS))
    alone.add_layer("gates", gpd.GeoSeries([Point(p) for p in gates], crs=METRIC_CRS))
    bare = isochrones(alone, "gates", group, **options)
    assert all(a.equals_exact(b, 0.0) for a, b in zip(base.geometry, bare.geometry, strict=True))
    # threads share the work without changing a polygon or its order
    threaded = isochrones(alone, "gates", group, n_jobs=2, **options)
    assert threaded["community_id"].tolist() == bare["community_id"].tolist()
    assert all(
        a.equals_exact(b, 0.0) for a, b in zip(bare.geometry, threaded.geometry, strict=True)
    )


def test_only_the_origins_own_access_legs_are_banded():
    # one street; a facility 100 m off it beside the gate, the gate itself 30 m off
    street = gpd.GeoSeries([LineString([(0, 0), (1000, 0)])], crs=METRIC_CRS)
    engine = _study_like_engine(street, [(500, 30)], [(520, -100)])
    iso = _metric(isochrones(engine, "gates", ["c"], minutes=[5], buffer_m=10, progress=False))
    polygon = iso.geometry.iloc[0]
    # the gate's leg is banded, the facility's is not
    assert polygon.contains(Point(500, 30))
    assert not polygon.intersects(Point(520, -60))
    minx, miny, maxx, maxy = polygon.bounds
    # 270 m along the street each way after the 30 m leg, plus the band
    assert (minx, miny, maxx, maxy) == pytest.approx((220, -10, 780, 40), abs=1e-6)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 1000),
    xs=st.lists(st.floats(182, 268), min_size=2, max_size=4),
    side=st.lists(st.floats(-25, 25), min_size=4, max_size=4),
    minutes=st.floats(0.3, 8),
)
def test_gates_sharing_a_street_match_the_plain_construction(seed, xs, side, minutes):
    # several gates of one compound along the same street, walked from each
    lines = grid_lines(7, 7, spacing=90, drop=0.2, seed=seed)
    gates = [(x, 180 + dy) for x, dy in zip(xs, side, strict=False)]
    engine = _engine(lines, gates)
    if not engine.snaps("gates").ok.any():
        return
    iso = isochrones(
        engine,
        "gates",
        ["x"] * len(gates),
        minutes=[minutes],
        walk_speed=60,
        buffer_m=20,
        progress=False,
    )
    ours = _metric(iso).geometry.iloc[0]
    pieces = covered_pieces(engine.graph, engine.distances_from("gates"), minutes * 60)
    plain = _plain_isochrone(pieces, 20, DEFAULT_HOLE_FILL_M2)
    assert _iou(ours, plain) > 0.999
