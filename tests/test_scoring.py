"""Scores, summaries, gaps and 2SFCA against hand-computed answers on a built network."""

from __future__ import annotations

import textwrap
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from lifecircle.access import two_step_fca_from_pairs
from lifecircle.gaps import dissolve_gaps, grid_cells
from lifecircle.network import network_from_lines
from lifecircle.scoring import ScoreItem
from lifecircle.standards import load_standard
from lifecircle.study import Study

from .conftest import METRIC_CRS

PROFILE = textwrap.dedent(
    """
    id: test-profile
    title: A test profile
    title_zh: 测试标准
    version: "1"
    description: Thresholds chosen for hand computation.
    walk_speed: {m_per_min: 60, status: ASSUMPTION, source: S_TEST}
    threshold_rule: metres
    tiers:
      - {id: 5min, name_zh: 五分钟, name_en: five, walk_min: 5, walk_m: 300,
         status: ASSUMPTION, source: S_TEST}
      - {id: 15min, name_zh: 十五分钟, name_en: fifteen, walk_min: 15, walk_m: 1000,
         status: ASSUMPTION, source: S_TEST}
    requirements:
      - {type: kindergarten, tier: 5min, max_walk_m: 300, status: ASSUMPTION, source: S_TEST,
         clause: "kindergarten within 300 m"}
      - {type: middle_school, tier: 15min, max_walk_m: 1000, status: ASSUMPTION,
         source: S_TEST, clause: "middle school within 1000 m", weight: 2}
      - {type: metro_station, tier: 15min, max_walk_m: 800, status: ASSUMPTION,
         source: S_TEST, optional: true}
    categories:
      - {id: learning, name_zh: 学, name_en: Learning, types: [kindergarten, primary_school],
         tier: 15min, max_walk_m: 400, status: ASSUMPTION, source: S_TEST}
      - {id: care, name_zh: 医, name_en: Care, types: [health_station], tier: 15min,
         max_walk_m: 500, status: ASSUMPTION, source: S_TEST}
    demand:
      - {type: kindergarten, per_1000_residents: 30, unit: seats, status: ASSUMPTION,
         source: S_TEST}
    sources:
      S_TEST: {what: hand-made test figures}
    """
)


@pytest.fixture()
def profile(tmp_path: Path):
    path = tmp_path / "test-profile.yaml"
    path.write_text(PROFILE, encoding="utf-8")
    return load_standard(path)


def _gdf(rows, geoms):
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=METRIC_CRS)


@pytest.fixture()
def study(profile):
    # one 2 km street along y = 0
    net = network_from_lines(
        gpd.GeoSeries([LineString([(0, 0), (2000, 0)])], crs=METRIC_CRS), crs=METRIC_CRS
    )
    facilities = _gdf(
        {
            "facility_id": ["k1", "k2", "m1", "p1"],
            "type": ["kindergarten", "kindergarten", "middle_school", "primary_school"],
            "capacity": [60.0, 90.0, np.nan, np.nan],
        },
        [Point(300, 5), Point(1950, 0), Point(1000, 20), Point(600, -10)],
    )
    communities = _gdf(
        {
            "community_id": ["A", "B", "C"],
            "name": ["甲苑", "乙苑", "丙苑"],
            "population": [1000.0, 3000.0, 500.0],
        },
        [box(50, 20, 150, 120), box(1450, 20, 1950, 220), box(1000, 300, 1100, 400)],
    )
    gates = _gdf(
        {"community_id": ["A", "B", "B"]}, [Point(100, 10), Point(1500, 10), Point(1900, 10)]
    )
    return Study(net, facilities, communities, standard=profile, gates=gates, progress=False)


def test_distances_counts_and_flags_by_hand(study):
    scores = study.score().set_index("community_id")
    # A: 10 m gate leg + 200 m + 5 m leg; B: from its second gate, 10 + 50
    assert scores.loc["A", "kindergarten_m"] == pytest.approx(215.0)
    assert scores.loc["B", "kindergarten_m"] == pytest.approx(60.0)
    assert scores.loc["A", "middle_school_m"] == pytest.approx(10 + 900 + 20)
    assert scores.loc["B", "middle_school_m"] == pytest.approx(10 + 500 + 20)
    assert scores.loc["A", "kindergarten_min"] == pytest.approx(3.6)
    assert scores[["kindergarten_n", "middle_school_n"]].loc["A"].tolist() == [1, 1]
    assert scores.loc["B", "kindergarten_n"] == 1
    # no metro anywhere: distance empty, never ok
    assert scores["metro_station_m"].isna().all()
    assert not scores["metro_station_ok"].any()
    # C's inside point is 350 m from the street: not routed, flagged, fails everything
    assert scores.loc["C", "route_status"] == "too_far"
    assert np.isnan(scores.loc["C", "kindergarten_m"])
    assert scores.loc["A", "route_status"] == "ok"
    assert scores.loc["B", "n_gates"] == 2
    assert scores.loc["C", "origin"] == "inside_point"


