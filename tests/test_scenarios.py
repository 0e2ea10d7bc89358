"""Scenarios against hand-computed changes on a street split by a river."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, box

from lifecircle.errors import InputError
from lifecircle.network import network_from_lines
from lifecircle.scenarios import (
    apply_scenario,
    compare,
    load_scenario,
    run_scenario,
    scenario_from_dict,
    write_scenario_outputs,
)
from lifecircle.standards import load_standard
from lifecircle.study import Study

from .conftest import METRIC_CRS

PROFILE = textwrap.dedent(
    """
    id: scenario-test
    title: Scenario test profile
    version: "1"
    walk_speed: {m_per_min: 60, status: ASSUMPTION, source: S_TEST}
    threshold_rule: metres
    tiers:
      - {id: 5min, name_zh: 五分钟, name_en: five, walk_m: 300, status: ASSUMPTION,
         source: S_TEST}
      - {id: 10min, name_zh: 十分钟, name_en: ten, walk_m: 600, status: ASSUMPTION,
         source: S_TEST}
    requirements:
      - {type: kindergarten, tier: 5min, max_walk_m: 300, status: ASSUMPTION, source: S_TEST}
    categories:
      - {id: care, name_zh: 养老, name_en: Care, types: [elderly_daycare], tier: 10min,
         max_walk_m: 600, status: ASSUMPTION, source: S_TEST}
    sources:
      S_TEST: {what: hand-made test figures}
    """
)
FOOTBRIDGE = 190 + 5 + np.hypot(115, 8) + 3 + 195  # A's gate to the day-care centre


@pytest.fixture()
def study(tmp_path: Path):
    """A river between x = 1000 and 1100 with one bridge, 1 km north.

    Street 西路 runs x = 0..1000 on the west bank, 东路 x = 1100..2000 on the
    east bank, each bank has a riverside road up to the bridge 北桥 at y = 1000.
    Compound A's gate is at x = 800, B's at x = 200; a kindergarten sits at x = 300,
    a day-care centre across the river at x = 1300.
    """
    path = tmp_path / "scenario-test.yaml"
    path.write_text(PROFILE, encoding="utf-8")
    lines = gpd.GeoDataFrame(
        {"way_id": [1, 2, 3, 4, 5], "name": ["西路", "东路", "西岸路", "东岸路", "北桥"]},
        geometry=[
            LineString([(0, 0), (1000, 0)]),
            LineString([(1100, 0), (2000, 0)]),
            LineString([(1000, 0), (1000, 1000)]),
            LineString([(1100, 0), (1100, 1000)]),
            LineString([(1000, 1000), (1100, 1000)]),
        ],
        crs=METRIC_CRS,
    )
    facilities = gpd.GeoDataFrame(
        {
            "facility_id": ["E1", "K1"],
            "type": ["elderly_daycare", "kindergarten"],
            "name": ["日照中心", "幼儿园"],
        },
        geometry=[Point(1300, 0), Point(300, 0)],
        crs=METRIC_CRS,
    )
    communities = gpd.GeoDataFrame(
        {"community_id": ["A", "B"], "name": ["甲苑", "乙苑"], "population": [1000.0, 500.0]},
        geometry=[box(750, -100, 850, -50), box(150, -100, 250, -50)],
        crs=METRIC_CRS,
    )
    gates = gpd.GeoDataFrame(
        {"community_id": ["A", "B"]}, geometry=[Point(800, 0), Point(200, 0)], crs=METRIC_CRS
    )
    return Study(
        network_from_lines(lines, crs=METRIC_CRS),
        facilities,
        communities,
        standard=load_standard(path),
        gates=gates,
        progress=False,
    )


def _scenario(**parts):
    return scenario_from_dict({"name": "测试", "crs": METRIC_CRS, **parts}, source="test.yaml")


def test_footbridge_and_removed_kindergarten_by_hand(study):
    before = study.score().set_index("community_id")
    assert before.loc["A", "elderly_daycare_m"] == pytest.approx(200 + 1000 + 100 + 1000 + 200)
    scenario = _scenario(
        add_links=[{"name": "人行桥", "coords": [[990, 5], [1105, -3]]}],
        remove_facilities=["K1"],
    )
    changed = apply_scenario(study, scenario)
    after = changed.score().set_index("community_id")
    # link ends attach at (990, 0) and (1105, 0); their 5 m and 3 m legs are walked
    assert after.loc["A", "elderly_daycare_m"] == pytest.approx(FOOTBRIDGE, abs=0.05)
    assert after.loc["B", "elderly_daycare_m"] == pytest.approx(FOOTBRIDGE + 600, abs=0.05)
    assert changed.network.total_length_m == pytest.approx(
        study.network.total_length_m + 5 + np.hypot(115, 8) + 3
    )

    diff = compare(study, changed, scenario=scenario)
    rows = diff.compounds.set_index(["community_id", "level", "item"])
    care = rows.loc[("A", "category", "care")]
    assert (care["ok_before"], care["ok_after"], care["change"]) == (False, True, "gained")
    assert care["nearest_after_m"] == pytest.approx(round(FOOTBRIDGE, 1))
    assert (care["score_before"], care["score_after"]) == (0.0, 50.0)
    kindergarten = rows.loc[("B", "type", "kindergarten")]
    assert (kindergarten["ok_before"], kindergarten["ok_after"]) == (True, False)
    assert kindergarten["nearest_before_m"] == 100.0
    assert np.isnan(kindergarten["nearest_after_m"])
    assert rows.loc[("B", "tier", "5min"), "change"] == "lost"
    assert rows.loc[("A", "tier", "10min"), "change"] == "gained"
    assert len(diff.compounds) == 5  # A: elderly_daycare, care, 10min; B: kindergarten, 5min

    coverage = diff.coverage.set_index(["level", "item"])
    assert coverage.loc[("category", "care")].to_dict() == {
        "compounds_before": 0,
        "compounds_after": 1,
        "compounds_change": 1,
        "population_before": 0.0,
        "population_after": 1000.0,
        "population_change": 1000.0,
    }
    assert coverage.loc[("type", "kindergarten"), "population_change"] == -500.0
    scores = diff.scores.set_index("community_id")
    assert scores.loc["A", "gained"] == "elderly_daycare;care;tier_10min"
    assert scores.loc["B", "lost"] == "kindergarten;tier_5min"
    assert scores.loc["B", "score_change"] == -50.0
    assert diff.summary["compounds_changed"] == 2
    assert sorted(diff.edits["kind"]) == ["add_link", "remove_facility"]
    link = diff.edits.set_index("kind").loc["add_link"]
    assert link["length_m"] == pytest.approx(5 + np.hypot(115, 8) + 3, abs=0.05)


def test_base_study_is_unchanged(study):
    segments, facilities = study.network.n_segments, len(study.facilities)
    before = study.score()["score"].tolist()
    apply_scenario(
        study,
        _scenario(
            add_links=[{"coords": [[1000, 0], [1100, 0]]}],
            remove_facilities=["K1"],
            remove_links=[{"name": "北桥"}],
        ),
    ).score()
    assert study.network.n_segments == segments
    assert len(study.facilities) == facilities
    assert study.score()["score"].tolist() == before


def test_link_ends_on_nodes_and_new_facility(study):
    scenario = _scenario(
        add_links=[{"coords": [[1000, 0], [1100, 0]]}],
        add_facilities=[
            {"id": "K2", "type": "kindergarten", "lon": 700, "lat": 40, "capacity": 30}
        ],
    )
    after = apply_scenario(study, scenario).score().set_index("community_id")
    assert after.loc["A", "elderly_daycare_m"] == pytest.approx(500.0)
    # the new kindergarten is 40 m off the street at x = 700
    assert after.loc["A", "kindergarten_m"] == pytest.approx(140.0)
    assert after.loc["A", "kindergarten_ok"]


@pytest.mark.parametrize(
    ("selector", "removed_m"),
    [
        ({"name": "北桥"}, 100.0),
        ({"way_id": 5}, 100.0),
        ({"within": [[1030, 950], [1070, 950], [1070, 1050], [1030, 1050]]}, 40.0),
        ({"crossing": [[1050, 900], [1050, 1100]]}, 1.0),
    ],
)
def test_closing_the_bridge(study, selector, removed_m):
    changed = apply_scenario(study, _scenario(remove_links=[selector]))
    assert study.network.total_length_m - changed.network.total_length_m == pytest.approx(removed_m)
    # the east bank is cut off: the day-care centre cannot be reached
    assert changed.score()["elderly_daycare_m"].isna().all()


def test_opening_a_gate(study):
    scenario = _scenario(add_gates=[{"community_id": "B", "lon": 1300, "lat": -30, "id": "B-东门"}])
    diff = run_scenario(study, scenario)
    changed = diff.compounds.set_index(["community_id", "item"])
    assert changed.loc[("B", "care"), "nearest_after_m"] == pytest.approx(30.0)
    assert diff.edits["kind"].tolist() == ["add_gate"]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"nmae": "x"}, "nmae: unknown key"),
        (
            {"add_facilities": [{"id": "n", "type": "park", "lon": 1, "lat": 2, "colour": 1}]},
            "add_facilities[0].colour: unknown key",
        ),
        (
            {"add_facilities": [{"id": "n", "type": "castle", "lon": 1, "lat": 2}]},
            "add_facilities[0].type: unknown facility type 'castle'",
        ),
        (
            {"add_facilities": [{"id": "n", "type": "park", "lon": 120, "lat": 95}]},
            "add_facilities[0].lon/lat: (120, 95) is not a longitude/latitude pair",
        ),
        (
            {"add_facilities": [{"id": "n", "type": "park", "lon": "120", "lat": 28}]},
            "add_facilities[0].lon: expected a number",
        ),
        (
            {"add_links": [{"coords": [[120.1, 28.0], [120.2, "x"]]}]},
            "add_links[0].coords[1][1]: expected a number",
        ),
        ({"add_links": [{"coords": [[120.1, 28.0]]}]}, "add_links[0].coords: expected a list"),
        ({"remove_links": [{"name": "a", "way_id": 3}]}, "remove_links[0]: give exactly one"),
        (
            {
                "add_facilities": [
                    {"id": "n", "type": "park", "lon": 1, "lat": 2},
                    {"id": "n", "type": "park", "lon": 1, "lat": 2},
                ]
            },
            "add_facilities[1].id: 'n' already used by add_facilities[0]",
        ),
        ({"crs": "mars2"}, "crs: unknown coordinate system"),
    ],
)
def test_invalid_scenarios_name_the_file_and_key(tmp_path, data, where):
    import yaml

    path = tmp_path / "方案.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert str(path) in str(info.value)
    assert where in str(info.value)


@pytest.mark.parametrize(
    ("parts", "where"),
    [
        ({"remove_facilities": ["K1", "K9"]}, "remove_facilities[1]: no facility with id 'K9'"),
        (
            {"add_facilities": [{"id": "E1", "type": "park", "lon": 0, "lat": 0}]},
            "add_facilities[0].id: a facility with id 'E1' already exists",
        ),
        ({"remove_links": [{"name": "南桥"}]}, "remove_links[0].name: selects no street"),
        (
            {"add_links": [{"coords": [[1000, 0], [1500, 600]]}]},
            "add_links[0].coords[1]: the link end is more than 250 m from any street",
        ),
        ({"add_gates": [{"community_id": "Z", "lon": 0, "lat": 0}]}, "no compound with id 'Z'"),
    ],
)
def test_scenarios_checked_against_the_study(study, parts, where):
    with pytest.raises(InputError) as info:
        apply_scenario(study, _scenario(**parts))
    assert "test.yaml" in str(info.value)
    assert where in str(info.value)


def test_yaml_file_round_trip_and_outputs(study, tmp_path):
    path = tmp_path / "bridge.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            name: 新建人行桥
            crs: {METRIC_CRS}
            add_links:
              - {{name: 人行桥, coords: [[990, 5], [1105, -3]]}}
            remove_facilities: [K1]
            """
        ),
        encoding="utf-8",
    )
    diff = run_scenario(study, path)
    assert diff.name == "新建人行桥"
    written = write_scenario_outputs(diff, tmp_path / "out")
    assert [p.name for p in written] == [
        "scenario_changes.csv",
        "scenario_coverage.csv",
        "scenario.gpkg",
        "scenario_summary.json",
    ]
    assert written[0].read_bytes().startswith(b"\xef\xbb\xbf")
    changes = pd.read_csv(written[0], encoding="utf-8-sig")
    assert len(changes) == 5
    lines = gpd.read_file(written[2], layer="edited_lines")
    assert lines["name"].tolist() == ["人行桥"]
    summary = json.loads(written[3].read_text(encoding="utf-8"))
    assert summary["items_gained"] == 3 and summary["items_lost"] == 2


def test_demo_new_daycare_serves_compounds_across_the_river(tmp_path):
    from lifecircle.datasets import demo_data

    d = demo_data()
    study = Study.from_files(
        d.streets,
        d.pois,
        d.compounds,
        gates=d.gates,
        facilities_crs="gcj02",
        standard="puxieshi-2021",
        progress=False,
    )
    scores = study.score()
    worst = scores[~scores["elderly_care_ok"]].sort_values("population").iloc[-1]
    spot = study.origins[study.origins["community_id"] == worst["community_id"]].iloc[0]
    lon, lat = spot.geometry.x, spot.geometry.y
    scenario = scenario_from_dict(
        {
            "name": "新日间照料中心",
            "add_facilities": [{"id": "new-1", "type": "elderly_daycare", "lon": lon, "lat": lat}],
        }
    )
    diff = run_scenario(study, scenario)
    gained = diff.compounds[(diff.compounds["item"] == "elderly_care")]
    assert worst["community_id"] in set(gained["community_id"])
    assert (gained["change"] == "gained").all()
    coverage = diff.coverage.set_index(["level", "item"])
    assert coverage.loc[("category", "elderly_care"), "population_change"] >= worst["population"]
    assert diff.summary["completeness_after"] > diff.summary["completeness_before"]
