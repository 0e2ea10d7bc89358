"""Chinese map coordinate systems: WGS84, GCJ-02 (Amap, Tencent) and BD-09 (Baidu).

Chinese web maps publish coordinates in GCJ-02, an obfuscated datum that shifts
points by several hundred metres (about 540 m at Wenzhou), and Baidu adds a
second shift on top (BD-09). lifecircle works in WGS84 internally, so every
input is converted on load.

The forward transforms follow the widely published public algorithm. The
inverse transforms (GCJ-02 -> WGS84, BD-09 -> GCJ-02) have no closed form; they
are solved by fixed-point iteration to better than 1e-9 degrees (about 0.1 mm),
far below the 0.05 m the toolkit promises. Points outside China are left
unchanged by the GCJ-02 step, as the public algorithm defines. Everything is
vectorised with numpy.

Examples
--------
>>> lon, lat = wgs84_to_gcj02(120.65, 28.01)
>>> back_lon, back_lat = gcj02_to_wgs84(lon, lat)
>>> bool(abs(back_lon - 120.65) < 1e-9 and abs(back_lat - 28.01) < 1e-9)
True
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pyproj
from numpy.typing import ArrayLike, NDArray

from .errors import InputError

__all__ = [
    "CRS_ALIASES",
    "axis_order",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "looks_projected",
    "out_of_china",
    "parse_crs",
    "projected_crs_candidates",
    "projected_crs_hint",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

FloatArray = NDArray[np.float64]

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0
_TOLERANCE_DEG = 1e-10
_MAX_ITERATIONS = 30

CRS_ALIASES: dict[str, str] = {
    "wgs84": "wgs84",
    "wgs-84": "wgs84",
    "wgs 84": "wgs84",
    "epsg:4326": "wgs84",
    "4326": "wgs84",
    "gps": "wgs84",
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
    "gcj": "gcj02",
    "amap": "gcj02",
    "gaode": "gcj02",
    "tencent": "gcj02",
    "mars": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
    "bd09ll": "bd09",
    "baidu": "bd09",
}


def parse_crs(text: str) -> str:
    """Return the canonical name of a coordinate system given by the user.

    Parameters
    ----------
    text
        ``wgs84``, ``gcj02``, ``bd09`` (with the usual aliases such as
        ``amap`` or ``baidu``) or an EPSG code such as ``EPSG:4490``.

    Returns
    -------
    str
        ``"wgs84"``, ``"gcj02"``, ``"bd09"`` or ``"EPSG:<code>"``.

    Examples
    --------
    >>> parse_crs("GCJ-02"), parse_crs("baidu"), parse_crs("epsg:32650")
    ('gcj02', 'bd09', 'EPSG:32650')
    """
    key = str(text).strip().lower()
    if key in CRS_ALIASES:
        return CRS_ALIASES[key]
    match = re.fullmatch(r"(?:epsg:)?(\d{4,6})", key)
    if match:
        code = int(match.group(1))
        try:
            pyproj.CRS.from_epsg(code)
        except pyproj.exceptions.CRSError as exc:
            raise InputError(f"unknown EPSG code {code}") from exc
        return "wgs84" if code == 4326 else f"EPSG:{code}"
    raise InputError(
        f"unknown coordinate system {text!r}; use wgs84, gcj02, bd09 or EPSG:<code>",
        column="crs",
    )


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """Return True where the public GCJ-02 algorithm leaves a point unchanged."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _delta_lat(x: FloatArray, y: FloatArray) -> FloatArray:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _delta_lon(x: FloatArray, y: FloatArray) -> FloatArray:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _as_arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon_arr, lat_arr = np.broadcast_arrays(
        np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    )
    return lon_arr.astype(float, copy=True), lat_arr.astype(float, copy=True)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Shift WGS84 longitudes and latitudes to GCJ-02 (the public algorithm)."""
    lon, lat = _as_arrays(lon, lat)
    dlat = _delta_lat(lon - 105.0, lat - 35.0)
    dlon = _delta_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    outside = out_of_china(lon, lat)
    return np.where(outside, lon, lon + dlon), np.where(outside, lat, lat + dlat)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Shift GCJ-02 coordinates to Baidu's BD-09."""
    x, y = _as_arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _invert(
    forward: Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]],
    lon: ArrayLike,
    lat: ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """Invert a small smooth shift by fixed-point iteration: x <- x - (f(x) - target)."""
    target_lon, target_lat = _as_arrays(lon, lat)
    guess_lon, guess_lat = target_lon.copy(), target_lat.copy()
    for _ in range(_MAX_ITERATIONS):
        fwd_lon, fwd_lat = forward(guess_lon, guess_lat)
        err_lon = fwd_lon - target_lon
        err_lat = fwd_lat - target_lat
        guess_lon -= err_lon
        guess_lat -= err_lat
        if (
            np.nanmax(np.abs(err_lon), initial=0.0) < _TOLERANCE_DEG
            and np.nanmax(np.abs(err_lat), initial=0.0) < _TOLERANCE_DEG
        ):
            break
    return guess_lon, guess_lat


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Recover WGS84 from GCJ-02 by iteration (error < 1e-9 degrees)."""
    return _invert(wgs84_to_gcj02, lon, lat)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Recover GCJ-02 from BD-09 by iteration (error < 1e-9 degrees)."""
    return _invert(gcj02_to_bd09, lon, lat)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Shift WGS84 to BD-09 (via GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Recover WGS84 from BD-09 (via GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str) -> tuple[FloatArray, FloatArray]:
    """Convert coordinates in ``crs`` to WGS84 longitude and latitude.

    Parameters
    ----------
    lon, lat
        Longitudes and latitudes (or x and y for a projected EPSG code).
    crs
        Anything :func:`parse_crs` accepts.

    Examples
    --------
    >>> lon, lat = to_wgs84(*wgs84_to_bd09(116.32, 40.0), "bd09")
    >>> bool(abs(lon - 116.32) < 1e-9 and abs(lat - 40.0) < 1e-9)
    True
    """
    name = parse_crs(crs)
    if name == "wgs84":
        return _as_arrays(lon, lat)
    if name == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if name == "bd09":
        return bd09_to_wgs84(lon, lat)
    transformer = pyproj.Transformer.from_crs(name, "EPSG:4326", always_xy=True)
    x, y = _as_arrays(lon, lat)
    out_lon, out_lat = transformer.transform(x, y)
    return np.asarray(out_lon, dtype=float), np.asarray(out_lat, dtype=float)


def from_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str) -> tuple[FloatArray, FloatArray]:
    """Convert WGS84 longitude and latitude to ``crs`` (the inverse of :func:`to_wgs84`)."""
    name = parse_crs(crs)
    if name == "wgs84":
        return _as_arrays(lon, lat)
    if name == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if name == "bd09":
        return wgs84_to_bd09(lon, lat)
    transformer = pyproj.Transformer.from_crs("EPSG:4326", name, always_xy=True)
    x, y = _as_arrays(lon, lat)
    out_x, out_y = transformer.transform(x, y)
    return np.asarray(out_x, dtype=float), np.asarray(out_y, dtype=float)


