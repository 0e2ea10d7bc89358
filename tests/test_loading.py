"""Tests of lifecircle.loading: every input format, coordinate system and bad row."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from lifecircle.coords import from_wgs84, wgs84_to_bd09, wgs84_to_gcj02
from lifecircle.errors import InputError
from lifecircle.loading import (
    EXCEL_MAX_CHARS,
    PERSONS_PER_HOUSEHOLD_2020,
    REJECT_COLUMNS,
    LoadResult,
    check_network_crs,
    clean_text,
    detect_gcj02_shift,
    gate_distance_warnings,
    gate_distances,
    load_communities,
    load_facilities,
    load_gates,
    read_table,
)
from lifecircle.network import load_network

GEOD = pyproj.Geod(ellps="WGS84")

# Facilities around Wudaokou, Beijing (WGS84 truth).
POIS = pd.DataFrame(
    {
        "id": ["P001", "P002", "P003", "P004"],
        "name": ["清华附小", "荷清苑幼儿园", "物美超市(五道口店)", "䶮记便利店"],
        "type": ["primary_school", "kindergarten", "supermarket", "convenience_store"],
        "lng": [116.320112, 116.330245, 116.338031, 116.326677],
        "lat": [40.001203, 40.005017, 39.992044, 39.994561],
    }
)

TYPECODES = {"141204": "kindergarten", "141203": "primary_school", "060400": "supermarket"}
OSM_TYPES = {
    ("amenity", "kindergarten"): "kindergarten",
    ("amenity", "school"): "primary_school",
    ("shop", "supermarket"): "supermarket",
    ("shop", "convenience"): "convenience_store",
    ("highway", "bus_stop"): "bus_stop",
}
CATEGORIES = {"kindergarten": "education", "primary_school": "education"}


class StandInTaxonomy:
    """The part of lifecircle.taxonomy.Taxonomy the loaders use, for a handful of types."""

    type_ids = frozenset(
        {"primary_school", "kindergarten", "supermarket", "convenience_store", "bus_stop"}
    )

    def classify(self, table: pd.DataFrame) -> pd.Series:
        result = pd.Series(None, index=table.index, dtype=object)
        if "type" in table.columns:
            direct = table["type"].astype("string")
            result = result.where(~direct.isin(self.type_ids).fillna(False), direct.astype(object))
        if "typecode" in table.columns:
            result = result.fillna(table["typecode"].astype("string").map(TYPECODES))
        for (key, value), type_id in OSM_TYPES.items():
            if key in table.columns:
                hit = (table[key] == value).fillna(False) & result.isna()
                result = result.where(~hit, type_id)
        return result.where(result.notna(), None)

    def category_of(self, type_id: str) -> str:
        return CATEGORIES.get(type_id, "daily")


TAX = StandInTaxonomy()


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def assert_truth(data: gpd.GeoDataFrame, truth: pd.DataFrame = POIS, tolerance_m: float = 1e-6):
    """Loaded facilities sit on the WGS84 truth, in the same order."""
    assert list(data["facility_id"]) == list(truth["id"])
    error = metres(data.geometry.x, data.geometry.y, truth["lng"], truth["lat"])
    assert error.max() < tolerance_m


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def pois_csv_text(separator: str = ",") -> str:
    return POIS.to_csv(index=False, sep=separator, float_format="%.6f", lineterminator="\n")


def pois_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        POIS.drop(columns=["lng", "lat"]),
        geometry=gpd.points_from_xy(POIS["lng"], POIS["lat"]),
        crs="EPSG:4326",
    )


# ---------------------------------------------------------------------------
# Formats and encodings
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "note"),
    [
        ("utf-8", "read as UTF-8 text"),
        ("utf-8-sig", "read as UTF-8 text"),
        ("gb18030", "read as GB18030 (GBK) text"),
    ],
)
def test_csv_encodings(tmp_path, encoding, note):
    path = write_csv(tmp_path / "pois.csv", pois_csv_text(), encoding)
    result = load_facilities(path, taxonomy=TAX)
    assert_truth(result.data)
    assert list(result.data["name"]) == list(POIS["name"])
    assert list(result.data["type"]) == list(POIS["type"])
    assert list(result.data["category"]) == ["education", "education", "daily", "daily"]
    assert note in result.notes
    assert result.rows_read == 4
    assert len(result.rejects) == 0


def test_gbk_csv_with_chinese_headers(tmp_path):
    text = (
        "编号,名称,类型,经度,纬度\n"
        "A1,五道口幼儿园,kindergarten,116.3381,39.9925\n"
        "A2,成府路小学,primary_school,116.3302,39.9961\n"
    )
    path = write_csv(tmp_path / "设施.csv", text, "gbk")
    data, rejects = load_facilities(path, taxonomy=TAX)
    assert list(data["facility_id"]) == ["A1", "A2"]
    assert list(data["name"]) == ["五道口幼儿园", "成府路小学"]
    assert list(data["type"]) == ["kindergarten", "primary_school"]
    assert data.geometry.x.tolist() == [116.3381, 116.3302]
    assert rejects.empty


def test_tsv(tmp_path):
    path = write_csv(tmp_path / "pois.tsv", pois_csv_text("\t"))
    assert_truth(load_facilities(path, taxonomy=TAX).data)


def test_semicolon_separated_txt(tmp_path):
    path = write_csv(tmp_path / "pois.txt", pois_csv_text(";"))
    assert_truth(load_facilities(path, taxonomy=TAX).data)


def test_utf16_text_from_excel(tmp_path):
    path = write_csv(tmp_path / "pois.txt", pois_csv_text("\t"), "utf-16")
    result = load_facilities(path, taxonomy=TAX)
    assert_truth(result.data)
    assert "read as UTF-16 text" in result.notes


def test_xlsx_with_sheet_choice(tmp_path):
    path = tmp_path / "pois.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"说明": ["见下一页"]}).to_excel(writer, sheet_name="说明", index=False)
        POIS.to_excel(writer, sheet_name="设施", index=False)
    result = load_facilities(path, sheet="设施", taxonomy=TAX)
    assert_truth(result.data)
    assert list(result.data["source_row"]) == [2, 3, 4, 5]
    assert load_facilities(path, sheet=1, taxonomy=TAX).rows_read == 4
    with pytest.raises(InputError, match=r"no sheet '设施表'.*\['说明', '设施'\]"):
        load_facilities(path, sheet="设施表", taxonomy=TAX)
    with pytest.raises(InputError, match=r"no coordinate columns.*columns found: 说明"):
        load_communities(path)
    with pytest.raises(InputError, match=r"sheets \['说明', '设施'\].*sheet=, --sheet"):
        load_communities(path)
    with pytest.raises(InputError, match=r"no table.*sheets \['说明', '设施'\].*sheet=, --sheet"):
        load_facilities(path, taxonomy=TAX)


def test_xlsx_numeric_ids_and_blank_rows(tmp_path):
    path = tmp_path / "xq.xlsx"
    table = pd.DataFrame(
        {
            "小区编号": [101, None, 103],
            "小区名称": ["荷清苑", None, "西王庄小区"],
            "户数": [400, None, 250],
            "经度": [116.331, None, 116.303],
            "纬度": [40.006, None, 40.010],
        }
    )
    table.to_excel(path, index=False)
    result = load_communities(path)
    assert list(result.data["community_id"]) == ["101", "103"]
    assert list(result.data["source_row"]) == [2, 4]
    assert result.data["population"].tolist() == pytest.approx([400 * 2.62, 250 * 2.62])
    assert "1 blank rows skipped" in result.notes
    assert result.rows_read == 2


def test_title_rows_above_the_header_are_skipped(tmp_path):
    path = tmp_path / "survey.xlsx"
    sheet = [["附表1：五道口街道设施一览表", None, None, None], [None] * 4]
    sheet += [["名称", "类型", "经度", "纬度"], ["幼儿园", "kindergarten", 116.33, 40.01]]
    sheet += [["超市", "supermarket", 116.34, "四十"]]
    pd.DataFrame(sheet).to_excel(path, index=False, header=False)
    result = load_facilities(path, taxonomy=TAX)
    assert result.data["name"].tolist() == ["幼儿园"]
    assert result.data["source_row"].tolist() == [4]
    assert result.rejects[["row", "column", "reason"]].values.tolist() == [
        [5, "纬度", "coordinate is not a number"]
    ]
    assert "2 title rows above the header skipped; the header is row 3" in result.notes


def test_title_row_in_csv_saved_from_excel(tmp_path):
    text = "附表1：设施一览表,,,\n名称,类型,经度,纬度\n幼儿园,kindergarten,116.33,40.01\n"
    result = load_facilities(write_csv(tmp_path / "survey.csv", text, "gbk"), taxonomy=TAX)
    assert result.data["source_row"].tolist() == [3]
    assert result.data.geometry.x.tolist() == [116.33]


def test_single_column_file_keeps_its_header(tmp_path):
    text = 'location\n"116.33,40.01"\n'
    path = write_csv(tmp_path / "gates.csv", text)
    with pytest.raises(InputError, match="missing the column that names each gate's compound"):
        load_gates(path)
    assert read_table(path).columns.tolist() == ["location"]


def test_geojson(tmp_path):
    path = tmp_path / "pois.geojson"
    pois_frame().to_file(path, driver="GeoJSON")
    result = load_facilities(path, taxonomy=TAX)
    assert_truth(result.data)
    assert list(result.data["source_row"]) == [1, 2, 3, 4]


def test_geopackage_layers(tmp_path):
    path = tmp_path / "survey.gpkg"
    pois_frame().iloc[:2].to_file(path, layer="schools", driver="GPKG")
    pois_frame().to_file(path, layer="all_pois", driver="GPKG")
    chosen = load_facilities(path, layer="all_pois", taxonomy=TAX)
    assert_truth(chosen.data)
    with pytest.raises(
        InputError, match=r"2 layers, \['schools', 'all_pois'\].*layer= \(--layer\)"
    ):
        load_facilities(path, taxonomy=TAX)
    assert load_facilities(path, layer="schools", taxonomy=TAX).rows_read == 2
    with pytest.raises(InputError, match="no layer 'shops'"):
        load_facilities(path, layer="shops", taxonomy=TAX)


@pytest.mark.parametrize("keep_cpg", [True, False])
def test_shapefile_with_gbk_dbf(tmp_path, keep_cpg):
    path = tmp_path / "pois.shp"
    gbk_names = ["清华附小", "荷清苑幼儿园", "物美超市(五道口店)", "华联便利店"]  # all in GBK
    pois_frame().assign(name=gbk_names).to_file(path, encoding="gbk")
    dbf = path.with_suffix(".dbf").read_bytes()
    assert "荷清苑幼儿园".encode("gbk") in dbf
    if not keep_cpg:
        path.with_suffix(".cpg").unlink()
    result = load_facilities(path, taxonomy=TAX)
    assert_truth(result.data)
    assert list(result.data["name"]) == gbk_names
    expected = "from .cpg" if keep_cpg else "read its text as GBK/GB18030"
    assert any(expected in note for note in result.notes)


def test_shapefile_in_utf8_without_cpg(tmp_path):
    path = tmp_path / "pois.shp"
    pois_frame().to_file(path, encoding="utf-8")
    path.with_suffix(".cpg").unlink()
    result = load_facilities(path, taxonomy=TAX)
    assert list(result.data["name"]) == list(POIS["name"])
    assert "DBF text read as UTF-8" in result.notes


def test_projected_shapefile_is_reprojected(tmp_path):
    path = tmp_path / "pois_utm.shp"
    pois_frame().to_crs("EPSG:32650").to_file(path, encoding="utf-8")
    assert_truth(load_facilities(path, taxonomy=TAX).data, tolerance_m=0.001)


def test_geoparquet(tmp_path):
    path = tmp_path / "pois.parquet"
    pois_frame().to_parquet(path)
    assert_truth(load_facilities(path, taxonomy=TAX).data)


def test_plain_parquet_with_coordinate_columns(tmp_path):
    path = tmp_path / "pois.parquet"
    POIS.to_parquet(path)
    result = load_facilities(path, taxonomy=TAX)
    assert_truth(result.data)
    assert list(result.data["source_row"]) == [1, 2, 3, 4]


def test_read_table_is_raw(tmp_path):
    path = write_csv(tmp_path / "p.csv", "编号,名称\n007,幼儿园\n\n008,小学\n", "gbk")
    table = read_table(path)
    assert table["编号"].tolist() == ["007", "", "008"]
    assert table.attrs["notes"] == ["read as GB18030 (GBK) text"]


# ---------------------------------------------------------------------------
# Coordinate systems
# ---------------------------------------------------------------------------


def amap_export() -> pd.DataFrame:
    gcj_lon, gcj_lat = wgs84_to_gcj02(POIS["lng"], POIS["lat"])
    return pd.DataFrame(
        {
            "id": ["B000A7BD6C", "B0FFG1KQ2H", "B000A83M61", "B0FFH3Z9XK"],
            "name": POIS["name"],
            "type": [
                "科教文化服务;学校;小学",
                "科教文化服务;学校;幼儿园",
                "购物服务;超级市场;超市",
                "购物服务;便民商店/便利店;便民商店/便利店",
            ],
            "typecode": ["141203", "141204", "060400", "060200"],
            "address": ["成府路", "荷清路", "五道口", "双清路"],
            "location": [f"{x:.6f},{y:.6f}" for x, y in zip(gcj_lon, gcj_lat, strict=True)],
            "pname": "北京市",
            "cityname": "北京市",
            "adname": "海淀区",
        }
    )


def test_amap_export_in_gcj02_is_recovered(tmp_path):
    path = tmp_path / "amap.csv"
    amap_export().to_csv(path, index=False, encoding="utf-8-sig")
    result = load_facilities(path, crs="gcj02", taxonomy=TAX)
    data = result.data
    assert list(data["facility_id"]) == ["B000A7BD6C", "B0FFG1KQ2H", "B000A83M61"]
    assert list(data["type"]) == ["primary_school", "kindergarten", "supermarket"]
    # The Amap type string is kept, renamed so it does not clash with the type id.
    assert data.loc[0, "source_type"] == "科教文化服务;学校;小学"
    assert list(data["adname"]) == ["海淀区"] * 3
    truth = POIS.iloc[:3]
    assert metres(data.geometry.x, data.geometry.y, truth["lng"], truth["lat"]).max() < 0.05
    # typecode 060200 (convenience store) is unknown to the stand-in taxonomy.
    assert result.rejects[["row", "reason", "value"]].values.tolist() == [
        [5, "no facility type matched", "䶮记便利店 (购物服务;便民商店/便利店;便民商店/便利店)"]
    ]


def test_amap_export_with_the_default_taxonomy(tmp_path):
    pytest.importorskip("lifecircle.taxonomy")
    path = tmp_path / "amap.csv"
    amap_export().to_csv(path, index=False, encoding="utf-8-sig")
    result = load_facilities(path, crs="gcj02")
    assert result.data["type"].tolist() == list(POIS["type"])
    assert result.data["category"].tolist()[:2] == ["education", "education"]
    assert_truth(result.data.assign(facility_id=POIS["id"]), tolerance_m=0.05)


def test_amap_export_loaded_as_wgs84_warns(tmp_path, caplog):
    path = tmp_path / "amap.csv"
    amap_export().to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="lifecircle.loading"):
        result = load_facilities(path, taxonomy=TAX)
    assert any("Amap export" in note and "crs='gcj02'" in note for note in result.notes)
    assert "Amap export" in caplog.text
    shift = metres(result.data.geometry.x, result.data.geometry.y, POIS["lng"][:3], POIS["lat"][:3])
    assert (shift > 500).all()


def test_baidu_bd09_table_is_recovered(tmp_path):
    bd_lon, bd_lat = wgs84_to_bd09(POIS["lng"], POIS["lat"])
    table = POIS.drop(columns=["lng", "lat"]).assign(bd09_lng=bd_lon, bd09_lat=bd_lat)
    path = tmp_path / "baidu.csv"
    table.to_csv(path, index=False, float_format="%.9f")
    result = load_facilities(path, crs="baidu", taxonomy=TAX)
    assert_truth(result.data, tolerance_m=0.05)
    assert not any("suggest" in note for note in result.notes)
    as_wgs84 = load_facilities(path, taxonomy=TAX)
    assert any("suggest BD09 coordinates" in note for note in as_wgs84.notes)


def test_projected_xy_with_epsg(tmp_path):
    x, y = from_wgs84(POIS["lng"], POIS["lat"], "EPSG:4547")
    table = POIS.drop(columns=["lng", "lat"]).assign(X=x, Y=y)
    path = tmp_path / "cgcs2000.csv"
    table.to_csv(path, index=False, float_format="%.4f")
    assert_truth(load_facilities(path, crs="EPSG:4547", taxonomy=TAX).data, tolerance_m=0.01)


def test_geojson_claiming_4326_but_in_gcj02(tmp_path):
    gcj_lon, gcj_lat = wgs84_to_gcj02(POIS["lng"], POIS["lat"])
    frame = pois_frame().set_geometry(gpd.points_from_xy(gcj_lon, gcj_lat, crs="EPSG:4326"))
    path = tmp_path / "amap.geojson"
    frame.to_file(path, driver="GeoJSON")
    assert_truth(load_facilities(path, crs="gcj02", taxonomy=TAX).data, tolerance_m=0.05)


def test_gcj02_polygons_are_corrected_vertex_by_vertex(tmp_path):
    square = shapely.box(116.330, 40.004, 116.332, 40.006)
    shifted = shapely.transform(square, lambda xy: np.column_stack(wgs84_to_gcj02(*xy.T)))
    frame = gpd.GeoDataFrame({"name": ["荷清苑"]}, geometry=[shifted], crs="EPSG:4326")
    path = tmp_path / "xq.geojson"
    frame.to_file(path, driver="GeoJSON")
    data = load_communities(path, crs="gcj02").data
    recovered = np.asarray(data.geometry.iloc[0].exterior.coords)
    expected = np.asarray(square.exterior.coords)
    assert metres(*recovered.T, *expected.T).max() < 0.05


@pytest.mark.parametrize(
    ("header", "lon_column", "lat_column"),
    [
        ("name,type,lon,lat", "lon", "lat"),
        ("name,type,Longitude,Latitude", "Longitude", "Latitude"),
        ("name,type,x,y", "x", "y"),
        ("name,type,东经,北纬", "东经", "北纬"),
        ("name,type,wgs84_lng,wgs84_lat", "wgs84_lng", "wgs84_lat"),
        ("name,type,经度(WGS84),纬度(WGS84)", "经度(WGS84)", "纬度(WGS84)"),
        ("name,type,LNG_WGS,LAT_WGS", "LNG_WGS", "LAT_WGS"),
    ],
)
def test_coordinate_column_names(tmp_path, header, lon_column, lat_column):
    path = write_csv(tmp_path / "p.csv", f"{header}\n幼儿园,kindergarten,116.33,40.01\n")
    result = load_facilities(path, taxonomy=TAX)
    assert (result.data.geometry.x[0], result.data.geometry.y[0]) == (116.33, 40.01)
    assert result.data.loc[0, lon_column] == "116.33"
    assert result.data.loc[0, lat_column] == "40.01"


def test_explicit_columns_win(tmp_path):
    text = "name,type,lng,lat,lng2,lat2\n幼儿园,kindergarten,0,0,116.33,40.01\n"
    path = write_csv(tmp_path / "p.csv", text)
    data = load_facilities(path, lon="lng2", lat="lat2", taxonomy=TAX).data
    assert (data.geometry.x[0], data.geometry.y[0]) == (116.33, 40.01)


def test_explicit_location_column(tmp_path):
    text = 'name,type,坐标点\n幼儿园,kindergarten,"116.33，40.01"\n'
    path = write_csv(tmp_path / "p.csv", text)
    data = load_facilities(path, location="坐标点", taxonomy=TAX).data
    assert (data.geometry.x[0], data.geometry.y[0]) == (116.33, 40.01)


def test_ambiguous_coordinate_columns_need_naming(tmp_path):
    text = "name,type,gcj_lng,gcj_lat,wgs_lng,wgs_lat\n幼儿园,kindergarten,1,2,3,4\n"
    path = write_csv(tmp_path / "p.csv", text)
    with pytest.raises(InputError, match="several coordinate columns"):
        load_facilities(path, taxonomy=TAX)


def test_swapped_columns_inside_china_are_fixed(tmp_path, caplog):
    swapped = POIS.rename(columns={"lng": "lat", "lat": "lng"})
    path = tmp_path / "swapped.csv"
    swapped.to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="lifecircle.loading"):
        result = load_facilities(path, taxonomy=TAX)
    assert_truth(result.data)
    assert any(
        note.startswith("columns lng and lat look swapped (latitudes beyond ±90")
        for note in result.notes
    )
    assert "look swapped" in caplog.text


def test_swapped_columns_in_western_china_are_fixed(tmp_path):
    # Kashgar and Urumqi: longitudes below 90, so only the China rule can tell.
    text = (
        "name,type,lng,lat\n喀什站,bus_stop,39.4704,75.9898\n乌鲁木齐站,bus_stop,43.8256,87.6168\n"
    )
    result = load_facilities(write_csv(tmp_path / "xj.csv", text), taxonomy=TAX)
    assert result.data.geometry.x.tolist() == [75.9898, 87.6168]
    assert result.data.geometry.y.tolist() == [39.4704, 43.8256]
    assert any("Chinese longitudes" in note for note in result.notes)


def test_swapped_columns_beyond_90_are_fixed(tmp_path):
    # Los Angeles, Denver, Phoenix with latitude and longitude exchanged.
    text = (
        "name,type,lon,lat\n"
        "LA,bus_stop,34.05,-118.24\nDEN,bus_stop,39.74,-104.99\nPHX,bus_stop,33.45,-112.07\n"
    )
    result = load_facilities(write_csv(tmp_path / "us.csv", text), taxonomy=TAX)
    assert result.data.geometry.x.tolist() == [-118.24, -104.99, -112.07]
    assert result.data.geometry.y.tolist() == [34.05, 39.74, 33.45]
    assert any("latitudes beyond ±90" in note for note in result.notes)


def test_ambiguous_columns_are_left_alone(tmp_path):
    text = "name,type,lon,lat\nA,bus_stop,30.5,60.2\nB,bus_stop,60.1,30.3\n"
    path = write_csv(tmp_path / "p.csv", text)
    result = load_facilities(path, taxonomy=TAX)
    assert result.data.geometry.x.tolist() == [30.5, 60.1]
    assert not any("swapped" in note for note in result.notes)


def test_swapped_amap_location(tmp_path):
    text = (
        "name,type,location\n"
        '幼儿园,kindergarten,"40.01,116.33"\n'
        '小学,primary_school,"40.02,116.34"\n'
    )
    path = write_csv(tmp_path / "p.csv", text)
    result = load_facilities(path, taxonomy=TAX)
    assert result.data.geometry.x.tolist() == [116.33, 116.34]
    assert any("looks like 'lat,lng'" in note for note in result.notes)


# ---------------------------------------------------------------------------
# Bad rows
# ---------------------------------------------------------------------------

BAD_FACILITIES = (
    "id,name,type,capacity,lng,lat\n"
    "F1,清华附小,primary_school,1200,116.3201,40.0012\n"  # row 2: fine
    "F2,甲,kindergarten,,abc,40.0\n"  # row 3: longitude not a number
    "F3,乙,kindergarten,, 116.32 ,\n"  # row 4: latitude empty
    "F4,丙,kindergarten,,116.32,95.5\n"  # row 5: latitude out of range
    "F5,丁,kindergarten,,190.0,40.0\n"  # row 6: longitude out of range
    "F6,星巴克,餐饮服务;咖啡厅,,116.33,40.0\n"  # row 7: no facility type
    "F1,清华附小(重复),primary_school,,116.3202,40.0013\n"  # row 8: duplicate id
    ",,,,,\n"  # row 9: blank, skipped
    "F8,戊,supermarket,很多,116.34,40.0\n"  # row 10: capacity not a number
    "F9,己,supermarket,-5,116.34,40.0\n"  # row 11: capacity negative
    ",五道口超市,supermarket,300,116.338,39.992\n"  # row 12: fine, generated id
)


@pytest.fixture
def bad_facilities(tmp_path) -> LoadResult:
    path = write_csv(tmp_path / "pois.csv", BAD_FACILITIES)
    return load_facilities(path, taxonomy=TAX, max_reject_share=1.0)


def test_every_bad_facility_row_is_rejected_with_its_reason(bad_facilities):
    rejects = bad_facilities.rejects
    assert list(rejects.columns) == list(REJECT_COLUMNS)
    assert rejects[["row", "column", "reason", "value"]].values.tolist() == [
        [3, "lng", "coordinate is not a number", "abc"],
        [4, "lat", "coordinate is empty", ""],
        [5, "lat", "latitude outside -90..90", "95.5"],
        [6, "lng", "longitude outside -180..180", "190.0"],
        [7, "type", "no facility type matched", "星巴克 (餐饮服务;咖啡厅)"],
        [8, "id", "duplicate facility_id (first at row 2)", "F1"],
        [10, "capacity", "capacity is not a number", "很多"],
        [11, "capacity", "capacity is negative", "-5"],
    ]
    assert set(rejects["file"]) == {"pois.csv"}


def test_bad_facility_counts_add_up(bad_facilities):
    data = bad_facilities.data
    assert bad_facilities.rows_read == 10
    assert len(data) + len(bad_facilities.rejects) == bad_facilities.rows_read
    assert list(data["facility_id"]) == ["F1", "pois-12"]
    assert list(data["source_row"]) == [2, 12]
    assert data["capacity"].tolist() == [1200.0, 300.0]
    assert data.crs.to_epsg() == 4326
    assert "1 blank rows skipped" in bad_facilities.notes
    assert any("1 rows matched no facility type" in note for note in bad_facilities.notes)


def test_summary_groups_reasons(bad_facilities):
    assert bad_facilities.summary() == (
        "pois.csv: 10 rows read, 2 loaded, 8 rejected (4 bad coordinates, "
        "1 no facility type matched, 1 duplicate ids, 1 capacity is not a number, "
        "1 capacity is negative)"
    )


def test_result_unpacks_into_data_and_rejects(bad_facilities):
    data, rejects = bad_facilities
    assert data is bad_facilities.data
    assert rejects is bad_facilities.rejects


def test_facility_columns_come_first(bad_facilities):
    assert list(bad_facilities.data.columns) == [
        "facility_id",
        "name",
        "type",
        "types",
        "category",
        "capacity",
        "source_file",
        "source_row",
        "id",
        "lng",
        "lat",
        "geometry",
    ]


def test_polygon_facilities_become_points(tmp_path):
    park = shapely.box(116.30, 40.00, 116.31, 40.01)
    frame = gpd.GeoDataFrame(
        {"name": ["公园", "站"], "type": ["supermarket", "bus_stop"]},
        geometry=[park, shapely.LineString([(116.32, 40.0), (116.33, 40.0)])],
        crs="EPSG:4326",
    )
    path = tmp_path / "areas.gpkg"
    frame.to_file(path)
    result = load_facilities(path, taxonomy=TAX)
    assert list(result.data.geom_type) == ["Point", "Point"]
    assert result.data.geometry.iloc[0].within(park)
    assert "2 facilities mapped as areas or lines placed at a point on them" in result.notes


def test_unmatched_types_are_counted_in_notes(tmp_path):
    text = (
        "name,type,lng,lat\n"
        + "".join(f"店{i},餐饮服务;中餐厅,116.3{i},40.0\n" for i in range(3))
        + "超市,supermarket,116.35,40.0\n"
    )
    result = load_facilities(write_csv(tmp_path / "p.csv", text), taxonomy=TAX)
    assert "3 rows matched no facility type; most common: 餐饮服务;中餐厅 (3)" in result.notes


# ---------------------------------------------------------------------------
# Communities
# ---------------------------------------------------------------------------


def test_community_population_from_households(tmp_path):
    text = (
        "小区编号,小区名称,户数,人口,经度,纬度\n"
        "XQ1,荷清苑,400,1000,116.331,40.006\n"  # population given
        "XQ2,西王庄小区,250,,116.303,40.010\n"  # households only
        "XQ3,华清嘉园,,,116.336,39.995\n"  # neither
        "XQ1,荷清苑二期,10,20,116.332,40.007\n"  # duplicate id
        "XQ5,蓝旗营,-3,,116.325,39.998\n"  # negative households
        'XQ6,清华园,"1,200",约3000,116.32,40.0\n'  # population not a number
    )
    result = load_communities(write_csv(tmp_path / "xq.csv", text, "gbk"))
    data = result.data
    assert list(data.columns[:7]) == [
        "community_id",
        "name",
        "population",
        "households",
        "source_file",
        "source_row",
        "小区编号",
    ]
    assert list(data["community_id"]) == ["XQ1", "XQ2", "XQ3"]
    assert list(data["name"]) == ["荷清苑", "西王庄小区", "华清嘉园"]
    assert data["population"].tolist()[:2] == [1000.0, 250 * PERSONS_PER_HOUSEHOLD_2020]
    assert np.isnan(data["population"].iloc[2])
    assert data["households"].tolist()[:2] == [400.0, 250.0]
    assert result.rejects[["row", "column", "reason", "value"]].values.tolist() == [
        [5, "小区编号", "duplicate community_id (first at row 2)", "XQ1"],
        [6, "户数", "households is negative", "-3"],
        [7, "人口", "population is not a number", "约3000"],
    ]
    assert "population of 1 compounds estimated as households × 2.62" in result.notes


def test_persons_per_household_is_configurable(tmp_path):
    path = write_csv(tmp_path / "xq.csv", "name,households,lng,lat\n荷清苑,100,116.33,40.0\n")
    data = load_communities(path, persons_per_household=3.1).data
    assert data["population"].tolist() == [pytest.approx(310.0)]
    with pytest.raises(InputError, match="persons_per_household"):
        load_communities(path, persons_per_household=0)


def test_community_polygons_repaired_or_rejected(tmp_path):
    bowtie = shapely.Polygon([(116.30, 40.00), (116.31, 40.01), (116.31, 40.00), (116.30, 40.01)])
    flat = shapely.Polygon([(116.0, 40.0), (116.5, 40.5), (117.0, 41.0)])  # exactly collinear
    frame = gpd.GeoDataFrame(
        {
            "community_id": ["C1", "C2", "C3", "C4", "C5"],
            "name": ["好小区", "蝴蝶形小区", "零面积小区", "线形小区", "空小区"],
            "population": [1200, 800, 500, 300, 100],
        },
        geometry=[
            shapely.box(116.33, 40.00, 116.34, 40.01),
            bowtie,
            flat,
            shapely.LineString([(116.35, 40.0), (116.36, 40.0)]),
            None,
        ],
        crs="EPSG:4326",
    )
    assert not bowtie.is_valid
    path = tmp_path / "xq.geojson"
    frame.to_file(path, driver="GeoJSON")
    result = load_communities(path, max_reject_share=1.0)
    assert list(result.data["community_id"]) == ["C1", "C2"]
    assert result.data.geometry.is_valid.all()
    assert result.data.geometry.iloc[1].area == pytest.approx(bowtie.buffer(0).area * 2)
    assert result.rejects[["row", "reason"]].values.tolist() == [
        [3, "invalid polygon that make_valid could not repair"],
        [4, "geometry is a LineString; expected a point or polygon"],
        [5, "geometry is missing or empty"],
    ]
    assert "1 invalid polygons repaired with make_valid" in result.notes
    assert result.rows_read == len(result.data) + len(result.rejects) == 5


def test_communities_from_wkt_column(tmp_path):
    text = (
        "小区名称,人口,wkt\n"
        '荷清苑,1000,"POLYGON ((116.33 40.0, 116.34 40.0, 116.34 40.01, 116.33 40.0))"\n'
        "坏数据,10,POLYGON ((\n"
    )
    result = load_communities(write_csv(tmp_path / "xq.csv", text))
    assert result.data.geom_type.tolist() == ["Polygon"]
    assert result.data.loc[0, "population"] == 1000.0
    assert result.rejects[["row", "column", "reason"]].values.tolist() == [
        [3, "wkt", "geometry is not valid WKT"]
    ]


def test_communities_as_points_keep_original_columns(tmp_path):
    text = "id,小区名称,物业,lng,lat\n1,荷清苑,清华物业,116.33,40.0\n"
    data = load_communities(write_csv(tmp_path / "xq.csv", text)).data
    assert data.loc[0, "物业"] == "清华物业"
    assert data.loc[0, "id"] == "1"
    assert data.loc[0, "community_id"] == "1"
    assert data.geom_type.tolist() == ["Point"]


# ---------------------------------------------------------------------------
# Gates
# ---------------------------------------------------------------------------


@pytest.fixture
def communities(tmp_path) -> gpd.GeoDataFrame:
    text = "小区编号,小区名称,lng,lat\nXQ1,荷清苑,116.331,40.006\nXQ2,西王庄小区,116.303,40.010\n"
    return load_communities(write_csv(tmp_path / "xq.csv", text)).data


def test_gates_with_unknown_communities(tmp_path, communities):
    text = (
        "出入口编号,所属小区,lng,lat\n"
        "G1,XQ1,116.3312,40.0061\n"
        "G2,XQ9,116.30,40.01\n"  # unknown compound
        "G3,西王庄小区,116.3031,40.0102\n"  # compound named, not numbered
        "G4,,116.30,40.01\n"  # no compound
        "G1,XQ2,116.3032,40.0103\n"  # duplicate gate id
    )
    result = load_gates(
        write_csv(tmp_path / "gates.csv", text), communities=communities, max_reject_share=1.0
    )
    assert list(result.data["gate_id"]) == ["G1", "G3"]
    assert list(result.data["community_id"]) == ["XQ1", "XQ2"]
    assert result.rejects[["row", "column", "reason", "value"]].values.tolist() == [
        [3, "所属小区", "unknown community_id", "XQ9"],
        [5, "所属小区", "community_id is empty", ""],
        [6, "出入口编号", "duplicate gate_id (first at row 2)", "G1"],
    ]
    assert "1 gates matched to their compound by name" in result.notes
    assert result.rows_read == 5


def test_gates_without_communities_keep_their_ids(tmp_path):
    text = "gate_id,community_id,lng,lat\nG1,XQ7,116.3312,40.0061\n"
    data = load_gates(write_csv(tmp_path / "gates.csv", text)).data
    assert data[["gate_id", "community_id"]].values.tolist() == [["G1", "XQ7"]]


def test_gates_need_a_community_column(tmp_path):
    path = write_csv(tmp_path / "gates.csv", "gate_id,lng,lat\nG1,116.33,40.0\n")
    with pytest.raises(InputError, match=r"gates.csv: missing the column .*gate_id, lng, lat"):
        load_gates(path)


# ---------------------------------------------------------------------------
# File-level errors
# ---------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nowhere\.csv: file not found"):
        load_facilities(tmp_path / "nowhere.csv", taxonomy=TAX)


def test_unknown_suffix(tmp_path):
    path = write_csv(tmp_path / "pois.docx", "x")
    with pytest.raises(InputError, match=r"pois\.docx: unsupported file type '\.docx'"):
        load_facilities(path, taxonomy=TAX)


def test_old_excel(tmp_path):
    path = write_csv(tmp_path / "pois.xls", "x")
    with pytest.raises(InputError, match=r"save it as \.xlsx"):
        load_communities(path)


@pytest.mark.parametrize("content", ["", "  \n\n"])
def test_empty_file(tmp_path, content):
    path = write_csv(tmp_path / "pois.csv", content)
    with pytest.raises(InputError, match=r"pois\.csv: file is empty"):
        load_facilities(path, taxonomy=TAX)


def test_header_without_rows(tmp_path):
    path = write_csv(tmp_path / "pois.csv", "name,type,lng,lat\n")
    with pytest.raises(InputError, match=r"pois\.csv, row 2: no data rows below the header"):
        load_facilities(path, taxonomy=TAX)


def test_undecodable_bytes_name_the_line(tmp_path):
    path = tmp_path / "pois.csv"
    path.write_bytes("name,lng,lat\n幼儿园,116.3,40.0\n".encode() + b"bad\xff\x80,116.3,40.0\n")
    with pytest.raises(InputError, match=r"pois\.csv, row 3: byte 0xff is neither UTF-8 nor GBK"):
        load_facilities(path, taxonomy=TAX)


def test_missing_coordinate_columns_lists_columns(tmp_path):
    path = write_csv(tmp_path / "pois.csv", "名称,类型,地址\n幼儿园,kindergarten,成府路\n")
    with pytest.raises(InputError, match=r"no coordinate columns.*columns found: 名称, 类型, 地址"):
        load_facilities(path, taxonomy=TAX)


def test_explicitly_named_column_must_exist(tmp_path):
    path = write_csv(tmp_path / "pois.csv", pois_csv_text())
    with pytest.raises(InputError, match=r"pois\.csv, column 经度: column given as lon="):
        load_facilities(path, lon="经度", lat="lat", taxonomy=TAX)
    with pytest.raises(InputError, match=r"column 人口: column given as population_column="):
        load_communities(path, population_column="人口")
    with pytest.raises(InputError, match="give both lon= and lat="):
        load_facilities(path, lon="lng", taxonomy=TAX)


def test_nothing_to_classify_by(tmp_path):
    path = write_csv(tmp_path / "pois.csv", "编号,lng,lat\n1,116.3,40.0\n")
    with pytest.raises(InputError, match="nothing to tell facility types from"):
        load_facilities(path, taxonomy=TAX)


def test_ragged_csv_names_the_line(tmp_path):
    path = write_csv(tmp_path / "pois.csv", "name,lng,lat\na,1,2\nb,1,2,3,4\n")
    with pytest.raises(InputError, match=r"pois\.csv, row 3: cannot split into columns"):
        load_facilities(path, taxonomy=TAX)


def test_bad_crs(tmp_path):
    path = write_csv(tmp_path / "pois.csv", pois_csv_text())
    with pytest.raises(InputError, match="unknown coordinate system"):
        load_facilities(path, crs="google", taxonomy=TAX)


# ---------------------------------------------------------------------------
# GCJ-02 self-check
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def street_grid() -> tuple[gpd.GeoSeries, gpd.GeoSeries]:
    """A 2 km street grid in Haidian (400 m blocks) and 60 points on its streets."""
    west, south, step = 116.30, 39.99, 0.0047  # about 400 m east-west and 520 m north-south
    count = 6
    east, north = west + step * (count - 1), south + step * (count - 1)
    lines = [
        shapely.LineString([(west + i * step, south), (west + i * step, north)])
        for i in range(count)
    ]
    lines += [
        shapely.LineString([(west, south + i * step), (east, south + i * step)])
        for i in range(count)
    ]
    streets = gpd.GeoSeries(lines, crs="EPSG:4326")
    rng = np.random.default_rng(15)
    chosen = rng.integers(0, len(lines), 60)
    fractions = rng.uniform(0.05, 0.95, 60)
    points = shapely.line_interpolate_point(streets.to_numpy()[chosen], fractions, normalized=True)
    return streets, gpd.GeoSeries(points, crs="EPSG:4326")


def test_gcj02_shift_detected(street_grid):
    streets, points = street_grid
    lon, lat = wgs84_to_gcj02(points.x, points.y)
    message = detect_gcj02_shift(gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326), streets)
    assert message is not None
    assert message.startswith("these look like GCJ-02 coordinates: 60 points sit a median ")
    assert message.endswith(" m after GCJ-02 correction; load them with crs='gcj02'")
    as_given = float(message.split("median ")[1].split(" m")[0])
    assert 50 <= as_given <= 260
    assert " and 0 m after" in message


def test_gcj02_shift_not_reported_for_wgs84_points(street_grid):
    streets, points = street_grid
    assert detect_gcj02_shift(points, streets) is None


def test_gcj02_shift_not_reported_for_points_off_the_network(street_grid):
    streets, _ = street_grid
    rng = np.random.default_rng(3)
    scattered = gpd.GeoSeries(
        gpd.points_from_xy(rng.uniform(116.30, 116.32, 60), rng.uniform(39.99, 40.01, 60)),
        crs="EPSG:4326",
    )
    assert detect_gcj02_shift(scattered, streets) is None


def test_gcj02_shift_with_polygons_and_nothing(street_grid):
    streets, points = street_grid
    assert detect_gcj02_shift(gpd.GeoSeries([], crs=4326), streets) is None
    lon, lat = wgs84_to_gcj02(points.x, points.y)
    areas = gpd.GeoSeries(shapely.buffer(shapely.points(lon, lat), 1e-5), crs=4326)
    assert detect_gcj02_shift(areas, streets) is not None


# ---------------------------------------------------------------------------
# Nothing loaded, or most rows lost, is an error
# ---------------------------------------------------------------------------


def test_a_layer_that_loads_no_row_fails_with_reasons_and_advice(tmp_path):
    rows = [f"P{i},示例幼儿园{i},kindergarten,东经一百二十,28.01\n" for i in range(7)]
    path = write_csv(tmp_path / "pois.csv", "id,name,type,lng,lat\n" + "".join(rows))
    with pytest.raises(InputError) as caught:
        load_facilities(path, taxonomy=TAX)
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert message.startswith("pois.csv: no row loaded: pois.csv: 7 rows read, 0 loaded")
    assert "coordinate is not a number: 7 rows (e.g. row 2, column lng" in message
    assert "header_row=" in message and "lon=" in message


def test_most_rows_lost_fails_and_the_share_is_an_option(tmp_path):
    good = "P1,甲,kindergarten,116.33,40.0\nP2,乙,kindergarten,116.34,40.0\n"
    bad = "P3,丙,kindergarten,116.33,95\nP4,丁,kindergarten,116.33,96\nP5,戊,kindergarten,1,97\n"
    path = write_csv(tmp_path / "pois.csv", "id,name,type,lng,lat\n" + good + bad)
    with pytest.raises(InputError, match=r"3 of 5 rows rejected, more than the 50% allowed"):
        load_facilities(path, taxonomy=TAX)
    assert len(load_facilities(path, taxonomy=TAX, max_reject_share=0.6).data) == 2
    assert len(load_facilities(path, taxonomy=TAX, max_reject_share=None).data) == 2
    with pytest.raises(InputError, match="max_reject_share"):
        load_facilities(path, taxonomy=TAX, max_reject_share=1.5)


def test_facilities_of_no_known_type_are_not_counted_as_lost(tmp_path):
    rows = "".join(f"R{i},示例餐厅{i},餐饮服务,116.33,40.0\n" for i in range(4))
    path = write_csv(
        tmp_path / "pois.csv", "id,name,type,lng,lat\nP1,甲,kindergarten,116.3,40\n" + rows
    )
    result = load_facilities(path, taxonomy=TAX)
    assert len(result.data) == 1 and len(result.rejects) == 4
    only_unknown = write_csv(tmp_path / "restaurants.csv", "id,name,type,lng,lat\n" + rows)
    with pytest.raises(InputError, match=r"no row loaded.*no facility type matched: 4 rows"):
        load_facilities(only_unknown, taxonomy=TAX)


def test_gates_of_unknown_compounds_fail_with_their_advice(tmp_path, communities):
    text = "gate_id,小区编号,lng,lat\nG1,XQ8,116.33,40.0\nG2,XQ9,116.34,40.0\n"
    with pytest.raises(InputError, match=r"unknown community_id: 2 rows.*community_column="):
        load_gates(write_csv(tmp_path / "gates.csv", text), communities=communities)


# ---------------------------------------------------------------------------
# Coordinates as Chinese offices write them
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("separator", [",", "，", "、", ";", "；", " ", "\u3000", " , "])
def test_every_separator_in_a_single_lng_lat_cell(tmp_path, separator):
    cells = [
        f'"{lng:.6f}{separator}{lat:.6f}"'
        for lng, lat in zip(POIS["lng"], POIS["lat"], strict=False)
    ]
    rows = [
        f"{i},{n},{t},{c}"
        for i, n, t, c in zip(POIS["id"], POIS["name"], POIS["type"], cells, strict=False)
    ]
    path = write_csv(tmp_path / "pois.csv", "id,name,type,坐标\n" + "\n".join(rows) + "\n")
    result = load_facilities(path, taxonomy=TAX)
    assert_truth(result.data)
    assert result.rejects.empty


def dms(value: float, positive: str, negative: str) -> str:
    hemisphere = positive if value >= 0 else negative
    value = abs(value)
    degrees, rest = int(value), (abs(value) - int(value)) * 60
    minutes, seconds = int(rest), (rest - int(rest)) * 60
    return f"{degrees}°{minutes}′{seconds:.4f}″{hemisphere}"


def test_degrees_minutes_seconds_columns(tmp_path):
    lng = [dms(v, "E", "W") for v in POIS["lng"]]
    lat = [dms(v, "N", "S") for v in POIS["lat"]]
    table = POIS.assign(lng=lng, lat=lat)
    path = tmp_path / "dms.csv"
    table.to_csv(path, index=False)
    result = load_facilities(path, taxonomy=TAX)
    assert_truth(result.data, tolerance_m=0.01)


@pytest.mark.parametrize(
    ("cell", "lon", "lat"),
    [
        ("120°39'00\"E, 28°00'36\"N", 120.65, 28.01),
        ("东经120度39分0秒、北纬28度0分36秒", 120.65, 28.01),
        ("120°39′ 28°0.6′", 120.65, 28.01),
        ("74°0'0\"W,40°30'0\"N", -74.0, 40.5),
    ],
)
def test_degrees_minutes_seconds_in_one_cell(tmp_path, cell, lon, lat):
    quoted = cell.replace('"', '""')
    path = write_csv(tmp_path / "g.csv", f'gate_id,小区,location\nG1,XQ1,"{quoted}"\n')
    data = load_gates(path).data
    assert data.geometry.x[0] == pytest.approx(lon, abs=1e-9)
    assert data.geometry.y[0] == pytest.approx(lat, abs=1e-9)


def test_minutes_beyond_sixty_are_not_a_coordinate(tmp_path):
    text = "gate_id,小区,lng,lat\nG1,XQ1,120°75′,28.0\nG2,XQ1,120.5,28.0\n"
    result = load_gates(write_csv(tmp_path / "g.csv", text))
    assert result.rejects["reason"].tolist() == ["coordinate is not a number"]


def test_cgcs2000_metres_read_as_degrees_name_the_fitting_codes(tmp_path):
    x, y = from_wgs84(POIS["lng"], POIS["lat"], "EPSG:4527")  # 3-degree zone 39, prefixed
    path = tmp_path / "survey.csv"
    POIS.drop(columns=["lng", "lat"]).assign(X=x, Y=y).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"projected coordinates in metres.*fit EPSG:4527 \("):
        load_facilities(path, taxonomy=TAX)
    assert_truth(load_facilities(path, crs="EPSG:4527", taxonomy=TAX).data, tolerance_m=0.01)


def test_metres_without_zone_prefix_list_the_central_meridian_codes(tmp_path):
    x, y = from_wgs84(POIS["lng"], POIS["lat"], "EPSG:4548")  # CM 117°E
    path = tmp_path / "survey.csv"
    POIS.drop(columns=["lng", "lat"]).assign(x=x, y=y).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"EPSG:4534-4554.*EPSG:4549 for 120°E"):
        load_facilities(path, taxonomy=TAX)


def test_surveyor_order_x_northing_is_detected_and_read(tmp_path):
    easting, northing = from_wgs84(POIS["lng"], POIS["lat"], "EPSG:4527")
    path = tmp_path / "survey.csv"
    POIS.drop(columns=["lng", "lat"]).assign(X=northing, Y=easting).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"surveyor order.*EPSG:4527"):
        load_facilities(path, taxonomy=TAX)
    result = load_facilities(path, crs="EPSG:4527", taxonomy=TAX)
    assert_truth(result.data, tolerance_m=0.01)
    assert any("surveyor order" in note for note in result.notes)


def test_geojson_in_metres_without_a_crs_member(tmp_path):
    x, y = from_wgs84(POIS["lng"], POIS["lat"], "EPSG:4527")
    features = [
        {
            "type": "Feature",
            "properties": {"id": i, "name": n, "type": t},
            "geometry": {"type": "Point", "coordinates": [float(a), float(b)]},
        }
        for i, n, t, a, b in zip(POIS["id"], POIS["name"], POIS["type"], x, y, strict=False)
    ]
    path = tmp_path / "metres.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    with pytest.raises(InputError, match=r"the geometry \(the file declares .*metres.*EPSG:4527"):
        load_facilities(path, taxonomy=TAX)
    assert_truth(load_facilities(path, crs="EPSG:4527", taxonomy=TAX).data, tolerance_m=0.01)


def test_network_in_metres_without_a_crs_gets_a_clear_error(tmp_path):
    x, y = from_wgs84([116.30, 116.34], [40.0, 40.0], "EPSG:4527")
    line = {"type": "LineString", "coordinates": [[x[0], y[0]], [x[1], y[1]]]}
    collection = {"type": "Feature", "properties": {"highway": "residential"}, "geometry": line}
    path = tmp_path / "streets.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [collection]}), "utf-8")
    with pytest.raises(InputError, match=r"metres .* declares .*they fit EPSG:4527"):
        check_network_crs(path)
    # loading the network checks the features it read, and names the file
    with pytest.raises(InputError, match=r"metres .* declares .*they fit EPSG:4527") as caught:
        load_network(path)
    assert "streets.geojson" in str(caught.value)
    frame = gpd.read_file(path).set_crs("EPSG:4527", allow_override=True)
    check_network_crs(frame)  # a projected CRS is trusted
    check_network_crs(frame.to_crs(4326))
    with pytest.raises(InputError, match="declares no CRS"):
        check_network_crs(gpd.GeoSeries(frame.geometry.to_numpy()))


def test_gates_far_from_their_compound_are_reported(tmp_path):
    compounds = gpd.GeoDataFrame(
        {"community_id": ["C1", "C2"], "name": ["甲", "乙"]},
        geometry=[shapely.box(116.330, 40.000, 116.332, 40.002), shapely.Point(116.34, 40.0)],
        crs=4326,
    )
    text = (
        "gate_id,community_id,lng,lat\n"
        "G1,C1,116.331,40.001\n"  # inside its polygon
        "G2,C1,116.331,40.0020\n"  # on its edge
        "G3,C2,116.340,40.0040\n"  # 444 m north of a point compound
        "G4,C1,116.331,40.0200\n"  # 2 km away
    )
    gates = load_gates(write_csv(tmp_path / "gates.csv", text), communities=compounds).data
    distance = gate_distances(gates, compounds)
    expected = metres([116.34, 116.331], [40.0, 40.002], [116.34, 116.331], [40.004, 40.02])
    assert distance.tolist()[:2] == [0.0, pytest.approx(0.0, abs=1e-6)]
    assert distance.tolist()[2:] == pytest.approx(expected, rel=2e-3)
    warnings = gate_distance_warnings(gates, compounds)
    assert len(warnings) == 1
    assert warnings[0].startswith("gate G4 (gates.csv, row 5) lies 199")
    assert "from its compound C1 (more than 500 m)" in warnings[0]
    assert len(gate_distance_warnings(gates, compounds, max_m=400)) == 2


def test_demo_gates_are_all_near_their_compounds():
    from lifecircle.datasets import demo_data

    demo = demo_data()
    compounds = load_communities(demo.compounds).data
    gates = load_gates(demo.gates, communities=compounds).data
    assert gate_distance_warnings(gates, compounds) == []


# ---------------------------------------------------------------------------
# Excel and text as they really come
# ---------------------------------------------------------------------------


def merged_header_workbook(path: Path, *, title: bool = False) -> Path:
    """序号 and 名称 merged over two header rows, 坐标 merged over 经度 and 纬度."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    top = 1
    if title:
        sheet["A1"] = "附表2：设施一览表"
        sheet.merge_cells("A1:E1")
        top = 2
    sheet.cell(top, 1, "序号")
    sheet.cell(top, 2, "名称")
    sheet.cell(top, 3, "类型")
    sheet.cell(top, 4, "坐标")
    sheet.cell(top + 1, 4, "经度")
    sheet.cell(top + 1, 5, "纬度")
    for column in "ABC":
        sheet.merge_cells(f"{column}{top}:{column}{top + 1}")
    sheet.merge_cells(f"D{top}:E{top}")
    for _, row in POIS.iterrows():
        sheet.append([row["id"], row["name"], row["type"], row["lng"], row["lat"]])
    book.save(path)
    return path


