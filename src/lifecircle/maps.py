"""Interactive web map of a study's results: ``map.html``.

:func:`render_map` reads the files that :func:`lifecircle.outputs.write_outputs`
wrote into an output folder (nothing is recomputed) and draws them with
folium/Leaflet:

* compounds coloured by score; a click opens the compound's scorecard (each
  category or required type met or missing, with the walking minutes to the
  nearest facility, grouped by tier with the tier verdicts; score; population)
  and a button that shows that compound's isochrones;
* the 5/10/15-minute isochrones, one layer per band (off by default), and the
  compound gates;
* facilities drawn with their type's icon and colour, clustered when zoomed out;
* gap polygons shaded by the population affected, and the study boundary;
* the one map (一张图, ``onemap.gpkg``): 社区 outlines whose popup gives their
  figures, and the facilities coloured by category, one category at a time
  from a selector in the legend; the elderly shuttle (``shuttle.gpkg``):
  route legs and stops, a stop's popup with its timetable summary; both off
  by default;
* items without any facility in the data named in the legend (not gaps);
* a legend, a layer switcher, a full-screen button and a scale bar.

The layer data sit in ``<script type="application/json">`` blocks that a small
runtime (``templates/map_runtime.js``) turns into Leaflet layers. Every string
that comes from the data (compound, facility and address names, ids) is
HTML-escaped in Python, by Jinja2 autoescaping, before it is written.

Basemaps: ``osm``, ``light`` (Esri World Light Gray Canvas), ``amap`` (Gaode, whose tiles are
GCJ-02: every overlay is then shifted from WGS84 to GCJ-02 so that it lines
up), ``tianditu`` (needs a key) and ``none`` (no tiles, for offline use). With
``self_contained=True`` Leaflet, Leaflet.markercluster and Font Awesome come
inlined from the XStatic packages, so the page loads no script, style sheet or
font from the network; with ``basemap="none"`` it makes no request at all.

Geometries are simplified by :data:`SIMPLIFY_M` metres and coordinates rounded
to 6 decimals (about 0.1 m), which keeps a 2,000-compound study with its
isochrones well under 15 MB.
"""

from __future__ import annotations

import base64
import functools
import html
import itertools
import json
import logging
import math
import mimetypes
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import folium
import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
import pyogrio
import shapely
from branca.element import Element, MacroElement
from folium.plugins import MarkerCluster
from markupsafe import Markup, escape

from .columns import per_distinct
from .coords import wgs84_to_gcj02
from .errors import InputError, MissingDataError
from .outputs import CONTEXT_FILE, atomic_path, column_vocabulary
from .taxonomy import default_taxonomy

if TYPE_CHECKING:
    from .study import Study

logger = logging.getLogger(__name__)

__all__ = [
    "BASEMAPS",
    "LANGUAGES",
    "SELF_CONTAINED_META",
    "SIMPLIFY_M",
    "TIANDITU_KEY_ENV",
    "Item",
    "Labels",
    "NotebookMap",
    "Results",
    "map_page",
    "notebook_map",
    "read_results",
    "render_map",
    "standalone_html",
    "standard_items",
    "ui_text",
    "whatif_data",
    "whatif_totals",
    "write_whatif",
]

BASEMAPS: tuple[str, ...] = ("osm", "light", "amap", "tianditu", "none")
LANGUAGES: tuple[str, ...] = ("zh", "en")
TIANDITU_KEY_ENV = "LIFECIRCLE_TIANDITU_KEY"
SIMPLIFY_M = 3.0
COORD_DECIMALS = 6
# Above this many compounds Leaflet draws vectors on a canvas: thousands of SVG
# paths make panning sluggish.
CANVAS_ABOVE = 1000
# Above this many gates the gate layer starts hidden.
GATES_SHOWN_UP_TO = 1000
# From this many facility markers on, they are clustered when zoomed out. A
# subdistrict (街道) holds a few hundred: every marker stays visible there, as the
# planner reads them; a city's tens of thousands would bury the map and slow it.
CLUSTER_FROM = 1000

# Score classes: upper bounds (exclusive) and colours; 100 has its own class.
SCORE_BREAKS: tuple[float, ...] = (60.0, 75.0, 90.0, 100.0)
SCORE_COLORS: tuple[str, ...] = ("#d73027", "#fc8d59", "#fee08b", "#91cf60", "#1a9850")
NO_SCORE_COLOR = "#bdbdbd"
GAP_COLORS: tuple[str, ...] = ("#f2f0f7", "#cbc9e2", "#9e9ac8", "#756bb1", "#54278f")
ISO_COLORS: tuple[str, ...] = ("#08519c", "#3182bd", "#6baed6", "#9ecae1", "#c6dbef", "#deebf7")
MAX_ZOOM = 19
# Gap outlines by scored item: a qualitative palette apart from the score ramp.
GAP_ITEM_COLORS: tuple[str, ...] = (
    "#1f78b4",
    "#e7298a",
    "#8c510a",
    "#01665e",
    "#6a3d9a",
    "#d95f02",
    "#4d4d4d",
    "#b15928",
)
# Facility categories on the one-map layer (a qualitative palette, Tableau 10).
CATEGORY_COLORS: tuple[str, ...] = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
SHUTTLE_COLOR = "#00838f"
PANES: dict[str, int] = {
    "lc-context": 300,
    "lc-area": 350,
    "lc-iso": 360,
    "lc-gaps": 380,
    "lc-gates": 450,
}

_MAP_FILE = "map.html"
SELF_CONTAINED_META = '<meta name="lifecircle-map" content="self-contained">'
_ICON_PATTERN = re.compile(r"[a-z0-9-]+")
_COLOR_PATTERN = re.compile(r"#[0-9a-fA-F]{6}")
_KEY_PATTERN = re.compile(r"[0-9A-Za-z]{8,64}")

_LEAFLET_VERSION = "1.9.3"
_MARKERCLUSTER_VERSION = "1.4.1"
_FONTAWESOME_VERSION = "6.2.1"
_CDN = "https://cdn.jsdelivr.net/npm"
_CDN_JS = [
    ("leaflet", f"{_CDN}/leaflet@{_LEAFLET_VERSION}/dist/leaflet.js"),
]
_CDN_CSS = [
    ("leaflet_css", f"{_CDN}/leaflet@{_LEAFLET_VERSION}/dist/leaflet.css"),
    ("fa_css", f"{_CDN}/@fortawesome/fontawesome-free@{_FONTAWESOME_VERSION}/css/all.min.css"),
    (
        "fa_shims_css",
        f"{_CDN}/@fortawesome/fontawesome-free@{_FONTAWESOME_VERSION}/css/v4-shims.min.css",
    ),
]
_CLUSTER_CDN = f"{_CDN}/leaflet.markercluster@{_MARKERCLUSTER_VERSION}/dist"
_CLUSTER_JS = [("markercluster", f"{_CLUSTER_CDN}/leaflet.markercluster.js")]
_CLUSTER_CSS = [
    ("markercluster_css", f"{_CLUSTER_CDN}/MarkerCluster.css"),
    ("markercluster_default_css", f"{_CLUSTER_CDN}/MarkerCluster.Default.css"),
]
_CLUSTER_OPTIONS = {
    "showCoverageOnHover": False,
    "chunkedLoading": True,
    "maxClusterRadius": 45,
    "disableClusteringAtZoom": 17,
}

_OSM_ATTRIBUTION = (
    '<a href="https://www.openstreetmap.org/copyright">© OpenStreetMap contributors</a> (ODbL)'
)

# ------------------------------------------------------------------------- texts
_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "html_lang": "zh-CN",
        "title": "15分钟生活圈评估",
        "synthetic": "合成示例数据，非真实地点",
        "synthetic_tag": "（合成示例数据，非真实地点）",
        "compounds": "小区（按得分着色）",
        "iso_band": "{m} 分钟等时圈",
        "iso_partial": "（{n}/{total} 个小区）",
        "gates": "小区出入口",
        "facilities": "设施",
        "gaps": "服务盲区（按影响人口着色）",
        "boundary": "研究范围",
        "score": "得分",
        "population": "人口",
        "item": "项目",
        "nearest": "最近步行",
        "limit": "标准",
        "pass": "达标",
        "fail": "未达标",
        "met": "✓ 满足",
        "missing": "✗ 缺失",
        "minutes": "{m:.1f} 分钟",
        "minutes_unit": " 分钟",
        "limit_minutes": "{m:g} 分钟",
        "unreachable": "不可达",
        "optional": "（可选）",
        "show_iso": "显示 / 隐藏等时圈",
        "not_routed": "未能接入步行路网（{status}），按全部缺失计分",
        "origin_gates": "从 {n} 个出入口出发计算步行距离",
        "origin_inside": "无出入口数据，从小区内部点出发计算",
        "legend_score": "小区得分",
        "legend_gaps": "服务盲区影响人口",
        "legend_iso": "步行等时圈",
        "legend_facilities": "设施类型",
        "legend_other": "其他",
        "no_score": "无得分",
        "fullscreen": "全屏",
        "population_affected": "影响人口",
        "robustness": "稳健性",
        "site": "建议新址",
        "sites": "建议新址",
        "site_tip": "第 {rank} 名：新覆盖 {n} 人",
        "robustness_robust": "稳健：所有假设下都存在",
        "robustness_fragile": "脆弱：随假设而变",
        "robustness_mixed": "部分稳健",
        "disappears_at": "消失于",
        "cells": "网格数",
        "area": "面积",
        "area_value": "{ha:.1f} 公顷",
        "max_walk": "最远步行",
        "status": "阈值状态",
        "source": "来源",
        "address": "地址",
        "capacity": "容量",
        "snap_failed": "未接入步行路网（{status}），未参与计算",
        "gate": "出入口",
        "persons": "{n} 人",
        "gap_type": "盲区类型",
        "gap_all": "全部类型",
        "tile_note": "底图无法加载（离线？），改为显示研究数据中的街道与水系。",
        "context": "街道与水系（研究数据）",
        "streets": "街道",
        "water": "水系",
        "cluster_note": "圆圈中的数字为该处设施个数，放大后显示各设施",
        "legend": "图例",
        "whatif": "假设情景：新增设施",
        "whatif_all": "全部居民",
        "whatif_recommended": "建议新址",
        "whatif_candidates": "候选点",
        "whatif_edits": "情景：新增道路与出入口",
        "whatif_newly": "新覆盖人口（{target}）",
        "whatif_flips": "由未达标变为达标的小区",
        "whatif_none": "勾选新址，立即查看新覆盖的居民",
        "onemap_districts": "一张图：社区",
        "onemap_facilities": "一张图：设施（按类别）",
        "shuttle": "老年人接驳车",
        "district": "社区",
        "n_compounds": "小区数",
        "age_60plus": "60岁及以上",
        "completeness": "完善度",
        "tier_share": "{tier}达标比例",
        "n_facilities": "设施数",
        "lacking_types": "缺少类型",
        "worst_compounds": "得分最低小区",
        "category": "类别",
        "category_pick": "设施类别",
        "category_all": "全部类别",
        "legend_onemap": "一张图：设施类别",
        "legend_shuttle": "老年人接驳车",
        "shuttle_route": "接驳线路",
        "shuttle_stop": "接驳站点",
        "stop": "站点",
        "line": "线路",
        "kind_boarding": "上车点",
        "kind_destination": "目的地站",
        "near": "邻近",
        "residents_60plus_walk": "步行可达的60岁及以上居民",
        "timetable": "时刻表",
        "timetable_value": "{trips} 班，{first}–{last}",
        "loop_offset": "距始发站",
        "leg": "路段",
        "length": "长度",
        "no_data": "无数据（非盲区）",
    },
    "en": {
        "html_lang": "en",
        "title": "15-minute life circle assessment",
        "synthetic": "synthetic data, not a real place",
        "synthetic_tag": " (synthetic data, not a real place)",
        "compounds": "Compounds (by score)",
        "iso_band": "{m}-minute isochrones",
        "iso_partial": " ({n} of {total} compounds)",
        "gates": "Compound gates",
        "facilities": "Facilities",
        "gaps": "Gaps (by population affected)",
        "boundary": "Study area",
        "score": "Score",
        "population": "Population",
        "item": "Item",
        "nearest": "Nearest",
        "limit": "Limit",
        "pass": "pass",
        "fail": "fail",
        "met": "✓ met",
        "missing": "✗ missing",
        "minutes": "{m:.1f} min",
        "minutes_unit": " min",
        "limit_minutes": "{m:g} min",
        "unreachable": "not reachable",
        "optional": " (optional)",
        "show_iso": "Show / hide isochrones",
        "not_routed": "not on the walking network ({status}); scored as missing everything",
        "origin_gates": "walking measured from {n} gate(s)",
        "origin_inside": "no gates: walking measured from an inside point",
        "legend_score": "Compound score",
        "legend_gaps": "Gap: population affected",
        "legend_iso": "Walking isochrones",
        "legend_facilities": "Facility types",
        "legend_other": "Other",
        "no_score": "no score",
        "fullscreen": "Full screen",
        "population_affected": "Population affected",
        "robustness": "Robustness",
        "site": "Recommended site",
        "sites": "Recommended sites",
        "site_tip": "rank {rank}: newly covers {n} residents",
        "robustness_robust": "robust: in every run",
        "robustness_fragile": "fragile: depends on an assumption",
        "robustness_mixed": "mixed",
        "disappears_at": "Disappears at",
        "cells": "Cells",
        "area": "Area",
        "area_value": "{ha:.1f} ha",
        "max_walk": "Farthest walk",
        "status": "Threshold status",
        "source": "Source",
        "address": "Address",
        "capacity": "Capacity",
        "snap_failed": "not on the walking network ({status}); not counted",
        "gate": "Gate",
        "persons": "{n}",
        "gap_type": "Gap type",
        "gap_all": "all types",
        "tile_note": "Basemap tiles did not load (offline?): streets and water are drawn from "
        "the study's data instead.",
        "context": "Streets and water (study data)",
        "streets": "Streets",
        "water": "Water",
        "cluster_note": "a number counts the facilities there; zoom in to see each",
        "legend": "Legend",
        "whatif": "What if: new facilities",
        "whatif_all": "all residents",
        "whatif_recommended": "Recommended sites",
        "whatif_candidates": "Candidate sites",
        "whatif_edits": "Scenario: new links and gates",
        "whatif_newly": "Residents newly covered ({target})",
        "whatif_flips": "Compounds whose verdict flips to met",
        "whatif_none": "tick sites to see the residents they newly cover",
        "onemap_districts": "One map: communities",
        "onemap_facilities": "One map: facilities by category",
        "shuttle": "Elderly shuttle",
        "district": "Community",
        "n_compounds": "Compounds",
        "age_60plus": "Aged 60+",
        "completeness": "Completeness",
        "tier_share": "Passing {tier}",
        "n_facilities": "Facilities",
        "lacking_types": "Types lacking",
        "worst_compounds": "Lowest-scoring compounds",
        "category": "Category",
        "category_pick": "Category",
        "category_all": "all categories",
        "legend_onemap": "One map: facility categories",
        "legend_shuttle": "Elderly shuttle",
        "shuttle_route": "Shuttle route",
        "shuttle_stop": "Shuttle stop",
        "stop": "Stop",
        "line": "Line",
        "kind_boarding": "boarding stop",
        "kind_destination": "destination stop",
        "near": "Near",
        "residents_60plus_walk": "Residents 60+ within a walk",
        "timetable": "Timetable",
        "timetable_value": "{trips} trips, {first}–{last}",
        "loop_offset": "From the first stop",
        "leg": "Leg",
        "length": "Length",
        "no_data": "No data (not gaps)",
    },
}


