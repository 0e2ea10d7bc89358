"""map.html from the demo outputs: layers, scorecards, legend, GCJ-02, assets, escaping, size."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from lifecircle import maps
from lifecircle.coords import wgs84_to_gcj02
from lifecircle.errors import InputError
from lifecircle.maps import (
    GAP_COLORS,
    SELF_CONTAINED_META,
    GapPopups,
    decode_polyline,
    encode_rings,
    gap_breaks,
    render_map,
    score_class,
)

PAYLOAD = "<img src=x onerror=alert(1)>"
TEMPLATE_PAYLOAD = "{{ 7*7 }}{% raw %}"
_BLOCK = re.compile(r'<script type="application/json" id="(lc-[a-z-]+)">(.*?)</script>', re.S)


def run_demo(out: Path, *extra: str) -> Path:
    """Run ``lifecircle demo`` into ``out`` (the real pipeline, about 5 s)."""
    subprocess.run(
        [sys.executable, "-m", "lifecircle.cli", "demo", "--out", str(out), "-q", *extra],
        check=True,
        capture_output=True,
    )
    return out


def blocks(page: str) -> dict[str, object]:
    """The JSON data blocks of a map page, parsed."""
    return {key: json.loads(text) for key, text in _BLOCK.findall(page)}


def overlay_layers(page: str) -> list[tuple[str, str]]:
    """(name, JS variable) of the layer control's overlays, in order."""
    found = re.findall(r'("(?:[^"\\]|\\.)+") : (feature_group_\d+|marker_cluster_\d+)', page)
    return [(json.loads(name), variable) for name, variable in found]


def inject_names(out: Path, compound_id: str = "C001", name: str = PAYLOAD) -> None:
    """Give one compound and the first facility a hostile name, in place."""
    path = out / "communities.gpkg"
    layers = {layer: gpd.read_file(path, layer=layer) for layer in ("communities", "gates")}
    communities = layers["communities"]
    communities.loc[communities["community_id"] == compound_id, "name"] = name
    path.unlink()
    for layer, frame in layers.items():
        frame.to_file(path, layer=layer, driver="GPKG")
    facilities = pd.read_csv(out / "facilities.csv", encoding="utf-8-sig", dtype=str)
    facilities.loc[0, "name"] = name
    facilities.loc[0, "address"] = TEMPLATE_PAYLOAD
    facilities.to_csv(out / "facilities.csv", index=False, encoding="utf-8-sig")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_demo(tmp_path_factory.mktemp("map-demo"))


@pytest.fixture(scope="module")
def demo_gb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_demo(tmp_path_factory.mktemp("map-demo-gb"), "--standard", "gb50180-2018")


