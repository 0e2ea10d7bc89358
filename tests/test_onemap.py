"""The facility one-map per 社区, against hand-counted values on a built case."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, box

from lifecircle.errors import InputError
from lifecircle.onemap import assign_districts, demo_districts, load_districts, onemap
from lifecircle.standards import load_standard

from .conftest import METRIC_CRS


@pytest.fixture()
def case():
    # two 社区 side by side: west x 0-1000, east x 1000-2000
    districts = gpd.GeoDataFrame(
        {"code": ["W", "E"], "名称": ["西社区", "东社区"]},
        geometry=[box(0, 0, 1000, 1000), box(1000, 0, 2000, 1000)],
        crs=METRIC_CRS,
    )
    facilities = gpd.GeoDataFrame(
        {
            "facility_id": ["k1", "k2", "n1", "b1", "b2", "x1"],
            "name": ["幼1", "幼2", "养老院", "站1", "站2", "远处站"],
            "type": [
                "kindergarten",
                "kindergarten",
                "nursing_home",
                "bus_stop",
                "bus_stop",
                "bus_stop",
            ],
            "capacity": [100.0, 50.0, 80.0, np.nan, np.nan, np.nan],
        },
        geometry=[
            Point(100, 100),
            Point(200, 100),
            Point(1500, 500),
            Point(300, 300),
            Point(1700, 300),
            Point(5000, 5000),
        ],
        crs=METRIC_CRS,
    )
    scores = gpd.GeoDataFrame(
        {
            "community_id": ["A", "B", "C"],
            "name": ["甲", "乙", "丙"],
            "population": [1000.0, 3000.0, 2000.0],
            "pop_60plus": [100, 600, 500],
            "score": [50.0, 100.0, 75.0],
            "tier_15min_pass": [False, True, False],
        },
        geometry=[box(10, 10, 60, 60), box(500, 500, 600, 600), box(1200, 200, 1300, 300)],
        crs=METRIC_CRS,
    )
    return districts, facilities, scores


def test_counts_capacity_population_and_completeness_per_shequ(case):
    districts, facilities, scores = case
    std = load_standard("puxieshi-2021")
    result = onemap(facilities, scores, std, load_districts(districts))
    table = result.districts.set_index("district_id")
    assert table.loc["W", "district_name"] == "西社区"
    assert table.loc["W", "n_facilities"] == 3 and table.loc["E", "n_facilities"] == 2
    assert table.loc["W", "n_education"] == 2 and table.loc["E", "n_elderly_care"] == 1
    assert table.loc["W", "capacity_kindergarten"] == 150.0
    assert table.loc["E", "capacity_nursing_home"] == 80.0
    assert table.loc["W", "n_compounds"] == 2 and table.loc["W", "population"] == 4000.0
    assert table.loc["W", "pop_age_60plus"] == 700
    # completeness: (1000 x 50 + 3000 x 100) / 4000 / 100
    assert table.loc["W", "completeness"] == pytest.approx(0.875)
    assert table.loc["W", "tier_15min_pass_share"] == pytest.approx(0.75)
    assert table.loc["E", "tier_15min_pass_share"] == 0.0
    assert table.loc["W", "worst_compounds"] == "甲 (50);乙 (100)"
    lacking_w = table.loc["W", "lacking_types"].split(";")
    assert "nursing_home" in lacking_w and "kindergarten" not in lacking_w
    assert "bus_stop" not in table.loc["E", "lacking_types"].split(";")
    counts = result.counts.set_index(["district_id", "type"])
    assert counts.loc[("W", "kindergarten"), "count"] == 2
    assert counts.loc[("(none)", "bus_stop"), "count"] == 1  # the far stop lies in no 社区
    summary = result.summary()
    json.dumps(summary)
    assert summary["facilities_outside"] == 1 and summary["facilities"] == 6
    assert summary["by_category"]["transport"] == 3
    assert result.facilities.set_index("facility_id").loc["n1", "category"] == "elderly_care"


def test_shequ_from_a_compound_column(case):
    _, facilities, scores = case
    scores = scores.assign(社区=["W", "W", "E"])
    assert assign_districts(scores).tolist() == ["W", "W", "E"]
    result = onemap(facilities, scores, load_standard("puxieshi-2021"))
    table = result.districts.set_index("district_id")
    assert table.loc["E", "n_compounds"] == 1
    assert table.loc["E", "population"] == 2000.0


def test_no_shequ_given_is_a_clear_error(case):
    _, facilities, scores = case
    with pytest.raises(InputError, match="--districts FILE"):
        onemap(facilities, scores, load_standard("puxieshi-2021"))


def test_bad_district_files(tmp_path: Path):
    lines = gpd.GeoDataFrame({"name": ["a"]}, geometry=[LineString([(0, 0), (1, 1)])], crs=4326)
    with pytest.raises(InputError, match="row 1: a LineString feature"):
        load_districts(lines)
    twice = gpd.GeoDataFrame({"id": ["a", "a"]}, geometry=[box(0, 0, 1, 1)] * 2, crs=4326)
    with pytest.raises(InputError, match="row 2: duplicate 社区 id 'a'"):
        load_districts(twice)
    with pytest.raises(InputError, match="cannot read"):
        load_districts(tmp_path / "absent.geojson")


def test_demo_districts_tile_the_boundary():
    boundary = gpd.GeoDataFrame(geometry=[box(120.64, 28.0, 120.66, 28.02)], crs=4326)
    districts = demo_districts(boundary, columns=3, rows=2)
    assert districts["district_id"].tolist() == ["SQ01", "SQ02", "SQ03", "SQ04", "SQ05", "SQ06"]
    metric = districts.to_crs(districts.estimate_utm_crs())
    whole = boundary.to_crs(metric.crs).area.iloc[0]
    assert metric.area.sum() == pytest.approx(whole, rel=1e-6)
    assert metric.area.min() == pytest.approx(whole / 6, rel=0.02)
    assert districts["synthetic"].all()
    pd.testing.assert_frame_equal(demo_districts(boundary), districts)  # deterministic


def test_runs_on_the_demo():
    from lifecircle import Study

    study = Study.from_demo()
    result = onemap(study.facilities, study.score(), study.standard, demo_districts(study.boundary))
    assert len(result.districts) == 6
    assert result.districts["n_compounds"].sum() == 66
    assert result.districts["population"].sum() == 78602  # whole people per compound
    assert len(result.facilities) == len(study.facilities)
