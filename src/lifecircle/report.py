"""Printable HTML report of a study's results: ``report.html``.

:func:`render_report` reads an output folder (see
:func:`lifecircle.maps.read_results`) and writes one HTML page with:

* data completeness, right after the overview: both scores (all items, items
  with data), items and types without any facility, scarce types, the
  coordinate datum fit per layer, unrouted points by reason and the ways the
  street filter left out;
* the study parameters (standard, walking speed, threshold rule, inputs,
  network, loading reports, warnings);
* the standard, with the provenance of every threshold (status, source,
  clause); thresholds not confirmed in a source are marked;
* coverage by tier, category and facility type, counted by compounds and
  weighted by population;
* charts drawn as inline SVG: coverage by category (bars), the score
  distribution (histogram) and a compound-by-item matrix;
* the largest gaps with the population affected, and the worst-served
  compounds;
* coverage by age group; the one map per 社区 and the elderly shuttle (stops,
  loop, vehicles, parameters, reach walking alone and with the shuttle), when
  the results have them;
* the interactive map (an iframe to ``map.html``, or the map itself inline
  when it is self-contained) and the data attribution.

Everything is rendered by a Jinja2 template with autoescaping; the SVG charts
are built here with every label escaped. A print style sheet hides the map
frame and keeps tables readable on A4.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from markupsafe import Markup

from .maps import (
    GAP_COLORS,
    NO_SCORE_COLOR,
    SCORE_COLORS,
    SELF_CONTAINED_META,
    Item,
    Labels,
    Results,
    data_words,
    read_results,
    score_class,
    standard_items,
    template_text,
    templates,
    ui_text,
    verdict,
)
from .outputs import Vocabulary, atomic_path, source_word, status_word

logger = logging.getLogger(__name__)

__all__ = ["MATRIX_ROWS", "bar_chart_svg", "histogram_svg", "render_report"]

MATRIX_ROWS = 200
TOP_GAPS = 15
_REPORT_FILE = "report.html"
_OK_COLOR, _NO_COLOR = "#a6d96a", "#f4a582"
_CONFIRMED = ("CONFIRMED",)

_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "15分钟生活圈评估报告",
        "synthetic_banner": "本报告使用合成示例数据，所示地点并不存在，结果不可用于规划决策。",
        "generated": "结果生成日期",
        "toc": "目录",
        "overview": "概览",
        "compounds": "小区数",
        "population": "人口",
        "completeness": "完善度（人口加权平均得分）",
        "mean_score": "平均得分",
        "tier_pass": "{tier}达标人口比例",
        "parameters": "研究参数",
        "standard": "规划标准",
        "walk_speed": "步行速度",
        "threshold_rule": "阈值规则",
        "rule_metres": "按距离（米）",
        "rule_minutes": "按时间（分钟 × 步速）",
        "max_snap": "最大接入距离",
        "inputs": "输入文件",
        "network": "步行路网",
        "network_value": "{nodes} 个节点，{segments} 条路段，共 {km:.1f} km；"
        "{components} 个连通分量，主分量占 {main:.0%}",
        "loading": "数据读取",
        "file": "文件",
        "kind": "类型",
        "rows_read": "读取行数",
        "loaded": "载入",
        "rejected": "剔除",
        "notes": "说明",
        "facilities_by_type": "各类设施数量",
        "not_routed_label": "未接入路网",
        "not_routed": "{facilities} 个设施，{compounds} 个小区",
        "warnings": "警告",
        "no_warnings": "无",
        "provenance": "标准与阈值来源",
        "provenance_note": "每个阈值都注明来源与核实状态。标 ⚠ 的阈值未在原文中核实或属于假设，"
        "使用前请核对。",
        "tier": "层级",
        "item": "项目",
        "threshold": "阈值",
        "basis": "计算依据",
        "status": "状态",
        "source": "来源",
        "clause": "条文",
        "sources": "来源说明",
        "walk_speed_row": "步行速度",
        "requirement": "设施",
        "category": "类别",
        "coverage": "覆盖率",
        "coverage_note": "“小区”按满足的小区个数计；“人口”按满足小区的人口计（人口加权）。",
        "by_tier": "按层级",
        "by_category": "按类别",
        "by_type": "按设施类型",
        "compounds_met": "满足小区",
        "population_met": "满足人口",
        "charts": "图表",
        "chart_coverage": "各{what}覆盖率",
        "chart_categories": "类别",
        "chart_types": "设施类型",
        "legend_population": "人口比例",
        "legend_compounds": "小区比例",
        "chart_scores": "小区得分分布",
        "score_axis": "得分",
        "count_axis": "小区数",
        "matrix": "小区 × 项目矩阵（步行分钟数；绿色满足，红色缺失）",
        "matrix_note": "按得分从低到高列出前 {n} 个小区（共 {total} 个）。",
        "score": "得分",
        "gaps": "服务盲区",
        "gaps_note": "盲区为有居民居住、但某项设施超出步行阈值的网格连片区域。",
        "gap_id": "编号",
        "population_affected": "影响人口",
        "cells": "网格数",
        "area_ha": "面积（公顷）",
        "max_walk": "最远步行（分钟）",
        "no_gaps": "未发现服务盲区。",
        "gap_cells_not_routed": "{cells} 个网格未能接入路网（涉及人口 {population}）。",
        "worst": "服务最差的小区",
        "missing": "缺失项目",
        "map": "交互地图",
        "map_missing": "尚未生成交互地图（map.html）。",
        "map_print": "交互地图见 {path}（打印版不显示）。",
        "map_linked": "交互地图较大（{mb} MB），未嵌入本报告，而是链接到 {path}："
        "请把两个文件放在同一文件夹中。",
        "attribution": "数据来源与许可",
        "minutes": "分钟",
        "yes": "是",
        "none": "—",
        "place": "地点",
        "static_map": "研究范围总图",
        "static_map_note": "小区按得分着色；紫色为服务盲区（已裁剪至研究范围），"
        "编号圆点为建议新址；灰线为街道，蓝色为水系。",
        "static_map_main_streets": "街道超过 {n:,} 段，本图只画主干道；全部街道见交互地图。",
        "data_checks": "数据检查",
        "check": "检查项",
        "result": "结果",
        "detail": "说明",
        "coverage_groups": "按年龄组的覆盖率",
        "group": "年龄组",
        "robustness": "稳健性",
        "robustness_note": "在 {n} 组假设（步行速度、接入距离等）下重新计算：",
        "robust_label": "稳健：所有假设下都存在",
        "fragile_label": "脆弱：随假设而变",
        "mixed_label": "部分稳健",
        "disappears_at": "消失于",
        "sites": "建议新址",
        "sites_note": "为“{target}”选出 {k} 处新址（{method}），"
        "未覆盖人口由 {before} 降至 {after}。",
        "rank": "名次",
        "site": "新址",
        "newly_covered": "新覆盖人口",
        "cumulative": "累计覆盖",
        "compounds_served": "新服务小区",
        "notes_original": "读取说明（原文）",
        "kinds": "facilities=设施;communities=小区;network=步行路网;gates=出入口;"
        "boundary=研究范围;capacity=容量;streets=街道;districts=社区边界",
        "method_greedy": "贪心算法",
        "method_optimal": "最优解",
        "source_original": "来源原文",
        "note_original": "备注（原文）",
        "licence_original": "许可说明（原文）",
        "drop_share": "随机删除设施比例",
        "page": "第 {page} 页",
        "data_completeness": "数据完整性",
        "scores_headline": "平均得分 {all}（全部 {items} 项）；"
        "{with_data}（有数据的 {n_with} 项）；{n_without} 项在数据中没有任何设施：请检查输入数据",
        "scores_all_data": "全部 {items} 个评分项目在数据中均有设施；平均得分 {all}。",
        "no_data_items": "无设施数据的项目（非盲区）",
        "types_without_data": "无设施数据的类型",
        "scarce_types": "设施数量偏少的类型",
        "facilities_found": "现有设施",
        "needed_at_least": "至少应有",
        "datum": "坐标系检查",
        "layer": "图层",
        "declared": "声明坐标系",
        "best_fit": "最佳拟合",
        "median_m": "{datum}（米）",
        "datum_note": "按各坐标系读入时，抽样点到最近街道的中位距离（米）；距离最小者为最佳拟合。",
        "sample": "样本数",
        "verdict": "结论",
        "datum_ok": "✓ 一致",
        "datum_mismatch": "⚠ 不一致：请传入 {option} {best}",
        "unrouted": "未接入路网的点",
        "reason": "原因",
        "count": "个数",
        "street_filter": "街道筛选排除的路段",
        "rule": "规则",
        "ways": "排除路段数",
        "none_found": "无",
        "group_population": "组人口",
        "group_met": "满足人数",
        "group_share": "组内满足比例",
        "all_share": "全体居民满足比例",
        "onemap": "一张图：各社区概况",
        "onemap_note": "{districts} 个社区，{facilities} 处设施（其中 {outside} 处在社区范围外）。",
        "district": "社区",
        "completeness_short": "完善度",
        "tier_short": "{tier}达标",
        "n_compounds": "小区数",
        "age_60plus": "60岁及以上",
        "n_facilities": "设施数",
        "lacking_types": "缺少的设施类型",
        "worst_compounds": "得分最低的小区",
        "by_category_count": "各类设施数量",
        "shuttle": "老年人免费接驳车",
        "stops": "站点数",
        "loop_km": "环线长度（公里）",
        "cycle_min": "一圈用时（分钟）",
        "vehicles": "所需车辆",
        "shuttle_parameters": "接驳参数",
        "parameter": "参数",
        "value": "取值",
        "p_elderly_walk_speed": "老年人步行速度",
        "p_vehicle_speed": "车速",
        "p_headway": "发车间隔",
        "p_dwell": "停站时间",
        "p_target": "目标时间",
        "p_max_access_walk": "最远步行至站点",
        "shuttle_reach": "60岁及以上居民15分钟内可达各类目的地",
        "destination": "目的地类型",
        "residents_60plus": "60岁及以上居民",
        "walk_only": "仅步行",
        "with_shuttle": "步行＋接驳车",
        "gain": "增加",
        "shuttle_notes": "说明",
        "note_vehicles": "{n} 辆车以 {headway} 分钟的发车间隔运行（环线 {loops} 分钟）",
        "note_one_way": "未考虑单行道：请按转向规则核对线路",
        "note_pairs": "{n} 对站点之间没有可通车的道路",
        "note_dead": "没有任何{type}可经道路到达：接驳车无法服务",
        "note_lost": "{n} 处目的地无法经道路到达",
        "street_rules": "not_a_walking_highway=非步行道路类型;foot_forbidden=禁止步行;"
        "access_forbidden=禁止通行;private_service_road=私有服务道路;motorroad=机动车专用路;"
        "expressway=快速路;major_road_bridge=主干道桥梁（高架）;major_road_tunnel=主干道隧道;"
        "major_road_off_ground_layer=主干道非地面层",
        "reasons": "too_far=接入距离内无可步行街道;island=仅连到与主路网隔开的小段街道",
        "unrouted_layers": "facilities=设施;origins=小区出发点（出入口或内部点）",
    },
    "en": {
        "title": "15-minute life circle assessment report",
        "synthetic_banner": "This report uses synthetic demo data: the places shown do not exist "
        "and the results must not inform planning decisions.",
        "generated": "Results written on",
        "toc": "Contents",
        "overview": "Overview",
        "compounds": "Compounds",
        "population": "Population",
        "completeness": "Completeness (population-weighted mean score)",
        "mean_score": "Mean score",
        "tier_pass": "Residents passing: {tier}",
        "parameters": "Study parameters",
        "standard": "Planning standard",
        "walk_speed": "Walking speed",
        "threshold_rule": "Threshold rule",
        "rule_metres": "distance (metres)",
        "rule_minutes": "time (minutes × walking speed)",
        "max_snap": "Snap limit",
        "inputs": "Input files",
        "network": "Walking network",
        "network_value": "{nodes} nodes, {segments} segments, {km:.1f} km; {components} "
        "components, the main one {main:.0%}",
        "loading": "Loading",
        "file": "File",
        "kind": "Kind",
        "rows_read": "Rows read",
        "loaded": "Loaded",
        "rejected": "Rejected",
        "notes": "Notes",
        "facilities_by_type": "Facilities by type",
        "not_routed_label": "Not on the network",
        "not_routed": "{facilities} facilities, {compounds} compounds",
        "warnings": "Warnings",
        "no_warnings": "none",
        "provenance": "The standard and where its thresholds come from",
        "provenance_note": "Every threshold names its source and status. Thresholds marked ⚠ "
        "were not confirmed in the source text or are assumptions: check them before use.",
        "tier": "Tier",
        "item": "Item",
        "threshold": "Threshold",
        "basis": "Basis",
        "status": "Status",
        "source": "Source",
        "clause": "Clause",
        "sources": "Sources",
        "walk_speed_row": "Walking speed",
        "requirement": "type",
        "category": "category",
        "coverage": "Coverage",
        "coverage_note": "'Compounds' counts the compounds that meet an item; 'population' "
        "counts their residents (population-weighted).",
        "by_tier": "By tier",
        "by_category": "By category",
        "by_type": "By facility type",
        "compounds_met": "Compounds met",
        "population_met": "Population met",
        "charts": "Charts",
        "chart_coverage": "Coverage by {what}",
        "chart_categories": "category",
        "chart_types": "facility type",
        "legend_population": "population",
        "legend_compounds": "compounds",
        "chart_scores": "Score distribution",
        "score_axis": "score",
        "count_axis": "compounds",
        "matrix": "Compounds × items (walking minutes; green met, red missing)",
        "matrix_note": "The {n} lowest-scoring of {total} compounds.",
        "score": "Score",
        "gaps": "Gaps",
        "gaps_note": "A gap is a patch of inhabited grid cells where an item is beyond its "
        "walking threshold.",
        "gap_id": "Id",
        "population_affected": "Population affected",
        "cells": "Cells",
        "area_ha": "Area (ha)",
        "max_walk": "Farthest walk (min)",
        "no_gaps": "No gaps found.",
        "gap_cells_not_routed": "{cells} cells could not be routed ({population} residents).",
        "worst": "Worst-served compounds",
        "missing": "Missing",
        "map": "Interactive map",
        "map_missing": "No interactive map (map.html) has been written yet.",
        "map_print": "The interactive map is in {path} (not printed).",
        "map_linked": "The interactive map is large ({mb} MB): it is linked from {path}, not"
        " embedded, so keep both files in one folder.",
        "attribution": "Data sources and licences",
        "minutes": "min",
        "yes": "yes",
        "none": "—",
        "place": "Place",
        "static_map": "The study area",
        "static_map_note": "Compounds by score; purple: gaps (cut to the study boundary); "
        "numbered dots: recommended sites; grey: streets; blue: water.",
        "static_map_main_streets": "Over {n:,} street segments: this figure draws the main"
        " streets only; the interactive map has them all.",
        "data_checks": "Data checks",
        "check": "Check",
        "result": "Result",
        "detail": "Detail",
        "coverage_groups": "Coverage by age group",
        "group": "Age group",
        "robustness": "Robustness",
        "robustness_note": "Recomputed under {n} sets of assumptions (walking speed, snap "
        "limit...):",
        "robust_label": "robust: in every run",
        "fragile_label": "fragile: depends on an assumption",
        "mixed_label": "mixed",
        "disappears_at": "Disappears at",
        "sites": "Recommended sites",
        "sites_note": "{k} new sites for {target} ({method}): residents not covered fall from "
        "{before} to {after}.",
        "rank": "Rank",
        "site": "Site",
        "newly_covered": "Newly covered",
        "cumulative": "Cumulative",
        "compounds_served": "Compounds newly served",
        "notes_original": "Loading notes",
        "kinds": "facilities=facilities;communities=compounds;network=walking network;"
        "gates=gates;boundary=boundary;capacity=capacity;streets=streets;"
        "districts=社区 boundaries",
        "method_greedy": "greedy",
        "method_optimal": "optimal",
        "source_original": "Source text",
        "note_original": "Note",
        "licence_original": "Licence note as written",
        "drop_share": "share of facilities dropped",
        "page": "page {page}",
        "data_completeness": "Data completeness",
        "scores_headline": "score {all} over all {items} items; {with_data} over the {n_with} "
        "items with data; {n_without} items without any facility in the data: check the inputs",
        "scores_all_data": "All {items} scored items have facilities in the data; mean score "
        "{all}.",
        "no_data_items": "Items without any facility in the data (not gaps)",
        "types_without_data": "Types without any facility",
        "scarce_types": "Types with implausibly few facilities",
        "facilities_found": "Facilities",
        "needed_at_least": "Expected at least",
        "datum": "Coordinate datum",
        "layer": "Layer",
        "declared": "Declared",
        "best_fit": "Best fit",
        "median_m": "{datum} (m)",
        "datum_note": "Median distance (m) from a sample of the points to the nearest street, "
        "reading them in each datum; the smallest is the best fit.",
        "sample": "Sample",
        "verdict": "Verdict",
        "datum_ok": "✓ ok",
        "datum_mismatch": "⚠ mismatch: pass {option} {best}",
        "unrouted": "Points not on the network",
        "reason": "Reason",
        "count": "Count",
        "street_filter": "Ways excluded by the street filter",
        "rule": "Rule",
        "ways": "Ways excluded",
        "none_found": "none",
        "group_population": "Group population",
        "group_met": "Met",
        "group_share": "Share of the group",
        "all_share": "Share of all residents",
        "onemap": "One map: communities (社区)",
        "onemap_note": "{districts} communities, {facilities} facilities ({outside} outside "
        "every community).",
        "district": "Community",
        "completeness_short": "Completeness",
        "tier_short": "Passing {tier}",
        "n_compounds": "Compounds",
        "age_60plus": "Aged 60+",
        "n_facilities": "Facilities",
        "lacking_types": "Types lacking",
        "worst_compounds": "Lowest-scoring compounds",
        "by_category_count": "Facilities by category",
        "shuttle": "Free shuttle for elderly residents",
        "stops": "Stops",
        "loop_km": "Loop (km)",
        "cycle_min": "Cycle (min)",
        "vehicles": "Vehicles needed",
        "shuttle_parameters": "Shuttle parameters",
        "parameter": "Parameter",
        "value": "Value",
        "p_elderly_walk_speed": "Elderly walking speed",
        "p_vehicle_speed": "Vehicle speed",
        "p_headway": "Headway",
        "p_dwell": "Dwell time",
        "p_target": "Target time",
        "p_max_access_walk": "Longest walk to a stop",
        "shuttle_reach": "Residents aged 60+ reaching each destination type within 15 minutes",
        "destination": "Destination type",
        "residents_60plus": "Residents 60+",
        "walk_only": "Walking alone",
        "with_shuttle": "With the shuttle",
        "gain": "Gain",
        "shuttle_notes": "Notes",
        "note_vehicles": "{n} vehicle(s) keep a {headway}-minute headway (loop {loops} min)",
        "note_one_way": "one-way streets are not modelled; check the route against turning rules",
        "note_pairs": "{n} stop pair(s) are not connected by drivable streets",
        "note_dead": "no {type} is reachable by road: the shuttle cannot serve it",
        "note_lost": "{n} destination(s) unreachable by road",
        "street_rules": "",
        "reasons": "too_far=no walkable street within the snap limit;"
        "island=only a small street piece cut off from the main network",
        "unrouted_layers": "facilities=facilities;origins=compound origins (gates or inside "
        "points)",
    },
}

_STATUS_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "CONFIRMED": "已核实",
        "CONFIRMED_SECONDARY": "已核实（二手来源）",
        "CONFIRMED_SUPERSEDED": "已核实（标准已更新）",
        "CONFIRMED_FIXTURE": "仅见于测试数据",
        "UNCONFIRMED": "⚠ 未核实",
        "DERIVED": "⚠ 推导",
        "ASSUMPTION": "⚠ 假设",
    },
    "en": {
        "CONFIRMED": "confirmed",
        "CONFIRMED_SECONDARY": "confirmed (secondary source)",
        "CONFIRMED_SUPERSEDED": "confirmed (superseded edition)",
        "CONFIRMED_FIXTURE": "seen in test data only",
        "UNCONFIRMED": "⚠ unconfirmed",
        "DERIVED": "⚠ derived",
        "ASSUMPTION": "⚠ assumption",
    },
}


def _text(lang: str) -> dict[str, str]:
    ui_text(lang)  # validates lang
    return _TEXT[lang]


# ---------------------------------------------------------------- formatting
def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _pct(value: Any) -> str:
    number = _num(value)
    return "—" if number is None else f"{100 * number:.1f}%"


def _int(value: Any) -> str:
    number = _num(value)
    return "—" if number is None else f"{number:,.0f}"


def _status(status: str, lang: str) -> dict[str, Any]:
    label = _STATUS_TEXT[lang].get(status) or status_word(status, lang)
    return {
        "code": status,
        "label": label,
        "confirmed": status.startswith(_CONFIRMED),
        "css": "confirmed" if status.startswith(_CONFIRMED) else "unconfirmed",
    }


_BASIS = re.compile(
    r"^(?:tier (?P<tier>\S+) \((?P<tier_status>[A-Z_]+)\) )?"
    r"(?:walk_min (?P<min>[\d.]+) min x (?P<speed>[\d.]+) m/min "
    r"\(walk speed (?P<speed_status>[A-Z_]+)\)|(?:max_walk_m|walk_m) (?P<m>[\d.]+) m)$"
)


def basis_words(basis: str, labels: Labels) -> str:
    """How a threshold was derived, in the report's language.

    Examples
    --------
    >>> basis_words("walk_min 15 min x 60 m/min (walk speed ASSUMPTION)", Labels({}, "zh"))
    '步行 15 分钟 × 60 米/分钟（步速：假设）'
    >>> basis_words("tier 5min (CONFIRMED) walk_m 300 m", Labels({}, "en"))
    'tier 5min (confirmed): 300 m walk'
    """
    found = _BASIS.match(basis.strip())
    if found is None:
        return basis
    lang = labels.lang
    zh = lang == "zh"
    parts = []
    if found["tier"]:
        tier, status = labels.tier(found["tier"]), status_word(found["tier_status"], lang)
        parts.append(f"层级“{tier}”（{status}）：" if zh else f"tier {tier} ({status}): ")
    if found["min"]:
        speed = status_word(found["speed_status"], lang)
        parts.append(
            f"步行 {found['min']} 分钟 × {found['speed']} 米/分钟（步速：{speed}）"
            if zh
            else f"{found['min']} min × {found['speed']} m/min (walking speed: {speed})"
        )
    else:
        parts.append(f"步行距离 {found['m']} 米" if zh else f"{found['m']} m walk")
    return "".join(parts)


def run_words(run: str, text: dict[str, str]) -> str:
    """A robustness run (``walk_speed=50``) in the report's words.

    Examples
    --------
    >>> run_words("walk_speed=50; max_snap_m=150", _text("zh"))
    '步行速度 50; 最大接入距离 150'
    """
    names = {"walk_speed": text["walk_speed"], "max_snap_m": text["max_snap"]}
    names["drop_share"] = text["drop_share"]
    for key, name in names.items():
        run = re.sub(rf"\b{key}=", f"{name} ", run)
    return run


def _kinds(text: dict[str, str]) -> dict[str, str]:
    """Input kinds in words, from the ``kinds`` text (``key=word;...``)."""
    return dict(part.split("=", 1) for part in text["kinds"].split(";") if "=" in part)


def _safe_url(url: Any) -> str:
    """Only http(s) links are kept (a ``javascript:`` URL would run on click)."""
    text = str(url or "").strip()
    return text if urlsplit(text).scheme in {"http", "https"} else ""


# -------------------------------------------------------------------- charts
def _svg(width: int, height: int, body: Sequence[str], label: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{html.escape(label)}" class="chart">'
        + "".join(body)
        + "</svg>"
    )


def bar_chart_svg(
    rows: Sequence[tuple[str, float | None, float | None]],
    *,
    title: str,
    legend: tuple[str, str],
    width: int = 720,
) -> Markup:
    """Horizontal bars: per row a population share and a compound share (0-1).

    Parameters
    ----------
    rows
        ``(label, population share, compound share)``; a missing share draws no bar.
    title
        Accessible name of the chart.
    legend
        Names of the two shares.
    """
    label_w, bar_w, row_h, top = 170, width - 170 - 60, 30, 26
    height = top + row_h * len(rows) + 24
    body = [
        f'<rect x="{label_w}" y="6" width="12" height="10" fill="#3182bd"/>'
        f'<text x="{label_w + 16}" y="15" class="small">{html.escape(legend[0])}</text>'
        f'<rect x="{label_w + 140}" y="6" width="12" height="10" fill="#9ecae1"/>'
        f'<text x="{label_w + 156}" y="15" class="small">{html.escape(legend[1])}</text>'
    ]
    for i, (label, population, compounds) in enumerate(rows):
        y = top + i * row_h
        body.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{html.escape(label)}</text>'
        )
        for j, (share, color) in enumerate(((population, "#3182bd"), (compounds, "#9ecae1"))):
            if share is None:
                continue
            w = max(0.0, min(1.0, share)) * bar_w
            by = y + 3 + j * 12
            body.append(
                f'<rect x="{label_w}" y="{by}" width="{w:.1f}" height="11" fill="{color}"/>'
                f'<text x="{label_w + w + 4:.1f}" y="{by + 9}" class="small">'
                f"{100 * share:.0f}%</text>"
            )
    axis_y = top + row_h * len(rows) + 4
    for tick in (0, 0.5, 1.0):
        x = label_w + tick * bar_w
        body.append(
            f'<line x1="{x:.1f}" y1="{top - 2}" x2="{x:.1f}" y2="{axis_y}" class="grid"/>'
            f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" class="small">'
            f"{tick:.0%}</text>"
        )
    return _svg(width, height, body, title)


def histogram_svg(
    scores: Sequence[float], *, title: str, x_label: str, y_label: str, width: int = 720
) -> Markup:
    """Compounds per score band (0-10, ..., 90-100; 100 counts in the last band)."""
    values = np.asarray([s for s in scores if _num(s) is not None], dtype=float)
    counts = np.histogram(values, bins=np.linspace(0, 100, 11))[0]
    palette = (*SCORE_COLORS, NO_SCORE_COLOR)
    colors = [palette[score_class(low + 5)] for low in range(0, 100, 10)]
    left, bottom, top, height = 50, 40, 20, 260
    plot_w, plot_h = width - left - 20, height - top - bottom
    peak = max(1, int(counts.max()) if counts.size else 1)
    bar = plot_w / 10
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'class="axis"/>'
    ]
    for i, count in enumerate(counts):
        h = plot_h * count / peak
        x = left + i * bar
        body.append(
            f'<rect x="{x + 2:.1f}" y="{top + plot_h - h:.1f}" width="{bar - 4:.1f}" '
            f'height="{h:.1f}" fill="{colors[i]}" stroke="#546e7a" stroke-width="0.5"/>'
            f'<text x="{x + bar / 2:.1f}" y="{top + plot_h - h - 4:.1f}" text-anchor="middle" '
            f'class="small">{int(count)}</text>'
            f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
            f'class="small">{i * 10}–{i * 10 + 10}</text>'
        )
    body.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
        f"{html.escape(x_label)}</text>"
        f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{html.escape(y_label)}</text>'
    )
    return _svg(width, height, body, title)


# ---------------------------------------------------------------- static map
_STREET_SVG = {"major": ("#9aa5ab", 2.2), "minor": ("#bcc4c9", 1.2), "path": ("#d3d9dc", 0.7)}
_SITE_COLOR = "#6a1b9a"


class _Frame:
    """Projection of a study's geometries (metres) onto an SVG canvas."""

    def __init__(self, bounds: np.ndarray, width: int, margin: int = 8) -> None:
        minx, miny, maxx, maxy = (float(b) for b in bounds)
        span_x, span_y = max(maxx - minx, 1.0), max(maxy - miny, 1.0)
        self.scale = (width - 2 * margin) / span_x
        self.width = width
        self.height = round(span_y * self.scale + 2 * margin)
        self.origin = (minx, maxy)
        self.margin = margin
        self.tolerance = 0.6 / self.scale  # below a pixel

    def xy(self, coords: np.ndarray) -> np.ndarray:
        x = (coords[:, 0] - self.origin[0]) * self.scale + self.margin
        y = (self.origin[1] - coords[:, 1]) * self.scale + self.margin
        return np.round(np.column_stack([x, y]), 1)


