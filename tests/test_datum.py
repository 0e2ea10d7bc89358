"""Tests of lifecircle.datum: every declared/actual pair of WGS84, GCJ-02 and BD-09."""

from __future__ import annotations

import itertools
import json

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from lifecircle.coords import from_wgs84, to_wgs84
from lifecircle.datasets import demo_data
from lifecircle.datum import DatumFit, assess_layer, fit_layer, parse_reading, reinterpret
from lifecircle.loading import load_communities, load_facilities, load_gates
from lifecircle.network import WalkNetwork, load_network, network_from_lines

from .conftest import grid_lines

READINGS = ("wgs84", "gcj02", "bd09")
PAIRS = list(itertools.product(READINGS, READINGS))
GEOD = pyproj.Geod(ellps="WGS84")
LABEL = {"wgs84": "WGS84", "gcj02": "GCJ-02", "bd09": "BD-09"}


@pytest.fixture(scope="module")
def demo():
    return demo_data()


@pytest.fixture(scope="module")
def network(demo) -> WalkNetwork:
    return load_network(demo.streets)


@pytest.fixture(scope="module")
def truth(demo) -> dict[str, gpd.GeoDataFrame]:
    """The demo layers in WGS84 (the POI export is GCJ-02, so it is loaded as such)."""
    communities = load_communities(demo.compounds).data
    return {
        "facilities": load_facilities(demo.pois, crs="gcj02").data,
        "compounds": communities,
        "gates": load_gates(demo.gates, communities=communities).data,
    }


def written_in(layer: gpd.GeoDataFrame, actual: str, declared: str) -> gpd.GeoDataFrame:
    """The layer's values written in ``actual`` and then loaded as if ``declared``."""

    def convert(xy: np.ndarray) -> np.ndarray:
        raw = from_wgs84(xy[:, 0], xy[:, 1], actual)
        return np.column_stack(to_wgs84(*raw, declared))

    moved = shapely.transform(layer.geometry.to_numpy(), convert)
    return layer.set_geometry(gpd.GeoSeries(moved, crs=4326))


def assess(layer: gpd.GeoDataFrame, declared: str, network: WalkNetwork, name: str) -> DatumFit:
    return assess_layer(
        layer.geometry,
        declared,
        network,
        layer=name,
        source=f"{name}.csv",
        option=f"--{name}-crs",
    )


@pytest.mark.parametrize("name", ["facilities", "compounds", "gates"])
@pytest.mark.parametrize(("declared", "actual"), PAIRS)
def test_every_declared_actual_pair_is_told_apart(truth, network, name, declared, actual):
    loaded = written_in(truth[name], actual, declared)
    fit = assess(loaded, declared, network, name)
    assert fit.best == actual
    assert fit.mismatch == (declared != actual)
    assert fit.chosen == declared
    assert fit.medians_m[actual] < 20
    if declared == actual:
        assert fit.message is None
        return
    assert fit.medians_m[declared] > 2 * fit.medians_m[actual]
    message = str(fit.message)
    assert message.startswith(f"{name} ({name}.csv) were loaded as {LABEL[declared]} ")
    assert f"far better as {LABEL[actual]}" in message
    assert f"{fit.medians_m[declared]:.0f} m to the nearest street" in message
    assert f"against {fit.medians_m[actual]:.0f} m as {LABEL[actual]}" in message
    assert message.endswith(f"pass --{name}-crs {actual} (or --{name}-crs auto)")


@pytest.mark.parametrize(("declared", "actual"), PAIRS)
def test_reinterpret_recovers_the_truth(truth, declared, actual):
    compounds = truth["compounds"]
    loaded = written_in(compounds, actual, declared)
    fixed = reinterpret(loaded, declared, actual)
    a = shapely.get_coordinates(fixed.geometry.to_numpy())
    b = shapely.get_coordinates(compounds.geometry.to_numpy())
    error = GEOD.inv(a[:, 0], a[:, 1], b[:, 0], b[:, 1])[2]
    assert np.max(error) < 0.05
    assert list(fixed["community_id"]) == list(compounds["community_id"])


@pytest.mark.parametrize("actual", READINGS)
def test_auto_picks_the_actual_reading_and_re_reads_the_layer(truth, network, actual):
    facilities = truth["facilities"]
    loaded = written_in(facilities, actual, "wgs84")
    fixed, fit = fit_layer(
        loaded, "auto", network, layer="facilities", source="p.csv", option="--facilities-crs"
    )
    assert fit.declared == "auto"
    assert fit.chosen == actual
    assert not fit.mismatch
    assert f"--facilities-crs auto chose {LABEL[actual]}" in str(fit.message)
    error = GEOD.inv(
        fixed.geometry.x, fixed.geometry.y, facilities.geometry.x, facilities.geometry.y
    )[2]
    assert np.max(error) < 0.05


def test_declared_system_is_left_alone_by_fit_layer(truth, network, caplog):
    loaded = written_in(truth["gates"], "bd09", "wgs84")
    same, fit = fit_layer(
        loaded, "wgs84", network, layer="gates", source="g.csv", option="--gates-crs"
    )
    assert fit.mismatch
    assert same.geometry.equals(loaded.geometry)
    assert "pass --gates-crs bd09" in caplog.text


def test_baidu_csv_loaded_as_wgs84_is_caught_end_to_end(truth, network, tmp_path):
    facilities = truth["facilities"]
    lon, lat = from_wgs84(facilities.geometry.x, facilities.geometry.y, "bd09")
    path = tmp_path / "baidu.csv"
    frame = facilities[["facility_id", "name", "type"]].assign(lng=lon, lat=lat)
    frame.to_csv(path, index=False)
    loaded = load_facilities(path)
    fit = assess_layer(
        loaded.data.geometry,
        "wgs84",
        network,
        layer="facilities",
        source=path.name,
        option="--facilities-crs",
    )
    assert fit.mismatch and fit.best == "bd09"
    assert "facilities (baidu.csv)" in str(fit.message)


