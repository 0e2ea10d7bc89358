"""Tests of lifecircle.coords: WGS84 / GCJ-02 / BD-09 conversions and CRS parsing."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecircle.coords import (
    axis_order,
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    looks_projected,
    out_of_china,
    parse_crs,
    projected_crs_candidates,
    projected_crs_hint,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from lifecircle.errors import InputError

GEOD = pyproj.Geod(ellps="WGS84")
WENZHOU = (120.65, 28.01)


def metres_between(lon1, lat1, lon2, lat2) -> np.ndarray:
    _, _, distance = GEOD.inv(lon1, lat1, lon2, lat2)
    return np.asarray(distance)


@pytest.fixture(scope="module")
def china_grid() -> tuple[np.ndarray, np.ndarray]:
    """Every half degree across mainland China's bounding box, plus Wenzhou."""
    lon, lat = np.meshgrid(np.arange(74.0, 135.01, 0.5), np.arange(18.0, 53.51, 0.5))
    lon = np.append(lon.ravel(), WENZHOU[0])
    lat = np.append(lat.ravel(), WENZHOU[1])
    inside = ~out_of_china(lon, lat)
    return lon[inside], lat[inside]


def test_grid_covers_china(china_grid):
    lon, _ = china_grid
    assert len(lon) == 123 * 72 + 1  # 0.5° steps over 74..135 E, 18..53.5 N, plus Wenzhou


def test_gcj02_round_trip_within_5_cm(china_grid):
    lon, lat = china_grid
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert metres_between(lon, lat, back_lon, back_lat).max() < 0.05


def test_bd09_round_trip_within_5_cm(china_grid):
    lon, lat = china_grid
    back_lon, back_lat = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert metres_between(lon, lat, back_lon, back_lat).max() < 0.05


def test_gcj02_bd09_round_trip_within_5_cm(china_grid):
    lon, lat = china_grid
    back_lon, back_lat = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    assert metres_between(lon, lat, back_lon, back_lat).max() < 0.05


def test_shift_is_hundreds_of_metres_everywhere_in_china(china_grid):
    lon, lat = china_grid
    shift = metres_between(lon, lat, *wgs84_to_gcj02(lon, lat))
    assert shift.min() > 1.0
    assert shift.max() < 1500.0


def test_wenzhou_gcj02_shift_is_about_540_m():
    shifted = wgs84_to_gcj02(*WENZHOU)
    shift = float(metres_between(*WENZHOU, *shifted))
    assert 500.0 < shift < 600.0


def test_wenzhou_bd09_is_further_than_gcj02():
    gcj = metres_between(*WENZHOU, *wgs84_to_gcj02(*WENZHOU))
    bd = metres_between(*WENZHOU, *wgs84_to_bd09(*WENZHOU))
    assert bd > gcj + 300.0


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(2.3522, 48.8566), (-74.006, 40.7128), (151.2093, -33.8688), (139.69, 35.69 + 21.0)],
)
def test_points_outside_china_are_unchanged(lon, lat):
    assert bool(out_of_china(lon, lat))
    shifted_lon, shifted_lat = wgs84_to_gcj02(lon, lat)
    assert (float(shifted_lon), float(shifted_lat)) == (lon, lat)
    back_lon, back_lat = gcj02_to_wgs84(lon, lat)
    assert (float(back_lon), float(back_lat)) == (lon, lat)


def test_vectorised_shapes_are_kept():
    lon = np.full((2, 3), 116.3)
    lat = np.full((2, 3), 40.0)
    out_lon, out_lat = wgs84_to_gcj02(lon, lat)
    assert out_lon.shape == (2, 3)
    assert out_lat.shape == (2, 3)
    assert np.ptp(out_lon) == 0.0


def test_nan_passes_through_without_breaking_neighbours():
    lon = np.array([116.3, np.nan])
    lat = np.array([40.0, 40.0])
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert np.isnan(back_lon[1])
    assert float(metres_between(116.3, 40.0, back_lon[0], back_lat[0])) < 0.05