def _path_data(geoms: np.ndarray, frame: _Frame, *, closed: bool) -> list[str]:
    """SVG path data per geometry (rings closed with Z), simplified below a pixel."""
    geoms = shapely.simplify(geoms, frame.tolerance, preserve_topology=True)
    parts = shapely.get_rings(geoms, return_index=True) if closed else None
    if parts is None:
        pieces, owner = shapely.get_parts(geoms, return_index=True)
    else:
        pieces, owner = parts
    coords, piece_of = shapely.get_coordinates(pieces, return_index=True)
    if len(coords) == 0:
        return [""] * len(geoms)
    numbers = list(map("{:g}".format, frame.xy(coords).ravel().tolist()))
    starts = np.flatnonzero(np.r_[True, piece_of[1:] != piece_of[:-1]])
    bounds = (np.r_[starts, len(coords)] * 2).tolist()
    end = "Z" if closed else ""
    paths: list[list[str]] = [[] for _ in range(len(geoms))]
    for piece, a, b in zip(piece_of[starts].tolist(), bounds[:-1], bounds[1:], strict=True):
        paths[int(owner[piece])].append("M" + " ".join(numbers[a:b]) + end)
    return ["".join(p) for p in paths]


def _metric(frame: gpd.GeoDataFrame | None, crs: Any) -> np.ndarray | None:
    if frame is None or frame.empty:
        return None
    return frame.geometry.to_crs(crs).to_numpy()


