"""Tests of the synthetic demo study area (lifecircle.datasets)."""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point

from lifecircle.coords import gcj02_to_wgs84
from lifecircle.datasets import DEMO_FILES, README_NAME, DemoData, demo_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from demo_generator import generate_demo

REPO_DEMO_DIR = Path(__file__).resolve().parents[1] / "data" / "demo"

METRIC = "EPSG:32651"
AMAP_COLUMNS = ["id", "name", "type", "typecode", "address", "location", "pname", "cityname",
                "adname", "tel"]  # fmt: skip
STREET_ADDRESS = re.compile(r"^(示例.*?(?:大道|路|街|巷|里|弄))\d+号$")


def _code(code: str) -> Callable[[pd.Series], bool]:
    return lambda row: row["typecode"] == code


def _name(*words: str) -> Callable[[pd.Series], bool]:
    return lambda row: any(w in row["name"] for w in words)


# Simple recognisers, one per facility type (the real taxonomy lives elsewhere).
FACILITY_CHECKS: dict[str, Callable[[pd.Series], bool]] = {
    "kindergarten": _code("141204"),
    "nursery": _name("托育"),
    "primary_school": _code("141203"),
    "middle_school": _code("141202"),
    "health_station": _name("社区卫生服务站"),
    "health_centre": _name("社区卫生服务中心"),
    "clinic": lambda r: r["typecode"] == "090300" and "社区卫生服务站" not in r["name"],
    "hospital": _code("090100"),
    "pharmacy": _code("090601"),
    "fresh_market": _code("060703"),
    "supermarket": _code("060400"),
    "convenience_store": _code("060200"),
    "parcel_point": _name("菜鸟驿站", "快递驿站"),
    "bus_stop": _code("150700"),
    "metro_station": _code("150500"),
    "park": _code("110101"),
    "sports": _code("080100"),
    "fitness": _name("健身广场"),
    "culture_centre": _code("140800"),
    "culture_station": _name("文化活动站"),
    "library": _code("140500"),
    "elderly_daycare": _name("日间照料中心"),
    "nursing_home": _name("养老院"),
    "community_canteen": _name("长者食堂", "社区食堂"),
    "community_service": _name("社区服务中心", "居民委员会"),
    "public_toilet": _code("200300"),
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoData:
    return generate_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def streets(demo: DemoData) -> gpd.GeoDataFrame:
    return gpd.read_file(demo.streets).to_crs(METRIC)


@pytest.fixture(scope="module")
def river(demo: DemoData) -> shapely.Geometry:
    return gpd.read_file(demo.river).to_crs(METRIC).union_all()


@pytest.fixture(scope="module")
def boundary(demo: DemoData) -> shapely.Geometry:
    return gpd.read_file(demo.boundary).to_crs(METRIC).union_all()


@pytest.fixture(scope="module")
def compounds(demo: DemoData) -> gpd.GeoDataFrame:
    return gpd.read_file(demo.compounds).to_crs(METRIC)


@pytest.fixture(scope="module")
def gates(demo: DemoData) -> gpd.GeoDataFrame:
    table = pd.read_csv(demo.gates, dtype={"gate_id": str, "community_id": str})
    points = gpd.points_from_xy(table["lng"], table["lat"], crs="EPSG:4326")
    return gpd.GeoDataFrame(table, geometry=points).to_crs(METRIC)


@pytest.fixture(scope="module")
def pois(demo: DemoData) -> pd.DataFrame:
    return pd.read_csv(demo.pois, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _poi_points(pois: pd.DataFrame, correct: bool) -> gpd.GeoSeries:
    lon_lat = pois["location"].str.split(",", expand=True).astype(float)
    lon, lat = lon_lat[0].to_numpy(), lon_lat[1].to_numpy()
    if correct:
        lon, lat = gcj02_to_wgs84(lon, lat)
    return gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(METRIC)


def _north_part(boundary: shapely.Geometry, river: shapely.Geometry) -> shapely.Geometry:
    parts = list(boundary.difference(river).geoms)
    return max(parts, key=lambda p: p.centroid.y)


# --- determinism and the committed files ---------------------------------------


def test_generating_twice_gives_identical_bytes(demo: DemoData, tmp_path: Path) -> None:
    generate_demo(tmp_path)
    for name in [*DEMO_FILES.values(), README_NAME]:
        first = (demo.streets.parent / name).read_bytes()
        assert first == (tmp_path / name).read_bytes(), name


def test_committed_demo_files_equal_generator_output(demo: DemoData) -> None:
    committed = REPO_DEMO_DIR
    assert committed.is_dir(), "data/demo is missing: run scripts/make_demo_data.py"
    for name in [*DEMO_FILES.values(), README_NAME]:
        assert (committed / name).read_bytes() == (demo.streets.parent / name).read_bytes(), (
            f"data/demo/{name} is stale: run scripts/make_demo_data.py"
        )


def test_writes_are_atomic_and_leave_no_temporary_files(demo: DemoData) -> None:
    names = sorted(p.name for p in demo.streets.parent.iterdir())
    assert names == sorted([*DEMO_FILES.values(), README_NAME])


def test_total_size_is_small(demo: DemoData) -> None:
    size = sum(p.stat().st_size for p in demo.streets.parent.iterdir())
    assert size < 1.5e6


def test_demo_data_reads_the_installed_package_files() -> None:
    demo = demo_data()
    # the wheel ships data/demo as the package lifecircle.demo; nothing is generated
    assert demo.streets.name == "synthetic_streets.geojson"
    assert demo.streets.read_bytes() == (REPO_DEMO_DIR / "synthetic_streets.geojson").read_bytes()
    assert demo.crs_pois == "gcj02"
    assert "synthetic" in demo.description.lower()


def test_the_installed_library_holds_no_demo_generator() -> None:
    import lifecircle

    package = Path(lifecircle.__file__).parent
    sources = "".join(p.read_text(encoding="utf-8") for p in package.glob("*.py"))
    assert "def build_demo_files" not in sources
    # the demo is read in place: no cache folder, no home directory
    demo_module = (package / "datasets.py").read_text(encoding="utf-8")
    assert "cache" not in demo_module.lower()
    assert "home()" not in demo_module


# --- the area -----------------------------------------------------------------


def test_everything_is_marked_synthetic(demo: DemoData, compounds: gpd.GeoDataFrame) -> None:
    for key, name in DEMO_FILES.items():
        assert name.startswith("synthetic_"), key
        if name.endswith(".geojson"):
            head = json.loads(getattr(demo, key).read_text(encoding="utf-8"))
            assert head["synthetic"] is True
            assert head["license"] == "CC0-1.0"
    readme = (demo.streets.parent / README_NAME).read_text(encoding="utf-8")
    assert "not a real place" in readme
    assert "CC0" in readme
    assert "scripts/make_demo_data.py" in readme
    assert compounds["name"].str.startswith("示例·").all()


def test_boundary_area_is_about_three_and_a_half_square_km(boundary: shapely.Geometry) -> None:
    assert 3.0e6 < boundary.area < 4.0e6
    centre = gpd.GeoSeries([boundary.centroid], crs=METRIC).to_crs("EPSG:4326").iloc[0]
    assert abs(centre.x - 120.66) < 0.01
    assert abs(centre.y - 28.01) < 0.01


def test_street_attributes(streets: gpd.GeoDataFrame) -> None:
    assert {"way_id", "highway", "name", "bridge"} <= set(streets.columns)
    assert streets["way_id"].is_unique
    assert (streets.geom_type == "LineString").all()
    highways = set(streets["highway"])
    assert {"primary", "secondary", "residential", "footway", "living_street", "service"} <= (
        highways
    )
    named = streets["name"].dropna()
    assert named.str.startswith("示例").all()


def test_river_is_crossed_only_by_bridges(
    streets: gpd.GeoDataFrame, river: shapely.Geometry
) -> None:
    is_bridge = streets["bridge"].fillna("") == "yes"
    crossing = streets.intersects(river)
    assert not (crossing & ~is_bridge).any()
    assert 2 <= is_bridge.sum() <= 3
    assert crossing[is_bridge].all()
    width = river.area / river.exterior.length * 2  # a long strip: area / half the perimeter
    assert 60 < width < 120


def _graph_of(streets: gpd.GeoDataFrame, demo: DemoData) -> nx.Graph:
    """Vertices as exact WGS84 coordinate pairs, as a network builder sees them."""
    graph = nx.Graph()
    features = json.loads(demo.streets.read_text(encoding="utf-8"))["features"]
    for feature in features:
        coords = [tuple(c) for c in feature["geometry"]["coordinates"]]
        for a, b in itertools.pairwise(coords):
            graph.add_edge(a, b, way_id=feature["properties"]["way_id"])
    return graph


def test_streets_form_one_network_apart_from_the_hospital_service_road(
    streets: gpd.GeoDataFrame, demo: DemoData
) -> None:
    graph = _graph_of(streets, demo)
    components = sorted(nx.connected_components(graph), key=len, reverse=True)
    assert len(components) == 2
    small = graph.subgraph(components[1])
    way_ids = {d["way_id"] for _, _, d in small.edges(data=True)}
    assert len(way_ids) == 1
    isolated = streets[streets["way_id"] == way_ids.pop()].iloc[0]
    assert isolated["highway"] == "service"
    assert len(components[0]) > 0.95 * graph.number_of_nodes()


def test_lines_meet_only_at_shared_end_points(demo: DemoData) -> None:
    features = json.loads(demo.streets.read_text(encoding="utf-8"))["features"]
    lines = [LineString(f["geometry"]["coordinates"]) for f in features]
    ends = [{line.coords[0], line.coords[-1]} for line in lines]
    tree = shapely.STRtree(lines)
    left, right = tree.query(lines, predicate="intersects")
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i >= j:
            continue
        meeting = lines[i].intersection(lines[j])
        assert meeting.geom_type in ("Point", "MultiPoint"), features[i]["properties"]
        touching = {tuple(xy) for xy in shapely.get_coordinates(meeting).tolist()}
        assert touching <= ends[i] & ends[j], (features[i]["properties"], features[j]["properties"])


def test_network_has_junctions_and_a_few_dead_ends(demo: DemoData) -> None:
    features = json.loads(demo.streets.read_text(encoding="utf-8"))["features"]
    degree: dict[tuple[float, float], int] = {}
    for f in features:
        coords = f["geometry"]["coordinates"]
        for end in (tuple(coords[0]), tuple(coords[-1])):
            degree[end] = degree.get(end, 0) + 1
    dead_ends = sum(1 for d in degree.values() if d == 1)
    assert 4 <= dead_ends <= 20
    assert sum(1 for d in degree.values() if d >= 3) > 100


def test_compound_counts_and_population(compounds: gpd.GeoDataFrame) -> None:
    assert 60 <= len(compounds) <= 70
    assert list(compounds["community_id"]) == [f"C{k:03d}" for k in range(1, len(compounds) + 1)]
    assert compounds["name"].is_unique
    population = compounds["households"].sum() * 2.62
    assert 70_000 <= population <= 90_000
    assert compounds["households"].min() > 50
    assert compounds["households"].max() > 3 * compounds["households"].min()
    assert compounds["built_year"].between(1980, 2021).all()


def test_compounds_avoid_streets_river_and_each_other(
    compounds: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame,
    river: shapely.Geometry,
    boundary: shapely.Geometry,
) -> None:
    street_lines = streets.union_all()
    assert not compounds.intersects(street_lines).any()
    assert not compounds.intersects(river).any()
    assert compounds.within(boundary).all()
    assert compounds.is_valid.all()
    overlap = compounds.union_all().area
    assert overlap == pytest.approx(compounds.area.sum(), rel=1e-9)


def test_gates_face_streets_on_their_compound_boundary(
    gates: gpd.GeoDataFrame, compounds: gpd.GeoDataFrame, streets: gpd.GeoDataFrame
) -> None:
    per_compound = gates.groupby("community_id").size()
    assert set(per_compound.index) == set(compounds["community_id"])
    assert per_compound.between(1, 4).all()
    assert gates["gate_id"].is_unique
    street_lines = streets.union_all()
    to_street = gates.distance(street_lines)
    assert (to_street <= 30).all()
    assert (to_street >= 3).all()
    outlines = compounds.set_index("community_id").boundary
    to_own = [
        outlines[c].distance(g) for c, g in zip(gates["community_id"], gates.geometry, strict=True)
    ]
    assert max(to_own) <= 15


def test_some_large_compounds_have_a_single_gate(
    gates: gpd.GeoDataFrame, compounds: gpd.GeoDataFrame
) -> None:
    per_compound = gates.groupby("community_id").size()
    large = compounds[compounds.area > 3.5e4]["community_id"]
    assert (per_compound[large] == 1).sum() >= 2


# --- POIs ---------------------------------------------------------------------


def test_poi_table_looks_like_an_amap_export(demo: DemoData, pois: pd.DataFrame) -> None:
    assert demo.pois.read_bytes().startswith(b"\xef\xbb\xbf")
    assert list(pois.columns) == AMAP_COLUMNS
    assert 300 <= len(pois) <= 450
    assert pois["id"].str.fullmatch(r"B0SYN\d{5}").all()
    assert pois["id"].is_unique
    assert pois["location"].str.fullmatch(r"\d{3}\.\d{6},\d{2}\.\d{6}").all()
    assert (pois["pname"] == "浙江省").all()
    assert (pois["cityname"] == "温州市").all()
    assert (pois["adname"] == "示例区").all()
    assert pois["typecode"].str.fullmatch(r"\d{6}").all()
    assert pois["name"].str.contains("示例").all()


def test_every_facility_type_is_present(pois: pd.DataFrame) -> None:
    counts = {kind: int(pois.apply(check, axis=1).sum()) for kind, check in FACILITY_CHECKS.items()}
    assert all(n >= 1 for n in counts.values()), counts
    assert counts["metro_station"] == 1
    assert counts["hospital"] == 1


def test_rows_that_match_no_facility_type_are_present(pois: pd.DataFrame) -> None:
    matched = np.zeros(len(pois), dtype=bool)
    for check in FACILITY_CHECKS.values():
        matched |= pois.apply(check, axis=1).to_numpy()
    assert (~matched).sum() >= 100
    assert pois["typecode"].isin(["050100", "160100", "100100"]).sum() >= 30


def test_pois_sit_near_streets_only_after_the_gcj02_correction(
    pois: pd.DataFrame, streets: gpd.GeoDataFrame
) -> None:
    street_lines = streets.union_all()
    corrected = _poi_points(pois, correct=True)
    assert (corrected.distance(street_lines) <= 50).all()
    raw = _poi_points(pois, correct=False)
    shift = raw.distance(corrected)
    assert shift.between(450, 650).all()
    # The raw GCJ-02 point is far from the road named in its address.
    by_name = streets.dropna(subset=["name"]).dissolve("name").geometry
    far = []
    for address, point in zip(pois["address"], raw, strict=True):
        match = STREET_ADDRESS.match(address)
        if match:
            far.append(by_name[match.group(1)].distance(point) > 300)
    assert len(far) > 200
    assert np.mean(far) > 0.9


def test_deliberate_gaps_across_the_river(
    pois: pd.DataFrame,
    compounds: gpd.GeoDataFrame,
    boundary: shapely.Geometry,
    river: shapely.Geometry,
) -> None:
    north = _north_part(boundary, river)
    points = _poi_points(pois, correct=True)
    in_north = points.within(north).to_numpy()
    assert 8 <= compounds.within(north).sum() <= 25
    daycare = pois.apply(FACILITY_CHECKS["elderly_daycare"], axis=1).to_numpy()
    market = pois.apply(FACILITY_CHECKS["fresh_market"], axis=1).to_numpy()
    assert daycare.sum() >= 3 and not (daycare & in_north).any()
    assert market.sum() >= 2 and not (market & in_north).any()
    kindergarten = pois.apply(FACILITY_CHECKS["kindergarten"], axis=1).to_numpy()
    assert (kindergarten & in_north).any()


def test_capacity_table(demo: DemoData, pois: pd.DataFrame) -> None:
    capacity = pd.read_csv(demo.capacity, dtype={"id": str})
    assert list(capacity.columns) == ["id", "capacity", "unit"]
    assert capacity["id"].isin(pois["id"]).all()
    kinds = pois.set_index("id").loc[capacity["id"]]
    kindergarten_ids = set(pois.loc[pois["typecode"] == "141204", "id"])
    seats = capacity[capacity["unit"] == "seats"]
    assert set(seats["id"]) == kindergarten_ids
    beds = capacity[capacity["unit"] == "beds"]
    assert len(beds) >= 1
    assert kinds.loc[beds["id"], "name"].str.contains("养老院").all()
    assert (capacity["capacity"] > 0).all()


def test_gates_are_written_with_seven_decimals(demo: DemoData) -> None:
    lines = demo.gates.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "gate_id,community_id,lng,lat"
    assert all(re.fullmatch(r"G\d{3},C\d{3},\d{3}\.\d{7},\d{2}\.\d{7}", ln) for ln in lines[1:])


def test_metro_station_is_at_the_edge(pois: pd.DataFrame, boundary: shapely.Geometry) -> None:
    metro = _poi_points(pois[pois["typecode"] == "150500"], correct=True).iloc[0]
    assert boundary.exterior.distance(metro) < 60
    assert boundary.exterior.distance(Point(boundary.centroid)) > 500
