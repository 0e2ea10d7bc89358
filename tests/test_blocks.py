"""Street blocks: faces of the street drawing, matched to routing-graph edges."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from shapely.geometry import LineString, Point

from lifecircle.blocks import StreetBlocks
from lifecircle.engine import ReachEngine
from lifecircle.network import network_from_lines

from .conftest import METRIC_CRS, grid_lines


def _graph(lines, points=((0, 0),)):
    engine = ReachEngine(network_from_lines(gpd.GeoSeries(lines, crs=METRIC_CRS), crs=METRIC_CRS))
    engine.add_layer("p", gpd.GeoSeries([Point(p) for p in points], crs=METRIC_CRS))
    return engine.graph


def _ring_list(blocks, ids):
    ids = np.asarray(ids, dtype=np.int64)
    if not len(ids):  # a grid so thinned that no block is left
        return []
    xy, starts = blocks.rings(ids)
    return np.split(xy, starts[1:])


def _all_blocks(graph, buffer_m=40.0, hole_fill_m2=20_000.0):
    edges = np.arange(graph.edge_u.shape[0])
    return StreetBlocks.from_graph(graph, edges, buffer_m=buffer_m, hole_fill_m2=hole_fill_m2)


def test_grid_blocks_and_their_edges():
    # 4 x 4 vertices, 100 m apart: 9 blocks of 4 streets each; a point splits one street
    graph = _graph(grid_lines(4, 4, spacing=100, jitter=0, seed=0), points=[(50, 0)])
    blocks = _all_blocks(graph)
    assert blocks.n_blocks == 9
    corner = [
        i for i, ring in enumerate(_ring_list(blocks, range(9))) if ring.min(axis=0).sum() == 0
    ]
    assert len(corner) == 1
    # the block at the split street has 5 edges, the others 4
    assert sorted(blocks.n_ring_edges.tolist()) == [4] * 8 + [5]
    assert blocks.n_ring_edges[corner[0]] == 5
    every_edge = np.arange(graph.edge_u.shape[0])
    filled, on_filled = blocks.enclosed(every_edge)
    assert filled.tolist() == list(range(9))
    # every street is along a block except the access leg of the point (none: it is on the street)
    assert on_filled.all()


def test_a_block_is_enclosed_only_when_every_edge_is_full():
    graph = _graph([LineString([(0, 0), (100, 0), (100, 100), (0, 100), (0, 0)])])
    blocks = _all_blocks(graph)
    assert blocks.n_blocks == 1
    edges = np.arange(graph.edge_u.shape[0])
    for missing in edges:
        filled, on_filled = blocks.enclosed(np.delete(edges, missing))
        assert filled.size == 0
        assert not on_filled.any()


@pytest.mark.parametrize(
    ("side", "buffer_m", "hole_fill_m2", "kept"),
    [
        (100, 40, 20_000, True),  # area under the limit
        (200, 40, 20_000, True),  # 40,000 m2, but 120 x 120 inside
        (200, 20, 20_000, False),  # 160 x 160 inside
        (300, 40, 20_000, False),  # 220 x 220 inside
        (300, 40, 220 * 220 + 1, True),
    ],
)
def test_only_blocks_whose_inside_is_small(side, buffer_m, hole_fill_m2, kept):
    ring = [(0, 0), (side, 0), (side, side), (0, side), (0, 0)]
    blocks = _all_blocks(_graph([LineString(ring)]), buffer_m, hole_fill_m2)
    assert blocks.n_blocks == int(kept)


def test_rings_that_cross_themselves_give_no_block():
    square = LineString([(0, 0), (100, 0), (100, 100), (0, 100), (0, 0)])
    bridge = LineString([(0, 0), (0, -60), (50, -60), (50, 50), (100, 100)])
    assert _all_blocks(_graph([square, bridge])).n_blocks == 0
    # with a junction where they cross, the drawing is planar: three blocks
    noded = shapely.get_parts(shapely.node(shapely.MultiLineString([square, bridge])))
    blocks = _all_blocks(_graph(list(noded)))
    assert blocks.n_blocks == 3
    areas = sorted(round(shapely.Polygon(r).area, 6) for r in _ring_list(blocks, range(3)))
    assert areas == [3000.0, 3750.0, 6250.0]  # below the square; its two parts


def test_only_the_given_edges_count():
    graph = _graph(grid_lines(3, 3, spacing=100, jitter=0, seed=0))
    xy = graph.node_xy
    west = np.flatnonzero((xy[graph.edge_u][:, 0] < 150) & (xy[graph.edge_v][:, 0] < 150))
    blocks = StreetBlocks.from_graph(graph, west, buffer_m=40, hole_fill_m2=20_000)
    assert blocks.n_blocks == 2
    assert all(ring[:, 0].max() == pytest.approx(100) for ring in _ring_list(blocks, range(2)))


def _walked_area(face, graph):
    """The area a walk around a polygonize face encloses.

    A hole the streets reach (a loop hanging off the block by a dead end) is
    walked around, so it is left out; a hole they do not reach (a separate
    piece of network) is not walked, so the block keeps it.
    """
    n_nodes = graph.node_xy.shape[0]
    _, component = connected_components(
        sparse.csr_matrix(
            (np.ones(graph.edge_u.shape[0]), (graph.edge_u, graph.edge_v)), shape=(n_nodes,) * 2
        ),
        directed=False,
    )
    node_of = {tuple(xy): k for k, xy in enumerate(graph.node_xy.tolist())}

    def component_of(ring):
        return component[node_of[tuple(shapely.get_coordinates(ring)[0].tolist())]]

    outer = component_of(face.exterior)
    area = shapely.Polygon(face.exterior).area
    for hole in face.interiors:
        if component_of(hole) == outer:
            area -= shapely.Polygon(hole).area
    return area


def _shoelace(ring):
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), drop=st.floats(0, 0.45))
@example(seed=2020, drop=0.3125)  # a loop hanging inside a block by a dead end
def test_traced_blocks_are_the_faces_polygonize_finds(seed, drop):
    # dropped streets leave dead ends inside blocks and blocks merged together
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 640, (12, 2))
    lines = grid_lines(9, 9, spacing=80, jitter=25, drop=drop, seed=seed)
    # a point snaps to the main network even past a nearer island, and that leg
    # may cross the island's streets (a crossing polygonize does not see): keep
    # the points whose leg goes to the nearest street of all
    net = network_from_lines(lines, crs=METRIC_CRS)
    nearest_any = net.nearest_segments(points, np.inf)[1]
    nearest_main = net.nearest_segments(points, np.inf, main_only=True)[1]
    graph = _graph(lines, points[nearest_main == nearest_any])
    blocks = _all_blocks(graph, hole_fill_m2=1e12)
    ours = [_shoelace(ring) for ring in _ring_list(blocks, range(blocks.n_blocks))]
    assert all(area > 0 for area in ours)  # counter-clockwise
    segments = shapely.linestrings(
        np.stack([graph.node_xy[graph.edge_u], graph.node_xy[graph.edge_v]], axis=1)
    )
    faces = shapely.get_parts(shapely.polygonize(segments))
    theirs = [_walked_area(face, graph) for face in faces]
    np.testing.assert_allclose(sorted(ours), sorted(theirs), rtol=1e-9)
    # each block's edges run along its ring: their lengths add up to the walk
    lengths = np.hypot(*(graph.node_xy[graph.edge_v] - graph.node_xy[graph.edge_u]).T)
    edge_ids = np.repeat(np.arange(graph.edge_u.shape[0]), np.diff(blocks.edge_indptr))
    for block, ring in enumerate(_ring_list(blocks, range(blocks.n_blocks))):
        walk = np.hypot(*(np.roll(ring, -1, axis=0) - ring).T).sum()
        edges_of_block = edge_ids[blocks.edge_blocks == block]
        assert lengths[edges_of_block].sum() == pytest.approx(walk, rel=1e-9)
        assert len(edges_of_block) == blocks.n_ring_edges[block]