#: Above this many street segments the printed map draws the main streets only:
#: at a page's width a city's minor streets are a grey wash, and each one
#: costs the report and its PDF.
MAX_STATIC_MAP_STREETS = 40_000


def static_street_classes(results: Results) -> tuple[str, ...]:
    """Street classes the static map draws (all, or the main ones in a big city)."""
    streets = results.streets
    if streets is not None and len(streets) > MAX_STATIC_MAP_STREETS:
        return ("major",)
    return ("path", "minor", "major")


def static_map_svg(results: Results, lang: str = "zh", *, width: int = 760) -> Markup | None:
    """A printable map of the study as inline SVG, drawn from the saved geometries.

    Water, streets by class, compounds coloured by score, gaps (cut to the
    study boundary) and recommended sites numbered by rank; a scale bar.
    Nothing is fetched: the figure survives printing and PDF export.
    """
    communities = results.communities
    if communities.empty:
        return None
    crs = communities.estimate_utm_crs()
    boundary = _metric(results.boundary, crs)
    compounds = communities.geometry.to_crs(crs).to_numpy()
    extent = boundary if boundary is not None else compounds
    frame = _Frame(shapely.total_bounds(extent), width)
    text = _text(lang)
    body: list[str] = []
    water = _metric(results.water, crs)
    if water is not None:
        area = shapely.box(*shapely.total_bounds(extent))
        water = shapely.intersection(water, area)
        for d in _path_data(water, frame, closed=True):
            body.append(f'<path d="{d}" fill="#a6cee3" stroke="none"/>')
    streets = results.streets
    if streets is not None and not streets.empty:
        area = shapely.box(*shapely.total_bounds(extent))
        for name in static_street_classes(results):
            chosen = streets[streets["class"].astype(str) == name]
            if chosen.empty:
                continue
            lines = shapely.intersection(chosen.geometry.to_crs(crs).to_numpy(), area)
            color, stroke = _STREET_SVG[name]
            d = "".join(_path_data(lines, frame, closed=False))
            body.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="{stroke}"/>')
    scores = pd.to_numeric(communities.get("score"), errors="coerce").tolist()
    palette = (*SCORE_COLORS, NO_SCORE_COLOR)
    for d, score in zip(_path_data(compounds, frame, closed=True), scores, strict=True):
        body.append(
            f'<path d="{d}" fill="{palette[score_class(score)]}" stroke="#546e7a" '
            'stroke-width="0.4"/>'
        )
    in_area = results.gaps_in_area()
    if in_area is not None:
        gaps = in_area.to_crs(crs).to_numpy()
        for d in _path_data(gaps, frame, closed=True):
            body.append(
                f'<path d="{d}" fill="{GAP_COLORS[-1]}" fill-opacity="0.45" '
                f'stroke="{GAP_COLORS[-1]}" stroke-width="1"/>'
            )
    if boundary is not None:
        d = "".join(_path_data(boundary, frame, closed=True))
        body.append(
            f'<path d="{d}" fill="none" stroke="#212121" stroke-width="1.5" '
            'stroke-dasharray="6 4"/>'
        )
    body += _site_marks(results, crs, frame)
    body.append(_scale_bar(frame))
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width} {frame.height}" '
        f'width="100%" role="img" aria-label="{html.escape(text["static_map"])}" '
        f'class="static-map">' + "".join(body) + "</svg>"
    )