# ---------------------------------------------------------------------------
# Projected coordinates written where degrees were expected
# ---------------------------------------------------------------------------

# CGCS2000 Gauss-Krüger systems in the EPSG registry, as (first code, first zone
# or central meridian, step). Zone-prefixed eastings carry the zone number in
# front of the 500 000 m false easting (zone 40: 40 500 000).
_GK6_ZONE_FIRST, _GK6_ZONES = 4491, range(13, 24)
_GK3_ZONE_FIRST, _GK3_ZONES = 4513, range(25, 46)
_GK6_CM_FIRST, _GK3_CM_FIRST = 4502, 4534
_UTM_NORTH_FIRST, _UTM_CHINA_ZONES = 32600, range(43, 54)
# China's extent with a margin, in degrees (west, south, east, north).
_CHINA_BOX = (72.0, 3.0, 136.0, 54.0)
# Ranges of plausible Chinese eastings and northings in metres.
_EASTING_PLAIN = (1.0e5, 9.0e5)
_EASTING_PREFIXED = (1.3e7, 4.6e7)
_NORTHING = (1.5e6, 6.5e6)
_MOST = 0.9


def looks_projected(x: ArrayLike, y: ArrayLike) -> bool:
    """True when most coordinate pairs are beyond any reading as degrees (metres, then).

    Examples
    --------
    >>> looks_projected([40512345.0, 40513000.0], [3099876.0, 3100200.0])
    True
    >>> looks_projected([120.65, 120.66], [28.01, 28.02])
    False
    """
    x_arr, y_arr = _finite_pairs(x, y)
    if len(x_arr) == 0:
        return False
    x_abs, y_abs = np.abs(x_arr), np.abs(y_arr)
    # Swapped degrees (a longitude of 116 in the latitude column) are not metres.
    beyond = ((x_abs > 180) & (y_abs > 90)) | (x_abs > 360) | (y_abs > 360)
    return bool(np.mean(beyond) >= 0.5)