def ui_text(lang: str) -> dict[str, str]:
    """Return the interface strings of a language (``zh`` or ``en``).

    Examples
    --------
    >>> ui_text("en")["boundary"]
    'Study area'
    """
    if lang not in _TEXT:
        raise InputError(f"unknown language {lang!r}; use one of: {', '.join(LANGUAGES)}")
    return _TEXT[lang]


# ------------------------------------------------------------------------ inputs
@dataclass
class Results:
    """The result files of one output folder, as read back for maps and reports."""

    out_dir: Path
    summary: dict[str, Any]
    communities: gpd.GeoDataFrame
    gates: gpd.GeoDataFrame | None = None
    isochrones: gpd.GeoDataFrame | None = None
    gaps: gpd.GeoDataFrame | None = None
    cells: gpd.GeoDataFrame | None = None
    boundary: gpd.GeoDataFrame | None = None
    facilities: pd.DataFrame | None = None
    sites: gpd.GeoDataFrame | None = None
    streets: gpd.GeoDataFrame | None = None
    water: gpd.GeoDataFrame | None = None
    districts: gpd.GeoDataFrame | None = None
    district_facilities: gpd.GeoDataFrame | None = None
    shuttle_stops: gpd.GeoDataFrame | None = None
    shuttle_route: gpd.GeoDataFrame | None = None
    shuttle_timetable: pd.DataFrame | None = None
    _gaps_in_area: gpd.GeoSeries | None = field(default=None, init=False, repr=False)

    @property
    def standard(self) -> dict[str, Any]:
        """The standard with its thresholds and sources (the summary's provenance)."""
        return self.summary.get("provenance") or {}

    @property
    def boundary_geometry(self) -> gpd.GeoSeries | None:
        """The study boundary, when the results have one."""
        if self.boundary is None or self.boundary.empty:
            return None
        return self.boundary.geometry

    def gaps_in_area(self) -> gpd.GeoSeries | None:
        """The gap polygons cut to the study boundary (grid cells along its edge spill
        past it), computed once for the map and the report."""
        if self.gaps is None or self.gaps.empty:
            return None
        if self._gaps_in_area is None:
            self._gaps_in_area = clip_to_boundary(
                self.gaps.geometry, self.boundary_geometry, self.gaps.get("item")
            )
        return self._gaps_in_area

    @property
    def attribution(self) -> list[str]:
        """Licence and origin notes of the data."""
        return [str(line) for line in self.summary.get("attribution") or []]

    @property
    def synthetic(self) -> bool:
        """True when the summary says the data are synthetic."""
        return any("synthetic" in line.lower() for line in self.attribution)

    @property
    def from_osm(self) -> bool:
        """True when some data came from OpenStreetMap."""
        return any("openstreetmap" in line.lower() for line in self.attribution)


def _read_layer(path: Path, layer: str) -> gpd.GeoDataFrame | None:
    """One layer of a GeoPackage in WGS84, or None when the file or layer is absent."""
    if not path.is_file():
        return None
    if layer not in {str(name) for name in pyogrio.list_layers(path)[:, 0]}:
        return None
    frame = gpd.read_file(path, layer=layer, use_arrow=True)  # the same frame, faster
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs(4326)
    return frame


def _read_facilities(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    frame = pd.read_csv(
        path, encoding="utf-8-sig", dtype={"facility_id": str, "name": str, "address": str}
    )
    if not {"lon", "lat", "type"} <= set(frame.columns):
        logger.warning("%s has no lon/lat columns; facilities are not drawn", path)
        return None
    return frame


ONEMAP_FILE = "onemap.gpkg"
SHUTTLE_FILE = "shuttle.gpkg"
TIMETABLE_FILE = "shuttle_timetable.csv"


def _read_table(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    return pd.read_csv(path, encoding="utf-8-sig", dtype=str)


def read_results(out_dir: str | Path) -> Results:
    """Read the result files of an output folder.

    Parameters
    ----------
    out_dir
        A folder written by :func:`lifecircle.outputs.write_outputs`. It must
        hold ``summary.json`` and ``communities.gpkg``; isochrones, gaps,
        gates, the study boundary, facilities, the one-map layers
        (``onemap.gpkg``) and the shuttle (``shuttle.gpkg``, its timetable)
        are read when present.

    Raises
    ------
    InputError
        When a required file is missing.
    """
    out = Path(out_dir)
    summary_path = out / "summary.json"
    communities_path = out / "communities.gpkg"
    for path in (summary_path, communities_path):
        if not path.is_file():
            raise InputError(
                f"{path.name} not found in {out}; write the results first "
                "(lifecircle score --out FOLDER)",
                file=path,
            )
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    communities = _read_layer(communities_path, "communities")
    if communities is None:
        raise InputError("no layer 'communities'", file=communities_path)
    boundary = _read_layer(out / "gaps.gpkg", "boundary")
    return Results(
        out_dir=out,
        summary=summary,
        communities=communities.reset_index(drop=True),
        gates=_read_layer(communities_path, "gates"),
        isochrones=_read_layer(out / "isochrones.gpkg", "isochrones"),
        gaps=_read_layer(out / "gaps.gpkg", "gaps"),
        # the cells only stand in for a missing boundary (see study_boundary)
        cells=_read_layer(out / "gaps.gpkg", "cells")
        if boundary is None or boundary.empty
        else None,
        boundary=boundary,
        facilities=_read_facilities(out / "facilities.csv"),
        sites=_read_layer(out / "sites.gpkg", "sites"),
        streets=_read_layer(out / CONTEXT_FILE, "streets"),
        water=_read_layer(out / CONTEXT_FILE, "water"),
        districts=_read_layer(out / ONEMAP_FILE, "districts"),
        district_facilities=_read_layer(out / ONEMAP_FILE, "facilities"),
        shuttle_stops=_read_layer(out / SHUTTLE_FILE, "stops"),
        shuttle_route=_read_layer(out / SHUTTLE_FILE, "route"),
        shuttle_timetable=_read_table(out / TIMETABLE_FILE),
    )


# ------------------------------------------------------------------------- names
@dataclass(frozen=True)
class Item:
    """One scored item of a standard (a required type or a category), from the provenance."""

    id: str
    kind: str
    tier: str
    threshold_m: float
    threshold_min: float
    optional: bool
    status: str
    source: str
    clause: str
    basis: str
    members: tuple[str, ...]
    clause_zh: str = ""

    def clause_in(self, lang: str) -> str:
        """The clause in ``lang``: its Chinese wording in zh when the profile gives one.

        Examples
        --------
        >>> item = Item("park", "requirement", "10min", 500.0, 8.3, False, "CONFIRMED",
        ...             "S_X", "a park within 500 m", "", ("park",), "500 米内有公园")
        >>> item.clause_in("zh"), item.clause_in("en")
        ('500 米内有公园', 'a park within 500 m')
        """
        return self.clause_zh if lang == "zh" and self.clause_zh else self.clause


def standard_items(standard: Mapping[str, Any]) -> list[Item]:
    """The requirements, then the categories, of a standard given as a dict.

    ``standard`` is :meth:`lifecircle.standards.Standard.to_dict` output, as
    stored in ``summary.json`` under ``provenance``.
    """
    items = []
    for kind, key, entries in (
        ("requirement", "type", standard.get("requirements") or []),
        ("category", "id", standard.get("categories") or []),
    ):
        for entry in entries:
            items.append(
                Item(
                    id=str(entry[key]),
                    kind=kind,
                    tier=str(entry.get("tier", "")),
                    threshold_m=float(entry.get("threshold_m") or math.nan),
                    threshold_min=float(entry.get("threshold_min") or math.nan),
                    optional=bool(entry.get("optional", False)),
                    status=str(entry.get("status", "")),
                    source=str(entry.get("source", "")),
                    clause=str(entry.get("clause") or ""),
                    clause_zh=str(entry.get("clause_zh") or ""),
                    basis=str(entry.get("threshold_basis") or ""),
                    members=tuple(entry.get("types") or [entry[key]]),
                )
            )
    return items


class Labels:
    """Display names of tiers, items, facility types and categories in one language.

    Names come from the standard (tiers, categories) and the facility taxonomy
    (types); an id without a name is shown as it is.
    """

    def __init__(self, standard: Mapping[str, Any], lang: str) -> None:
        ui_text(lang)  # validates lang
        self.lang = lang
        taxonomy = default_taxonomy()
        self._tiers = {str(t["id"]): t for t in standard.get("tiers") or []}
        self._categories = {str(c["id"]): c for c in standard.get("categories") or []}
        self._types = taxonomy.types
        self._taxonomy_categories = taxonomy.categories

    def _name(self, zh: str | None, en: str | None, fallback: str) -> str:
        first, second = (zh, en) if self.lang == "zh" else (en, zh)
        return str(first or second or fallback)

    def tier(self, tier_id: str) -> str:
        """Name of a tier of the standard."""
        tier = self._tiers.get(tier_id, {})
        return self._name(tier.get("name_zh"), tier.get("name_en"), tier_id)

    def type(self, type_id: str) -> str:
        """Name of a facility type."""
        found = self._types.get(type_id)
        if found is None:
            return type_id
        return self._name(found.name_zh, found.name_en, type_id)

    def category(self, category_id: str) -> str:
        """Name of a category of the standard, else of the taxonomy."""
        found = self._categories.get(category_id)
        if found is not None:
            return self._name(found.get("name_zh"), found.get("name_en"), category_id)
        taxonomy_category = self._taxonomy_categories.get(category_id)
        if taxonomy_category is not None:
            return self._name(taxonomy_category.name_zh, taxonomy_category.name_en, category_id)
        return category_id

    def item(self, item_id: str) -> str:
        """Name of a scored item: a category of the standard or a facility type."""
        if item_id in self._categories:
            return self.category(item_id)
        return self.type(item_id)


# ---------------------------------------------------------------------- templates
@functools.cache
def templates() -> jinja2.Environment:
    """The package's Jinja2 templates, with HTML autoescaping always on."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("lifecircle", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def template_text(name: str) -> str:
    """The raw text of a packaged template file (CSS, JavaScript)."""
    return (resources.files("lifecircle") / "templates" / name).read_text(encoding="utf-8")


_BETWEEN_TAGS = re.compile(r">\s+<")


def _render(name: str, **context: Any) -> str:
    """Render a packaged HTML template compactly (whitespace between tags dropped)."""
    return _BETWEEN_TAGS.sub("><", templates().get_template(name).render(**context)).strip()


# ------------------------------------------------------------------- formatting
def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _count(value: Any) -> str:
    number = _finite(value)
    return "" if number is None else f"{number:,.0f}"


def _clean(value: Any) -> str:
    """A data value as text; missing values as the empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value is pd.NA:
        return ""
    return str(value)


def score_class(score: Any) -> int:
    """Index of a score's colour class in :data:`SCORE_COLORS`; ``len`` for no score.

    Examples
    --------
    >>> [score_class(s) for s in (0, 59.9, 60, 89.9, 99.9, 100, None)]
    [0, 0, 1, 2, 3, 4, 5]
    """
    number = _finite(score)
    if number is None:
        return len(SCORE_COLORS)
    for index, bound in enumerate(SCORE_BREAKS):
        if number < bound:
            return index
    return len(SCORE_BREAKS)


def score_legend(lang: str) -> list[dict[str, str]]:
    """Legend rows (colour, label) of the score classes."""
    low = [0.0, *SCORE_BREAKS[:-1]]
    labels = [f"< {SCORE_BREAKS[0]:g}"]
    labels += [f"{a:g}–<{b:g}" for a, b in zip(low[1:], SCORE_BREAKS[1:], strict=True)]
    labels.append(f"{SCORE_BREAKS[-1]:g}")
    rows = [{"color": c, "label": t} for c, t in zip(SCORE_COLORS, labels, strict=True)]
    rows.append({"color": NO_SCORE_COLOR, "label": ui_text(lang)["no_score"]})
    return rows


def _nice(value: float) -> float:
    """Round to two significant digits (for class breaks people can read)."""
    if value <= 0:
        return 0.0
    digits = 1 - math.floor(math.log10(value))
    return round(value, digits)


def gap_breaks(population: Sequence[float]) -> list[float]:
    """Upper bounds of up to five population classes (quintiles, rounded).

    Examples
    --------
    >>> gap_breaks([10, 20, 30, 40, 50, 600, 700, 800, 900, 1000])
    [28.0, 46.0, 640.0, 820.0]
    """
    values = np.asarray([v for v in population if _finite(v) is not None], dtype=float)
    if values.size == 0:
        return []
    quantiles = np.quantile(values, [0.2, 0.4, 0.6, 0.8])
    breaks = sorted({_nice(float(q)) for q in quantiles if q > 0})
    return [b for b in breaks if b < values.max()]


def _gap_color_index(index: int, classes: int) -> int:
    """Spread ``classes`` classes over the gap ramp, the last always the darkest."""
    if classes <= 1:
        return len(GAP_COLORS) - 1
    return round(index * (len(GAP_COLORS) - 1) / (classes - 1))


def gap_legend(breaks: Sequence[float], lang: str) -> list[dict[str, str]]:
    """Legend rows of the gap population classes."""
    persons = ui_text(lang)["persons"]
    classes = len(breaks) + 1
    rows = []
    for index in range(classes):
        if classes == 1:
            label = persons.format(n="> 0")
        elif index == 0:
            label = persons.format(n=f"≤ {breaks[0]:,.0f}")
        elif index == classes - 1:
            label = persons.format(n=f"> {breaks[-1]:,.0f}")
        else:
            label = persons.format(n=f"{breaks[index - 1]:,.0f}–{breaks[index]:,.0f}")
        rows.append({"color": GAP_COLORS[_gap_color_index(index, classes)], "label": label})
    return rows


# -------------------------------------------------------------------- geometries
def _to_gcj02(xy: np.ndarray) -> np.ndarray:
    lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat])