def _site_marks(results: Results, crs: Any, frame: _Frame) -> list[str]:
    sites = results.sites
    if sites is None or sites.empty:
        return []
    points = frame.xy(shapely.get_coordinates(sites.geometry.to_crs(crs).to_numpy()))
    ranks = sites.get("rank", pd.Series(range(1, len(sites) + 1))).tolist()
    marks = []
    for (x, y), rank in zip(points.tolist(), ranks, strict=False):
        marks.append(
            f'<circle cx="{x:g}" cy="{y:g}" r="8" fill="{_SITE_COLOR}" stroke="#fff" '
            f'stroke-width="1.5"/><text x="{x:g}" y="{y + 3.5:g}" text-anchor="middle" '
            f'class="site-rank">{html.escape(_int(rank))}</text>'
        )
    return marks


def _scale_bar(frame: _Frame) -> str:
    """A scale bar of a round length about a fifth of the width."""
    target = frame.width / 5 / frame.scale
    length = 10 ** math.floor(math.log10(target))
    for step in (5, 2, 1):
        if step * length <= target:
            length *= step
            break
    pixels = length * frame.scale
    y = frame.height - 10
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    return (
        f'<g class="scale"><rect x="10" y="{y - 14}" width="{pixels + 12:.1f}" height="22" '
        f'fill="#fff" fill-opacity="0.8"/><line x1="16" y1="{y}" x2="{16 + pixels:.1f}" '
        f'y2="{y}" stroke="#212121" stroke-width="2"/><text x="16" y="{y - 4}" '
        f'class="small">{label}</text></g>'
    )


# ---------------------------------------------------------- summary sections
def _records(value: Any) -> list[dict[str, Any]]:
    """A list of dicts, a dict of dicts or a dict of values as table rows."""
    if isinstance(value, list):
        return [v if isinstance(v, dict) else {"value": v} for v in value]
    if isinstance(value, dict):
        if all(isinstance(v, dict) for v in value.values()):
            return [{"id": k, **v} for k, v in value.items()]
        return [{"id": k, "value": v} for k, v in value.items()]
    return []