def axis_order(x: ArrayLike, y: ArrayLike) -> str | None:
    """Whether Chinese projected metres are easting, northing (``"xy"``) or the reverse.

    Chinese surveyors write X for the northing and Y for the easting, the
    opposite of GIS order. Eastings (false easting 500 000 m, maybe with a
    zone prefix) and Chinese northings (1 500 000 to 6 500 000 m) do not
    overlap, so the order can be told from the values.

    Returns
    -------
    str or None
        ``"xy"``, ``"yx"``, or None when neither order fits most pairs.

    Examples
    --------
    >>> axis_order([3099876.0], [40512345.0]), axis_order([512345.0], [3099876.0])
    ('yx', 'xy')
    """
    x_arr, y_arr = _finite_pairs(x, y)
    if len(x_arr) == 0:
        return None
    if np.mean(_is_easting(x_arr) & _is_northing(y_arr)) >= _MOST:
        return "xy"
    if np.mean(_is_northing(x_arr) & _is_easting(y_arr)) >= _MOST:
        return "yx"
    return None


def projected_crs_candidates(
    x: ArrayLike, y: ArrayLike, *, near_lon: float | None = None
) -> list[str]:
    """EPSG codes under which projected metres fall inside China.

    Tries the CGCS2000 Gauss-Krüger systems (3- and 6-degree zones, with the
    zone prefix in the easting or without), WGS84 / UTM north and Web Mercator.
    A zone-prefixed easting names its zone; without a prefix every central
    meridian fits equally, unless ``near_lon`` (say, the street network's
    longitude) says where the data should be.

    Parameters
    ----------
    x, y
        Eastings and northings in metres (GIS order; see :func:`axis_order`).
    near_lon
        Approximate longitude of the study area, to pick the central meridian.

    Returns
    -------
    list of str
        ``"EPSG:<code>"`` for every system that puts at least 90 % of the
        points inside its own area of use and inside China.

    Examples
    --------
    >>> projected_crs_candidates([40512345.0], [3099876.0])
    ['EPSG:4528']
    >>> projected_crs_candidates([512345.0], [3099876.0], near_lon=120.6)
    ['EPSG:4549', 'EPSG:4510', 'EPSG:32651']
    """
    x_arr, y_arr = _finite_pairs(x, y)
    if len(x_arr) == 0:
        return []
    easting = float(np.median(x_arr))
    if easting < 1_000_000 and near_lon is None:
        # Every central meridian maps plain metres into its own zone: all fit
        # when the values are eastings and Chinese northings.
        plausible = np.mean(_is_easting(x_arr) & _is_northing(y_arr)) >= _MOST
        every = _every_central_meridian() if plausible else []
        return [f"EPSG:{code}" for code in every] + (
            ["EPSG:3857"] if _fits(3857, x_arr, y_arr) else []
        )
    codes = _candidate_codes(easting, near_lon)
    return [f"EPSG:{code}" for code in codes if _fits(code, x_arr, y_arr)]