@pytest.mark.parametrize("title", [False, True])
def test_two_row_merged_excel_header_is_combined(tmp_path, title):
    path = merged_header_workbook(tmp_path / "pois.xlsx", title=title)
    result = load_facilities(path, taxonomy=TAX, id_column="序号")
    assert_truth(result.data)
    first = 3 + title
    assert result.data["source_row"].tolist() == list(range(first, first + 4))
    assert f"header rows {1 + title}-{2 + title} combined" in result.notes
    assert "坐标_经度" in read_table(path).columns


def test_vertically_merged_type_cells_are_filled_down(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["类型", "名称", "经度", "纬度"])
    groups = [("kindergarten", 14), ("primary_school", 20), ("supermarket", 6)]
    row = 2
    for type_id, size in groups:
        for i in range(size):
            sheet.append([type_id if i == 0 else None, f"{type_id}{i}", 116.3 + i / 1e3, 40.0])
        sheet.merge_cells(f"A{row}:A{row + size - 1}")
        row += size
    book.save(tmp_path / "groups.xlsx")
    result = load_facilities(tmp_path / "groups.xlsx", taxonomy=TAX)
    assert len(result.data) == 40 and result.rejects.empty
    assert result.data["type"].value_counts().to_dict() == {
        "primary_school": 20,
        "kindergarten": 14,
        "supermarket": 6,
    }
    assert "37 cells of vertically merged ranges filled with the merged value" in result.notes