def _cell(key: str, value: Any, vocabulary: Vocabulary) -> str:
    if isinstance(value, bool):
        return str(vocabulary.word(key, value))
    number = _num(value)
    if number is not None and not isinstance(value, str):
        if "share" in key:
            return _pct(number)
        return f"{number:,.0f}" if abs(number) >= 100 else f"{number:g}"
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    return str(vocabulary.word(key, "" if value is None else value))


def records_table(value: Any, vocabulary: Vocabulary) -> dict[str, Any] | None:
    """Any summary entry (records or mapping) as a table with headers in words."""
    rows = _records(value)
    if not rows:
        return None
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    return {
        "headers": [vocabulary.header(k) for k in keys],
        "rows": [[_cell(k, row.get(k), vocabulary) for k in keys] for row in rows],
    }


def _robustness(results: Results, text: dict[str, str]) -> dict[str, Any] | None:
    info = results.summary.get("robustness")
    if not isinstance(info, dict):
        return None
    runs = info.get("runs") or []
    rows = []
    for kind in ("robust", "mixed", "fragile"):
        polygons = (info.get("gap_polygons") or {}).get(kind)
        population = (info.get("failure_population") or {}).get(kind)
        compounds = (info.get("failures") or {}).get(kind)
        if polygons is None and population is None and compounds is None:
            continue
        rows.append(
            {
                "label": text[f"{kind}_label"],
                "polygons": _int(polygons),
                "compounds": _int(compounds),
                "population": _int(population),
            }
        )
    return {"note": text["robustness_note"].format(n=len(runs)), "rows": rows}


def _sites(results: Results, labels: Labels, text: dict[str, str]) -> dict[str, Any] | None:
    sites = results.sites
    info = results.summary.get("sites")
    path = results.out_dir / "sites.json"
    if not isinstance(info, dict) and path.is_file():
        info = json.loads(path.read_text(encoding="utf-8"))
    if sites is None or sites.empty:
        return None
    info = info if isinstance(info, dict) else {}
    rows = [
        {
            "rank": _int(row.get("rank")),
            "type": labels.item(str(row.get("type", ""))),
            "site": str(row.get("site_id", "")),
            "newly": _int(row.get("residents_newly_covered")),
            "cumulative": _int(row.get("cumulative_covered")),
            "compounds": str(row.get("compounds_newly_served") or "").replace(
                ";", "、" if labels.lang == "zh" else ", "
            ),
        }
        for row in sites.drop(columns=sites.geometry.name).to_dict(orient="records")
    ]
    note = ""
    if info:
        method = str(info.get("method", ""))
        note = text["sites_note"].format(
            target=labels.item(str(info.get("target", ""))),
            k=_int(info.get("sites_chosen")),
            method=text.get(f"method_{method}", method),
            before=_int(info.get("uncovered_before")),
            after=_int(info.get("uncovered_after")),
        )
    return {"rows": rows, "note": note}


# ------------------------------------------------- data checks, one map, shuttle
_DATUM_NAMES = {"wgs84": "WGS84", "gcj02": "GCJ-02", "bd09": "BD-09"}


def _pairs(text: dict[str, str], key: str) -> dict[str, str]:
    """A ``key=word;...`` text as a dict (an empty text gives no words)."""
    return dict(part.split("=", 1) for part in text.get(key, "").split(";") if "=" in part)


def _join(words: Sequence[str], lang: str) -> str:
    return ("、" if lang == "zh" else ", ").join(words)


def _score_words(value: Any) -> str:
    number = _num(value)
    return "—" if number is None else f"{number:.0f}"


def scores_headline(results_summary: Mapping[str, Any], labels: Labels) -> str:
    """Both scores and the count of items without data, in the report's words.

    Examples
    --------
    >>> figures = {"items": 24, "items_with_data": 14, "no_data": ["a"] * 10,
    ...            "scores": {"all": {"mean_score": 61.6}, "with_data": {"mean_score": 81.2}}}
    >>> print(scores_headline(figures, Labels({}, "en")).replace("; ", "\\n"))
    score 62 over all 24 items
    81 over the 14 items with data
    10 items without any facility in the data: check the inputs
    """
    text = _text(labels.lang)
    scores = results_summary.get("scores") or {}
    all_score = (scores.get("all") or {}).get("mean_score", results_summary.get("mean_score"))
    no_data = list(results_summary.get("no_data") or [])
    if not no_data:
        return text["scores_all_data"].format(
            items=_int(results_summary.get("items")), all=_score_words(all_score)
        )
    return text["scores_headline"].format(
        all=_score_words(all_score),
        items=_int(results_summary.get("items")),
        with_data=_score_words((scores.get("with_data") or {}).get("mean_score")),
        n_with=_int(results_summary.get("items_with_data")),
        n_without=len(no_data),
    )


def _datum_rows(checks: Mapping[str, Any], text: dict[str, str]) -> list[dict[str, Any]]:
    kinds = _kinds(text)
    rows = []
    for fit in checks.get("datum") or []:
        medians = fit.get("medians_m") or {}
        best = str(fit.get("best") or "")
        verdict_text = text["datum_ok"]
        if fit.get("mismatch"):
            verdict_text = text["datum_mismatch"].format(option=fit.get("option", ""), best=best)
        rows.append(
            {
                "layer": kinds.get(str(fit.get("layer")), str(fit.get("layer", ""))),
                "file": Path(str(fit.get("source") or "")).name,
                "declared": _DATUM_NAMES.get(str(fit.get("declared")), str(fit.get("declared"))),
                "best": _DATUM_NAMES.get(best, best),
                "medians": [
                    "—" if _num(medians.get(d)) is None else f"{_num(medians.get(d)):.1f}"
                    for d in _DATUM_NAMES
                ],
                "sample": _int(fit.get("sample_size")),
                "verdict": verdict_text,
                "mismatch": bool(fit.get("mismatch")),
                "message": str(fit.get("message") or ""),
            }
        )
    return rows


def _unrouted_rows(checks: Mapping[str, Any], text: dict[str, str]) -> list[dict[str, str]]:
    layers, reasons = _pairs(text, "unrouted_layers"), _pairs(text, "reasons")
    return [
        {
            "layer": layers.get(str(layer), str(layer)),
            "reason": reasons.get(str(reason), str(reason)),
            "code": str(reason),
            "count": _int(n),
        }
        for layer, found in (checks.get("unrouted") or {}).items()
        for reason, n in (found or {}).items()
        if _num(n)
    ]


def _data_checks(summary: Mapping[str, Any], labels: Labels) -> dict[str, Any] | None:
    """The data-completeness block: both scores, items and types without data, scarce types,
    datum fit per layer, unrouted points and what the street filter excluded."""
    checks = summary.get("data_checks")
    if not isinstance(checks, dict) or not ({"datum", "types_without_data"} & set(checks)):
        return None
    text = _text(labels.lang)
    figures = summary.get("results") or {}
    rules = _pairs(text, "street_rules")
    return {
        "headline": scores_headline(figures, labels),
        "no_data": [labels.item(str(i)) for i in figures.get("no_data") or []],
        "types_without_data": [labels.type(str(t)) for t in checks.get("types_without_data") or []],
        "scarce": [
            {
                "type": labels.type(str(s.get("type", ""))),
                "facilities": _int(s.get("facilities")),
                "needed": _int(s.get("needed_at_least")),
            }
            for s in checks.get("scarce_types") or []
        ],
        "datum": _datum_rows(checks, text),
        "medians": [text["median_m"].format(datum=name) for name in _DATUM_NAMES.values()],
        "unrouted": _unrouted_rows(checks, text),
        "street_filter": [
            {"rule": rules.get(str(rule), str(rule)), "code": str(rule), "ways": _int(n)}
            for rule, n in (checks.get("street_filter") or {}).items()
            if _num(n)
        ],
        "warnings": [str(w) for w in checks.get("warnings") or []],
    }


def _group_rows(summary: Mapping[str, Any], labels: Labels) -> list[dict[str, str]] | None:
    """Coverage by beneficiary group (``coverage_by_group``), tiers first, then items."""
    groups = summary.get("coverage_by_group")
    if not isinstance(groups, dict) or not ({"items", "tiers"} & set(groups)):
        return None
    lang = labels.lang
    rows = []
    for key, name in (("tiers", labels.tier), ("items", labels.item)):
        for item_id, entry in (groups.get(key) or {}).items():
            group = str(entry.get("beneficiaries", ""))
            words = entry.get("group_name_zh") if lang == "zh" else None
            rows.append(
                {
                    "item": name(str(item_id)),
                    "group": str(words or group.replace("age_", "").replace("_", "-")),
                    "population": _int(entry.get("group_population")),
                    "met": _int(entry.get("group_met")),
                    "share": _pct(entry.get("group_share")),
                    "all_share": _pct(entry.get("population_share")),
                }
            )
    return rows


