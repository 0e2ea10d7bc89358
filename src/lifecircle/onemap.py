"""The facility one-map (一张图): every facility, classified, summed per 社区.

A census of every facility loaded, not only those a standard scores, classified
by category and type (function), and summed per 社区, the area of a residents'
committee (居委会). The 社区 are given as polygons, or as a column on the
compounds. For each 社区 the one-map gives the facility counts and capacity by
category and type, the scored types it lacks, its population by age group, its
population-weighted completeness, the share of its residents whose compound
passes each tier, and its worst-served compounds.

Facilities are placed in the 社区 whose polygon contains them; compounds by
their inside point (a compound that straddles a border counts where most of it
lies only approximately: its representative point decides). Facilities outside
every polygon are kept with an empty ``district_id``.

Examples
--------
>>> from lifecircle import Study
>>> study = Study.from_demo()
>>> districts = demo_districts(study.boundary)
>>> result = onemap(study.facilities, study.score(), study.standard, districts)
>>> len(result.districts), len(result.facilities), result.summary()["facilities_outside"]
(6, 179, 9)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .census import group_column, group_populations, load_shares
from .errors import InputError
from .standards import Standard
from .taxonomy import Taxonomy, default_taxonomy

logger = logging.getLogger(__name__)

__all__ = [
    "DISTRICT_COLUMNS",
    "OneMap",
    "assign_districts",
    "demo_districts",
    "load_districts",
    "onemap",
]

#: Columns of a compound table that may name its 社区, tried in order.
DISTRICT_COLUMNS = ("district_id", "shequ", "社区", "所属社区", "居委会", "community_committee")
_DISTRICT_ID_COLUMNS = ("district_id", "id", "code", "社区编码", "编码", "shequ")
_DISTRICT_NAME_COLUMNS = ("district_name", "name", "名称", "社区", "社区名称", "shequ_name")
_OUTSIDE = "(none)"


# --------------------------------------------------------------------------- districts


def load_districts(
    source: str | Path | gpd.GeoDataFrame,
    *,
    id_column: str | None = None,
    name_column: str | None = None,
) -> gpd.GeoDataFrame:
    """Read 社区 polygons (``--districts FILE``).

    Parameters
    ----------
    source
        A polygon file (GeoJSON, GeoPackage, Shapefile...) or a GeoDataFrame.
    id_column, name_column
        Columns holding the 社区 id and name; found among common names
        (``district_id``, ``id``, ``社区编码`` / ``name``, ``名称``, ``社区``)
        when not given. Without an id column the name is the id.

    Returns
    -------
    geopandas.GeoDataFrame
        ``district_id``, ``district_name`` and the polygons, in WGS84.

    Raises
    ------
    InputError
        Unreadable file, no CRS, non-polygon features, duplicate ids (the row
        is named).
    """
    origin = "districts"
    if isinstance(source, gpd.GeoDataFrame):
        frame = source.copy()
    else:
        origin = str(source)
        try:
            frame = gpd.read_file(source)
        except Exception as exc:  # pyogrio raises several kinds
            raise InputError(f"cannot read the 社区 polygons: {exc}", file=origin) from exc
    if frame.empty:
        raise InputError("the 社区 file has no features", file=origin)
    if frame.crs is None:
        raise InputError("the 社区 polygons have no coordinate reference system", file=origin)
    polygon = frame.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    if not polygon.all():
        row = int(np.flatnonzero(~polygon)[0]) + 1
        raise InputError(
            f"row {row}: a {frame.geom_type.iloc[row - 1]} feature; 社区 must be polygons",
            file=origin,
        )
    name_col = name_column or _first_present(frame, _DISTRICT_NAME_COLUMNS)
    id_col = id_column or _first_present(frame, _DISTRICT_ID_COLUMNS) or name_col
    for wanted in (id_column, name_column):
        if wanted is not None and wanted not in frame:
            raise InputError(f"no column {wanted!r} in the 社区 file", file=origin)
    ids = (
        frame[id_col].astype(str)
        if id_col
        else pd.Series([f"D{i + 1:02d}" for i in range(len(frame))], index=frame.index)
    )
    duplicated = ids.duplicated().to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0]) + 1
        raise InputError(f"row {row}: duplicate 社区 id {ids.iloc[row - 1]!r}", file=origin)
    names = frame[name_col].astype(str) if name_col else ids
    return gpd.GeoDataFrame(
        {"district_id": ids.to_numpy(), "district_name": names.to_numpy()},
        geometry=frame.geometry.to_numpy(),
        crs=frame.crs,
    ).to_crs(4326)


def _first_present(frame: pd.DataFrame, candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in frame.columns), None)


def assign_districts(
    communities: gpd.GeoDataFrame,
    districts: gpd.GeoDataFrame | None = None,
    *,
    column: str | None = None,
) -> pd.Series:
    """The 社区 of every compound: by polygon, or from a column of the compounds.

    Parameters
    ----------
    communities
        Compounds (any geometry and CRS).
    districts
        :func:`load_districts` polygons; the compound's inside point decides.
    column
        A compound column naming the 社区; by default the first of
        :data:`DISTRICT_COLUMNS` present, used when no polygons are given.

    Returns
    -------
    pandas.Series
        District id per compound (same index), ``None`` outside every polygon.

    Raises
    ------
    InputError
        Neither polygons nor a 社区 column.
    """
    if districts is not None:
        inside = gpd.GeoDataFrame(
            geometry=communities.geometry.representative_point().to_crs(districts.crs).to_numpy(),
            crs=districts.crs,
        )
        return pd.Series(
            _polygon_of(inside.geometry, districts), index=communities.index, dtype=object
        )
    column = column or _first_present(communities, DISTRICT_COLUMNS)
    if column is None or column not in communities:
        raise InputError(
            "no 社区 given: pass 社区 polygons (--districts FILE) or a compound column "
            f"naming the 社区 (one of: {', '.join(DISTRICT_COLUMNS)})"
        )
    values = communities[column]
    return values.where(values.notna(), None).map(lambda v: None if v is None else str(v))


def _polygon_of(points: gpd.GeoSeries, districts: gpd.GeoDataFrame) -> np.ndarray:
    """District id of the first polygon containing each point (None outside)."""
    tree = shapely.STRtree(districts.geometry.to_numpy())
    point_index, polygon_index = tree.query(points.to_numpy(), predicate="within")
    out = np.full(len(points), None, dtype=object)
    first = np.unique(point_index, return_index=True)[1]
    ids = districts["district_id"].to_numpy()
    out[point_index[first]] = ids[polygon_index[first]]
    return out


def demo_districts(
    boundary: gpd.GeoDataFrame, *, columns: int = 3, rows: int = 2
) -> gpd.GeoDataFrame:
    """SYNTHETIC 社区 polygons for the demo: the boundary cut into a grid.

    The cells of a ``columns`` x ``rows`` grid over the boundary's extent
    (in a local metric CRS), clipped to the boundary; ids ``SQ01``..., names
    ``示例一社区``... Not real places.

    Examples
    --------
    >>> from lifecircle.datasets import demo_data
    >>> d = demo_districts(gpd.read_file(demo_data().boundary))
    >>> d["district_id"].tolist()[:3], d["district_name"].iloc[0]
    (['SQ01', 'SQ02', 'SQ03'], '示例一社区')
    """
    if columns < 1 or rows < 1:
        raise InputError("the demo grid needs at least one column and one row")
    metric = boundary.estimate_utm_crs()
    area = shapely.union_all(boundary.to_crs(metric).geometry.to_numpy())
    x0, y0, x1, y1 = area.bounds
    xs = np.linspace(x0, x1, columns + 1)
    ys = np.linspace(y1, y0, rows + 1)  # north to south
    cells = [
        shapely.box(xs[c], ys[r + 1], xs[c + 1], ys[r]) for r in range(rows) for c in range(columns)
    ]
    pieces = shapely.intersection(np.asarray(cells, dtype=object), area)
    keep = ~shapely.is_empty(pieces)
    numerals = "一二三四五六七八九十"
    n = int(keep.sum())
    frame = gpd.GeoDataFrame(
        {
            "district_id": [f"SQ{i + 1:02d}" for i in range(n)],
            "district_name": [
                f"示例{numerals[i] if i < len(numerals) else i + 1}社区" for i in range(n)
            ],
            "synthetic": True,
        },
        geometry=pieces[keep],
        crs=metric,
    ).to_crs(4326)
    frame["geometry"] = shapely.set_precision(frame.geometry.to_numpy(), 1e-7)
    return frame


# ------------------------------------------------------------------------- one-map


@dataclass
class OneMap:
    """The one-map of a study area.

    Attributes
    ----------
    districts
        One row per 社区 (see :func:`onemap` for the columns), with polygons.
    counts
        Long table: ``district_id``, ``district_name``, ``category``,
        ``category_zh``, ``type``, ``type_zh``, ``count``, ``capacity``
        (sum of known capacities; NaN when none is known).
    facilities
        Every facility with ``facility_id``, ``name``, ``type``, ``type_zh``,
        ``category``, ``category_zh``, ``capacity``, ``district_id``,
        ``district_name`` and its point (WGS84), for the filterable map layer.
    """

    districts: gpd.GeoDataFrame
    counts: pd.DataFrame
    facilities: gpd.GeoDataFrame

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary for ``summary.json`` (key ``onemap``).

        Keys: ``districts`` (number), ``facilities``, ``facilities_outside``
        (in no 社区), ``by_category`` ``{category: count}``, and ``per_district``:
        one dict per 社区 with ``district_id``, ``district_name``,
        ``n_compounds``, ``population``, ``pop_age_60plus``, ``completeness``,
        ``n_facilities``, ``lacking_types`` (list) and ``worst_compounds``.
        """
        outside = self.facilities["district_id"].isna()
        columns = [
            "district_id",
            "district_name",
            "n_compounds",
            "population",
            group_column("age_60plus"),
            "completeness",
            "n_facilities",
            "lacking_types",
            "worst_compounds",
        ]
        per = pd.DataFrame(self.districts.drop(columns="geometry"))[columns]
        records = []
        for row in per.to_dict("records"):
            row["lacking_types"] = [t for t in str(row["lacking_types"]).split(";") if t]
            records.append({k: _plain(v) for k, v in row.items()})
        return {
            "districts": len(self.districts),
            "facilities": len(self.facilities),
            "facilities_outside": int(outside.sum()),
            "by_category": {
                str(k): int(v)
                for k, v in self.facilities["category"].value_counts().sort_index().items()
            },
            "per_district": records,
        }