def _round(xy: np.ndarray) -> np.ndarray:
    return np.round(xy, COORD_DECIMALS)


def display_geometries(
    geoms: gpd.GeoSeries, *, gcj02: bool, simplify_m: float = SIMPLIFY_M
) -> np.ndarray:
    """Geometries as drawn: simplified in metres, shifted to GCJ-02 if asked, rounded.

    Returns an object array of shapely geometries in (display) longitude and
    latitude; missing and empty geometries come back as None.
    """
    values = (geoms.to_crs(4326) if geoms.crs is not None else geoms).to_numpy().copy()
    kinds = shapely.get_type_id(values)
    shaped = (kinds >= 0) & ~np.isin(kinds, [shapely.GeometryType.POINT, 4])
    plane = None
    if simplify_m > 0 and shaped.any():
        plane = _LocalPlane.about(values[shaped])
        values[shaped] = _simplified(shapely.transform(values[shaped], plane.metres), simplify_m)
    # back to degrees from the plane, shifted and rounded in one pass over the coordinates
    values[shaped] = shapely.transform(values[shaped], functools.partial(_shown, plane, gcj02))
    values[~shaped] = shapely.transform(values[~shaped], functools.partial(_shown, None, gcj02))
    missing = shapely.is_missing(values) | shapely.is_empty(values)
    values[missing] = None
    return values


@dataclass(frozen=True)
class _LocalPlane:
    """Metres east and north of a centre, at the ellipsoid's scale there.

    A study spans tens of kilometres, over which the scale changes by a few
    parts in a thousand: a 3 m display tolerance stays 3 m to a centimetre,
    and the plane costs two multiplications where a projection to UTM and
    back cost most of the map's time.
    """

    lon0: float
    lat0: float
    east: float  # metres per degree of longitude
    north: float  # metres per degree of latitude

    @classmethod
    def about(cls, geoms: np.ndarray) -> _LocalPlane:
        minx, miny, maxx, maxy = shapely.total_bounds(geoms)
        lon0, lat0 = (minx + maxx) / 2, (miny + maxy) / 2
        phi = math.radians(lat0)
        east = 111_412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi) + 0.118 * math.cos(5 * phi)
        north = 111_132.954 - 559.822 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
        return cls(lon0, lat0, max(east, 1.0), north)

    def metres(self, xy: np.ndarray) -> np.ndarray:
        return (xy - (self.lon0, self.lat0)) * (self.east, self.north)

    def degrees(self, xy: np.ndarray) -> np.ndarray:
        return xy / (self.east, self.north) + (self.lon0, self.lat0)


def _shown(plane: _LocalPlane | None, gcj02: bool, xy: np.ndarray) -> np.ndarray:
    """Display coordinates: back to degrees from ``plane`` if given, GCJ-02 if asked, rounded."""
    if plane is not None:
        xy = plane.degrees(xy)
    if gcj02:
        xy = _to_gcj02(xy)
    return _round(xy)