@pytest.mark.parametrize("declared", READINGS)
def test_rural_compounds_far_from_streets_raise_no_alarm(truth, network, declared):
    # Move the compounds 3 km north of the network: no reading comes near a street.
    rural = truth["compounds"].copy()
    rural["geometry"] = rural.geometry.translate(0.0, 0.027)
    fit = assess(written_in(rural, declared, declared), declared, network, "compounds")
    assert min(fit.medians_m.values()) > 1000
    assert not fit.mismatch and fit.message is None


def test_one_remote_compound_among_good_ones_is_no_alarm(truth, network):
    compounds = truth["compounds"].copy()
    far = compounds.geometry.to_numpy().copy()
    far[0] = shapely.affinity.translate(far[0], 0.0, 0.05)
    compounds["geometry"] = far
    fit = assess(compounds, "wgs84", network, "compounds")
    assert fit.best == "wgs84" and not fit.mismatch


@pytest.mark.parametrize("declared", ["wgs84", "gcj02"])
def test_outside_china_readings_coincide_and_nothing_is_claimed(declared):
    # A street grid in Berlin (UTM 33N): GCJ-02 leaves points outside China unchanged.
    lines = grid_lines(8, 8, 120.0, crs="EPSG:32633").translate(390000.0, 5818000.0)
    net = network_from_lines(lines, crs="EPSG:32633")
    ends = shapely.line_interpolate_point(lines.to_numpy(), 0.37, normalized=True)
    points = gpd.GeoSeries(ends, crs="EPSG:32633").to_crs(4326)
    fit = assess_layer(points, declared, net, layer="facilities", source="b.csv", option="-o")
    assert fit.medians_m["wgs84"] == pytest.approx(fit.medians_m["gcj02"], abs=1e-6)
    assert fit.medians_m["wgs84"] < 1
    assert not fit.mismatch


def test_epsg_declared_layers_are_compared_with_the_chinese_readings(truth, network):
    gates = truth["gates"]
    shifted = written_in(gates, "gcj02", "wgs84")
    fit = assess(shifted, "EPSG:4490", network, "gates")
    assert set(fit.medians_m) == {"EPSG:4490", "gcj02", "bd09"}
    assert fit.mismatch and fit.best == "gcj02"
    assert "pass --gates-crs gcj02" in str(fit.message)


def test_sample_limits_the_points_and_is_reproducible(truth, network):
    facilities = truth["facilities"]
    first = assess_layer(
        facilities.geometry, "wgs84", network, layer="f", source="f", option="-o", sample=40
    )
    again = assess_layer(
        facilities.geometry, "wgs84", network, layer="f", source="f", option="-o", sample=40
    )
    assert first.sample_size == 40
    assert first.medians_m == again.medians_m


def test_a_layer_may_be_given_whole(truth, network):
    gates = written_in(truth["gates"], "gcj02", "wgs84")
    fit = assess_layer(gates, "wgs84", network, layer="gates", source="g", option="-o")
    assert fit.best == "gcj02" and fit.mismatch


def test_empty_layer_gives_an_empty_fit(network):
    fit = assess_layer(
        gpd.GeoSeries([], crs=4326), "gcj02", network, layer="f", source="f", option="-o"
    )
    assert fit.medians_m == {} and not fit.mismatch and fit.chosen == "gcj02"


def test_to_dict_is_json(truth, network):
    fit = assess(written_in(truth["gates"], "gcj02", "wgs84"), "wgs84", network, "gates")
    record = json.loads(json.dumps(fit.to_dict()))
    assert record["declared"] == "wgs84" and record["best"] == "gcj02"
    assert record["mismatch"] is True
    assert set(record["medians_m"]) == set(READINGS)


def test_parse_reading():
    assert parse_reading(" Auto ") == "auto"
    assert parse_reading("amap") == "gcj02"


@pytest.fixture(scope="module")
def beijing(beijing_osm) -> tuple[WalkNetwork, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The real Wudaokou network, its OSM facilities (points) and residential areas."""
    return (
        load_network(beijing_osm),
        load_facilities(beijing_osm).data,
        # the residential areas with every named building of the file, as compounds
        load_communities(beijing_osm, standalone_buildings=True).data,
    )


@pytest.mark.parametrize(("declared", "actual"), PAIRS)
def test_real_osm_facilities_in_every_system(beijing, declared, actual):
    network, facilities, _ = beijing
    fit = assess(written_in(facilities, actual, declared), declared, network, "facilities")
    assert fit.best == actual
    assert fit.mismatch == (declared != actual)


@pytest.mark.parametrize("actual", READINGS)
def test_real_residential_areas_declared_right_raise_no_alarm(beijing, actual):
    # Large OSM residential areas crossed by footpaths fit WGS84 and GCJ-02 about
    # equally; declared right, they must not alarm.
    network, _, areas = beijing
    fit = assess(written_in(areas, actual, actual), actual, network, "compounds")
    assert not fit.mismatch and fit.message is None


def test_real_residential_areas_tie_is_said(beijing):
    network, _, areas = beijing
    fit = assess(written_in(areas, "wgs84", "bd09"), "bd09", network, "compounds")
    assert fit.mismatch
    assert set(fit.candidates) == {"wgs84", "gcj02"}
    message = str(fit.message)
    assert "the network cannot tell these apart" in message
    assert "--compounds-crs gcj02 or --compounds-crs wgs84" in message