def onemap(
    facilities: gpd.GeoDataFrame,
    scores: gpd.GeoDataFrame,
    standard: Standard,
    districts: gpd.GeoDataFrame | None = None,
    *,
    column: str | None = None,
    groups: pd.DataFrame | None = None,
    shares: pd.DataFrame | None = None,
    taxonomy: Taxonomy | None = None,
    worst: int = 3,
) -> OneMap:
    """Build the one-map: every facility classified and summed per 社区.

    Parameters
    ----------
    facilities
        All loaded facilities (``facility_id``, ``type``; ``name``,
        ``category``, ``capacity`` when present).
    scores
        Scored compounds (:meth:`Study.score`), with ``score``, ``population``
        and ``tier_<id>_pass``.
    standard
        The standard scored against (for the types a 社区 lacks and the tiers).
    districts
        :func:`load_districts` polygons; without them the 社区 come from a
        compound column (``column`` or :data:`DISTRICT_COLUMNS`) and each
        社区's shape is the convex hull of its compounds.
    groups
        :func:`lifecircle.census.group_populations` of ``scores`` (computed
        when not given, with ``shares``).
    taxonomy
        Names and categories of the types (default: the packaged taxonomy).
    worst
        How many worst-served compounds to name per 社区.

    Returns
    -------
    OneMap
        ``districts`` columns: ``district_id``, ``district_name``,
        ``n_compounds``, ``population``, ``pop_<group>`` for every age group,
        ``completeness`` (population-weighted mean score / 100),
        ``tier_<id>_pass_share`` (share of residents whose compound passes),
        ``n_facilities``, ``n_<category>`` for every taxonomy category,
        ``capacity_<type>`` for types with capacities, ``lacking_types``
        (scored types with no facility in the 社区, ``;``-separated),
        ``worst_compounds`` (``name (score)``, ``;``-separated), geometry.
        A row ``(none)`` gathers compounds outside every polygon, if any.

    Raises
    ------
    InputError
        No 社区 given, or missing columns.
    """
    taxonomy = taxonomy or default_taxonomy()
    for needed in ("facility_id", "type"):
        if needed not in facilities:
            raise InputError(f"facilities: missing column {needed!r}")
    scores = scores.to_crs(4326) if scores.crs is not None else scores
    compound_district = assign_districts(scores, districts, column=column)
    if districts is None:
        districts = _hull_districts(scores, compound_district)
    census = _facility_census(facilities, districts, taxonomy)
    counts = _counts(census, districts)
    table = shares if shares is not None else load_shares()
    pops = groups if groups is not None else group_populations(scores, table)
    summary = _district_rows(
        scores, compound_district, pops, census, districts, standard, taxonomy, worst
    )
    return OneMap(districts=summary, counts=counts, facilities=census)