def test_formulas_without_cached_values_are_named(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["名称", "类型", "经度", "纬度"])
    for i in range(3):
        sheet.append([f"幼儿园{i}", "kindergarten", f"=116.3+{i}/1000", 40.0])
    book.save(tmp_path / "formulas.xlsx")  # openpyxl stores formulas, never their values
    with pytest.raises(InputError) as caught:
        load_facilities(tmp_path / "formulas.xlsx", taxonomy=TAX)
    message = str(caught.value)
    assert (
        "formula without a cached value: 3 rows (e.g. row 2, column 经度, value '=116.3+0/1000')"
        in message
    )
    assert "open the file in Excel or LibreOffice and save it" in message


def test_header_row_option_for_text_and_excel(tmp_path):
    junk = "导出时间,2024-05-01\n制表人,张三\n"
    path = write_csv(tmp_path / "pois.csv", junk + pois_csv_text())
    with pytest.raises(InputError, match="row 3: cannot split into columns"):
        load_facilities(path, taxonomy=TAX)
    result = load_facilities(path, taxonomy=TAX, header_row=3)
    assert_truth(result.data)
    assert result.data["source_row"].tolist() == [4, 5, 6, 7]
    two_rows = write_csv(tmp_path / "two.csv", "id,name,type,坐标,\n,,,lng,lat\n")
    two_rows.write_text(two_rows.read_text() + pois_csv_text().split("\n", 1)[1])
    combined = load_facilities(two_rows, taxonomy=TAX, header_row=[1, 2])
    assert_truth(combined.data)
    assert combined.data["source_row"].tolist() == [3, 4, 5, 6]
    excel = merged_header_workbook(tmp_path / "pois.xlsx")
    by_option = load_facilities(excel, taxonomy=TAX, header_row=(1, 2), id_column="序号")
    assert_truth(by_option.data)
    with pytest.raises(InputError, match="header_row"):
        load_facilities(path, taxonomy=TAX, header_row=0)