@pytest.fixture
def demo_copy(demo: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(demo, out)
    (out / "map.html").unlink(missing_ok=True)
    return out


@pytest.fixture(scope="module")
def offline_map(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("offline")
    shutil.copytree(demo, out, dirs_exist_ok=True)
    path = render_map(out, basemap="none")
    return out, path.read_text(encoding="utf-8")


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


# ------------------------------------------------------------------ layers
def test_every_layer_has_one_feature_per_row(offline_map: tuple[Path, str]):
    out, page = offline_map
    data = blocks(page)
    communities = gpd.read_file(out / "communities.gpkg", layer="communities")
    gates = gpd.read_file(out / "communities.gpkg", layer="gates")
    gaps = gpd.read_file(out / "gaps.gpkg", layer="gaps")
    isochrones = gpd.read_file(out / "isochrones.gpkg")
    facilities = pd.read_csv(out / "facilities.csv", encoding="utf-8-sig")
    assert len(data["lc-data-compounds"]["features"]) == len(communities) == 66
    assert len(data["lc-data-gates"]["features"]) == len(gates) == 143
    assert len(data["lc-data-gaps"]["features"]) == len(gaps) > 0
    assert len(data["lc-data-boundary"]["features"]) == 1
    assert len(data["lc-data-facilities"]["points"]) == len(facilities) == 179
    iso = data["lc-data-isochrones"]
    assert iso["bands"] == [5, 10, 15]
    for band in ("5", "10", "15"):
        assert len(iso["features"][band]["features"]) == 66
    assert len(isochrones) == 3 * 66
    sites = gpd.read_file(out / "sites.gpkg", layer="sites")
    assert len(data["lc-data-sites"]["features"]) == len(sites) == 3
    assert [f["p"]["r"] for f in data["lc-data-sites"]["features"]] == ["1", "2", "3"]


def test_gap_popups_show_robustness(offline_map: tuple[Path, str]):
    out, page = offline_map
    gaps = gpd.read_file(out / "gaps.gpkg", layer="gaps")
    assert set(gaps["robustness"]) <= {"robust", "fragile", "mixed"}
    block = blocks(page)["lc-data-gaps"]
    popups = [
        GapPopups.fill(block["popups"][p[0]], p[1:])
        for p in (f["p"]["p"] for f in block["features"])
    ]
    labels = {
        "robust": "稳健：所有假设下都存在",
        "fragile": "脆弱：随假设而变",
        "mixed": "部分稳健",
    }
    for popup, robustness in zip(popups, gaps["robustness"], strict=True):
        assert labels[robustness] in popup


def test_each_gap_popup_and_tooltip_carry_that_gaps_own_escaped_values(demo: Path):
    results = maps.read_results(demo)
    gaps = results.gaps
    assert gaps is not None and len(gaps) >= 3
    gaps.loc[0, "gap_id"] = PAYLOAD
    gaps.loc[1, "robustness"] = None
    gaps.loc[2, "max_min"] = np.nan
    gaps["disappears_at"] = [None] + ["1.2 km"] * (len(gaps) - 1)
    block = blocks(maps.map_page(results, lang="en", basemap="none"))["lc-data-gaps"]
    features = block["features"]
    assert len(features) == len(gaps)
    labels = maps.Labels(results.standard, "en")
    for feature, row in zip(features, gaps.itertuples(), strict=True):
        popup = GapPopups.fill(block["popups"][feature["p"]["p"][0]], feature["p"]["p"][1:])
        assert html.escape(str(row.gap_id), quote=False) in popup
        assert f"{row.population:,.0f}" in popup
        assert f"{row.cells:,.0f}" in popup
        assert f"{row.area_m2 / 10_000:.1f} ha" in popup
        assert ("1.2 km" in popup) == pd.notna(row.disappears_at)
        assert labels.item(row.item) in popup
        tip = html.unescape(feature["p"]["t"])
        assert tip.startswith(f"{labels.item(row.item)} · ")
        assert f"{row.population:,.0f}" in tip
        assert tip.count(" · ") == (2 if pd.notna(row.robustness) else 1)
    assert PAYLOAD not in json.dumps(block, ensure_ascii=False)
    assert "not reachable" in GapPopups.fill(
        block["popups"][features[2]["p"]["p"][0]], features[2]["p"]["p"][1:]
    )


def test_layer_control_lists_layers_and_isochrones_start_hidden(offline_map):
    _, page = offline_map
    overlays = overlay_layers(page)
    names = [name for name, _ in overlays]
    assert names == [
        "研究范围",
        "服务盲区（按影响人口着色）",
        "5 分钟等时圈",
        "10 分钟等时圈",
        "15 分钟等时圈",
        "小区（按得分着色）",
        "小区出入口",
        "建议新址",
        "一张图：社区",
        "一张图：设施（按类别）",
        "老年人接驳车",
        "设施",
    ]
    groups = dict(overlays)
    for name in ("一张图：社区", "一张图：设施（按类别）", "老年人接驳车"):
        assert f"{groups[name]}.addTo(" not in page  # off by default
    for band in ("5", "10", "15"):
        variable = groups[f"{band} 分钟等时圈"]
        assert f"{variable}.addTo(" not in page  # off by default
    assert f"{groups['小区（按得分着色）']}.addTo(" in page
    assert "L.control.scale()" in page
    assert "L.control.layers(" in page


def test_compound_geometry_round_trips_within_simplification(offline_map):
    out, page = offline_map
    communities = gpd.read_file(out / "communities.gpkg", layer="communities")
    feature = blocks(page)["lc-data-compounds"]["features"][0]
    ring = decode_polyline(feature["e"][0][0])
    original = communities.geometry.iloc[0]
    drawn = shapely.Polygon(ring)
    metric = gpd.GeoSeries([original, drawn], crs=4326).to_crs(32651)
    assert metric.iloc[0].hausdorff_distance(metric.iloc[1]) < 3.5
    assert np.allclose(ring, np.round(ring, 6))


def test_polyline_encoding_matches_the_published_algorithm():
    coords = np.array([[-120.2, 38.5], [-120.95, 40.7], [-126.453, 43.252]])
    encoded = encode_rings(coords, np.array([0, 3]))
    assert encoded == ["_izlhA~rlgdF_{geC~ywl@_kwzCn`{nI"]
    assert np.allclose(decode_polyline(encoded[0]), coords)
    rng = np.random.default_rng(1)
    many = np.round(rng.uniform([100, 20], [130, 45], (40, 2)), 6)
    rings = encode_rings(many, np.array([0, 7, 7, 40]))
    assert rings[1] == ""
    assert np.array_equal(np.vstack([decode_polyline(r) for r in rings if r]), many)


# --------------------------------------------------------------- scorecard
def test_scorecard_shows_each_category_with_minutes_and_the_tier_verdict(offline_map):
    out, page = offline_map
    data = blocks(page)
    card = data["lc-config"]["card"]
    assert [i["label"] for i in card["items"]] == ["教育", "商业交通", "文体", "养老"]
    assert {i["limit"] for i in card["items"]} == {"15 分钟"}
    assert card["tiers"] == ["十五分钟生活圈"]
    communities = gpd.read_file(out / "communities.gpkg", layer="communities")
    row = communities.set_index("community_id").loc["C001"]
    record = next(f["p"] for f in data["lc-data-compounds"]["features"] if f["p"]["i"] == "C001")
    assert record["n"] == html.escape(row["name"])
    assert record["s"] == f"{row['score']:g}"
    assert record["pop"] == f"{row['population']:,.0f}"
    assert record["v"] == [int(row["tier_15min_pass"])] == [0]
    ids = [i["id"] for i in card["items"]]
    assert record["m"] == [round(float(row[f"{i}_min"]), 1) for i in ids]
    assert record["ok"] == [int(row[f"{i}_ok"]) for i in ids]
    assert record["ok"][ids.index("elderly_care")] == 0
    assert record["m"][ids.index("elderly_care")] == round(row["elderly_care_min"], 1) > 15
    assert record["iso"] == 1
    assert record["b"] == score_class(row["score"])


def test_standard_without_categories_gets_type_rows_grouped_by_tier(demo_gb: Path):
    data = blocks(render_map(demo_gb, basemap="none").read_text(encoding="utf-8"))
    card = data["lc-config"]["card"]
    assert card["tiers"] == [
        "十五分钟生活圈居住区",
        "十分钟生活圈居住区",
        "五分钟生活圈居住区",
        "居住街坊",
    ]
    labels = {i["label"]: i for i in card["items"]}
    assert labels["幼儿园"]["tier"] == 2 and labels["幼儿园"]["limit"] == "5 分钟"
    assert labels["初中"]["tier"] == 0 and labels["初中"]["limit"] == "16.7 分钟"
    assert labels["轨道交通站（可选）"]["tier"] == 0
    assert labels["便利店"]["tier"] == 3
    assert len(card["items"]) == 24
    record = data["lc-data-compounds"]["features"][0]["p"]
    assert len(record["v"]) == 4 and len(record["m"]) == 24


def test_english_interface_keeps_data_names(demo_copy: Path):
    data = blocks(render_map(demo_copy, basemap="none", lang="en").read_text(encoding="utf-8"))
    card = data["lc-config"]["card"]
    assert [i["label"] for i in card["items"]][:2] == ["Education", "Commerce and transport"]
    assert card["text"]["missing"] == "✗ missing"
    assert card["tiers"] == ["15-minute life circle"]
    names = {f["p"]["n"] for f in data["lc-data-compounds"]["features"]}
    assert "示例·兰馨佳园" in names
    assert "15-minute life circle assessment" in data["lc-config"]["title_html"]
    page = (demo_copy / "map.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in page


# ----------------------------------------------------------------- legend
def test_legend_shows_score_classes_gap_classes_and_facility_types(offline_map):
    _, page = offline_map
    config = blocks(page)["lc-config"]
    legend = config["legend_html"]
    for label in ("小区得分", "&lt; 60", "60–&lt;75", "90–&lt;100", "无得分", "服务盲区影响人口"):
        assert label in legend
    assert "公交车站 (48)" in legend
    assert 'class="fa fa-bus"' in legend
    assert "研究范围" in legend and "小区出入口" in legend
    assert all(color in legend for color in GAP_COLORS)


def test_gap_classes_use_rounded_quintiles():
    assert gap_breaks([10, 20, 30, 40, 50, 600, 700, 800, 900, 1000]) == [28.0, 46.0, 640.0, 820.0]
    assert gap_breaks([]) == []
    assert gap_breaks([5.0]) == []


def test_title_marks_synthetic_data_and_osm_data_is_attributed(demo_copy: Path):
    config = blocks(render_map(demo_copy, basemap="none").read_text(encoding="utf-8"))["lc-config"]
    assert "合成示例数据" in config["title_html"]
    assert "© OpenStreetMap contributors" not in " ".join(config["attribution"])
    summary_path = demo_copy / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    summary["attribution"] = ["Street and/or POI data © OpenStreetMap contributors, ODbL 1.0"]
    summary_path.write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
    config = blocks(render_map(demo_copy, basemap="none").read_text(encoding="utf-8"))["lc-config"]
    assert "合成示例数据" not in config["title_html"]
    assert "© OpenStreetMap contributors" in " ".join(config["attribution"])


# ------------------------------------------------------------------ basemaps
def test_amap_shifts_every_overlay_to_gcj02(demo_copy: Path):
    plain = blocks(render_map(demo_copy, basemap="none").read_text(encoding="utf-8"))
    page = render_map(demo_copy, basemap="amap").read_text(encoding="utf-8")
    shifted = blocks(page)
    assert "webrd0{s}.is.autonavi.com" in page
    facilities = pd.read_csv(demo_copy / "facilities.csv", encoding="utf-8-sig")
    lat, lon = shifted["lc-data-facilities"]["points"][0][:2]
    expected = wgs84_to_gcj02(facilities["lon"].iloc[0], facilities["lat"].iloc[0])
    assert lon == pytest.approx(float(expected[0]), abs=1e-6)
    assert lat == pytest.approx(float(expected[1]), abs=1e-6)
    assert 450 < metres(facilities["lon"].iloc[0], facilities["lat"].iloc[0], lon, lat) < 650
    for key in ("compounds", "gaps", "boundary"):
        before = decode_polyline(plain[f"lc-data-{key}"]["features"][0]["e"][0][0])[0]
        after = decode_polyline(shifted[f"lc-data-{key}"]["features"][0]["e"][0][0])[0]
        assert 450 < metres(*before, *after) < 650, key
    for key in ("gates",):
        before = plain[f"lc-data-{key}"]["features"][0]["c"]
        after = shifted[f"lc-data-{key}"]["features"][0]["c"]
        assert 450 < metres(*before, *after) < 650
    band = shifted["lc-data-isochrones"]["features"]["15"]["features"][0]["e"][0][0]
    plain_band = plain["lc-data-isochrones"]["features"]["15"]["features"][0]["e"][0][0]
    assert 450 < metres(*decode_polyline(plain_band)[0], *decode_polyline(band)[0]) < 650


def test_known_point_in_wenzhou_moves_about_540_m():
    lon, lat = wgs84_to_gcj02(120.65, 28.01)
    assert metres(120.65, 28.01, float(lon), float(lat)) == pytest.approx(540, abs=40)


def test_tianditu_needs_a_key(demo_copy: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LIFECIRCLE_TIANDITU_KEY", raising=False)
    with pytest.raises(InputError, match="LIFECIRCLE_TIANDITU_KEY"):
        render_map(demo_copy, basemap="tianditu")
    with pytest.raises(InputError, match="letters and digits"):
        render_map(demo_copy, basemap="tianditu", tianditu_key="abc'};alert(1)//")
    page = render_map(demo_copy, basemap="tianditu", tianditu_key="0123abcd0123abcd").read_text(
        encoding="utf-8"
    )
    assert "tianditu.gov.cn/vec_w/wmts" in page and "tk=0123abcd0123abcd" in page
    assert "tianditu.gov.cn/cva_w/wmts" in page
    monkeypatch.setenv("LIFECIRCLE_TIANDITU_KEY", "fedcba9876543210")
    page = render_map(demo_copy, basemap="tianditu", lang="en").read_text(encoding="utf-8")
    assert "tk=fedcba9876543210" in page and "eva_w" in page


@pytest.mark.parametrize(
    ("basemap", "marker"),
    [
        ("osm", "tile.openstreetmap.org"),
        ("light", "World_Light_Gray_Base"),
        ("none", None),
    ],
)
def test_basemaps(demo_copy: Path, basemap: str, marker: str | None):
    page = render_map(demo_copy, basemap=basemap).read_text(encoding="utf-8")
    if marker is None:
        assert "L.tileLayer(" not in page
    else:
        assert marker in page and "L.tileLayer(" in page


def test_bad_options_are_input_errors(demo_copy: Path, tmp_path: Path):
    with pytest.raises(InputError, match="unknown basemap"):
        render_map(demo_copy, basemap="google")
    with pytest.raises(InputError, match="unknown language"):
        render_map(demo_copy, lang="fr")
    with pytest.raises(InputError, match=r"summary\.json not found"):
        render_map(tmp_path)


# --------------------------------------------------------------- self-contained
def external_assets(page: str) -> list[str]:
    """script src / link href / CSS url() pointing at the network."""
    found = re.findall(r"<script[^>]*\bsrc=[\"']?([^\"' >]+)", page)
    found += re.findall(r"<link[^>]*\bhref=[\"']?([^\"' >]+)", page)
    found += re.findall(r"url\(\s*[\"']?((?:https?:)?//[^)\"']+)", page)
    found += re.findall(r"@import\s+[\"']?([^;\"']+)", page)
    return found


def test_self_contained_page_loads_no_script_or_style_from_the_network(demo_copy: Path):
    online = render_map(demo_copy, basemap="none", cdn=True).read_text(encoding="utf-8")
    assert any("cdn.jsdelivr.net/npm/leaflet@" in url for url in external_assets(online))
    # the former default (self_contained=False) gives an offline page too now
    former = render_map(demo_copy, basemap="none", self_contained=False)
    assert SELF_CONTAINED_META in former.read_text(encoding="utf-8")
    explicit = render_map(demo_copy, basemap="none", self_contained=True).read_text(
        encoding="utf-8"
    )
    page = render_map(demo_copy, basemap="none").read_text(encoding="utf-8")  # the default
    assert page == explicit
    assert external_assets(page) == []
    assert "cdn.jsdelivr" not in page and "cdnjs" not in page and "code.jquery" not in page
    assert '<meta name="lifecircle-map" content="self-contained">' in page
    assert "L.MarkerClusterGroup" in page  # inlined plugin
    assert "data:font/woff2;base64," in page  # inlined icon font
    assert "sourceMappingURL" not in page


def test_same_results_give_the_same_file(demo_copy: Path):
    first = render_map(demo_copy, basemap="none").read_bytes()
    assert render_map(demo_copy, basemap="none").read_bytes() == first


# -------------------------------------------------------------------- escaping
def test_data_strings_are_escaped_and_never_templated(demo_copy: Path):
    inject_names(demo_copy, name=PAYLOAD + TEMPLATE_PAYLOAD)
    page = render_map(demo_copy, basemap="none").read_text(encoding="utf-8")
    assert "<img" not in page
    assert "onerror=alert(1)>" not in page
    data = blocks(page)
    escaped = html.escape(PAYLOAD + TEMPLATE_PAYLOAD)
    record = next(f["p"] for f in data["lc-data-compounds"]["features"] if f["p"]["i"] == "C001")
    assert record["n"] == escaped
    point = data["lc-data-facilities"]["points"][0]
    assert point[3] == escaped
    assert escaped in point[4] and html.escape(TEMPLATE_PAYLOAD) in point[4]
    assert any(escaped in f["p"]["t"] for f in data["lc-data-gates"]["features"])
    assert "49" not in record["n"]


# ------------------------------------------------------------------------ scale
def test_isochrones_can_be_limited_to_the_worst_compounds(demo_copy: Path):
    page = render_map(demo_copy, basemap="none", max_isochrone_compounds=10).read_text(
        encoding="utf-8"
    )
    data = blocks(page)
    communities = gpd.read_file(demo_copy / "communities.gpkg", layer="communities")
    worst = communities.sort_values(["score", "population"], ascending=[True, False]).index[:10]
    for band in ("5", "10", "15"):
        ks = sorted(f["p"]["k"] for f in data["lc-data-isochrones"]["features"][band]["features"])
        assert ks == sorted(worst.tolist())
    assert "15 分钟等时圈（10/66 个小区）" in [name for name, _ in overlay_layers(page)]
    with_button = [f["p"]["k"] for f in data["lc-data-compounds"]["features"] if f["p"].get("iso")]
    assert sorted(with_button) == sorted(worst.tolist())


def synthetic_output(out: Path, demo: Path, n: int = 2000, vertices: int = 150) -> Path:
    """An output folder of ``n`` square compounds with jagged 5/10/15-minute isochrones."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(demo / "summary.json", out / "summary.json")
    rng = np.random.default_rng(7)
    side = math.ceil(math.sqrt(n))
    x = 300_000 + (np.arange(n) % side) * 120.0
    y = 3_100_000 + (np.arange(n) // side) * 120.0
    squares = shapely.box(x, y, x + 80, y + 80)
    categories = ["education", "commerce", "transport", "culture_sports", "elderly_care"]
    columns = {
        "community_id": [f"S{i:05d}" for i in range(n)],
        "name": [f"合成小区{i}号" for i in range(n)],
        "population": rng.integers(200, 5000, n).astype(float),
        "score": rng.choice([40.0, 60.0, 80.0, 100.0], n),
        "tier_15min_pass": rng.random(n) > 0.3,
        "route_status": "ok",
        "origin": "gate",
        "n_gates": 2,
    }
    for category in categories:
        columns[f"{category}_ok"] = rng.random(n) > 0.2
        columns[f"{category}_min"] = np.round(rng.uniform(1, 30, n), 1)
    frame = gpd.GeoDataFrame(columns, geometry=squares, crs=32651).to_crs(4326)
    frame.to_file(out / "communities.gpkg", layer="communities", driver="GPKG")
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    rows = []
    for minutes, radius in ((5, 300.0), (10, 600.0), (15, 900.0)):
        jitter = radius * rng.uniform(0.8, 1.0, (n, vertices))
        ring = np.stack(
            [x[:, None] + 40 + jitter * np.cos(angles), y[:, None] + 40 + jitter * np.sin(angles)],
            axis=-1,
        )
        polygons = shapely.polygons(np.concatenate([ring, ring[:, :1]], axis=1))
        rows.append(
            gpd.GeoDataFrame(
                {"community_id": columns["community_id"], "minutes": minutes},
                geometry=polygons,
                crs=32651,
            )
        )
    iso = gpd.GeoDataFrame(pd.concat(rows, ignore_index=True), crs=32651).to_crs(4326)
    iso.to_file(out / "isochrones.gpkg", layer="isochrones", driver="GPKG")
    return out


def test_two_thousand_compounds_with_isochrones_stay_under_15_mb(demo: Path, tmp_path: Path):
    out = synthetic_output(tmp_path / "big", demo)
    path = render_map(out, basemap="osm", self_contained=True)
    size = path.stat().st_size
    assert size < 15_000_000, f"map.html is {size / 1e6:.1f} MB"
    data = blocks(path.read_text(encoding="utf-8"))
    assert len(data["lc-data-compounds"]["features"]) == 2000
    for band in ("5", "10", "15"):
        assert len(data["lc-data-isochrones"]["features"][band]["features"]) == 2000
    assert 'preferCanvas": true' in path.read_text(encoding="utf-8")


# ------------------------------------------------- context, gaps, notebook
def add_river(out: Path) -> None:
    """Put the demo's river into the folder's map context (the demo command may not)."""
    from lifecircle.datasets import demo_data
    from lifecircle.outputs import CONTEXT_FILE, write_layers

    streets = gpd.read_file(out / CONTEXT_FILE, layer="streets")
    river = gpd.read_file(demo_data().river).to_crs(4326)
    write_layers({"streets": streets, "water": river[["geometry"]]}, out / CONTEXT_FILE)


def test_map_carries_streets_by_class_and_water_as_context(demo_copy: Path):
    from lifecircle.datasets import demo_data
    from lifecircle.network import load_network
    from lifecircle.outputs import street_class

    add_river(demo_copy)
    context = blocks(render_map(demo_copy).read_text(encoding="utf-8"))["lc-data-context"]
    net = load_network(demo_data().streets)
    used = np.unique(net.seg_way)
    expected = street_class(net.ways.iloc[used]["highway"]).value_counts().to_dict()
    classes = pd.Series([f["p"]["c"] for f in context["streets"]["features"]]).value_counts()
    names = {0: "major", 1: "minor", 2: "path"}
    assert {names[k]: v for k, v in classes.items()} == expected
    assert len(context["water"]["features"]) == 1
    # main streets are drawn last, on top of the minor ones
    order = [f["p"]["c"] for f in context["streets"]["features"]]
    assert order == sorted(order, reverse=True)


def test_gaps_are_cut_to_the_study_boundary(offline_map: tuple[Path, str]):
    out, page = offline_map
    boundary = gpd.read_file(out / "gaps.gpkg", layer="boundary").to_crs(4326)
    area = shapely.union_all(boundary.geometry.to_numpy())
    gaps = gpd.read_file(out / "gaps.gpkg", layer="gaps").to_crs(4326)
    assert shapely.difference(shapely.union_all(gaps.geometry.to_numpy()), area).area > 0  # spill
    drawn = []
    for feature in blocks(page)["lc-data-gaps"]["features"]:
        for polygon in feature["e"]:
            rings = [decode_polyline(r) for r in polygon]
            drawn.append(shapely.Polygon(rings[0], rings[1:]))
    outside = shapely.difference(shapely.union_all(drawn), area.buffer(1e-5))
    assert outside.area == pytest.approx(0, abs=1e-12)


def test_gaps_carry_their_item_and_the_legend_offers_a_selector(offline_map):
    out, page = offline_map
    data = blocks(page)
    gaps = gpd.read_file(out / "gaps.gpkg", layer="gaps")
    totals = gaps.groupby("item")["population"].sum().sort_values(ascending=False)
    index = {item: i for i, item in enumerate(totals.index)}
    assert [f["p"]["c"] for f in data["lc-data-gaps"]["features"]] == [
        index[i] for i in gaps["item"]
    ]
    legend = data["lc-config"]["legend_html"]
    assert '<select class="lc-gap-select">' in legend and "全部类型" in legend
    assert all(f'<option value="{i}">' in legend for i in index.values())
    assert "养老" in legend
    assert "圆圈中的数字为该处设施个数" not in legend  # a subdistrict's markers are not clustered


def test_default_map_is_self_contained_and_names_the_tile_fallback(demo_copy: Path):
    page = render_map(demo_copy).read_text(encoding="utf-8")
    assert '<meta name="lifecircle-map" content="self-contained">' in page
    assert "tile.openstreetmap.org" in page  # tiles are still tried
    assert "底图无法加载" in blocks(page)["lc-config"]["tile_note"]
    with pytest.raises(InputError, match="not both"):
        render_map(demo_copy, self_contained=True, cdn=True)


def test_notebook_map_is_an_inline_self_contained_frame(offline_map: tuple[Path, str]):
    from lifecircle.maps import NotebookMap, notebook_map

    out, _ = offline_map
    shown = notebook_map(out, lang="en", basemap="none")
    assert isinstance(shown, NotebookMap)
    frame = shown._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts' in frame
    inner = html.unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
    assert inner == shown.html
    assert '<meta name="lifecircle-map" content="self-contained">' in inner
    assert len(blocks(inner)["lc-data-compounds"]["features"]) == 66
    assert "<script src=" not in inner


def test_whatif_sets_add_up_to_the_siting_result(tmp_path: Path):
    from lifecircle.maps import whatif_data, whatif_totals
    from lifecircle.siting import recommend_sites, worst_covered_type
    from lifecircle.study import Study

    study = Study.from_demo()
    siting = recommend_sites(study, worst_covered_type(study), 3)
    data = whatif_data(study, siting, max_candidates=20)
    ranked = [s for s in data["sites"] if s["rank"] is not None]
    assert [s["rank"] for s in ranked] == [1, 2, 3]
    assert len(data["sites"]) <= 3 + 20 and all(s["covers"] for s in data["sites"])
    for n in (1, 2, 3):
        totals = whatif_totals(data, [s["id"] for s in ranked[:n]])
        expected = float(siting.sites["cumulative_covered"].iloc[n - 1])
        assert totals["residents"]["all"] == pytest.approx(expected, abs=0.2)
    covered = study.score()[f"{siting.target}_ok"].to_numpy(dtype=bool)
    assert not any(covered[k] for s in data["sites"] for k in s["covers"])  # only new ones


def test_any_folium_map_can_be_made_standalone():
    import folium

    from lifecircle.maps import standalone_html

    fmap = folium.Map(location=[28.0, 120.6], zoom_start=12, tiles=None)
    layer = folium.GeoJson({"type": "Point", "coordinates": [120.6, 28.0]})
    folium.Popup("<b>x</b>").add_to(layer)
    layer.add_to(fmap)
    page = standalone_html(fmap)
    assert external_assets(page) == []
    assert SELF_CONTAINED_META in page and "L.MarkerClusterGroup" in page


# ---------------------------------------------------------- one map, shuttle
def test_onemap_layer_draws_each_community_with_its_figures(offline_map):
    out, page = offline_map
    data = blocks(page)["lc-data-onemap"]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))["onemap"]
    table = pd.read_csv(out / "onemap_districts.csv", encoding="utf-8-sig")
    assert len(data["districts"]["features"]) == summary["districts"] == len(table) == 6
    popups = {f["p"]["t"]: f["p"]["p"] for f in data["districts"]["features"]}
    for row, csv_row in zip(summary["per_district"], table.itertuples(), strict=True):
        popup = " ".join(
            html.unescape(re.sub(r"<[^>]+>", " ", popups[row["district_name"]])).split()
        )
        assert f"人口 {row['population']:,.0f}" in popup
        assert f"60岁及以上 {row['pop_age_60plus']:,}" in popup
        assert f"完善度 {100 * row['completeness']:.1f}%" in popup
        assert f"十五分钟生活圈达标比例 {100 * csv_row.tier_15min_pass_share:.1f}%" in popup
        assert f"设施数 {row['n_facilities']}" in popup
        assert row["worst_compounds"].split(";")[0] in popup
        assert "_" not in popup  # type ids are in words
    assert "初中" in popups["示例一社区"] and "社区食堂" in popups["示例一社区"]
    assert len(data["points"]) == summary["facilities"] == 179
    labels = [html.unescape(c["label"]) for c in data["categories"]]
    per_category = {}
    for point in data["points"]:
        per_category[labels[point[2]]] = per_category.get(labels[point[2]], 0) + 1
    assert per_category["交通"] == summary["by_category"]["transport"] == 49
    assert per_category["养老"] == summary["by_category"]["elderly_care"] == 11
    legend = blocks(page)["lc-config"]["legend_html"]
    assert legend.count('<option value="', legend.index("lc-cat-select")) >= len(labels)
    assert "一张图：设施类别" in legend and "交通 (49)" in legend


def test_shuttle_layer_has_the_route_and_stops_with_their_timetable(offline_map):
    out, page = offline_map
    data = blocks(page)["lc-data-shuttle"]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))["shuttle"]
    route = gpd.read_file(out / "shuttle.gpkg", layer="route")
    assert len(data["stops"]["features"]) == summary["stops"] == 10
    assert len(data["route"]["features"]) == len(route)
    # each leg as encoded polylines, within the display rounding of the route
    for feature, leg in zip(data["route"]["features"], route.geometry, strict=True):
        drawn = shapely.MultiLineString([decode_polyline(part) for part in feature["l"]])
        assert shapely.hausdorff_distance(drawn, leg) < 4e-5  # degrees: the 3 m simplification
    timetable = pd.read_csv(out / "shuttle_timetable.csv", encoding="utf-8-sig", dtype=str)
    first = timetable[timetable["stop_id"] == "S01"]
    popup = html.unescape(data["stops"]["features"][0]["p"]["p"])
    assert "接驳站点 S01" in popup
    trips, leaves, back = first["trip"].nunique(), first["depart"].min(), first["arrive"].max()
    assert trips == 73 and f"时刻表: {trips} 班，{leaves}–{back}" in popup
    assert "目的地站" in popup and "老年人日间照料中心" in popup
    legend = blocks(page)["lc-config"]["legend_html"]
    assert "接驳线路" in legend and "接驳站点" in legend


def test_legend_names_items_without_data(demo_copy: Path):
    page = render_map(demo_copy, basemap="none").read_text(encoding="utf-8")
    assert "无数据（非盲区）" not in blocks(page)["lc-config"]["legend_html"]
    path = demo_copy / "summary.json"
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["results"]["no_data"] = ["elderly_care", "culture_sports"]
    path.write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
    legend = blocks(render_map(demo_copy, basemap="none").read_text(encoding="utf-8"))["lc-config"][
        "legend_html"
    ]
    assert "无数据（非盲区）: 养老、文体" in legend


def test_onemap_and_shuttle_strings_are_escaped(demo_copy: Path):
    path = demo_copy / "onemap.gpkg"
    layers = {layer: gpd.read_file(path, layer=layer) for layer in ("districts", "facilities")}
    layers["districts"].loc[0, "district_name"] = PAYLOAD
    layers["facilities"].loc[0, "name"] = PAYLOAD
    path.unlink()
    for layer, frame in layers.items():
        frame.to_file(path, layer=layer, driver="GPKG")
    page = render_map(demo_copy, basemap="none").read_text(encoding="utf-8")
    assert "<img" not in page
    data = blocks(page)["lc-data-onemap"]
    escaped = html.escape(PAYLOAD)
    assert data["districts"]["features"][0]["p"]["t"] == escaped
    assert escaped in data["districts"]["features"][0]["p"]["p"]
    assert data["points"][0][3] == escaped


def test_map_without_onemap_or_shuttle_leaves_their_layers_out(demo_copy: Path):
    (demo_copy / "onemap.gpkg").unlink()
    (demo_copy / "shuttle.gpkg").unlink()
    page = render_map(demo_copy, basemap="none").read_text(encoding="utf-8")
    assert 'id="lc-data-onemap"' not in page and 'id="lc-data-shuttle"' not in page
    names = [name for name, _ in overlay_layers(page)]
    assert "老年人接驳车" not in names and "一张图：社区" not in names


def test_a_subdistricts_facilities_are_not_clustered(offline_map: tuple[Path, str]):
    out, page = offline_map
    n_points = len(blocks(page)["lc-data-facilities"]["points"])
    assert n_points == len(pd.read_csv(out / "facilities.csv", encoding="utf-8-sig")) == 179
    assert n_points < maps.CLUSTER_FROM
    overlays = dict(overlay_layers(page))
    assert overlays["设施"].startswith("feature_group_")
    assert not any(v.startswith("marker_cluster_") for v in overlays.values())
    assert "L.markerClusterGroup(" not in page


def test_facilities_are_clustered_from_the_threshold_on(
    demo_copy: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(maps, "CLUSTER_FROM", 179)  # the demo's 179 facilities reach it
    page = render_map(demo_copy, basemap="none").read_text(encoding="utf-8")
    overlays = dict(overlay_layers(page))
    assert overlays["设施"].startswith("marker_cluster_")
    assert "L.markerClusterGroup(" in page
    assert "圆圈中的数字为该处设施个数" in blocks(page)["lc-config"]["legend_html"]
    monkeypatch.setattr(maps, "CLUSTER_FROM", 180)  # one more than the demo holds
    page = render_map(demo_copy, basemap="none").read_text(encoding="utf-8")
    assert dict(overlay_layers(page))["设施"].startswith("feature_group_")


def test_zh_map_gives_the_licence_line_in_chinese(demo_copy: Path):
    zh = blocks(render_map(demo_copy, basemap="none").read_text(encoding="utf-8"))["lc-config"]
    assert zh["attribution"] == ["lifecircle 生成的合成示例数据（CC0），并非真实地点"]
    en = render_map(demo_copy, basemap="none", lang="en").read_text(encoding="utf-8")
    assert blocks(en)["lc-config"]["attribution"] == [
        "Synthetic demo data generated by lifecircle (CC0); not a real place"
    ]


def test_display_simplification_redoes_shapes_douglas_peucker_breaks():
    from lifecircle.maps import _simplified

    # a bump of 2.9 m on the top edge with a hole inside it: dropping the bump
    # (Douglas-Peucker at 3 m) leaves the hole outside the shell, and it is lost
    shell = [(0, 0), (100, 0), (100, 100), (50, 102.9), (0, 100)]
    bumped = shapely.Polygon(shell, [[(45, 100.5), (55, 100.5), (55, 102), (45, 102)]])
    plain = shapely.Polygon([(0, 0), (100, 0), (100, 100), (50, 101), (0, 100)])
    assert bumped.is_valid
    assert len(shapely.simplify(bumped, 3.0, preserve_topology=False).interiors) == 0
    out = _simplified(np.array([bumped, plain, None], dtype=object), 3.0)
    assert out[0].is_valid and len(out[0].interiors) == 1
    assert out[0].equals(shapely.simplify(bumped, 3.0, preserve_topology=True))
    assert out[1].equals(shapely.simplify(plain, 3.0, preserve_topology=False))
    assert out[2] is None


@pytest.mark.parametrize("lat", [0.0, 28.0, 45.0, 60.0])
def test_display_simplification_tolerance_is_metres_at_any_latitude(lat: float):
    geod = pyproj.Geod(ellps="WGS84")
    shapes = []
    for offset_m in (2.5, 3.5):
        # a 1 km line east, bent north by offset_m at its middle; and the same going north
        end_east = geod.fwd(120.0, lat, 90, 1000)
        bent_east = geod.fwd(*geod.fwd(120.0, lat, 90, 500)[:2], 0, offset_m)
        shapes.append(shapely.LineString([(120.0, lat), bent_east[:2], end_east[:2]]))
        end_north = geod.fwd(120.0, lat, 0, 1000)
        bent_north = geod.fwd(*geod.fwd(120.0, lat, 0, 500)[:2], 90, offset_m)
        shapes.append(shapely.LineString([(120.0, lat), bent_north[:2], end_north[:2]]))
    drawn = maps.display_geometries(gpd.GeoSeries(shapes, crs=4326), gcj02=False)
    # the 3 m tolerance drops the 2.5 m bends and keeps the 3.5 m ones, either way
    assert [len(g.coords) for g in drawn] == [2, 2, 3, 3]
