"""Which coordinate system does a layer really use? Ask the street network.

A Baidu export loaded as WGS84 still looks plausible on a map, yet it sits
several hundred metres off the streets, and every walking distance computed
from it is wrong. The street network (OpenStreetMap, WGS84) is an independent
witness: points of a layer read in the right system lie close to streets
(facilities on their frontage, gates on the street they open to, compound
boundaries along the streets around them); read in a wrong system they are
scattered at random across the street grid.

:func:`assess_layer` measures, for a sample of a layer, the median distance to
the nearest street segment under each reading (the declared one, WGS84, GCJ-02
and BD-09) and says when another reading fits clearly better.
:func:`reinterpret` re-reads a loaded layer in another system, and
:func:`fit_layer` does both, including the ``auto`` choice.

Examples
--------
>>> parse_reading("Baidu"), parse_reading("AUTO")
('bd09', 'auto')
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray

from .coords import from_wgs84, parse_crs, to_wgs84
from .network import WalkNetwork

__all__ = [
    "AUTO",
    "CHINESE_READINGS",
    "DatumFit",
    "assess_layer",
    "fit_layer",
    "parse_reading",
    "reinterpret",
]

logger = logging.getLogger(__name__)

#: The value that asks lifecircle to pick the best-fitting reading.
AUTO = "auto"
#: The readings every layer is tested under, besides its declared one.
CHINESE_READINGS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

# The decision rule (see assess_layer). A reading must at least halve the declared
# median, gain this many metres, and itself sit this close to the streets.
_MAX_RATIO = 0.5
_MIN_GAIN_M = 15.0
_MAX_BEST_M = 60.0
# Readings whose medians are within this factor of the best cannot be told apart
# (large polygons crossed by footpaths fit WGS84 and GCJ-02 about equally).
_TIE_FACTOR = 1.5
# A fixed shift of the whole layer by 300-700 m, as a wrong datum makes, puts its
# points at chance positions in the street grid; these shifts (metres, in the
# network's CRS) measure how close chance comes in this network.
_CHANCE_SHIFTS_M: tuple[tuple[float, float], ...] = tuple(
    (r * math.cos(a), r * math.sin(a))
    for r, a in zip(
        (400.0, 600.0) * 4, (math.radians(22.5 + 45 * k) for k in range(8)), strict=True
    )
)
# Points taken along each polygon's exterior: a compound's boundary follows its
# streets, while its centre is often a hundred metres from any of them.
_POINTS_PER_RING = 8

_LABELS = {"wgs84": "WGS84", "gcj02": "GCJ-02", "bd09": "BD-09"}


def parse_reading(text: str) -> str:
    """The canonical name of a coordinate system, or ``"auto"``.

    Parameters
    ----------
    text
        ``auto`` or anything :func:`lifecircle.coords.parse_crs` accepts.

    Examples
    --------
    >>> parse_reading("gcj-02"), parse_reading("EPSG:4549")
    ('gcj02', 'EPSG:4549')
    """
    if str(text).strip().lower() == AUTO:
        return AUTO
    return parse_crs(text)


@dataclass(frozen=True)
class DatumFit:
    """How well a layer fits the street network under each reading.

    Attributes
    ----------
    layer, source, option
        What the layer is (``"facilities"``), the file it came from and the
        command-line option that sets its system (``"--facilities-crs"``).
    declared
        The system it was loaded in, or ``"auto"``.
    chosen
        The reading in use after the check: the declared one, or for ``auto``
        the best fit (WGS84 when no reading is clearly better).
    medians_m
        Median distance in metres from the sampled points to the nearest
        street segment, per reading.
    best
        The reading with the smallest median.
    candidates
        The readings that fit about as well as ``best`` (within a factor of
        1.5 of its median), best first: more than one when the network
        cannot tell them apart.
    mismatch
        True when a declared (not ``auto``) system is clearly beaten by another.
    message
        The warning for the user when ``mismatch``, or for ``auto`` the note
        saying what was chosen; None otherwise.
    sample_size
        Number of points measured.
    chance_m
        The median distance the layer has when shifted as a whole by 400 or
        600 m (the median over eight such shifts): how close points come to
        the streets by chance in this network.
    """

    layer: str
    source: str
    option: str
    declared: str
    chosen: str
    medians_m: dict[str, float] = field(default_factory=dict)
    best: str | None = None
    candidates: tuple[str, ...] = ()
    mismatch: bool = False
    message: str | None = None
    sample_size: int = 0
    chance_m: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``summary.json``."""
        return {
            "layer": self.layer,
            "source": self.source,
            "option": self.option,
            "declared": self.declared,
            "chosen": self.chosen,
            "best": self.best,
            "candidates": list(self.candidates),
            "mismatch": self.mismatch,
            "medians_m": {k: round(v, 1) for k, v in self.medians_m.items()},
            "sample_size": self.sample_size,
            "chance_m": None if self.chance_m is None else round(self.chance_m, 1),
            "message": self.message,
        }