def _district_records(results: Results) -> list[dict[str, Any]]:
    """Per 社区 rows: ``onemap_districts.csv`` (it has the tier shares), else the summary."""
    path = results.out_dir / "onemap_districts.csv"
    if path.is_file():
        frame = pd.read_csv(
            path,
            encoding="utf-8-sig",
            dtype={"district_id": str, "district_name": str, "lacking_types": str},
            keep_default_na=False,
        )
        return [
            {**row, "lacking_types": str(row.get("lacking_types") or "").split(";")}
            for row in frame.to_dict(orient="records")
        ]
    info = results.summary.get("onemap") or {}
    return list(info.get("per_district") or [])


def _onemap(results: Results, labels: Labels, text: dict[str, str]) -> dict[str, Any] | None:
    info = results.summary.get("onemap")
    if not isinstance(info, dict):
        return None
    records = _district_records(results)
    tiers = [
        c[len("tier_") : -len("_pass_share")]
        for c in (records[0] if records else {})
        if c.startswith("tier_") and c.endswith("_pass_share")
    ]
    lang = labels.lang
    rows = []
    for row in records:
        lacking = [labels.type(t) for t in row.get("lacking_types") or [] if t]
        worst = [w for w in str(row.get("worst_compounds") or "").split(";") if w]
        rows.append(
            {
                "id": _clean_text(row.get("district_id")),
                "name": _clean_text(row.get("district_name")),
                "compounds": _int(row.get("n_compounds")),
                "population": _int(row.get("population")),
                "age_60plus": _int(row.get("pop_age_60plus")),
                "completeness": _pct(row.get("completeness")),
                "tiers": [_pct(row.get(f"tier_{t}_pass_share")) for t in tiers],
                "facilities": _int(row.get("n_facilities")),
                "lacking": _join(lacking, lang) or text["none_found"],
                "worst": _join(worst, lang),
            }
        )
    return {
        "note": text["onemap_note"].format(
            districts=_int(info.get("districts")),
            facilities=_int(info.get("facilities")),
            outside=_int(info.get("facilities_outside")),
        ),
        "tiers": [text["tier_short"].format(tier=labels.tier(t)) for t in tiers],
        "rows": rows,
        "by_category": [
            {"label": labels.category(str(k)), "count": _int(n)}
            for k, n in (info.get("by_category") or {}).items()
        ],
    }


def _clean_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


_NOTE_PATTERNS = (
    (re.compile(r"^(\d+) vehicle\(s\) keep a ([\d.]+)-minute headway on (.+)$"), "note_vehicles"),
    (re.compile(r"^one-way streets are not modelled"), "note_one_way"),
    (re.compile(r"^(\d+) stop pair\(s\) are not connected"), "note_pairs"),
    (re.compile(r"^no (\S+) is reachable by road"), "note_dead"),
    (re.compile(r"^(\d+) destination\(s\) unreachable by road"), "note_lost"),
)


def shuttle_note_words(note: str, labels: Labels) -> str:
    """A shuttle planning note in the report's language (unknown notes are kept as given).

    Examples
    --------
    >>> shuttle_note_words("3 vehicle(s) keep a 10-minute headway on a 28.7-minute loop",
    ...                    Labels({}, "zh"))
    '3 辆车以 10 分钟的发车间隔运行（环线 28.7 分钟）'
    """
    text = _text(labels.lang)
    for pattern, key in _NOTE_PATTERNS:
        found = pattern.match(note)
        if found is None:
            continue
        if key == "note_vehicles":
            loops = re.findall(r"a ([\d.]+)-minute loop", found[3])
            return text[key].format(n=found[1], headway=found[2], loops="、".join(loops))
        if key == "note_dead":
            return text[key].format(type=labels.type(found[1]))
        return text[key].format(n=found[1]) if found.groups() else text[key]
    return note


def _shuttle_parameters(
    params: Mapping[str, Any], lang: str, text: dict[str, str]
) -> list[dict[str, Any]]:
    # (value key, stem of its _status/_source keys, label, unit)
    spec = (
        ("elderly_walk_speed_m_per_min", "elderly_walk_speed", "p_elderly_walk_speed", "m/min"),
        ("vehicle_speed_kmh", "vehicle_speed", "p_vehicle_speed", "km/h"),
        ("headway_min", "headway", "p_headway", text["minutes"]),
        ("dwell_min", "dwell", "p_dwell", text["minutes"]),
        ("target_min", "target", "p_target", text["minutes"]),
        ("max_access_walk_m", "max_access_walk", "p_max_access_walk", "m"),
    )
    rows = []
    for key, stem, label, unit in spec:
        value = _num(params.get(key))
        if value is None:
            continue
        status = params.get(f"{stem}_status")
        source = params.get(f"{stem}_source")
        rows.append(
            {
                "label": text[label],
                "value": f"{value:g} {unit}",
                "status": _status(str(status), lang) if status else None,
                "source": str(source or ""),
            }
        )
    return rows


def _shuttle(results: Results, labels: Labels, text: dict[str, str]) -> dict[str, Any] | None:
    info = results.summary.get("shuttle")
    if not isinstance(info, dict):
        return None
    figures = [
        {"label": text["stops"], "value": _int(info.get("stops"))},
        {"label": text["loop_km"], "value": f"{_num(info.get('loop_km')) or 0:.1f}"},
        {"label": text["cycle_min"], "value": f"{_num(info.get('cycle_min')) or 0:.1f}"},
        {"label": text["vehicles"], "value": _int(info.get("vehicles_needed"))},
    ]
    reach = []
    for type_id, entry in (info.get("reach") or {}).items():
        walk, ride = _num(entry.get("walk_only")), _num(entry.get("with_shuttle"))
        reach.append(
            {
                "type": labels.type(str(type_id)),
                "residents": _int(entry.get("residents_60plus")),
                "walk": f"{_int(walk)} ({_pct(entry.get('walk_only_share'))})",
                "ride": f"{_int(ride)} ({_pct(entry.get('with_shuttle_share'))})",
                "gain": "—" if walk is None or ride is None else f"+{ride - walk:,.0f}",
            }
        )
    return {
        "figures": figures,
        "parameters": _shuttle_parameters(info.get("parameters") or {}, labels.lang, text),
        "reach": reach,
        "notes": [shuttle_note_words(str(n), labels) for n in info.get("notes") or []],
    }


# ------------------------------------------------------------------ sections
def _overview(results: Results, labels: Labels, text: dict[str, str]) -> list[dict[str, str]]:
    figures = results.summary.get("results") or {}
    rows = [
        {"label": text["compounds"], "value": _int(figures.get("compounds"))},
        {"label": text["population"], "value": _int(figures.get("population"))},
        {"label": text["completeness"], "value": _pct(figures.get("completeness"))},
        {"label": text["mean_score"], "value": f"{_num(figures.get('mean_score')) or 0:.1f}"},
    ]
    for tier_id, cov in ((figures.get("coverage") or {}).get("tiers") or {}).items():
        share = cov.get("population_share")
        share = cov.get("compounds_share") if share is None else share
        rows.append(
            {"label": text["tier_pass"].format(tier=labels.tier(tier_id)), "value": _pct(share)}
        )
    return rows


def _parameters(results: Results, labels: Labels, text: dict[str, str]) -> dict[str, Any]:
    summary = results.summary
    standard = summary.get("standard") or {}
    params = summary.get("parameters") or {}
    rule = str(params.get("threshold_rule", ""))
    lang = labels.lang
    network = summary.get("network") or {}
    rows = [
        {
            "label": text["standard"],
            "value": " ".join(
                str(v)
                for v in (
                    standard.get("id"),
                    standard.get("title_zh") if lang == "zh" else standard.get("title"),
                    f"({standard.get('version')})" if standard.get("version") else None,
                )
                if v
            ),
        },
        {
            "label": text["walk_speed"],
            "value": f"{_num(params.get('walk_speed_m_per_min')) or 0:g} m/min · "
            + _status(str(params.get("walk_speed_status", "")), lang)["label"],
        },
        {"label": text["threshold_rule"], "value": text.get(f"rule_{rule}", rule)},
        {"label": text["max_snap"], "value": f"{_num(params.get('max_snap_m')) or 0:g} m"},
    ]
    if network:
        rows.append(
            {
                "label": text["network"],
                "value": text["network_value"].format(
                    nodes=_int(network.get("n_nodes")),
                    segments=_int(network.get("n_segments")),
                    km=_num(network.get("total_length_km")) or 0.0,
                    components=_int(network.get("n_components")),
                    main=_num(network.get("main_component_share")) or 0.0,
                ),
            }
        )
    rows.append(
        {
            "label": text["not_routed_label"],
            "value": text["not_routed"].format(
                facilities=_int(summary.get("facilities_not_routed")),
                compounds=_int(summary.get("compounds_not_routed")),
            ),
        }
    )
    inputs = [
        {"kind": _kinds(text).get(kind, kind), "file": Path(part).name}
        for kind, value in (summary.get("inputs") or {}).items()
        for part in str(value).split(";")
        if part
    ]
    loading = [
        {
            "file": Path(str(r.get("source", ""))).name,
            "kind": _kinds(text).get(str(r.get("kind", "")), r.get("kind", "")),
            "rows_read": _int(r.get("rows_read")),
            "loaded": _int(r.get("loaded")),
            "rejected": _int(r.get("rejected")),
            "reasons": [
                {"reason": data_words(str(reason), lang), "count": _int(n)}
                for reason, n in (r.get("rejected_by_reason") or {}).items()
            ],
            **_loading_notes([str(n) for n in r.get("notes") or []], lang),
        }
        for r in summary.get("loading") or []
    ]
    by_type = [
        {"label": labels.type(str(t)), "count": _int(n)}
        for t, n in (summary.get("facilities_by_type") or {}).items()
    ]
    warnings = [str(w) for w in summary.get("warnings") or []]
    return {
        "rows": rows,
        "inputs": inputs,
        "loading": loading,
        "by_type": by_type,
        "warnings": warnings,
    }