@settings(max_examples=50, deadline=None)
@given(
    lon=st.floats(min_value=73.0, max_value=135.0),
    lat=st.floats(min_value=18.0, max_value=53.5),
)
def test_to_wgs84_inverts_from_wgs84(lon, lat):
    for crs in ("gcj02", "bd09"):
        back_lon, back_lat = to_wgs84(*from_wgs84(lon, lat, crs), crs)
        assert float(metres_between(lon, lat, back_lon, back_lat)) < 0.05


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wgs84", "wgs84"),
        ("WGS-84", "wgs84"),
        ("EPSG:4326", "wgs84"),
        ("4326", "wgs84"),
        ("GCJ-02", "gcj02"),
        ("gcj02", "gcj02"),
        ("amap", "gcj02"),
        ("Gaode", "gcj02"),
        ("tencent", "gcj02"),
        ("bd09", "bd09"),
        ("BD-09", "bd09"),
        ("bd09ll", "bd09"),
        ("baidu", "bd09"),
        ("EPSG:4490", "EPSG:4490"),
        ("epsg:32650", "EPSG:32650"),
        (" 4547 ", "EPSG:4547"),
    ],
)
def test_parse_crs_aliases_and_epsg(text, expected):
    assert parse_crs(text) == expected


@pytest.mark.parametrize("text", ["mars2000", "", "EPSG:99999", "utm50"])
def test_parse_crs_rejects_unknown(text):
    with pytest.raises(InputError):
        parse_crs(text)


def test_bad_crs_message_names_the_options():
    with pytest.raises(InputError, match="wgs84, gcj02, bd09"):
        to_wgs84(116.3, 40.0, "google")


def test_epsg_round_trip_through_utm_zone_50():
    x, y = from_wgs84(116.3, 40.0, "EPSG:32650")
    assert 440_000 < float(x) < 450_000
    assert 4_420_000 < float(y) < 4_440_000
    lon, lat = to_wgs84(x, y, "EPSG:32650")
    assert float(metres_between(116.3, 40.0, lon, lat)) < 0.001


def test_cgcs2000_is_within_a_metre_of_wgs84():
    lon, lat = to_wgs84(116.3, 40.0, "EPSG:4490")
    assert float(metres_between(116.3, 40.0, lon, lat)) < 1.0


# ---------------------------------------------------------------------------
# Projected metres where degrees were expected
# ---------------------------------------------------------------------------

# Points around Wenzhou, Beijing and Urumqi.
CITIES_LON = np.array([120.65, 120.70, 116.33, 87.6])
CITIES_LAT = np.array([28.01, 28.05, 40.0, 43.8])


@pytest.mark.parametrize(
    ("code", "index"),
    [
        ("EPSG:4528", [0, 1]),  # 3-degree zone 40 (CM 120°E), prefixed
        ("EPSG:4527", [2]),  # 3-degree zone 39 (CM 117°E), prefixed
        ("EPSG:4498", [2]),  # 6-degree zone 20 (CM 117°E), prefixed
    ],
)
def test_zone_prefixed_eastings_name_their_zone(code, index):
    x, y = from_wgs84(CITIES_LON[index], CITIES_LAT[index], code)
    assert looks_projected(x, y)
    assert axis_order(x, y) == "xy" and axis_order(y, x) == "yx"
    assert projected_crs_candidates(x, y) == [code]
    assert projected_crs_candidates(y, x) == []


@pytest.mark.parametrize(
    ("lon", "lat", "expected"),
    [
        (120.65, 28.01, ["EPSG:4549", "EPSG:4510", "EPSG:32651"]),
        (116.33, 40.0, ["EPSG:4548", "EPSG:4509", "EPSG:32650"]),
        (87.6, 43.8, ["EPSG:4538", "EPSG:4504", "EPSG:32645"]),
    ],
)
def test_central_meridian_codes_follow_the_area(lon, lat, expected):
    x, y = from_wgs84(lon, lat, expected[0])
    assert projected_crs_candidates(x, y, near_lon=lon) == expected
    without_hint = projected_crs_candidates(x, y)
    assert set(expected) <= set(without_hint) and len(without_hint) > 30
    assert "EPSG:4534-4554" in projected_crs_hint(x, y)


def test_web_mercator_is_recognised():
    x, y = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(120.65, 28.01)
    assert "EPSG:3857" in projected_crs_candidates([x], [y])


def test_degrees_and_swapped_degrees_are_not_metres():
    assert not looks_projected([120.65, 116.3], [28.01, 40.0])
    assert not looks_projected([28.01, 40.0], [120.65, 116.3])
    assert looks_projected([2345.6, 1200.0], [1234.5, 800.0])
    assert axis_order([120.65], [28.01]) is None
    assert projected_crs_candidates([], []) == []


def test_hint_for_metres_that_fit_nothing():
    assert "fit no CGCS2000" in projected_crs_hint([2345.6], [1234.5])