def _hull_districts(scores: gpd.GeoDataFrame, district: pd.Series) -> gpd.GeoDataFrame:
    known = district.notna().to_numpy()
    frame = gpd.GeoDataFrame(
        {"district_id": district[known].to_numpy()},
        geometry=scores.geometry[known].to_numpy(),
        crs=scores.crs,
    )
    hulls = frame.dissolve("district_id").convex_hull
    return gpd.GeoDataFrame(
        {"district_id": hulls.index.astype(str), "district_name": hulls.index.astype(str)},
        geometry=hulls.to_numpy(),
        crs=scores.crs,
    )


def _facility_census(
    facilities: gpd.GeoDataFrame, districts: gpd.GeoDataFrame, taxonomy: Taxonomy
) -> gpd.GeoDataFrame:
    points = facilities.geometry.to_crs(districts.crs)
    district = _polygon_of(points, districts)
    names = dict(zip(districts["district_id"], districts["district_name"], strict=True))
    types = facilities["type"].astype(str).to_numpy()
    category = (
        facilities["category"].astype(str).to_numpy()
        if "category" in facilities
        else np.array([_category_of(taxonomy, t) for t in types], dtype=object)
    )
    return gpd.GeoDataFrame(
        {
            "facility_id": facilities["facility_id"].astype(str).to_numpy(),
            "name": facilities["name"].to_numpy() if "name" in facilities else None,
            "type": types,
            "type_zh": [_type_zh(taxonomy, t) for t in types],
            "category": category,
            "category_zh": [_category_zh(taxonomy, c) for c in category],
            "capacity": (
                pd.to_numeric(facilities["capacity"], errors="coerce").to_numpy()
                if "capacity" in facilities
                else np.nan
            ),
            "district_id": district,
            "district_name": [names.get(d) if d is not None else None for d in district],
        },
        geometry=points.to_numpy(),
        crs=districts.crs,
    )