def reinterpret(gdf: gpd.GeoDataFrame, declared: str, actual: str) -> gpd.GeoDataFrame:
    """Re-read a loaded layer whose values were really in ``actual``, not ``declared``.

    The loader converted the file's values from ``declared`` to WGS84; this
    undoes that conversion and applies the one from ``actual`` instead, vertex
    by vertex, so polygons are corrected too. When ``declared`` is an EPSG code
    the loaded longitudes and latitudes themselves are taken as the values to
    re-read (a GCJ-02 layer saved in a projected CRS).

    Parameters
    ----------
    gdf
        A loaded layer, EPSG:4326.
    declared, actual
        Systems as :func:`parse_reading` names them (not ``auto``).

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with the new geometry; a plain copy when the two agree.

    Examples
    --------
    >>> from lifecircle.coords import wgs84_to_bd09
    >>> lon, lat = wgs84_to_bd09(120.65, 28.01)
    >>> wrong = gpd.GeoDataFrame(geometry=gpd.points_from_xy([lon], [lat]), crs=4326)
    >>> fixed = reinterpret(wrong, "wgs84", "bd09")
    >>> round(float(fixed.geometry.x[0]), 9), round(float(fixed.geometry.y[0]), 9)
    (120.65, 28.01)
    """
    declared, actual = parse_crs(declared), parse_crs(actual)
    out = gdf.copy()
    if declared == actual:
        return out
    values = gdf.geometry.to_crs("EPSG:4326").to_numpy()
    moved = shapely.transform(values, lambda xy: _reread(xy, declared, actual))
    out = out.set_geometry(gpd.GeoSeries(moved, index=gdf.index, crs="EPSG:4326"))
    return out


def _reread(xy: NDArray[np.float64], declared: str, actual: str) -> NDArray[np.float64]:
    lon, lat = xy[:, 0], xy[:, 1]
    if declared in CHINESE_READINGS:
        lon, lat = from_wgs84(lon, lat, declared)
    if actual in CHINESE_READINGS:
        lon, lat = to_wgs84(lon, lat, actual)
    return np.column_stack([lon, lat])