def test_big5_traditional_chinese_is_recognised(tmp_path):
    names = ["清華附小", "荷清苑幼兒園", "物美超市(五道口店)", "便利商店"]
    table = POIS.assign(
        name=names, 地址=["北京市海澱區成府路", "海澱區", "五道口購物中心", "雙清路"]
    )
    path = write_csv(tmp_path / "pois.csv", table.to_csv(index=False), "cp950")
    result = load_facilities(path, taxonomy=TAX)
    assert_truth(result.data)
    assert result.data["name"].tolist() == names
    assert "read as Big5 (Traditional Chinese) text" in result.notes


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom(tmp_path, encoding):
    path = write_csv(tmp_path / "pois.txt", pois_csv_text("\t"), encoding)
    result = load_facilities(path, taxonomy=TAX)
    assert_truth(result.data)
    assert list(result.data["name"]) == list(POIS["name"])
    assert "read as UTF-16 (no BOM) text" in result.notes


def test_control_characters_are_cleaned_so_excel_can_be_written(tmp_path):
    table = POIS.assign(name=["清华\x00附小", "荷清苑\x07幼儿园", "物美\x1b超市", "便利店"])
    path = write_csv(tmp_path / "pois.csv", table.to_csv(index=False))
    result = load_facilities(path, taxonomy=TAX)
    assert result.data["name"].tolist() == ["清华附小", "荷清苑幼儿园", "物美超市", "便利店"]
    assert "control characters (NUL and the like) removed from cells of name (3)" in result.notes
    pd.DataFrame(result.data.drop(columns="geometry")).to_excel(tmp_path / "out.xlsx")