def _simplified(geoms: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Geometries simplified within ``tolerance_m``, valid as they were.

    Douglas-Peucker is several times faster than the topology-preserving
    algorithm (24,000 isochrones of a 160k city: 1.5 s against 10.8 s, for
    the same number of vertices to a thousandth); the few shapes it breaks
    (a ring crossing itself, a hole or a small part lost) are redone with
    the topology-preserving one.
    """
    simplified = shapely.simplify(geoms, tolerance_m, preserve_topology=False)
    invalid = np.flatnonzero(~shapely.is_valid(simplified))
    broken = np.zeros(len(geoms), dtype=bool)
    broken[invalid] = shapely.is_valid(geoms[invalid])
    broken |= shapely.is_empty(simplified) & ~shapely.is_empty(geoms)
    broken |= _ring_counts(simplified) != _ring_counts(geoms)
    if broken.any():
        simplified[broken] = shapely.simplify(geoms[broken], tolerance_m, preserve_topology=True)
    return simplified


def _ring_counts(geoms: np.ndarray) -> np.ndarray:
    """Parts plus holes of each geometry (0 for a missing one)."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    rings = 1 + np.maximum(shapely.get_num_interior_rings(parts), 0)
    return np.bincount(owner, weights=rings, minlength=len(geoms))


def script_json(text: str) -> str:
    """JSON text made safe inside a ``<script>`` element (``<``, ``>``, ``&`` escaped).

    Those characters only occur inside JSON strings, where ``\\u003c`` and
    friends mean the same, so the JSON is unchanged for ``JSON.parse``.

    Examples
    --------
    >>> script_json('{"a":"</script><b>&"}')
    '{"a":"\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"}'
    """
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


_CHUNKS = 7  # 5-bit chunks: enough for any zigzagged 32-bit delta
_SCALE = 10**COORD_DECIMALS


_BLOCK = 1 << 18  # values encoded at a time: small temporaries, reused, not fresh pages


def _polyline_chars(values: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Encoded-polyline characters of signed integers, and how many each takes.

    Block by block, and chunk by chunk over the values that still have one:
    most deltas take one to three of the seven chunks, and whole-array
    temporaries for a city's isochrones (ten million values) cost five times
    as much, most of it in page faults.
    """
    blocks = [_block_chars(values[i : i + _BLOCK]) for i in range(0, values.size, _BLOCK)]
    if not blocks:
        return b"", np.zeros(0, dtype=np.int64)
    return b"".join(b[0] for b in blocks), np.concatenate([b[1] for b in blocks])


def _block_chars(values: np.ndarray) -> tuple[bytes, np.ndarray]:
    zigzag = ((values << 1) ^ (values >> 63)).astype(np.uint64)
    lengths = np.ones(zigzag.size, dtype=np.int64)
    for k in range(1, _CHUNKS):
        lengths += zigzag >= np.uint64(1 << (5 * k))
    starts = np.cumsum(lengths) - lengths
    chars = np.empty(int(lengths.sum()), dtype=np.uint8)
    more = (lengths > 1).astype(np.uint64) << np.uint64(5)
    chars[starts] = ((zigzag & np.uint64(31)) | more) + np.uint64(63)
    for k in range(1, _CHUNKS):
        has = np.flatnonzero(lengths > k)
        if has.size == 0:
            break
        chunk = (zigzag[has] >> np.uint64(5 * k)) & np.uint64(31)
        more = (lengths[has] > k + 1).astype(np.uint64) << np.uint64(5)
        chars[starts[has] + k] = (chunk | more) + np.uint64(63)
    return chars.tobytes(), lengths


def encode_rings(coords: np.ndarray, ring_offsets: np.ndarray) -> list[str]:
    """Encode rings as polylines (Google's algorithm, 6 decimals, latitude first).

    ``coords`` holds longitude/latitude rows; ring ``i`` is
    ``coords[ring_offsets[i]:ring_offsets[i + 1]]``. Each ring becomes a short
    ASCII string, about a quarter of the size of the same numbers as JSON.

    Examples
    --------
    >>> encode_rings(np.array([[-120.2, 38.5], [-120.95, 40.7]]), np.array([0, 2]))
    ['_izlhA~rlgdF_{geC~ywl@']
    """
    if len(coords) == 0:
        return [""] * (len(ring_offsets) - 1)
    values = np.round(coords[:, ::-1] * _SCALE).astype(np.int64)
    previous = np.vstack([np.zeros((1, 2), dtype=np.int64), values[:-1]])
    previous[ring_offsets[:-1][ring_offsets[:-1] < len(values)]] = 0
    chars, lengths = _polyline_chars((values - previous).ravel())
    text = chars.decode("ascii")
    per_vertex = lengths.reshape(-1, 2).sum(axis=1)
    char_offsets = np.concatenate([[0], np.cumsum(per_vertex)])[ring_offsets]
    return [text[a:b] for a, b in itertools.pairwise(char_offsets.tolist())]


def decode_polyline(text: str) -> np.ndarray:
    """Decode one ring of :func:`encode_rings` to longitude/latitude rows.

    Examples
    --------
    >>> decode_polyline("_izlhA~rlgdF_{geC~ywl@").tolist()
    [[-120.2, 38.5], [-120.95, 40.7]]
    """
    numbers, value, shift = [], 0, 0
    for char in text:
        chunk = ord(char) - 63
        value |= (chunk & 31) << shift
        shift += 5
        if chunk < 32:
            numbers.append(~(value >> 1) if value & 1 else value >> 1)
            value, shift = 0, 0
    latlon = np.cumsum(np.asarray(numbers, dtype=np.int64).reshape(-1, 2), axis=0)
    return latlon[:, ::-1] / _SCALE


def _encoded_shapes(geoms: np.ndarray) -> list[str]:
    """Each (multi)polygon or (multi)line as JSON text: encoded polylines nested as in
    GeoJSON's MultiPolygon (polygons of rings) or MultiLineString (lines)."""
    if len(geoms) == 0:
        return []
    kind, coords, offsets = shapely.to_ragged_array(geoms)
    # polyline characters run from "?" to "~": only the backslash needs escaping
    texts = ['"' + text.replace("\\", "\\\\") + '"' for text in encode_rings(coords, offsets[0])]
    for level in offsets[1:]:
        texts = ["[" + ",".join(texts[a:b]) + "]" for a, b in itertools.pairwise(level.tolist())]
    if kind in (shapely.GeometryType.POLYGON, shapely.GeometryType.LINESTRING):
        texts = ["[" + text + "]" for text in texts]  # each a multi-geometry of one part
    return texts


def encode_features(
    geometries: np.ndarray, properties: Sequence[Mapping[str, Any]] | Sequence[str]
) -> str:
    """A layer as compact JSON text: ``{"features": [...]}``.

    A feature is ``{"p": properties}`` plus ``"e"`` (polygons: encoded rings,
    see :func:`encode_rings`), ``"l"`` (lines: one encoded polyline per
    part), ``"c"`` (a point: ``[lon, lat]``) or ``"g"`` (any other GeoJSON
    geometry). Features without geometry are left out. ``properties`` are
    mappings, or their JSON text already.

    Examples
    --------
    >>> encode_features(np.array([shapely.Point(1.5, 2), None]), [{"k": 1}, {"k": 2}])
    '{"features":[{"c":[1.5,2.0],"p":{"k":1}}]}'
    """
    geometries = np.asarray(geometries, dtype=object)
    kinds = shapely.get_type_id(geometries)
    shapes = np.empty(len(geometries), dtype=object)
    polygonal = np.isin(kinds, [3, 6])
    shapes[polygonal] = ['"e":' + text for text in _encoded_shapes(geometries[polygonal])]
    linear = np.isin(kinds, [1, 5])
    shapes[linear] = ['"l":' + text for text in _encoded_shapes(geometries[linear])]
    points = (kinds == 0) & ~shapely.is_empty(geometries)
    xy = shapely.get_coordinates(geometries[points]).tolist()
    shapes[points] = [f'"c":[{x!r},{y!r}]' for x, y in xy]
    other = ~polygonal & ~linear & ~points & (kinds >= 0)
    if other.any():
        shapes[other] = '"g":' + shapely.to_geojson(geometries[other]).astype(object)
    features = []
    for i in np.flatnonzero(kinds >= 0).tolist():
        found = properties[i]
        text = found if isinstance(found, str) else _dumps(found)
        features.append(f'{{{shapes[i]},"p":{text}}}')
        shapes[i] = None  # a city's layer is held once, not twice
    return '{"features":[' + ",".join(features) + "]}"


def _json_block(block_id: str, text: str) -> str:
    return f'<script type="application/json" id="{block_id}">{script_json(text)}</script>'


# ---------------------------------------------------------------------- layers
@dataclass
class _Context:
    """What every layer builder needs."""

    results: Results
    lang: str
    text: dict[str, str]
    labels: Labels
    items: list[Item]
    gcj02: bool

    def geometries(self, geoms: gpd.GeoSeries) -> np.ndarray:
        return display_geometries(geoms, gcj02=self.gcj02)

    def minutes(self, value: Any) -> str:
        number = _finite(value)
        return self.text["unreachable"] if number is None else self.text["minutes"].format(m=number)


def verdict(value: Any) -> bool | None:
    """A stored boolean (bool, number or text) as True/False; None when unknown."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in {"true", "1", "yes"}:
            return True
        return False if text in {"false", "0", "no"} else None
    number = _finite(value)
    return None if number is None else bool(number)


def scorecard_config(ctx: _Context) -> dict[str, Any]:
    """What every scorecard shares: its tiers and items (labels, limits) and texts.

    Items are grouped by tier, in the standard's order: a category standard
    gives one row per category, a standard without categories one row per
    required type.
    """
    tiers = [str(t["id"]) for t in ctx.results.standard.get("tiers") or []]
    columns = set(ctx.results.communities.columns)
    items = [
        {
            "id": item.id,
            "tier": tiers.index(item.tier),
            "label": html.escape(
                ctx.labels.item(item.id) + (ctx.text["optional"] if item.optional else "")
            ),
            "limit": html.escape(ctx.text["limit_minutes"].format(m=round(item.threshold_min, 1))),
        }
        for item in ctx.items
        if item.tier in tiers and f"{item.id}_ok" in columns
    ]
    keys = (
        "score population item nearest limit pass fail met missing unreachable "
        "minutes_unit show_iso"
    )
    return {
        "tiers": [html.escape(ctx.labels.tier(t)) for t in tiers],
        "items": items,
        "text": {key: html.escape(ctx.text[key]) for key in keys.split()},
    }


def _origin_note(row: Mapping[str, Any], text: dict[str, str]) -> str:
    gates = _finite(row.get("n_gates"))
    if row.get("origin") == "gate" and gates:
        return text["origin_gates"].format(n=int(gates))
    return text["origin_inside"]


def _flag(value: Any) -> int | None:
    found = verdict(value)
    return None if found is None else int(found)


def compound_record(
    row: Mapping[str, Any], k: int, ctx: _Context, card: Mapping[str, Any], *, iso: bool
) -> dict[str, Any]:
    """The properties of one compound on the map; strings are escaped HTML.

    ``n`` name, ``i`` id, ``s`` score, ``pop`` population, ``b`` score
    class, ``v`` tier verdicts (1/0/None, in the order of the scorecard's
    tiers), ``m`` walking minutes to the nearest facility and ``ok`` met (1/0)
    per scorecard item, ``r`` a routing warning, ``o`` how walking was
    measured, ``iso`` whether its isochrones are on the map. The runtime
    builds the scorecard popup from these.
    """
    score = _finite(row.get("score"))
    name = _clean(row.get("name")) or _clean(row.get("community_id"))
    status = _clean(row.get("route_status"))
    tiers = [str(t["id"]) for t in ctx.results.standard.get("tiers") or []]
    minutes = [_finite(row.get(f"{item['id']}_min")) for item in card["items"]]
    record: dict[str, Any] = {
        "k": k,
        "b": score_class(score),
        "n": html.escape(name),
        "i": html.escape(_clean(row.get("community_id"))),
        "s": "—" if score is None else f"{score:g}",
        "pop": _count(row.get("population")),
        "v": [_flag(row.get(f"tier_{t}_pass")) for t in tiers],
        "m": [None if m is None else round(m, 1) for m in minutes],
        "ok": [_flag(row.get(f"{item['id']}_ok")) or 0 for item in card["items"]],
        "o": html.escape(_origin_note(row, ctx.text)),
    }
    if status and status != "ok":
        record["r"] = html.escape(ctx.text["not_routed"].format(status=status))
    if iso:
        record["iso"] = 1
    return record


def isochrone_choice(communities: pd.DataFrame, limit: int | None) -> np.ndarray:
    """Positions of the compounds whose isochrones are drawn: all, or the worst ``limit``.

    The worst are the lowest scores, larger populations first among equals.
    """
    n = len(communities)
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 0:
        raise InputError(f"max_isochrone_compounds must be >= 0, got {limit}")
    score = pd.to_numeric(communities.get("score"), errors="coerce")
    population = pd.to_numeric(communities.get("population"), errors="coerce")
    order = pd.DataFrame(
        {"score": score.fillna(-1).to_numpy(), "pop": -population.fillna(0).to_numpy()}
    ).sort_values(["score", "pop"], kind="stable")
    return np.sort(order.index.to_numpy()[:limit])


def compounds_block(
    ctx: _Context, geoms: np.ndarray, card: Mapping[str, Any], with_iso: set[int]
) -> str:
    """The compounds layer: geometry and :func:`compound_record` properties."""
    frame = ctx.results.communities
    records = frame.drop(columns=frame.geometry.name).to_dict(orient="records")
    props = [compound_record(row, k, ctx, card, iso=k in with_iso) for k, row in enumerate(records)]
    return encode_features(geoms, props)


def _band_key(minutes: float) -> str:
    return f"{minutes:g}"


def isochrones_block(ctx: _Context, chosen: np.ndarray) -> tuple[str, list[float]] | None:
    """Isochrone data by band (``{"bands": [...], "features": {band: FC}}``)."""
    iso = ctx.results.isochrones
    if iso is None or iso.empty:
        return None
    position = {
        str(cid): k for k, cid in enumerate(ctx.results.communities["community_id"].astype(str))
    }
    keep = {int(k) for k in chosen}
    ks = iso["community_id"].astype(str).map(position).fillna(-1).astype(int).to_numpy()
    mask = np.isin(ks, list(keep))
    iso, ks = iso[mask], ks[mask]
    bands = sorted({float(m) for m in iso["minutes"]})
    parts = []
    for band in bands:
        in_band = (iso["minutes"].astype(float) == band).to_numpy()
        geoms = ctx.geometries(iso.geometry[in_band])
        props = [{"k": int(k)} for k in ks[in_band]]
        parts.append(f'"{_band_key(band)}":' + encode_features(geoms, props))
    band_list = [int(b) if b.is_integer() else b for b in bands]
    return '{"bands":' + _dumps(band_list) + ',"features":{' + ",".join(parts) + "}}", bands


#: Fields of a gap popup that differ from gap to gap (the rest is the item's).
_GAP_OWN_FIELDS = ("id", "population", "cells", "area", "max_min", "robustness", "disappears_at")
_GAP_SHARED_FIELDS = ("label", "limit", "status", "source")
_SLOT = "\x00"


def gap_popup_table(gaps: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    """What each gap's popup shows, as text (not yet escaped): a column per field."""
    speed = _finite(ctx.results.summary.get("parameters", {}).get("walk_speed_m_per_min"))

    def limit(value: Any) -> str:
        threshold = _finite(value)
        if threshold is None:
            return ""
        metres = f"{threshold:,.0f} m"
        if not speed:
            return metres
        return ctx.text["limit_minutes"].format(m=round(threshold / speed, 1)) + f" ({metres})"

    def area(value: Any) -> str:
        number = _finite(value)
        return "" if number is None else ctx.text["area_value"].format(ha=number / 10_000)

    def label(value: Any) -> str:
        item = _clean(value)
        return ctx.labels.item(item) if item else ""

    def robustness(value: Any) -> str:
        found = _clean(value)
        return ctx.text.get(f"robustness_{found}", found) if found else ""

    def column(name: str) -> pd.Series:
        found = gaps.get(name)
        return found if found is not None else pd.Series([None] * len(gaps), index=gaps.index)

    table = {
        "label": per_distinct(column("item"), label),
        "id": per_distinct(column("gap_id"), _clean),
        "population": per_distinct(column("population"), _count),
        "cells": per_distinct(column("cells"), _count),
        "area": per_distinct(column("area_m2"), area),
        "max_min": per_distinct(column("max_min"), ctx.minutes),
        "limit": per_distinct(column("threshold_m"), limit),
        "status": per_distinct(column("status"), _clean),
        "source": per_distinct(column("source"), _clean),
        "robustness": per_distinct(column("robustness"), robustness),
        "disappears_at": per_distinct(column("disappears_at"), _clean),
    }
    return pd.DataFrame(table, index=gaps.index)


class GapPopups:
    """Gap popups as shared skeletons and per-gap values.

    The popup HTML is rendered once per kind of gap (its item's words, and
    which optional rows it has) with a slot for every per-gap value; a gap
    then carries only ``[skeleton, value, ...]``, escaped, and the map joins
    them when the popup opens. A city's hundred thousand gaps would otherwise
    each carry a kilobyte of HTML.
    """

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.skeletons: list[list[str]] = []

    def slots_json(self, fields: pd.DataFrame) -> np.ndarray:
        """Per gap, ``[skeleton index, escaped value, ...]`` as JSON text, from
        :func:`gap_popup_table`."""
        present = fields[list(_GAP_OWN_FIELDS)].ne("")
        keys = pd.concat([fields[list(_GAP_SHARED_FIELDS)], present], axis=1)
        kinds = keys.groupby(list(keys.columns), sort=False, dropna=False).ngroup().to_numpy()
        quoted = {
            name: per_distinct(fields[name], lambda v: _dumps(str(escape(v or ""))))
            for name in _GAP_OWN_FIELDS
        }
        out = np.empty(len(fields), dtype=object)
        for kind in range(int(kinds.max()) + 1 if len(kinds) else 0):
            rows = np.flatnonzero(kinds == kind)
            first = fields.iloc[rows[0]]
            names = tuple(n for n in _GAP_OWN_FIELDS if first[n])
            index, order = self._add({n: first[n] for n in _GAP_SHARED_FIELDS}, names)
            text = np.full(len(rows), f"[{index}", dtype=object)
            for name in order:
                text = text + "," + quoted[name][rows]
            out[rows] = text + "]"
        return out

    def _add(self, shared: dict[str, str], present: tuple[str, ...]) -> tuple[int, list[str]]:
        marks = {name: Markup(f"{_SLOT}{name}{_SLOT}") for name in present}
        blanks = {name: "" for name in _GAP_OWN_FIELDS if name not in present}
        text = _render("map_gap.html.j2", g={**shared, **blanks, **marks}, t=self.ctx.text)
        parts = text.split(_SLOT)
        self.skeletons.append(parts[0::2])
        return len(self.skeletons) - 1, parts[1::2]

    @staticmethod
    def fill(skeleton: Sequence[str], values: Sequence[str]) -> str:
        """The popup HTML: the skeleton's pieces with the values between them."""
        return skeleton[0] + "".join(
            v + piece for v, piece in zip(values, skeleton[1:], strict=True)
        )


def gap_items(gaps: gpd.GeoDataFrame | None) -> list[str]:
    """The scored items that have gaps, largest population affected first."""
    if gaps is None or gaps.empty or "item" not in gaps:
        return []
    population = pd.to_numeric(gaps.get("population"), errors="coerce").fillna(0)
    totals = population.groupby(gaps["item"].astype(str)).sum()
    return [str(i) for i in totals.sort_values(ascending=False, kind="stable").index]


def clip_to_boundary(
    geoms: gpd.GeoSeries, boundary: gpd.GeoSeries | None, groups: Any = None
) -> gpd.GeoSeries:
    """Geometries cut to the study boundary (grid cells along its edge spill past it).

    ``groups`` (the gaps' items) lets the polygons of one group be cut together;
    see :func:`lifecircle.gaps.clip_to_area`.
    """
    from .gaps import clip_to_area, union_of

    if boundary is None or boundary.empty:
        return geoms
    area = union_of(boundary.to_crs(geoms.crs).to_numpy())
    clipped = clip_to_area(geoms.to_numpy(), area, groups)
    return gpd.GeoSeries(clipped, index=geoms.index, crs=geoms.crs)


def gap_classes(population: pd.Series, breaks: Sequence[float]) -> np.ndarray:
    """Colour index (into :data:`GAP_COLORS`) of each gap's population class.

    Examples
    --------
    >>> gap_classes(pd.Series([5, 30, None, 900]), [28.0, 46.0, 640.0, 820.0]).tolist()
    [0, 1, 0, 4]
    """
    number = np.array(pd.to_numeric(population, errors="coerce"), dtype=float)
    number[~np.isfinite(number)] = 0.0
    index = np.searchsorted(np.asarray(breaks, dtype=float), number, side="left")
    colour = np.array([_gap_color_index(i, len(breaks) + 1) for i in range(len(breaks) + 1)])
    return colour[index]


def gaps_block(ctx: _Context, breaks: list[float]) -> str | None:
    """The gap polygons, cut to the study boundary: colour class by population, item
    index (outline colour and selector), tooltip and popup.

    Built column by column: a city has a hundred thousand gaps.
    """
    gaps = ctx.results.gaps
    if gaps is None or gaps.empty:
        return None
    fields = gap_popup_table(gaps, ctx)
    items = {item: i for i, item in enumerate(gap_items(gaps))}
    colour = gap_classes(gaps["population"], breaks).astype(str).astype(object)
    item = per_distinct(gaps["item"], lambda v: str(items.get(_clean(v), 0)))
    sep = " · "
    tip = fields["label"].to_numpy() + f"{sep}{ctx.text['population_affected']} "
    tip = tip + fields["population"].to_numpy()
    robust = fields["robustness"].to_numpy()
    tip = np.where(robust != "", tip + sep + robust, tip)
    tip_json = per_distinct(pd.Series(tip), lambda v: _dumps(html.escape(v)))
    popups = GapPopups(ctx)
    slots = popups.slots_json(fields)
    props = '{"b":' + colour + ',"c":' + item + ',"t":' + tip_json + ',"p":' + slots + "}"
    del fields, colour, item, tip, tip_json, slots
    features = encode_features(ctx.geometries(ctx.results.gaps_in_area()), props)
    return '{"popups":' + _dumps(popups.skeletons) + "," + features[1:]


def context_block(ctx: _Context) -> str | None:
    """Streets (``c``: 0 major, 1 minor, 2 path) and water, drawn when no tiles load."""
    parts = []
    streets = ctx.results.streets
    if streets is not None and not streets.empty:
        order = {"major": 0, "minor": 1}
        classes = streets["class"].astype(str).map(order).fillna(2).astype(int).tolist()
        # the path class first, so that main streets are drawn on top
        rank = np.argsort(-np.asarray(classes), kind="stable")
        geoms = ctx.geometries(streets.geometry.iloc[rank])
        props = [f'{{"c":{classes[i]}}}' for i in rank]
        parts.append('"streets":' + encode_features(geoms, props))
    water = ctx.results.water
    if water is not None and not water.empty:
        parts.append(
            '"water":' + encode_features(ctx.geometries(water.geometry), [{}] * len(water))
        )
    return "{" + ",".join(parts) + "}" if parts else None


def study_boundary(results: Results) -> gpd.GeoSeries | None:
    """The study boundary layer, else the convex hull of the gap cells."""
    if results.boundary is not None and not results.boundary.empty:
        return results.boundary.geometry
    if results.cells is not None and not results.cells.empty:
        hull = shapely.convex_hull(shapely.union_all(results.cells.geometry.to_numpy()))
        return gpd.GeoSeries([hull], crs=results.cells.crs)
    return None


def boundary_block(ctx: _Context) -> str | None:
    """The study area outline."""
    boundary = study_boundary(ctx.results)
    if boundary is None:
        return None
    return encode_features(ctx.geometries(boundary), [{}] * len(boundary))


def gates_block(ctx: _Context) -> str | None:
    """The compound gates, with a tooltip naming the gate and its compound."""
    gates = ctx.results.gates
    if gates is None or gates.empty:
        return None
    names = dict(
        zip(
            ctx.results.communities["community_id"].astype(str),
            ctx.results.communities.get("name", ctx.results.communities["community_id"]),
            strict=True,
        )
    )
    props = []
    for row in gates.drop(columns=gates.geometry.name).to_dict(orient="records"):
        cid = _clean(row.get("community_id"))
        label = " ".join(p for p in (ctx.text["gate"], _clean(row.get("gate_id"))) if p)
        props.append({"t": html.escape(f"{label} · {_clean(names.get(cid, cid))}")})
    return encode_features(ctx.geometries(gates.geometry), props)


def sites_block(ctx: _Context) -> str | None:
    """Recommended new sites, numbered by rank, with the residents they newly cover."""
    sites = ctx.results.sites
    if sites is None or sites.empty:
        return None
    props = []
    for row in sites.drop(columns=sites.geometry.name).to_dict(orient="records"):
        rank = _count(row.get("rank"))
        covered = _count(row.get("residents_newly_covered"))
        target = ctx.labels.item(_clean(row.get("type"))) if row.get("type") else ""
        tip = ctx.text["site_tip"].format(rank=rank, n=covered)
        lines = [
            f"<b>{html.escape(ctx.text['site'])} #{html.escape(rank)}</b>",
            html.escape(target),
            html.escape(tip),
            html.escape(_clean(row.get("compounds_newly_served"))),
        ]
        props.append(
            {
                "r": html.escape(rank),
                "t": html.escape(tip),
                "p": "<br>".join(line for line in lines if line),
            }
        )
    return encode_features(ctx.geometries(sites.geometry), props)


def _icon_html(icon: str, color: str) -> str:
    """A facility type's round marker; icon and colour are checked, never data text."""
    icon = icon if _ICON_PATTERN.fullmatch(icon) else "map-marker"
    color = color if _COLOR_PATTERN.fullmatch(color) else "#7f7f7f"
    return (
        f'<span class="lc-poi-i" style="background:{color}">'
        f'<i class="fa fa-{icon}" aria-hidden="true"></i></span>'
    )


def facility_types(types: Iterable[str], labels: Labels) -> list[dict[str, str]]:
    """Icon HTML and label of each facility type, in taxonomy order then by id."""
    taxonomy = default_taxonomy().types
    order = {type_id: i for i, type_id in enumerate(taxonomy)}
    rows = []
    for type_id in sorted(set(types), key=lambda t: (order.get(t, len(order)), t)):
        found = taxonomy.get(type_id)
        rows.append(
            {
                "id": type_id,
                "html": _icon_html(found.icon if found else "", found.color if found else ""),
                "label": labels.type(type_id),
            }
        )
    return rows


def facility_popup(row: Mapping[str, Any], ctx: _Context) -> str:
    """The popup of one facility, as escaped HTML."""
    type_id = _clean(row.get("type"))
    category = _clean(row.get("category"))
    status = _clean(row.get("snap_status"))
    capacity = _finite(row.get("capacity"))
    facility = {
        "name": _clean(row.get("name")) or ctx.labels.type(type_id),
        "type": ctx.labels.type(type_id),
        "category": ctx.labels.category(category) if category else "",
        "address": _clean(row.get("address")),
        "capacity": "" if capacity is None else f"{capacity:g}",
        "snap_note": ctx.text["snap_failed"].format(status=status)
        if status and status != "ok"
        else "",
        "id": _clean(row.get("facility_id")),
    }
    return _render("map_facility.html.j2", f=facility, t=ctx.text)


def facilities_block(ctx: _Context) -> tuple[str, list[dict[str, Any]]] | None:
    """Facility points ``[lat, lon, type index, tooltip, popup]`` and the type table."""
    frame = ctx.results.facilities
    if frame is None or frame.empty:
        return None
    frame = frame[pd.to_numeric(frame["lon"], errors="coerce").notna()]
    frame = frame[pd.to_numeric(frame["lat"], errors="coerce").notna()]
    types: list[dict[str, Any]] = list(facility_types(frame["type"].astype(str), ctx.labels))
    index = {t["id"]: i for i, t in enumerate(types)}
    points = gpd.GeoSeries(
        gpd.points_from_xy(frame["lon"].astype(float), frame["lat"].astype(float)), crs=4326
    )
    geoms = ctx.geometries(points)
    rows = []
    counts: dict[str, int] = {}
    for geom, row in zip(geoms, frame.to_dict(orient="records"), strict=True):
        if geom is None:
            continue
        type_id = _clean(row.get("type"))
        counts[type_id] = counts.get(type_id, 0) + 1
        name = _clean(row.get("name")) or ctx.labels.type(type_id)
        rows.append([geom.y, geom.x, index[type_id], html.escape(name), facility_popup(row, ctx)])
    for entry in types:
        entry["count"] = counts.get(entry["id"], 0)
    table = [{"html": t["html"], "label": html.escape(t["label"])} for t in types]
    return _dumps({"types": table, "points": rows}), types


# ------------------------------------------------------------ one map, shuttle
def _lines(parts: Iterable[str]) -> str:
    return "<br>".join(p for p in parts if p)


def _share_text(value: Any) -> str:
    number = _finite(value)
    return "—" if number is None else f"{100 * number:.1f}%"


def district_popup(row: Mapping[str, Any], ctx: _Context) -> str:
    """The popup of one 社区 of the one-map layer, as escaped HTML."""
    t, labels = ctx.text, ctx.labels
    sep = "、" if ctx.lang == "zh" else ", "
    lacking = [labels.type(x) for x in _clean(row.get("lacking_types")).split(";") if x]
    worst = [w for w in _clean(row.get("worst_compounds")).split(";") if w]
    rows = [
        (t["n_compounds"], _count(row.get("n_compounds"))),
        (t["population"], _count(row.get("population"))),
        (t["age_60plus"], _count(row.get("pop_age_60plus"))),
        (t["completeness"], _share_text(row.get("completeness"))),
    ]
    for key in row:
        if str(key).startswith("tier_") and str(key).endswith("_pass_share"):
            tier = labels.tier(str(key)[len("tier_") : -len("_pass_share")])
            rows.append((t["tier_share"].format(tier=tier), _share_text(row[key])))
    rows += [
        (t["n_facilities"], _count(row.get("n_facilities"))),
        (t["lacking_types"], sep.join(lacking) or "—"),
        (t["worst_compounds"], sep.join(worst) or "—"),
    ]
    cells = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    name, district_id = _clean(row.get("district_name")), _clean(row.get("district_id"))
    return (
        f'<div class="lc-card"><div class="lc-card-h">{html.escape(name)}</div>'
        f'<div class="lc-card-m">{html.escape(t["district"])} {html.escape(district_id)}</div>'
        f'<table class="lc-items">{cells}</table></div>'
    )


def _category_table(categories: Iterable[str], labels: Labels) -> list[dict[str, Any]]:
    """Facility categories in taxonomy order, each with its colour and label."""
    order = {c: i for i, c in enumerate(default_taxonomy().categories)}
    ranked = sorted(set(categories), key=lambda c: (order.get(c, len(order)), c))
    return [
        {
            "id": c,
            "label": labels.category(c) if c else "—",
            "color": CATEGORY_COLORS[i % len(CATEGORY_COLORS)],
        }
        for i, c in enumerate(ranked)
    ]


def onemap_block(ctx: _Context) -> tuple[str, list[dict[str, Any]]] | None:
    """社区 outlines with their figures, and facilities by category (``onemap.gpkg``)."""
    districts = ctx.results.districts
    if districts is None or districts.empty:
        return None
    records = districts.drop(columns=districts.geometry.name).to_dict(orient="records")
    props = [
        {"t": html.escape(_clean(row.get("district_name"))), "p": district_popup(row, ctx)}
        for row in records
    ]
    parts = ['"districts":' + encode_features(ctx.geometries(districts.geometry), props)]
    facilities = ctx.results.district_facilities
    categories: list[dict[str, Any]] = []
    if facilities is not None and not facilities.empty:
        category = facilities["category"].fillna("").astype(str)
        categories = _category_table(category, ctx.labels)
        index = {c["id"]: i for i, c in enumerate(categories)}
        counts = category.value_counts()
        for entry in categories:
            entry["count"] = int(counts.get(entry["id"], 0))
        points = []
        geoms = ctx.geometries(facilities.geometry)
        rows = facilities.drop(columns=facilities.geometry.name).to_dict(orient="records")
        for geom, row, cat in zip(geoms, rows, category, strict=True):
            if geom is None:
                continue
            name = _clean(row.get("name")) or ctx.labels.type(_clean(row.get("type")))
            popup = _lines(
                [
                    f"<b>{html.escape(name)}</b>",
                    html.escape(
                        f"{ctx.labels.type(_clean(row.get('type')))} · "
                        f"{ctx.labels.category(cat) if cat else ''}"
                    ),
                    html.escape(
                        " ".join(
                            p
                            for p in (
                                _clean(row.get("district_name")),
                                _clean(row.get("district_id")),
                            )
                            if p
                        )
                    ),
                ]
            )
            points.append([geom.y, geom.x, index[cat], html.escape(name), popup])
        table = [{"label": html.escape(c["label"]), "color": c["color"]} for c in categories]
        parts.append('"categories":' + _dumps(table) + ',"points":' + _dumps(points))
    return "{" + ",".join(parts) + "}", categories


def _stop_times(timetable: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    """Per stop id: how many trips call there, the first departure and the last arrival."""
    if timetable is None or timetable.empty or "stop_id" not in timetable:
        return {}
    trip = timetable["trip"] if "trip" in timetable else timetable.index.to_series()
    frame = pd.DataFrame(
        {
            "stop": timetable["stop_id"].astype(str),
            "trip": trip.to_numpy(),
            "depart": timetable["depart"].fillna(timetable["arrive"]).to_numpy(),
            "arrive": timetable["arrive"].fillna(timetable["depart"]).to_numpy(),
        }
    )
    grouped = frame.groupby("stop")
    trips, first, last = grouped["trip"].nunique(), grouped["depart"].min(), grouped["arrive"].max()
    return {
        str(stop): {"trips": int(trips[stop]), "first": str(first[stop]), "last": str(last[stop])}
        for stop in trips.index
    }


def stop_popup(row: Mapping[str, Any], times: Mapping[str, Any], ctx: _Context) -> str:
    """The popup of one shuttle stop: id, line, kind, what it is near, timetable summary."""
    t = ctx.text
    stop_id = _clean(row.get("stop_id"))
    near = [ctx.labels.type(n) for n in _clean(row.get("near")).split(";") if n]
    kind = _clean(row.get("kind"))
    lines = [
        f"<b>{html.escape(t['shuttle_stop'])} {html.escape(stop_id)}</b>",
        html.escape(f"{t['line']} {_clean(row.get('line'))} · {t.get(f'kind_{kind}', kind)}"),
    ]
    if near:
        lines.append(html.escape(f"{t['near']}: {('、' if ctx.lang == 'zh' else ', ').join(near)}"))
    residents = _finite(row.get("residents_60plus_in_walk"))
    if residents is not None:
        lines.append(html.escape(f"{t['residents_60plus_walk']}: {_count(residents)}"))
    offset = _finite(row.get("arrive_min"))
    if offset is not None:
        lines.append(html.escape(f"{t['loop_offset']}: {t['minutes'].format(m=offset)}"))
    found = times.get(stop_id)
    if found:
        lines.append(html.escape(f"{t['timetable']}: {t['timetable_value'].format(**found)}"))
    return _lines(lines)


def shuttle_block(ctx: _Context) -> str | None:
    """The shuttle route legs and stops (``shuttle.gpkg``), stops with their timetable."""
    stops, route = ctx.results.shuttle_stops, ctx.results.shuttle_route
    if stops is None or stops.empty:
        return None
    times = _stop_times(ctx.results.shuttle_timetable)
    records = stops.drop(columns=stops.geometry.name).to_dict(orient="records")
    props = [
        {
            "t": html.escape(f"{ctx.text['shuttle_stop']} {_clean(row.get('stop_id'))}"),
            "p": stop_popup(row, times, ctx),
        }
        for row in records
    ]
    parts = ['"stops":' + encode_features(ctx.geometries(stops.geometry), props)]
    if route is not None and not route.empty:
        legs = route.drop(columns=route.geometry.name).to_dict(orient="records")
        tips = []
        for row in legs:
            length = _finite(row.get("length_m"))
            tip = (
                f"{ctx.text['line']} {_clean(row.get('line'))} · "
                f"{_clean(row.get('from_stop'))} → {_clean(row.get('to_stop'))}"
            )
            if length is not None:
                tip += f" · {length:,.0f} m"
            tips.append({"t": html.escape(tip)})
        parts.append('"route":' + encode_features(ctx.geometries(route.geometry), tips))
    return "{" + ",".join(parts) + "}"


# ---------------------------------------------------------------------- what-if
WHATIF_FILE = "whatif.json"
WHATIF_MAX_CANDIDATES = 150


def _group_columns(communities: pd.DataFrame) -> dict[str, str]:
    """Residents per group: all residents, then any ``pop_<group>`` columns (age groups)."""
    from .census import group_column

    groups = {"all": "population"} if "population" in communities else {}
    for column in communities.columns:
        name = str(column)
        numeric = pd.api.types.is_numeric_dtype(communities[column])
        # pop_all repeats population; pop_source says where the figures come from
        if name.startswith("pop_") and numeric and name != group_column("all"):
            groups[name[4:]] = name
    return groups


def whatif_edits(study: Study, scenario: Any, target: str) -> list[dict[str, Any]]:
    """Coverage sets of a scenario's added links and gates, one edit at a time.

    For each ``add_links`` and ``add_gates`` entry, the scenario is applied with
    that edit alone and the compounds (positions in ``study.communities``) whose
    verdict for ``target`` turns to met are kept. The page then treats each edit
    like a site: unions of these sets and sums over them (edits that only help
    together are not seen; each is measured on its own).
    """
    import dataclasses

    from .scenarios import apply_scenario, load_scenario

    plan = scenario if not isinstance(scenario, str | Path) else load_scenario(scenario)
    column = f"{target}_ok"
    before = study.score()[column].fillna(False).to_numpy(dtype=bool)
    alone = dict.fromkeys(("add_facilities", "remove_facilities", "add_links"), ())
    alone |= dict.fromkeys(("remove_links", "add_gates"), ())
    entries = []
    edits = [("add_links", e, e.coords) for e in plan.add_links]
    edits += [("add_gates", e, ((e.lon, e.lat),)) for e in plan.add_gates]
    for field_name, edit, coords in edits:
        single = dataclasses.replace(plan, **{**alone, field_name: (edit,)})
        after = apply_scenario(study, single).score()[column].fillna(False).to_numpy(dtype=bool)
        lon, lat = np.mean(np.asarray(coords, dtype=float), axis=0)
        entries.append(
            {
                "id": str(getattr(edit, "name", "") or getattr(edit, "gate_id", "") or edit.key),
                "key": edit.key,
                "kind": "edit",
                "rank": None,
                "lon": round(float(lon), 6),
                "lat": round(float(lat), 6),
                "covers": sorted(int(c) for c in np.flatnonzero(after & ~before)),
            }
        )
    return entries


def whatif_data(
    study: Study,
    siting: Any,
    *,
    candidates: gpd.GeoDataFrame | None = None,
    max_candidates: int = WHATIF_MAX_CANDIDATES,
    scenario: Any = None,
) -> dict[str, Any]:
    """Per-site coverage sets for the map's what-if panel, computed once in Python.

    For the recommended sites of ``siting`` (a
    :class:`lifecircle.siting.SitingResult`) and the most useful other
    candidates, the compounds (positions in ``study.communities``) that the
    site newly brings within the walking threshold of the sited type. The
    page only takes unions of these sets and sums residents over them.

    With ``scenario``, its added links and gates follow the sites as entries of
    ``kind`` ``"edit"`` (see :func:`whatif_edits`).

    Returns
    -------
    dict
        ``target``, ``threshold_m``, ``groups`` (names), ``population``
        (per compound, per group), ``sites`` (``id``, ``rank`` or None,
        ``lon``, ``lat``, ``covers``, and ``kind`` for scenario edits).
    """
    from .siting import coverage_matrix, network_candidates

    scores = study.score()
    ok = scores.get(f"{siting.target}_ok")
    covered = np.zeros(len(scores), bool) if ok is None else ok.fillna(False).to_numpy(dtype=bool)
    uncovered = np.flatnonzero(~covered)
    recommended = siting.sites.to_crs(4326)
    pool = candidates if candidates is not None else network_candidates(study.network)
    pool = pool.to_crs(4326)
    pool = pool[~pool["site_id"].astype(str).isin(recommended["site_id"].astype(str))]
    points = pd.concat([recommended[["site_id", "geometry"]], pool[["site_id", "geometry"]]])
    points = gpd.GeoDataFrame(points.reset_index(drop=True), geometry="geometry", crs=4326)
    matrix = coverage_matrix(study, points, siting.threshold_m, uncovered).tocsr()
    reach = np.diff(matrix.indptr)
    n_rec = len(recommended)
    others = n_rec + np.argsort(-reach[n_rec:], kind="stable")[:max_candidates]
    others = others[reach[others] > 0]
    ranks = recommended["rank"].tolist() if "rank" in recommended else list(range(1, n_rec + 1))
    groups = _group_columns(scores)
    population = [
        [round(float(v), 1) for v in row]
        for row in scores[list(groups.values())].fillna(0).to_numpy(dtype=float).tolist()
    ]
    sites = []
    for row in [*range(n_rec), *others.tolist()]:
        point = points.geometry.iloc[row]
        covers = matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]
        sites.append(
            {
                "id": str(points["site_id"].iloc[row]),
                "rank": int(ranks[row]) if row < n_rec else None,
                "lon": round(float(point.x), 6),
                "lat": round(float(point.y), 6),
                "covers": sorted(int(c) for c in covers),
            }
        )
    if scenario is not None:
        sites += whatif_edits(study, scenario, str(siting.target))
    return {
        "target": str(siting.target),
        "threshold_m": float(siting.threshold_m),
        "groups": list(groups),
        "population": population,
        "sites": sites,
    }


def whatif_totals(data: Mapping[str, Any], site_ids: Iterable[str]) -> dict[str, Any]:
    """Residents newly covered per group and compounds that flip, for chosen sites.

    The same union and sums as the page's panel.
    """
    chosen = set(site_ids)
    union: set[int] = set()
    for site in data["sites"]:
        if site["id"] in chosen:
            union.update(site["covers"])
    population = data["population"]
    totals = [sum(population[k][g] for k in union) for g in range(len(data["groups"]))]
    return {"residents": dict(zip(data["groups"], totals, strict=True)), "compounds": len(union)}


def write_whatif(study: Study, siting: Any, out_dir: str | Path, **options: Any) -> Path:
    """Write ``whatif.json`` into an output folder; :func:`render_map` then adds the panel."""
    from .outputs import write_json

    target = Path(out_dir) / WHATIF_FILE
    write_json(whatif_data(study, siting, **options), target)
    return target


def whatif_block(ctx: _Context) -> str | None:
    """The what-if data, with escaped labels, when the folder has ``whatif.json``."""
    path = ctx.results.out_dir / WHATIF_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    names = {"all": ctx.text["whatif_all"]}
    data["target_label"] = html.escape(ctx.labels.item(str(data.get("target", ""))))
    data["group_labels"] = [html.escape(names.get(g, g)) for g in data.get("groups", [])]
    for site in data.get("sites", []):
        site["id"] = html.escape(str(site["id"]))
    if ctx.gcj02:
        for site in data.get("sites", []):
            lon, lat = wgs84_to_gcj02(np.array([site["lon"]]), np.array([site["lat"]]))
            site["lon"], site["lat"] = round(float(lon[0]), 6), round(float(lat[0]), 6)
    return _dumps(data)


# ------------------------------------------------------------------------ assets
def _xstatic_dir(name: str) -> Path:
    """The data folder of an XStatic package (``xstatic.pkg.<name>``)."""
    import importlib

    try:
        module = importlib.import_module(f"xstatic.pkg.{name}")
    except ImportError as exc:
        package = "xstatic-" + name.replace("_", "-")
        raise MissingDataError(
            f"a self-contained map needs the Python package {package} (pip install {package})"
        ) from exc
    return Path(module.BASE_DIR)


def _data_url(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0]
    if path.suffix == ".woff2":
        kind = "font/woff2"
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:{kind or 'application/octet-stream'};base64,{encoded}"


_FONT_SRC = re.compile(
    r"src:\s*url\(([^)]+\.woff2)\)\s*format\([\"']woff2[\"']\)\s*,\s*"
    r"url\([^)]+\.ttf\)\s*format\([\"']truetype[\"']\)"
)
_CSS_URL = re.compile(r"url\((['\"]?)([^)'\"]+)\1\)")
_SOURCE_MAP = re.compile(r"/[*/]# sourceMappingURL=[^\n]*")


def _inline_css(path: Path) -> str:
    """A style sheet with its fonts and images as data URLs (woff2 only for fonts)."""
    text = path.read_text(encoding="utf-8")
    text = _FONT_SRC.sub(
        lambda m: f'src:url({_data_url(path.parent / m.group(1))}) format("woff2")', text
    )

    def embed(match: re.Match[str]) -> str:
        ref = match.group(2)
        if ref.startswith(("data:", "#")):
            return match.group(0)
        return f"url({_data_url(path.parent / ref)})"

    return _SOURCE_MAP.sub("", _CSS_URL.sub(embed, text))


def _inline_js(path: Path) -> str:
    text = _SOURCE_MAP.sub("", path.read_text(encoding="utf-8"))
    if re.search(r"</script|<!--", text, re.IGNORECASE):
        raise MissingDataError(f"{path} cannot be inlined in a <script> element")
    return text


@functools.cache
def inline_assets() -> str:
    """Leaflet, Leaflet.markercluster and Font Awesome as inline ``<style>``/``<script>``."""
    leaflet = _xstatic_dir("leaflet")
    cluster = _xstatic_dir("leaflet_markercluster")
    fa_css = _xstatic_dir("font_awesome") / "css"
    sheets = [
        leaflet / "leaflet.css",
        cluster / "MarkerCluster.css",
        cluster / "MarkerCluster.Default.css",
        fa_css / "fontawesome.min.css",
        fa_css / "solid.min.css",
        fa_css / "regular.min.css",
        fa_css / "v4-shims.min.css",
    ]
    scripts = [leaflet / "leaflet.js", cluster / "leaflet.markercluster.js"]
    css = "\n".join(_inline_css(p) for p in sheets)
    js = "\n".join(_inline_js(p) for p in scripts)
    return f"<style>\n{css}\n</style>\n<script>\n{js}\n</script>"


# ------------------------------------------------------------------------ folium
class _Raw(Element):
    """Text put into the page as it is: never parsed as a template, so that data such
    as ``{{ ... }}`` in a name stays text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def render(self, **kwargs: Any) -> str:
        return self._text


class _Build(MacroElement):
    """Calls the runtime once all feature groups exist."""

    _template = jinja2.Template(
        """
{% macro script(this, kwargs) %}
window.lifecircle.build({{ this._parent.get_name() }}, {
{%- for key, layer in this.layers.items() %}
  {{ key|tojson }}: {{ layer.get_name() }},
{%- endfor %}
  "isochrones": {
{%- for band, layer in this.isochrones.items() %}
    {{ band|tojson }}: {{ layer.get_name() }},
{%- endfor %}
  }
});
{% endmacro %}
"""
    )

    def __init__(self, layers: dict[str, Any], isochrones: dict[str, Any]) -> None:
        super().__init__()
        self._name = "LifecircleBuild"
        self.layers = layers
        self.isochrones = isochrones


def _tile_layers(basemap: str, key: str | None, lang: str) -> list[folium.TileLayer]:
    if basemap == "osm":
        return [folium.TileLayer("OpenStreetMap", control=False)]
    if basemap == "light":
        # Esri's light grey canvas needs no key (CARTO's tiles now do); tiles stop at
        # zoom 16 and are enlarged beyond.
        return [
            folium.TileLayer(
                "Esri.WorldGrayCanvas", control=False, max_native_zoom=16, max_zoom=MAX_ZOOM
            )
        ]
    if basemap == "amap":
        return [
            folium.TileLayer(
                tiles="https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1"
                "&style=8&x={x}&y={y}&z={z}",
                attr="© 高德地图 AutoNavi",
                subdomains="1234",
                max_zoom=18,
                control=False,
            )
        ]
    if basemap == "tianditu":
        labels = "cva" if lang == "zh" else "eva"
        return [
            folium.TileLayer(
                tiles=f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS"
                f"&REQUEST=GetTile&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=w"
                f"&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}",
                attr="© 天地图 Tianditu" if layer == "vec" else " ",
                subdomains="01234567",
                max_zoom=18,
                control=False,
            )
            for layer in ("vec", labels)
        ]
    return []


def _check_options(
    basemap: str, lang: str, tianditu_key: str | None, max_isochrone_compounds: int | None
) -> str | None:
    """Validate the options; return the Tianditu key when that basemap is chosen."""
    ui_text(lang)
    if basemap not in BASEMAPS:
        raise InputError(f"unknown basemap {basemap!r}; use one of: {', '.join(BASEMAPS)}")
    if max_isochrone_compounds is not None and max_isochrone_compounds < 0:
        raise InputError(f"max_isochrone_compounds must be >= 0, got {max_isochrone_compounds}")
    if basemap != "tianditu":
        return None
    key = tianditu_key or os.environ.get(TIANDITU_KEY_ENV, "")
    if not key:
        raise InputError(
            "the tianditu basemap needs a key: pass tianditu_key=... or set the "
            f"environment variable {TIANDITU_KEY_ENV} (keys are free at "
            "console.tianditu.gov.cn); or choose another basemap"
        )
    if not _KEY_PATTERN.fullmatch(key):
        raise InputError("the tianditu key should be 8-64 letters and digits")
    return key


def _title_html(results: Results, text: dict[str, str], labels: Labels) -> str:
    standard = results.summary.get("standard") or {}
    name = standard.get("title_zh") if labels.lang == "zh" else standard.get("title")
    name = name or standard.get("title") or standard.get("id") or ""
    parts = [html.escape(text["title"])]
    if results.synthetic:
        parts.append(f'<span class="lc-synthetic">{html.escape(text["synthetic_tag"])}</span>')
    if name:
        parts.append(f"<small>{html.escape(str(name))}</small>")
    return "".join(parts)


def _attribution(results: Results, lang: str) -> list[str]:
    lines = [_OSM_ATTRIBUTION] if results.from_osm else []
    lines += [
        html.escape(data_words(line, lang, "attribution"))
        for line in results.attribution
        if "openstreetmap" not in line.lower()
    ]
    return lines


@functools.cache
def _word_patterns(table: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    entries = column_vocabulary().get(table) or {}
    return tuple((re.compile(str(key)), str(value["zh"])) for key, value in entries.items())


def data_words(text: str, lang: str, table: str = "reasons") -> str:
    """A loader note, reject reason or licence line in ``lang`` (unknown texts as given).

    ``table`` is ``reasons`` (loader notes and reject reasons) or ``attribution``
    (licence lines), both in ``data/columns.yaml``; English is the written text.

    Examples
    --------
    >>> data_words("no facility type matched", "zh")
    '未匹配到设施类型'
    >>> data_words("population of 66 compounds estimated as households × 2.62", "zh")
    '66 个小区的人口按户数 × 2.62 估算'
    >>> data_words("a note no table knows", "zh"), data_words("read as UTF-8 text", "en")
    ('a note no table knows', 'read as UTF-8 text')
    """
    if lang != "zh":
        return text
    for pattern, words in _word_patterns(table):
        found = pattern.fullmatch(text)
        if found is not None:
            return words.format(**found.groupdict())
    return text


def _bounds(frames: Iterable[np.ndarray]) -> list[list[float]] | None:
    boxes = [shapely.total_bounds(f) for f in frames]
    boxes = [b for b in boxes if np.all(np.isfinite(b))]
    if not boxes:
        return None
    stacked = np.vstack(boxes)
    return [
        [float(stacked[:, 1].min()), float(stacked[:, 0].min())],
        [float(stacked[:, 3].max()), float(stacked[:, 2].max())],
    ]


def _stable_ids(root: Element) -> None:
    """Number every element so that the same results give the same file."""
    counter = itertools.count()

    def visit(element: Element) -> None:
        element._id = f"{next(counter):04d}"
        for child in element._children.values():
            visit(child)

    visit(root)


@dataclass
class _Layers:
    """The data blocks and the drawing order of one map."""

    blocks: dict[str, str]
    card: dict[str, Any]
    iso_bands: list[float]
    iso_count: int
    breaks: list[float]
    types: list[dict[str, Any]]
    bounds: list[list[float]] | None
    categories: list[dict[str, Any]]


def _collect_layers(ctx: _Context, max_isochrone_compounds: int | None) -> _Layers:
    chosen = isochrone_choice(ctx.results.communities, max_isochrone_compounds)
    iso = isochrones_block(ctx, chosen)
    with_iso = {int(k) for k in chosen} if iso is not None else set()
    gaps = ctx.results.gaps
    breaks = gap_breaks(gaps["population"].tolist()) if gaps is not None and len(gaps) else []
    compound_geoms = ctx.geometries(ctx.results.communities.geometry)
    card = scorecard_config(ctx)
    blocks = {"compounds": compounds_block(ctx, compound_geoms, card, with_iso)}
    optional: dict[str, Callable[[], str | None]] = {
        "boundary": lambda: boundary_block(ctx),
        "gaps": lambda: gaps_block(ctx, breaks),
        "gates": lambda: gates_block(ctx),
        "sites": lambda: sites_block(ctx),
        "context": lambda: context_block(ctx),
        "whatif": lambda: whatif_block(ctx),
        "shuttle": lambda: shuttle_block(ctx),
    }
    for key, build in optional.items():
        block = build()
        if block is not None:
            blocks[key] = block
    onemap = onemap_block(ctx)
    if onemap is not None:
        blocks["onemap"] = onemap[0]
    facilities = facilities_block(ctx)
    if facilities is not None:
        blocks["facilities"] = facilities[0]
    if iso is not None:
        blocks["isochrones"] = iso[0]
    outline = study_boundary(ctx.results)
    extent = [compound_geoms]
    if outline is not None:
        extent.append(ctx.geometries(outline))
    return _Layers(
        blocks=blocks,
        card=card,
        iso_bands=iso[1] if iso is not None else [],
        iso_count=len(chosen),
        breaks=breaks,
        types=facilities[1] if facilities is not None else [],
        bounds=_bounds(extent),
        categories=onemap[1] if onemap is not None else [],
    )


def _legend_html(ctx: _Context, layers: _Layers) -> str:
    text = ctx.text
    iso = [
        {"color": ISO_COLORS[i % len(ISO_COLORS)], "label": text["iso_band"].format(m=f"{b:g}")}
        for i, b in enumerate(layers.iso_bands)
    ]
    facilities = [
        {"icon": Markup(t["html"]), "label": t["label"], "count": t["count"]} for t in layers.types
    ]
    gap_types = [
        {"index": i, "label": ctx.labels.item(item), "color": _gap_item_color(i)}
        for i, item in enumerate(gap_items(ctx.results.gaps))
    ]
    return _render(
        "map_legend.html.j2",
        t=text,
        gap_types=gap_types if "gaps" in layers.blocks else [],
        context="context" in layers.blocks,
        score=score_legend(ctx.lang),
        gaps=gap_legend(layers.breaks, ctx.lang) if "gaps" in layers.blocks else [],
        iso=iso,
        facilities=facilities,
        clustered=clusters_wanted(_facility_count(layers)),
        boundary="boundary" in layers.blocks,
        gates="gates" in layers.blocks,
        categories=layers.categories,
        shuttle="shuttle" in layers.blocks,
        shuttle_color=SHUTTLE_COLOR,
        no_data=[
            ctx.labels.item(str(i))
            for i in (ctx.results.summary.get("results") or {}).get("no_data") or []
        ],
    )


def _gap_item_color(index: int) -> str:
    return GAP_ITEM_COLORS[index % len(GAP_ITEM_COLORS)]


def _config(ctx: _Context, layers: _Layers) -> str:
    config = {
        "lang": ctx.lang,
        "panes": PANES,
        "score_colors": [*SCORE_COLORS, NO_SCORE_COLOR],
        "gap_colors": list(GAP_COLORS),
        "gap_item_colors": list(GAP_ITEM_COLORS),
        "tile_note": html.escape(ctx.text["tile_note"]),
        "whatif_text": {
            k: html.escape(ctx.text[k])
            for k in (
                "whatif",
                "whatif_recommended",
                "whatif_candidates",
                "whatif_edits",
                "whatif_newly",
                "whatif_flips",
                "whatif_none",
            )
        },
        "iso_colors": list(ISO_COLORS),
        "shuttle_color": SHUTTLE_COLOR,
        "title_html": _title_html(ctx.results, ctx.text, ctx.labels),
        "legend_html": _legend_html(ctx, layers),
        "attribution": _attribution(ctx.results, ctx.lang),
        "fullscreen_label": html.escape(ctx.text["fullscreen"]),
        "card": layers.card,
    }
    return _dumps(config)


def _iso_layer_name(band: float, layers: _Layers, ctx: _Context) -> str:
    name = ctx.text["iso_band"].format(m=f"{band:g}")
    total = len(ctx.results.communities)
    if layers.iso_count < total:
        name += ctx.text["iso_partial"].format(n=layers.iso_count, total=total)
    return name


def _feature_groups(
    m: folium.Map, ctx: _Context, layers: _Layers, self_contained: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create the layer-control entries in drawing order; return them by key."""
    text = ctx.text
    groups: dict[str, Any] = {}
    iso_groups: dict[str, Any] = {}

    def group(key: str, name: str, *, show: bool = True) -> None:
        if key in layers.blocks:
            groups[key] = folium.FeatureGroup(name=html.escape(name), show=show).add_to(m)

    group("boundary", text["boundary"])
    group("gaps", text["gaps"])
    for band in layers.iso_bands:
        name = html.escape(_iso_layer_name(band, layers, ctx))
        iso_groups[_band_key(band)] = folium.FeatureGroup(name=name, show=False).add_to(m)
    group("compounds", text["compounds"])
    n_gates = len(ctx.results.gates) if ctx.results.gates is not None else 0
    group("gates", text["gates"], show=n_gates <= GATES_SHOWN_UP_TO)
    group("sites", text["sites"])
    if "onemap" in layers.blocks:
        group("onemap", text["onemap_districts"], show=False)
        groups["onemap_facilities"] = folium.FeatureGroup(
            name=html.escape(text["onemap_facilities"]), show=False
        ).add_to(m)
    group("shuttle", text["shuttle"], show=False)
    if "facilities" in layers.blocks and not clusters_wanted(_facility_count(layers)):
        group("facilities", text["facilities"])
    elif "facilities" in layers.blocks:
        cluster = MarkerCluster(name=html.escape(text["facilities"]), **_CLUSTER_OPTIONS)
        cluster.default_js = [] if self_contained else list(_CLUSTER_JS)
        cluster.default_css = [] if self_contained else list(_CLUSTER_CSS)
        groups["facilities"] = cluster.add_to(m)
    return groups, iso_groups


def clusters_wanted(n_facilities: int) -> bool:
    """Whether facility markers are clustered: from ``CLUSTER_FROM`` markers on.

    Examples
    --------
    >>> clusters_wanted(CLUSTER_FROM - 1), clusters_wanted(CLUSTER_FROM)
    (False, True)
    """
    return n_facilities >= CLUSTER_FROM


def _facility_count(layers: _Layers) -> int:
    return sum(int(t.get("count", 0)) for t in layers.types)


def inline_assets_wanted(self_contained: bool | None, cdn: bool) -> bool:
    """Whether Leaflet and its plugins are inlined: always, unless the CDN is asked for.

    ``self_contained`` is kept for old callers: a map is self-contained by
    default, and ``self_contained=False`` alone no longer turns to the CDN
    (``cdn=True`` does), so that every caller's map works offline.

    Examples
    --------
    >>> inline_assets_wanted(None, False), inline_assets_wanted(False, False)
    (True, True)
    >>> inline_assets_wanted(None, True), inline_assets_wanted(False, True)
    (False, False)
    """
    if cdn and self_contained:
        raise InputError("choose either a self-contained map or the CDN (cdn=True), not both")
    return not cdn


def build_map(
    results: Results,
    *,
    basemap: str = "osm",
    self_contained: bool | None = None,
    lang: str = "zh",
    max_isochrone_compounds: int | None = None,
    tianditu_key: str | None = None,
    cdn: bool = False,
) -> folium.Map:
    """Build the folium map of a study's results (see :func:`render_map`)."""
    self_contained = inline_assets_wanted(self_contained, cdn)
    key = _check_options(basemap, lang, tianditu_key, max_isochrone_compounds)
    ctx = _Context(
        results=results,
        lang=lang,
        text=ui_text(lang),
        labels=Labels(results.standard, lang),
        items=standard_items(results.standard),
        gcj02=basemap == "amap",
    )
    layers = _collect_layers(ctx, max_isochrone_compounds)
    m = folium.Map(
        location=[0.0, 0.0],
        tiles=None,
        control_scale=True,
        prefer_canvas=len(results.communities) > CANVAS_ABOVE,
        zoom_start=14,
        # the marker clusters need a maximum zoom even when no tile layer sets one
        maxZoom=MAX_ZOOM,
    )
    m.default_js = [] if self_contained else list(_CDN_JS)
    m.default_css = [] if self_contained else list(_CDN_CSS)
    for tiles in _tile_layers(basemap, key, lang):
        tiles.add_to(m)
    groups, iso_groups = _feature_groups(m, ctx, layers, self_contained)
    m.add_child(_Build(groups, iso_groups))
    folium.LayerControl(collapsed=False).add_to(m)
    if layers.bounds is not None:
        m.fit_bounds(layers.bounds)
    _add_page_parts(m, ctx, layers, self_contained)
    return m


def _add_page_parts(m: folium.Map, ctx: _Context, layers: _Layers, self_contained: bool) -> None:
    figure: Any = m.get_root()  # a branca Figure, which has header and html
    standard_id = (ctx.results.summary.get("standard") or {}).get("id", "")
    title = ctx.text["title"] + (f" · {standard_id}" if standard_id else "")
    head = [f"<title>{html.escape(title)}</title>", '<meta name="generator" content="lifecircle">']
    if self_contained:
        head += [SELF_CONTAINED_META, inline_assets()]
    head.append(f"<style>\n{template_text('map.css')}</style>")
    figure.header.add_child(_Raw("\n".join(head)), name="lifecircle_head")
    blocks = [_json_block("lc-config", _config(ctx, layers))]
    for key in layers.blocks:
        blocks.append(_json_block(f"lc-data-{key}", layers.blocks[key]))
        layers.blocks[key] = ""  # a city's layers run to tens of megabytes: one copy is kept
    blocks.append(f"<script>\n{template_text('map_runtime.js')}</script>")
    figure.html.add_child(_DataBlocks(blocks), name=_DATA)


_DATA = "lifecircle_data"


class _DataBlocks(Element):
    """The map's data and runtime script; :func:`map_pieces` hands them out one by one."""

    MARK = "<!--lifecircle-data-->"

    def __init__(self, blocks: list[str]) -> None:
        super().__init__()
        self.blocks = blocks
        self.marked = False

    def render(self, **kwargs: Any) -> str:
        return self.MARK if self.marked else "\n".join(self.blocks)


def map_pieces(results: Results, *, lang: str = "zh", **options: Any) -> Iterator[str]:
    """The HTML text of the map of ``results`` in pieces, so that a city's page is
    written without being held whole (options as for :func:`render_map`)."""
    figure: Any = build_map(results, lang=lang, **options).get_root()
    _stable_ids(figure)
    data: _DataBlocks = figure.html._children[_DATA]
    data.marked = True
    page = figure.render()
    page = page.replace("<html>", f'<html lang="{ui_text(lang)["html_lang"]}">', 1)
    head, tail = page.split(_DataBlocks.MARK, 1)
    yield head
    for index, block in enumerate(data.blocks):
        yield ("\n" if index else "") + block
    yield tail


def map_page(results: Results, *, lang: str = "zh", **options: Any) -> str:
    """The HTML text of the map of ``results`` (options as for :func:`render_map`)."""
    return "".join(map_pieces(results, lang=lang, **options))


class NotebookMap:
    """A self-contained map page that Jupyter shows inline (in a sandboxed iframe).

    Attributes
    ----------
    html
        The whole page, as :func:`render_map` would write it.
    """

    def __init__(self, page: str, *, height: int = 560) -> None:
        self.html = page
        self.height = height

    def _repr_html_(self) -> str:
        return (
            f'<iframe srcdoc="{html.escape(self.html, quote=True)}" '
            f'style="width:100%;height:{int(self.height)}px;border:1px solid #cfd8dc" '
            'sandbox="allow-scripts allow-popups" allowfullscreen '
            'title="lifecircle map"></iframe>'
        )

    def save(self, path: str | Path) -> Path:
        """Write the page to ``path`` (atomically) and return the path."""
        target = Path(path)
        with atomic_path(target) as tmp:
            tmp.write_text(self.html, encoding="utf-8")
        return target


def notebook_map(
    source: Any,
    *,
    lang: str = "zh",
    basemap: str = "osm",
    height: int = 560,
    max_isochrone_compounds: int | None = 200,
    **options: Any,
) -> NotebookMap:
    """The interactive map of a study or of an output folder, for display in Jupyter.

    Parameters
    ----------
    source
        An output folder (path), :class:`Results`, or a study
        (:class:`lifecircle.study.Study`): the study's results are then
        written to a temporary folder first (scores, gaps; no isochrones).
    lang, basemap, max_isochrone_compounds, options
        As for :func:`render_map`; the page is always self-contained, so that
        it shows offline and in a notebook saved to disk.
    height
        Height of the frame in pixels.
    """
    options.pop("cdn", None)
    options.pop("self_contained", None)
    kwargs = {"lang": lang, "basemap": basemap, "self_contained": True, **options}
    kwargs["max_isochrone_compounds"] = max_isochrone_compounds
    if isinstance(source, Results):
        return NotebookMap(map_page(source, **kwargs), height=height)
    if isinstance(source, str | os.PathLike):
        return NotebookMap(map_page(read_results(Path(source)), **kwargs), height=height)
    import tempfile

    from .outputs import write_outputs

    with tempfile.TemporaryDirectory(prefix="lifecircle-map-") as folder:
        cells, gaps = source.gaps()
        write_outputs(source, folder, cells=cells, gaps=gaps)
        return NotebookMap(map_page(read_results(folder), **kwargs), height=height)


def standalone_html(m: folium.Map) -> str:
    """Any folium map as one page that loads nothing from the network (but its tiles).

    Leaflet, Leaflet.markercluster and Font Awesome are inlined (as in
    :func:`render_map`); every element's CDN scripts and style sheets are
    dropped, so the map may use plain Leaflet features only (GeoJSON layers,
    popups, tooltips, markers, clusters): a branca colour scale, for one,
    needs d3 from a CDN and should be replaced by an HTML legend.
    """
    figure: Any = m.get_root()  # a branca Figure, which has header and html

    def strip(element: Element) -> None:
        for name in ("default_js", "default_css"):
            if hasattr(element, name):
                setattr(element, name, [])
        for child in element._children.values():
            strip(child)

    strip(m)
    figure.header.add_child(_Raw(SELF_CONTAINED_META + "\n" + inline_assets()), name="lc_assets")
    _stable_ids(figure)
    return figure.render()


def render_map(
    out_dir: str | Path,
    *,
    basemap: str = "osm",
    self_contained: bool | None = None,
    lang: str = "zh",
    max_isochrone_compounds: int | None = None,
    tianditu_key: str | None = None,
    cdn: bool = False,
) -> Path:
    """Write ``out_dir/map.html``, an interactive map of the saved results.

    Parameters
    ----------
    out_dir
        An output folder written by :func:`lifecircle.outputs.write_outputs`.
    basemap
        ``"osm"``, ``"light"``, ``"amap"`` (Gaode; overlays are shifted to
        GCJ-02 to line up), ``"tianditu"`` (needs ``tianditu_key`` or the
        environment variable ``LIFECIRCLE_TIANDITU_KEY``) or ``"none"``.
    self_contained
        Inline Leaflet, its plugins and the icon font, so that the page loads
        no script or style from the network and works from ``file://``,
        offline and in an iframe (tiles are still asked for, unless
        ``basemap="none"``; when they fail the map draws the study's streets
        and water and says so). Always, unless ``cdn=True``; kept for old
        callers.
    cdn
        Load Leaflet and its plugins from a CDN instead (a smaller page that
        needs the network).
    lang
        Interface language, ``"zh"`` or ``"en"``; data names are kept as given.
    max_isochrone_compounds
        Draw the isochrones of at most this many compounds (the lowest scores
        first); None draws all.
    tianditu_key
        Key for the Tianditu basemap.

    Returns
    -------
    pathlib.Path
        The written ``map.html``.

    Raises
    ------
    InputError
        A required result file is missing, an option is unknown, or the
        Tianditu basemap has no key.
    """
    return write_map(
        read_results(out_dir),
        basemap=basemap,
        self_contained=self_contained,
        lang=lang,
        max_isochrone_compounds=max_isochrone_compounds,
        tianditu_key=tianditu_key,
        cdn=cdn,
    )


def write_map(results: Results, **options: Any) -> Path:
    """Write the map of results already read (options as for :func:`render_map`)."""
    target = results.out_dir / _MAP_FILE
    with atomic_path(target) as tmp, tmp.open("w", encoding="utf-8") as file:
        for piece in map_pieces(results, **options):
            file.write(piece)
    logger.info("wrote %s (%.1f MB)", target, target.stat().st_size / 1e6)
    return target