def test_category_tier_score_and_missing(study):
    scores = study.score().set_index("community_id")
    # learning: a kindergarten or primary school within 400 m
    assert scores["learning_ok"].tolist() == [True, True, False]
    # care: no health station exists
    assert not scores["care_ok"].any()
    assert scores["tier_5min_pass"].tolist() == [True, True, False]
    # 15min needs middle school, learning and care; care fails everywhere;
    # the optional metro never fails a tier
    assert not scores["tier_15min_pass"].any()
    # weights: kindergarten 1, middle school 2, learning 1, care 1 -> A meets 4 of 5
    assert scores.loc["A", "score"] == pytest.approx(80.0)
    assert scores.loc["C", "score"] == pytest.approx(0.0)
    # no health station exists in the data at all: care is no_data, not missing
    assert (scores["no_data"] == "care").all()
    assert scores.loc["A", "missing"] == ""
    assert scores.loc["C", "missing"] == "kindergarten;middle_school;learning"
    # over the items with data, A meets 4 of 4 (weights 1 + 2 + 1 of 4)
    assert scores.loc["A", "score_with_data"] == pytest.approx(100.0)
    assert scores.loc["A", "score_all"] == pytest.approx(80.0)


def test_missing_items_carry_clause_and_source(study):
    missing = study.missing()
    row = missing[(missing["community_id"] == "C") & (missing["item"] == "kindergarten")].iloc[0]
    assert row["clause"] == "kindergarten within 300 m"
    assert row["source"] == "S_TEST"
    assert row["threshold_m"] == 300
    assert row["population"] == 500
    assert len(missing) == 0 + 0 + 3  # C: everything with data (care is no_data, never missing)
    assert "care" not in set(missing["item"])


def test_summary_population_weighting(study):
    results = study.summary()["results"]
    tier5 = results["coverage"]["tiers"]["5min"]
    assert tier5["compounds_met"] == 2
    assert tier5["compounds_share"] == pytest.approx(2 / 3, abs=1e-4)
    assert tier5["population_share"] == pytest.approx(4000 / 4500, abs=1e-4)
    # completeness: population-weighted mean score (A 80, B 80, C 0)
    assert results["completeness"] == pytest.approx((1000 * 80 + 3000 * 80) / 4500 / 100, abs=1e-4)
    assert results["worst_served"][0]["community_id"] == "C"


def test_two_step_floating_catchment(study):
    scores = study.score().set_index("community_id")
    # k1 (60 seats) serves only A (1000 people); k2 (90 seats) only B (3000)
    assert scores.loc["A", "kindergarten_supply_per_1000"] == pytest.approx(60.0)
    assert scores.loc["B", "kindergarten_supply_per_1000"] == pytest.approx(30.0)
    assert scores.loc["A", "kindergarten_supply_ratio"] == pytest.approx(2.0)
    assert scores.loc["B", "kindergarten_supply_ratio"] == pytest.approx(1.0)
    assert scores.loc["C", "kindergarten_supply_ratio"] == pytest.approx(0.0)


def test_two_step_shared_catchments_by_hand():
    # two compounds (100, 300 people) share facility 0 (40 seats); 1 (20 seats) serves the second
    pairs = pd.DataFrame({"target": [0, 1, 1], "source": [0, 0, 1]})
    supply = two_step_fca_from_pairs(pairs, np.array([40.0, 20.0]), np.array([100.0, 300.0]))
    np.testing.assert_allclose(supply, [40 / 400, 40 / 400 + 20 / 300])
    # total supply is conserved: sum(A_i * P_i) == total capacity
    assert (supply * [100, 300]).sum() == pytest.approx(60.0)