def test_very_long_strings_are_cut_with_a_note(tmp_path, recwarn):
    table = POIS.assign(备注=["很长" * 20000, "短", "", "x"])
    path = write_csv(tmp_path / "pois.csv", table.to_csv(index=False))
    result = load_facilities(path, taxonomy=TAX)
    assert result.data["备注"].str.len().tolist() == [EXCEL_MAX_CHARS, 1, 0, 1]
    assert f"texts longer than {EXCEL_MAX_CHARS} characters (Excel's limit) cut in 备注 (1)" in (
        result.notes
    )
    assert len(recwarn) == 0


def test_clean_text_keeps_tabs_newlines_and_other_values():
    series = pd.Series(["a\tb\nc\r", None, 3.5, "\ufffe\x7fz"])
    assert clean_text(series).tolist()[:1] == ["a\tb\nc\r"]
    cleaned = clean_text(series)
    assert cleaned[1] is None and cleaned[2] == 3.5 and cleaned[3] == "z"


def test_a_decorative_merge_over_one_column_keeps_the_first_data_row(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["gate_id", "小区", "坐标", None])
    sheet.merge_cells("C1:D1")
    sheet.append(["G1", "XQ1", "120.65,28.01", None])
    sheet.append(["G2", "XQ1", "120.66,28.01", None])
    book.save(tmp_path / "gates.xlsx")
    result = load_gates(tmp_path / "gates.xlsx")
    assert result.data["gate_id"].tolist() == ["G1", "G2"]
    assert result.data["source_row"].tolist() == [2, 3]


def test_formulas_with_cached_values_are_read_as_values(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["名称", "类型", "经度", "纬度"])
    sheet.append(["幼儿园", "kindergarten", "=116.3+0", 40.0])
    book.save(tmp_path / "raw.xlsx")
    # Store a value beside the formula, as Excel does on saving.
    with zipfile.ZipFile(tmp_path / "raw.xlsx") as source:
        parts = {name: source.read(name) for name in source.namelist()}
    sheet_xml = "xl/worksheets/sheet1.xml"
    assert b"<f>116.3+0</f><v />" in parts[sheet_xml]
    parts[sheet_xml] = parts[sheet_xml].replace(b"<v />", b"<v>116.3</v>")
    with zipfile.ZipFile(tmp_path / "saved.xlsx", "w") as target:
        for name, content in parts.items():
            target.writestr(name, content)
    result = load_facilities(tmp_path / "saved.xlsx", taxonomy=TAX)
    assert result.data.geometry.x.tolist() == [116.3]
    assert not any("formula" in note for note in result.notes)
