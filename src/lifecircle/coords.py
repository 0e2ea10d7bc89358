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
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "parse_crs",
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