def _loading_notes(notes: list[str], lang: str) -> dict[str, str]:
    """The notes of one loaded file in ``lang``, and as written when that differs."""
    shown = ("；" if lang == "zh" else "; ").join(data_words(n, lang) for n in notes)
    written = "; ".join(notes)
    return {"notes": shown, "notes_written": written if written != shown else ""}


def _provenance(results: Results, labels: Labels, text: dict[str, str]) -> dict[str, Any]:
    standard = results.standard
    lang = labels.lang
    sources = standard.get("sources") or {}
    speed = standard.get("walk_speed") or {}
    rows = [
        {
            "tier": "",
            "item": text["walk_speed_row"],
            "kind": "",
            "threshold": f"{_num(speed.get('m_per_min')) or 0:g} m/min",
            "basis": "",
            "basis_original": str(speed.get("note", "")),
            "status": _status(str(speed.get("status", "")), lang),
            "source": str(speed.get("source", "")),
            "source_label": source_word(speed.get("source", ""), lang),
            "clause": "",
        }
    ]
    for tier in standard.get("tiers") or []:
        figures = [f"{tier['walk_m']:g} m" if tier.get("walk_m") else ""]
        figures.append(f"{tier['walk_min']:g} {text['minutes']}" if tier.get("walk_min") else "")
        rows.append(
            {
                "tier": labels.tier(str(tier["id"])),
                "item": labels.tier(str(tier["id"])),
                "kind": text["tier"],
                "threshold": " / ".join(f for f in figures if f),
                "basis": "",
                "basis_original": str(tier.get("note", "")),
                "status": _status(str(tier.get("status", "")), lang),
                "source": str(tier.get("source", "")),
                "source_label": source_word(tier.get("source", ""), lang),
                "clause": "",
            }
        )
    for item in standard_items(standard):
        rows.append(_provenance_row(item, labels, text))
    source_rows = [
        {
            "id": key,
            "name": source_word(key, lang),
            "what": str(value.get("what", "")),
            "url": _safe_url(value.get("url")),
        }
        for key, value in sources.items()
    ]
    return {"rows": rows, "sources": source_rows}


def _provenance_row(item: Item, labels: Labels, text: dict[str, str]) -> dict[str, Any]:
    minutes = (
        f"{item.threshold_min:.1f} {text['minutes']}" if math.isfinite(item.threshold_min) else ""
    )
    return {
        "tier": labels.tier(item.tier),
        "item": labels.item(item.id),
        "kind": text[item.kind],
        "threshold": f"{item.threshold_m:,.0f} m · {minutes}",
        "basis": basis_words(item.basis, labels),
        "status": _status(item.status, labels.lang),
        "source": item.source,
        "source_label": source_word(item.source, labels.lang),
        "clause": item.clause_in(labels.lang),
    }


def _coverage_rows(
    entries: Mapping[str, Any], name: Any, speed: float | None, text: dict[str, str]
) -> list[dict[str, Any]]:
    rows = []
    for key, cov in entries.items():
        threshold = _num(cov.get("threshold_m"))
        limit = ""
        if threshold is not None:
            limit = f"{threshold:,.0f} m"
            if speed:
                limit += f" · {threshold / speed:.1f} {text['minutes']}"
        rows.append(
            {
                "label": name(key),
                "limit": limit,
                "compounds": f"{_int(cov.get('compounds_met'))} "
                f"({_pct(cov.get('compounds_share'))})",
                "population": f"{_int(cov.get('population_met'))} "
                f"({_pct(cov.get('population_share'))})",
                "share": _num(cov.get("population_share"))
                if cov.get("population_share") is not None
                else _num(cov.get("compounds_share")),
            }
        )
    return rows


def _coverage(results: Results, labels: Labels, text: dict[str, str]) -> list[dict[str, Any]]:
    coverage = (results.summary.get("results") or {}).get("coverage") or {}
    speed = _num((results.summary.get("parameters") or {}).get("walk_speed_m_per_min"))
    tables = []
    for key, title, name in (
        ("tiers", text["by_tier"], labels.tier),
        ("categories", text["by_category"], labels.category),
        ("types", text["by_type"], labels.type),
    ):
        if coverage.get(key):
            tables.append(
                {"title": title, "rows": _coverage_rows(coverage[key], name, speed, text)}
            )
    return tables


def _charts(results: Results, labels: Labels, text: dict[str, str]) -> dict[str, Markup]:
    coverage = (results.summary.get("results") or {}).get("coverage") or {}
    use_categories = bool(coverage.get("categories"))
    entries = coverage.get("categories") if use_categories else coverage.get("types") or {}
    name = labels.category if use_categories else labels.type
    rows = [
        (name(key), _num(c.get("population_share")), _num(c.get("compounds_share")))
        for key, c in (entries or {}).items()
    ]
    what = text["chart_categories" if use_categories else "chart_types"]
    title = text["chart_coverage"].format(what=what)
    scores = pd.to_numeric(results.communities.get("score"), errors="coerce").tolist()
    return {
        "coverage_title": Markup.escape(title),
        "coverage": bar_chart_svg(
            rows, title=title, legend=(text["legend_population"], text["legend_compounds"])
        ),
        "scores": histogram_svg(
            scores,
            title=text["chart_scores"],
            x_label=text["score_axis"],
            y_label=text["count_axis"],
        ),
    }


def _matrix(results: Results, labels: Labels, text: dict[str, str]) -> dict[str, Any]:
    """Compounds (worst first) by scored item: walking minutes, coloured met/missing."""
    frame = results.communities
    items = [
        i
        for i in standard_items(results.standard)
        if f"{i.id}_ok" in frame.columns
        and (i.kind == "category" or not results.standard.get("categories"))
    ]
    score = pd.to_numeric(frame.get("score"), errors="coerce")
    population = pd.to_numeric(frame.get("population"), errors="coerce").fillna(0)
    order = (
        pd.DataFrame({"s": score.fillna(-1), "p": -population})
        .sort_values(["s", "p"], kind="stable")
        .index[:MATRIX_ROWS]
    )
    rows = []
    for position in order:
        row = frame.iloc[position]
        cells = []
        for item in items:
            ok = verdict(row.get(f"{item.id}_ok"))
            minutes = _num(row.get(f"{item.id}_min"))
            cells.append(
                {
                    "text": "—" if minutes is None else f"{minutes:.0f}",
                    "color": _OK_COLOR if ok else _NO_COLOR,
                }
            )
        rows.append(
            {
                "name": str(row.get("name") or row.get("community_id") or ""),
                "score": "—" if _num(row.get("score")) is None else f"{_num(row.get('score')):g}",
                "cells": cells,
            }
        )
    return {
        "columns": [labels.item(i.id) for i in items],
        "rows": rows,
        "note": text["matrix_note"].format(n=len(rows), total=len(frame))
        if len(frame) > len(rows)
        else "",
    }


def _gaps(results: Results, labels: Labels, text: dict[str, str]) -> dict[str, Any]:
    gaps = results.gaps
    rows = []
    if gaps is not None and len(gaps):
        top = gaps.assign(_pop=pd.to_numeric(gaps["population"], errors="coerce")).sort_values(
            "_pop", ascending=False, kind="stable"
        )
        peak = _num(top["_pop"].max()) or 1.0
        for row in top.head(TOP_GAPS).to_dict(orient="records"):
            rows.append(
                {
                    "id": str(row.get("gap_id", "")),
                    "item": labels.item(str(row.get("item", ""))),
                    "population": _int(row.get("population")),
                    "cells": _int(row.get("cells")),
                    "area": f"{(_num(row.get('area_m2')) or 0) / 10_000:.1f}",
                    "max_min": f"{_num(row.get('max_min')) or 0:.1f}",
                    "status": _status(str(row.get("status", "")), labels.lang),
                    "robustness": text.get(f"{row.get('robustness')}_label", "")
                    if row.get("robustness")
                    else "",
                    "disappears_at": run_words(str(row.get("disappears_at") or ""), text),
                    "color": GAP_COLORS[
                        min(len(GAP_COLORS) - 1, int(4 * (_num(row.get("population")) or 0) / peak))
                    ],
                }
            )
    info = results.summary.get("gaps") or {}
    note = ""
    if _num(info.get("cells_not_routed")):
        note = text["gap_cells_not_routed"].format(
            cells=_int(info.get("cells_not_routed")),
            population=_int(info.get("population_in_cells_not_routed")),
        )
    return {"rows": rows, "note": note}