def assess_layer(
    points_wgs84: gpd.GeoSeries | gpd.GeoDataFrame,
    declared: str,
    network: WalkNetwork,
    *,
    layer: str,
    source: str,
    option: str,
    sample: int = 500,
    seed: int = 0,
) -> DatumFit:
    """Measure a layer's fit to the street network under every reading.

    Up to ``sample`` features are drawn at random (points as they are,
    polygons by points spread along their exterior); each is read in the
    declared system, WGS84, GCJ-02 and BD-09, projected to the network's CRS,
    and its distance to the nearest street segment measured. A reading other
    than the declared one is reported as clearly better when all three hold:

    * its median is at most half the declared median: a wrong datum shifts
      points by 300-700 m, so they fall at random in the street grid, and in
      the demo (blocks of 200-300 m) the right reading's median is about a
      third of a wrong one;
    * it gains at least 15 m, so that two small medians (points on streets
      either way, as outside China where all readings coincide) never alarm;
    * it is itself under 60 m from the streets: a layer that truly lies away
      from streets (a rural compound, a hillside reservoir) fits no reading
      well, and then nothing is claimed;
    * it is at most half of what chance gives (``chance_m``, the layer shifted
      as a whole by 400-600 m): in a dense regular grid, points a wrong
      datum throws at random can sit closer to the streets than compounds
      set back from them, and beating the declared reading is then no
      evidence.

    Parameters
    ----------
    points_wgs84
        The layer's geometry (or the layer) as loaded under ``declared``,
        EPSG:4326; points, lines or polygons.
    declared
        The system the layer was loaded in (or ``"auto"``, meaning loaded as
        WGS84 with the choice left to this check).
    network
        The street network the layer will be routed on.
    layer, source, option
        Layer name, file name and command-line option, for the message.
    sample, seed
        How many features to measure at most, and the random seed.

    Returns
    -------
    DatumFit

    Examples
    --------
    >>> from lifecircle.datasets import demo_data
    >>> from lifecircle.network import load_network
    >>> from lifecircle.loading import load_gates
    >>> demo = demo_data()
    >>> net = load_network(demo.streets)
    >>> gates = load_gates(demo.gates).data
    >>> fit = assess_layer(gates.geometry, "wgs84", net, layer="gates",
    ...                    source="synthetic_gates.csv", option="--gates-crs")
    >>> fit.best, fit.mismatch
    ('wgs84', False)
    """
    reading = parse_reading(declared)
    base = "wgs84" if reading == AUTO else reading
    fit = DatumFit(layer=layer, source=source, option=option, declared=reading, chosen=base)
    if isinstance(points_wgs84, gpd.GeoDataFrame):
        points_wgs84 = points_wgs84.geometry
    points = _sample_points(gpd.GeoSeries(points_wgs84), max(int(sample), 1), seed)
    if len(points) == 0 or network.n_segments == 0:
        return fit
    tree = network.segment_tree
    to_local = pyproj.Transformer.from_crs("EPSG:4326", network.crs, always_xy=True)
    lon, lat = shapely.get_x(points), shapely.get_y(points)
    medians: dict[str, float] = {}
    for candidate in _readings(base):
        xy = _reread(np.column_stack([lon, lat]), base, candidate)
        x, y = to_local.transform(xy[:, 0], xy[:, 1])
        _, distance = tree.query_nearest(
            shapely.points(x, y), return_distance=True, all_matches=False
        )
        medians[candidate] = float(np.median(distance))
    ranked = sorted(medians, key=lambda name: medians[name])
    best = ranked[0]
    candidates = tuple(r for r in ranked if medians[r] <= _TIE_FACTOR * medians[best])
    chance = _chance_median(np.column_stack(to_local.transform(lon, lat)), tree)
    better = _clearly_better(medians[best], medians[base], chance)
    chosen = best if reading == AUTO and better else base
    mismatch = reading != AUTO and better and best != base
    fit = DatumFit(
        layer=layer,
        source=source,
        option=option,
        declared=reading,
        chosen=chosen,
        medians_m=medians,
        best=best,
        candidates=candidates,
        mismatch=mismatch,
        sample_size=len(points),
        chance_m=chance,
    )
    message = _mismatch_message(fit) if mismatch else None
    if reading == AUTO:
        message = _auto_message(fit)
    return DatumFit(**{**fit.__dict__, "message": message})


def fit_layer(
    gdf: gpd.GeoDataFrame,
    declared: str,
    network: WalkNetwork,
    *,
    layer: str,
    source: str,
    option: str,
    sample: int = 500,
    seed: int = 0,
) -> tuple[gpd.GeoDataFrame, DatumFit]:
    """Check a loaded layer against the network; for ``auto``, re-read it in the best fit.

    A declared system is never changed here: a mismatch is logged as a
    warning and returned in :attr:`DatumFit.message` for the caller to show.

    Parameters
    ----------
    gdf
        The layer as loaded (with ``crs="wgs84"`` when ``declared`` is ``auto``).
    declared, network, layer, source, option, sample, seed
        As for :func:`assess_layer`.

    Returns
    -------
    tuple of geopandas.GeoDataFrame and DatumFit
        The layer in its chosen reading, and the evidence.
    """
    fit = assess_layer(
        gdf.geometry,
        declared,
        network,
        layer=layer,
        source=source,
        option=option,
        sample=sample,
        seed=seed,
    )
    if fit.mismatch and fit.message:
        logger.warning(fit.message)
    elif fit.message:
        logger.info(fit.message)
    if fit.declared == AUTO and fit.chosen != "wgs84":
        return reinterpret(gdf, "wgs84", fit.chosen), fit
    return gdf, fit