def _category_of(taxonomy: Taxonomy, type_id: str) -> str:
    return taxonomy.types[type_id].category if type_id in taxonomy.types else "other"


def _type_zh(taxonomy: Taxonomy, type_id: str) -> str:
    return taxonomy.types[type_id].name_zh if type_id in taxonomy.types else type_id


def _category_zh(taxonomy: Taxonomy, category: str) -> str:
    found = taxonomy.categories.get(category)
    return found.name_zh if found is not None else category


def _counts(census: gpd.GeoDataFrame, districts: gpd.GeoDataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(census.drop(columns="geometry"))
    frame["district_id"] = frame["district_id"].fillna(_OUTSIDE)
    frame["district_name"] = frame["district_name"].fillna(_OUTSIDE)
    grouped = frame.groupby(
        ["district_id", "district_name", "category", "category_zh", "type", "type_zh"],
        sort=True,
        dropna=False,
    )
    counts = grouped.agg(count=("facility_id", "size"), capacity=("capacity", _sum_known))
    return counts.reset_index()


def _sum_known(values: pd.Series) -> float:
    known = values.dropna()
    return float(known.sum()) if len(known) else float("nan")


def _district_rows(
    scores: gpd.GeoDataFrame,
    compound_district: pd.Series,
    pops: pd.DataFrame,
    census: gpd.GeoDataFrame,
    districts: gpd.GeoDataFrame,
    standard: Standard,
    taxonomy: Taxonomy,
    worst: int,
) -> gpd.GeoDataFrame:
    ids = list(districts["district_id"])
    outside = compound_district.isna()
    if outside.any():
        logger.warning("%d compound(s) lie in no 社区 polygon", int(outside.sum()))
        ids.append(_OUTSIDE)
    key = compound_district.fillna(_OUTSIDE).to_numpy()
    population = pd.to_numeric(scores["population"], errors="coerce").to_numpy(dtype=float)
    score = scores["score"].to_numpy(dtype=float)
    names = scores["name"].astype(str).to_numpy() if "name" in scores else scores.index
    scored_types = standard.scored_types()
    tier_columns = [f"tier_{t.id}_pass" for t in standard.tiers if f"tier_{t.id}_pass" in scores]
    fac_key = census["district_id"].fillna(_OUTSIDE).to_numpy()
    rows = []
    for district in ids:
        mine = key == district
        pop = population[mine]
        known = np.isfinite(pop) & (pop > 0)
        row: dict[str, Any] = {
            "district_id": district,
            "n_compounds": int(mine.sum()),
            "population": round(float(pop[known].sum()), 1),
        }
        for column in pops.columns:
            if column.startswith("pop_") and column not in (group_column("all"), "pop_source"):
                values = pops.loc[mine, column].astype("Float64")
                row[column] = int(values.sum()) if values.notna().any() else None
        row["completeness"] = (
            round(float(np.average(score[mine][known], weights=pop[known])) / 100, 4)
            if known.any()
            else None
        )
        for column in tier_columns:
            passed = scores[column].to_numpy(dtype=bool)[mine]
            row[f"{column}_share"] = (
                round(float(pop[known & passed].sum() / pop[known].sum()), 4)
                if known.any()
                else None
            )
        facilities_here = census[fac_key == district]
        row["n_facilities"] = len(facilities_here)
        by_category = facilities_here["category"].value_counts()
        for category in taxonomy.categories:
            row[f"n_{category}"] = int(by_category.get(category, 0))
        present = set(facilities_here["type"])
        row["lacking_types"] = ";".join(t for t in scored_types if t not in present)
        order = np.argsort(score[mine], kind="stable")[: max(int(worst), 0)]
        row["worst_compounds"] = ";".join(
            f"{names[mine][i]} ({score[mine][i]:g})" for i in order if np.isfinite(score[mine][i])
        )
        for type_id, cap in (
            facilities_here.groupby("type")["capacity"].apply(_sum_known).dropna().items()
        ):
            row[f"capacity_{type_id}"] = cap
        rows.append(row)
    table = pd.DataFrame(rows)
    geometry = dict(zip(districts["district_id"], districts.geometry, strict=True))
    names_by_id = dict(zip(districts["district_id"], districts["district_name"], strict=True))
    table.insert(1, "district_name", [names_by_id.get(d, _OUTSIDE) for d in table["district_id"]])
    capacity_columns = sorted(c for c in table.columns if c.startswith("capacity_"))
    ordered = [c for c in table.columns if not c.startswith("capacity_")] + capacity_columns
    return gpd.GeoDataFrame(
        table[ordered],
        geometry=[geometry.get(d) for d in table["district_id"]],
        crs=districts.crs,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value