def _every_central_meridian() -> list[int]:
    codes = [_GK3_CM_FIRST + i for i in range(21)]
    codes += [_GK6_CM_FIRST + i for i in range(11)]
    return codes + [_UTM_NORTH_FIRST + z for z in _UTM_CHINA_ZONES]


def projected_crs_hint(x: ArrayLike, y: ArrayLike, *, near_lon: float | None = None) -> str:
    """A sentence saying which EPSG codes fit projected metres, for error messages.

    Examples
    --------
    >>> projected_crs_hint([40512345.0], [3099876.0])
    'they fit EPSG:4528 (CGCS2000 / 3-degree Gauss-Kruger zone 40); pass crs=EPSG:4528'
    """
    codes = projected_crs_candidates(x, y, near_lon=near_lon)
    if not codes:
        return (
            "they fit no CGCS2000 Gauss-Krüger, UTM or Web Mercator system inside China; "
            "pass the file's EPSG code with crs=EPSG:<code>"
        )
    if len(codes) <= 4:
        named = ", ".join(f"{code} ({pyproj.CRS(code).name})" for code in codes)
        return f"they fit {named}; pass crs={codes[0]}"
    return (
        "they fit any CGCS2000 Gauss-Krüger central meridian: EPSG:4534-4554 for 3-degree "
        "zones (code 4534 + (CM - 75) / 3, e.g. EPSG:4549 for 120°E), EPSG:4502-4512 for "
        "6-degree zones, or WGS84 / UTM EPSG:32643-32653; pass the one for your area with "
        "crs=EPSG:<code>"
    )


def _finite_pairs(x: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x_arr, y_arr = _as_arrays(x, y)
    x_arr, y_arr = x_arr.ravel(), y_arr.ravel()
    finite = np.isfinite(x_arr) & np.isfinite(y_arr)
    return x_arr[finite], y_arr[finite]


def _is_easting(values: FloatArray) -> NDArray[np.bool_]:
    plain = (values >= _EASTING_PLAIN[0]) & (values <= _EASTING_PLAIN[1])
    prefixed = (values >= _EASTING_PREFIXED[0]) & (values < _EASTING_PREFIXED[1])
    return plain | prefixed


def _is_northing(values: FloatArray) -> NDArray[np.bool_]:
    return (values >= _NORTHING[0]) & (values <= _NORTHING[1])


def _candidate_codes(easting: float, near_lon: float | None) -> list[int]:
    zone = int(easting // 1_000_000)
    codes: list[int] = []
    if zone in _GK6_ZONES:
        codes.append(_GK6_ZONE_FIRST + zone - _GK6_ZONES.start)
    if zone in _GK3_ZONES:
        codes.append(_GK3_ZONE_FIRST + zone - _GK3_ZONES.start)
    if zone == 0 and near_lon is not None:
        cm3 = min(max(3 * round(near_lon / 3), 75), 135)
        cm6 = min(max(6 * round((near_lon + 3) / 6) - 3, 75), 135)
        utm = int((near_lon + 180) // 6) + 1
        codes += [_GK3_CM_FIRST + (cm3 - 75) // 3, _GK6_CM_FIRST + (cm6 - 75) // 6]
        codes.append(_UTM_NORTH_FIRST + utm)
    codes.append(3857)
    return codes


def _fits(code: int, x: FloatArray, y: FloatArray) -> bool:
    crs = pyproj.CRS.from_epsg(code)
    transformer = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = transformer.transform(x, y)
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    west, south, east, north = _CHINA_BOX
    inside = (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
    area = crs.area_of_use
    if area is not None and code != 3857:
        margin = 1.0
        inside &= (lon >= area.west - margin) & (lon <= area.east + margin)
    return bool(np.mean(inside) >= _MOST)