def _readings(base: str) -> list[str]:
    names = [base] + [name for name in CHINESE_READINGS if name != base]
    if base not in CHINESE_READINGS:
        # An EPSG code already stands for the plain reading of its values.
        names.remove("wgs84")
    return names


def _clearly_better(best_m: float, declared_m: float, chance_m: float) -> bool:
    return (
        best_m <= _MAX_RATIO * declared_m
        and best_m <= _MAX_RATIO * chance_m
        and declared_m - best_m >= _MIN_GAIN_M
        and best_m < _MAX_BEST_M
    )


def _chance_median(xy: NDArray[np.float64], tree: Any) -> float:
    """The layer's median distance to the streets when shifted as a whole (see above)."""
    medians = []
    for dx, dy in _CHANCE_SHIFTS_M:
        shifted = shapely.points(xy[:, 0] + dx, xy[:, 1] + dy)
        _, distance = tree.query_nearest(shifted, return_distance=True, all_matches=False)
        medians.append(float(np.median(distance)))
    return float(np.median(medians))


def _sample_points(geometry: gpd.GeoSeries, sample: int, seed: int) -> NDArray[np.object_]:
    """Up to ``sample`` features as points: points kept, shapes by their outline."""
    if geometry.crs is not None:
        geometry = geometry.to_crs("EPSG:4326")
    values = geometry.to_numpy()
    values = values[~(shapely.is_missing(values) | shapely.is_empty(values))]
    if len(values) > sample:
        rng = np.random.default_rng(seed)
        values = values[np.sort(rng.choice(len(values), sample, replace=False))]
    kind = shapely.get_type_id(values)
    points = values[kind == 0]
    shaped = values[kind != 0]
    if len(shaped) == 0:
        return points
    outline = shapely.boundary(shaped)
    outline = outline[~shapely.is_empty(outline)]
    fractions = np.tile(np.linspace(0.0, 1.0, _POINTS_PER_RING, endpoint=False), len(outline))
    along = shapely.line_interpolate_point(
        np.repeat(outline, _POINTS_PER_RING), fractions, normalized=True
    )
    lines_and_points = np.concatenate([points, along])
    return lines_and_points[~shapely.is_empty(lines_and_points)]


def _label(name: str) -> str:
    return _LABELS.get(name, name)


def _mismatch_message(fit: DatumFit) -> str:
    declared_m = fit.medians_m[fit.declared]
    likely = [r for r in fit.candidates if r != fit.declared]
    as_likely = " or ".join(_label(r) for r in likely)
    against = " and ".join(f"{fit.medians_m[r]:.0f} m as {_label(r)}" for r in likely)
    passes = " or ".join(f"{fit.option} {r}" for r in likely)
    tie = "; the network cannot tell these apart" if len(likely) > 1 else ""
    return (
        f"{fit.layer} ({fit.source}) were loaded as {_label(fit.declared)} but fit the street "
        f"network far better as {as_likely}: a median of {declared_m:.0f} m to the nearest "
        f"street as {_label(fit.declared)} against {against} "
        f"({fit.sample_size} points measured{tie}); pass {passes} "
        f"(or {fit.option} auto)"
    )


def _auto_message(fit: DatumFit) -> str:
    listed = ", ".join(f"{_label(k)} {v:.0f} m" for k, v in fit.medians_m.items())
    reason = (
        "it fits the streets clearly best"
        if fit.chosen != "wgs84"
        else "no other reading fits the streets clearly better"
    )
    if fit.chosen != "wgs84" and len(fit.candidates) > 1:
        others = " and ".join(_label(r) for r in fit.candidates if r != fit.chosen)
        reason += f", though {others} fits nearly as well"
    return (
        f"{fit.layer} ({fit.source}): {fit.option} auto chose {_label(fit.chosen)} because "
        f"{reason}; median distance to the nearest street: {listed} "
        f"({fit.sample_size} points measured)"
    )