def test_gap_cells_and_polygons(study):
    cells, gaps = study.gaps(cell_m=100)
    metric = cells.to_crs(METRIC_CRS)
    # population is spread over cells by area and conserved
    assert metric["population"].sum() == pytest.approx(4500, rel=1e-6)
    # B's 500 x 200 m polygon spreads over ten cells of 100 m
    assert (metric["population"] > 0).sum() >= 12
    # care fails everywhere people live: one gap per routed residential patch; C's cells
    # lie 300-400 m from the street, cannot be routed, and are unknown rather than blind
    care = gaps[gaps["item"] == "care"]
    assert care["population"].sum() == pytest.approx(4000, rel=1e-6)
    assert len(care) == 2
    c_cells = metric[metric.geometry.intersects(box(1010, 310, 1090, 390))]
    assert (c_cells["snap_status"] == "too_far").all()
    assert not c_cells["care_gap"].any()
    assert (gaps["population"] > 0).all()
    # cells beside the kindergarten at x=300 meet the kindergarten item
    near = metric[metric.geometry.contains(Point(320, 50))]
    assert near["kindergarten_min"].iloc[0] < 2


def test_dissolve_gaps_by_hand():
    cells = gpd.GeoDataFrame(
        {
            "cell_id": list("abcdef"),
            "population": [10.0, 20.0, 0.0, 5.0, 0.0, 7.0],
            "x_ok": [False, False, False, True, True, False],
            "x_min": [20.0, 25.0, 30.0, 5.0, 5.0, np.nan],
        },
        geometry=[
            box(0, 0, 1, 1),
            box(1, 0, 2, 1),
            box(2, 0, 3, 1),
            box(0, 1, 1, 2),
            box(1, 1, 2, 2),
            box(5, 5, 6, 6),
        ],
        crs=METRIC_CRS,
    )
    cells["x_gap"] = (cells["population"] > 0) & ~cells["x_ok"]
    item = ScoreItem("category", "x", "15min", 900.0, 1.0, False, "ASSUMPTION", "S", "", ("a",))
    gaps = dissolve_gaps(cells, [item])
    assert gaps["population"].tolist() == [30.0, 7.0]
    assert gaps["cells"].tolist() == [2, 1]
    assert gaps.geometry.iloc[0].equals(box(0, 0, 2, 1))
    assert gaps["gap_id"].tolist() == ["G001", "G002"]


def test_grid_kinds_and_limits():
    area = box(0, 0, 1000, 600)
    square = grid_cells(area, METRIC_CRS, cell_m=100)
    assert len(square) == 60
    assert shapely.union_all(square.geometry.to_numpy()).equals(area)
    hexes = grid_cells(area, METRIC_CRS, cell_m=100, kind="h3")
    mean_area = hexes.geometry.area.mean()
    assert 0.4 * 100**2 < mean_area < 2.5 * 100**2
    assert hexes.geometry.union_all().intersection(area).area > 0.9 * area.area
    from lifecircle.errors import InputError

    with pytest.raises(InputError, match="between 50 and 200"):
        grid_cells(area, METRIC_CRS, cell_m=20)


def test_capacity_table_errors_name_the_row(tmp_path: Path):
    from lifecircle.errors import InputError
    from lifecircle.loading import join_capacity

    facilities = gpd.GeoDataFrame(
        {"facility_id": ["k1", "k2"], "type": ["kindergarten"] * 2},
        geometry=[Point(0, 0), Point(1, 1)],
        crs=METRIC_CRS,
    )
    good = tmp_path / "capacity.csv"
    good.write_text("id,capacity,unit\nk2,120,seats\n\nzz,5,seats\n", encoding="utf-8")
    joined = join_capacity(facilities, good)
    assert joined["capacity"].tolist()[1] == 120.0
    assert np.isnan(joined["capacity"].tolist()[0])
    bad = tmp_path / "bad.csv"
    bad.write_text("说明：幼儿园学位\nid,capacity\nk1,60\nk2,many\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.csv, row 4, column capacity"):
        join_capacity(facilities, bad)


def test_walk_speed_and_threshold_rule_overrides(study):
    base = Study(
        study.network, study.facilities, study.communities, standard="gb50180-2018", progress=False
    )
    assert base.standard.type_threshold_m("health_centre") == pytest.approx(1000.0)
    by_minutes = Study(
        study.network,
        study.facilities,
        study.communities,
        standard="gb50180-2018",
        threshold_rule="minutes",
        progress=False,
    )
    # the 15-minute tier in minutes at 60 m/min
    assert by_minutes.standard.type_threshold_m("health_centre") == pytest.approx(900.0)
    faster = Study(
        study.network,
        study.facilities,
        study.communities,
        standard="gb50180-2018",
        threshold_rule="minutes",
        walk_speed=80,
        progress=False,
    )
    assert faster.standard.type_threshold_m("health_centre") == pytest.approx(1200.0)
    assert faster.summary()["parameters"]["walk_speed_m_per_min"] == 80