def _worst(results: Results, labels: Labels) -> list[dict[str, str]]:
    rows = []
    for entry in (results.summary.get("results") or {}).get("worst_served") or []:
        missing = [labels.item(m) for m in str(entry.get("missing") or "").split(";") if m]
        rows.append(
            {
                "name": str(entry.get("name") or entry.get("community_id") or ""),
                "id": str(entry.get("community_id", "")),
                "score": f"{_num(entry.get('score')) or 0:g}",
                "population": _int(entry.get("population")),
                "missing": "、".join(missing) if labels.lang == "zh" else ", ".join(missing),
            }
        )
    return rows


#: A map larger than this is linked from the report, not copied into it: a
#: browser opens a report carrying a city-sized map slowly, and the copy
#: doubles the disk it takes.
MAX_INLINE_MAP_BYTES = 25_000_000


def _map_embed(out_dir: Path, map_path: str | Path | None) -> dict[str, str] | None:
    """How the report shows the map: ``src`` (an iframe link) or ``srcdoc`` (inline)."""
    path = Path(map_path) if map_path is not None else out_dir / "map.html"
    if not path.is_file():
        logger.info("no map at %s; the report has no map", path)
        return None
    relative = Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix()
    size = path.stat().st_size
    if size > MAX_INLINE_MAP_BYTES:
        logger.info("the map is %.0f MB: the report links it instead of embedding it", size / 1e6)
        return {"src": quote(relative), "path": relative, "linked_mb": f"{size / 1e6:.0f}"}
    page = path.read_text(encoding="utf-8")
    if SELF_CONTAINED_META in page:
        return {"srcdoc": page, "path": relative}
    return {"src": quote(relative), "path": relative}


def _page_counter(text: dict[str, str]) -> str:
    """The CSS ``content`` of the page number in the page margin ("第 3 页" / "page 3")."""
    before, _, after = text["page"].partition("{page}")
    quoted = [json.dumps(part, ensure_ascii=False) for part in (before, after)]
    return f"{quoted[0]} counter(page) {quoted[1]}"


def _generated(results: Results) -> str:
    stamp = (results.out_dir / "summary.json").stat().st_mtime
    return dt.datetime.fromtimestamp(stamp, tz=dt.UTC).date().isoformat()


def report_context(
    results: Results,
    *,
    lang: str = "zh",
    map_path: str | Path | None = None,
    title: str | None = None,
    place: str | None = None,
) -> dict[str, Any]:
    """Everything the report template shows (strings not yet escaped).

    Optional sections come from the summary when it has them:
    ``data_checks`` (datum fit, types without data, unrouted points, street
    filter; older summaries: any records), ``coverage_by_group``, ``onemap``
    (with ``onemap_districts.csv`` for the tier shares), ``shuttle``,
    ``robustness`` (as written by the robustness run) and ``sites`` (else
    ``sites.json``); a section without data is left out.
    """
    text = _text(lang)
    labels = Labels(results.standard, lang)
    summary = results.summary
    standard = summary.get("standard") or {}
    vocabulary = Vocabulary(lang, results.standard)
    found = summary.get("study")
    study: dict[str, Any] = found if isinstance(found, dict) else {}
    place = place or study.get(f"place_{lang}") or study.get("place") or summary.get("place")
    title = title or study.get(f"name_{lang}") or study.get("name") or summary.get("study_name")
    checks, group_rows = _data_checks(summary, labels), _group_rows(summary, labels)
    return {
        "lang": ui_text(lang)["html_lang"],
        "t": text,
        "title": str(title or text["title"]),
        "place": str(place or ""),
        "static_map": static_map_svg(results, lang),
        "static_map_main_streets_only": static_street_classes(results) == ("major",),
        "max_static_streets": MAX_STATIC_MAP_STREETS,
        "checks": checks,
        # summaries from older runs: their entries as plain tables
        "data_checks": None if checks else records_table(summary.get("data_checks"), vocabulary),
        "group_rows": group_rows,
        "coverage_groups": None
        if group_rows is not None
        else records_table(summary.get("coverage_by_group"), vocabulary),
        "onemap": _onemap(results, labels, text),
        "shuttle": _shuttle(results, labels, text),
        "robustness": _robustness(results, text),
        "sites": _sites(results, labels, text),
        "standard_title": standard.get("title_zh") if lang == "zh" else standard.get("title"),
        "synthetic": results.synthetic,
        "generated": _generated(results),
        "overview": _overview(results, labels, text),
        "parameters": _parameters(results, labels, text),
        "provenance": _provenance(results, labels, text),
        "coverage": _coverage(results, labels, text),
        "charts": _charts(results, labels, text),
        "matrix": _matrix(results, labels, text),
        "gaps": _gaps(results, labels, text),
        "worst": _worst(results, labels),
        "map": _map_embed(results.out_dir, map_path),
        "attribution": [
            {"text": data_words(line, lang, "attribution"), "written": line}
            for line in results.attribution
        ],
        "osm": results.from_osm,
        "css": Markup(template_text("report.css")),
        "page_counter": Markup(_page_counter(text)),
    }


def render_report(
    out_dir: str | Path,
    *,
    lang: str = "zh",
    map_path: str | Path | None = None,
    title: str | None = None,
    place: str | None = None,
    pdf: bool = False,
) -> Path:
    """Write ``out_dir/report.html``, a printable report of the saved results.

    Parameters
    ----------
    out_dir
        An output folder written by :func:`lifecircle.outputs.write_outputs`.
    lang
        ``"zh"`` or ``"en"``; data names are kept as given.
    map_path
        The interactive map to embed; by default ``out_dir/map.html`` when it
        exists. A self-contained map is embedded inline, any other map by an
        iframe link relative to the report.
    title, place
        The report's title and the place studied; by default from the
        summary (``study.name``/``study.place``, ``study_name``, ``place``),
        else a generic title.
    pdf
        Also write ``report.pdf`` (A4, page numbers) with headless Chromium,
        see :func:`write_pdf`.

    Returns
    -------
    pathlib.Path
        The written ``report.html``.
    """
    return write_report(
        read_results(out_dir), lang=lang, map_path=map_path, title=title, place=place, pdf=pdf
    )


def write_report(
    results: Results,
    *,
    lang: str = "zh",
    map_path: str | Path | None = None,
    title: str | None = None,
    place: str | None = None,
    pdf: bool = False,
) -> Path:
    """Write the report of results already read (options as for :func:`render_report`)."""
    context = report_context(results, lang=lang, map_path=map_path, title=title, place=place)
    page = templates().get_template("report.html.j2").render(**context)
    target = results.out_dir / _REPORT_FILE
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    logger.info("wrote %s (%.1f MB)", target, target.stat().st_size / 1e6)
    if pdf:
        write_pdf(target, target.with_suffix(".pdf"))
    return target


CHROMIUM_ENV = "LIFECIRCLE_CHROMIUM"
_PDF_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-extensions",
    "--disable-background-networking",
    "--proxy-server=127.0.0.1:9",  # the report needs nothing from the network
    "--no-pdf-header-footer",
    "--virtual-time-budget=10000",
)


def find_chromium() -> str | None:
    """Chromium from ``LIFECIRCLE_CHROMIUM`` or the PATH, or None."""
    import shutil

    candidates = [os.environ.get(CHROMIUM_ENV, "")]
    candidates += [shutil.which(n) or "" for n in ("chromium", "chromium-browser", "chrome")]
    return next((c for c in candidates if c and Path(c).exists()), None)


def write_pdf(
    report_html: str | Path, pdf_path: str | Path, *, chromium: str | None = None
) -> Path:
    """Print a report to an A4 PDF with page numbers, in headless Chromium.

    The print style sheet sets A4 pages, numbers them in the page margin and
    shows the static map instead of the interactive one.

    Raises
    ------
    MissingDataError
        When no Chromium is found (install it, or set ``LIFECIRCLE_CHROMIUM``).
    """
    import subprocess
    import tempfile

    from .errors import MissingDataError

    executable = chromium or find_chromium()
    if executable is None:
        raise MissingDataError(
            "a PDF needs Chromium: apt-get install chromium, or set "
            f"{CHROMIUM_ENV} to a Chromium or Chrome executable"
        )
    source, target = Path(report_html).resolve(), Path(pdf_path)
    with (
        tempfile.TemporaryDirectory(prefix="lifecircle-pdf-") as profile,
        atomic_path(target) as tmp,
    ):
        command = [
            executable,
            *_PDF_FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={tmp}",
            source.as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
        if done.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
            raise MissingDataError(
                f"Chromium could not print {source.name}: {done.stderr.strip()[-500:]}"
            )
    logger.info("wrote %s", target)
    return target
