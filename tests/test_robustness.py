"""Robustness labels on a street built so that each gap clears under a known assumption."""

from __future__ import annotations

import textwrap
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, box

from lifecircle.errors import InputError
from lifecircle.network import network_from_lines
from lifecircle.robustness import assess_robustness, write_robustness_outputs
from lifecircle.standards import load_standard
from lifecircle.study import Study

from .conftest import METRIC_CRS

# one item: a kindergarten within 10 minutes, i.e. 500 / 600 / 670 / 800 m at 50 / 60 / 67 / 80
# m/min under the minutes rule; under the metres rule a fixed 600 m
PROFILE = textwrap.dedent(
    """
    id: robust-test
    title: Robustness test profile
    version: "1"
    walk_speed: {m_per_min: 60, status: ASSUMPTION, source: S_TEST}
    threshold_rule: RULE
    tiers:
      - {id: 10min, name_zh: 十分钟, name_en: ten, walk_min: 10, status: ASSUMPTION,
         source: S_TEST}
    requirements:
      - {type: kindergarten, tier: 10min, walk_min: 10, max_walk_m: 600, status: ASSUMPTION,
         source: S_TEST}
    sources:
      S_TEST: {what: hand-made test figures}
    """
)

SPEEDS = (50, 60, 67, 80)
SNAPS = (150, 250, 400)


def _profile(tmp_path: Path, rule: str):
    path = tmp_path / f"robust-{rule}.yaml"
    path.write_text(PROFILE.replace("RULE", rule), encoding="utf-8")
    return load_standard(path)


def _gdf(rows, geoms):
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=METRIC_CRS)


def _study(profile, extra_facilities=()):
    """A street along y = 0 with a kindergarten 20 m off it at x = 0.

    Walking distance from a point on the street at x is |x| + 20; from a cell
    centre (x, 50) it is |x| + 70. Gap cells are 100 m squares aligned at 0.
    """
    net = network_from_lines(
        gpd.GeoSeries([LineString([(-1500, 0), (3000, 0)])], crs=METRIC_CRS), crs=METRIC_CRS
    )
    points = [Point(0, 20), *(Point(x, 0) for x in extra_facilities)]
    facilities = _gdf(
        {
            "facility_id": [f"K{i}" for i in range(len(points))],
            "type": ["kindergarten"] * len(points),
        },
        points,
    )
    communities = _gdf(
        {
            "community_id": ["F", "G", "R", "E", "S"],
            "name": ["甲", "乙", "丙", "丁", "戊"],
            "population": [400.0, 300.0, 100.0, 50.0, 80.0],
        },
        [
            box(610, 10, 790, 90),  # cells centred 650 (720 m) and 750 (820 m)
            box(-690, 10, -610, 90),  # one cell centred -650 (720 m)
            box(1010, 10, 1090, 90),  # 1120 m
            box(-390, 10, -310, 90),  # 420 m
            box(-120, 310, -80, 390),  # inside point 350 m off the street, no gate
        ],
    )
    gates = _gdf(
        {"community_id": ["F", "G", "R", "E"]},
        [Point(700, 0), Point(-700, 0), Point(1050, 0), Point(-540, 0)],
    )
    boundary = gpd.GeoDataFrame(geometry=[box(-1500, -500, 3000, 500)], crs=METRIC_CRS)
    return Study(
        net,
        facilities,
        communities,
        standard=profile,
        gates=gates,
        boundary=boundary,
        progress=False,
    )


@pytest.fixture()
def minutes_study(tmp_path):
    return _study(_profile(tmp_path, "minutes"))


def test_compound_failures_by_hand(minutes_study):
    result = assess_robustness(minutes_study, walk_speeds=SPEEDS, snap_limits=SNAPS, progress=False)
    assert result.runs["label"].tolist() == [
        "base",
        "walk_speed=50",
        "walk_speed=67",
        "walk_speed=80",
        "max_snap_m=150",
        "max_snap_m=400",
    ]
    failures = result.failures.set_index("community_id")
    assert sorted(failures.index) == ["F", "G", "R", "S"]
    # F and G walk 720 m: failing at 500, 600 and 670 m, met only at 80 m/min (800 m)
    for compound in ("F", "G"):
        assert failures.loc[compound, "robustness"] == "fragile"
        assert failures.loc[compound, "disappears_at"] == "walk_speed=80"
        assert failures.loc[compound, "runs_failing"] == 5
    # R walks 1070 m: fails everywhere
    assert failures.loc["R", "robustness"] == "robust"
    assert failures.loc["R", "disappears_at"] == ""
    # S is 350 m off the street: routed only with the 400 m snap limit, then 470 m away
    assert failures.loc["S", "robustness"] == "fragile"
    assert failures.loc["S", "disappears_at"] == "max_snap_m=400"
    assert failures.loc["S", "runs_routed"] == 1
    # E walks 560 m: met at 60 m/min, failing only at 50 m/min
    emerging = result.emerging.set_index("community_id")
    assert emerging.index.tolist() == ["E"]
    assert emerging.loc["E", "appears_at"] == "walk_speed=50"
    compounds = result.compounds.set_index("community_id")
    assert compounds.loc["R", "robustness"] == "robust"
    assert compounds.loc["F", "fragile_items"] == "kindergarten"
    assert compounds.loc["E", "robustness"] == ""


def test_gap_cells_and_polygons_by_hand(minutes_study):
    result = assess_robustness(minutes_study, walk_speeds=SPEEDS, snap_limits=SNAPS, progress=False)
    cells = result.cells.to_crs(METRIC_CRS)
    centre_x = cells.geometry.centroid.x.round().astype(int)
    label = dict(zip(centre_x, cells["robustness"], strict=True))
    # the cells with people and a base gap: 720 m (clears at 80), 820 m, 1120 m (robust)
    assert label == {650: "fragile", 750: "robust", -650: "fragile", 1050: "robust"}
    cleared = dict(zip(centre_x, cells["disappears_at"], strict=True))
    assert cleared[650] == cleared[-650] == "walk_speed=80"
    gaps = result.gaps.set_index(result.gaps["population"].round().astype(int))
    # F's two cells form one polygon, half of it clears at 80 m/min
    assert gaps.loc[400, "robustness"] == "mixed"
    assert gaps.loc[400, "shrinks_at"] == "walk_speed=80"
    assert gaps.loc[400, "disappears_at"] == ""
    assert gaps.loc[400, "robust_population"] == pytest.approx(200.0)
    assert gaps.loc[300, "robustness"] == "fragile"
    assert gaps.loc[300, "disappears_at"] == "walk_speed=80"
    assert gaps.loc[100, "robustness"] == "robust"
    # the labelled cells are exactly the study's own gap cells
    study_cells, _ = minutes_study.gaps()
    assert set(study_cells.loc[study_cells["kindergarten_gap"], "cell_id"]) == set(
        result.cells["cell_id"]
    )


@pytest.mark.parametrize("speed", SPEEDS)
def test_speed_runs_match_a_full_rerun(minutes_study, speed):
    # re-using the base distances must give the verdicts of a study re-routed at that speed
    result = assess_robustness(minutes_study, walk_speeds=SPEEDS, snap_limits=(), progress=False)
    rerun = Study(
        minutes_study.network,
        minutes_study.facilities,
        minutes_study.communities,
        standard=minutes_study.standard,
        gates=minutes_study.gates,
        boundary=minutes_study.boundary,
        walk_speed=speed,
        progress=False,
    ).score()
    failing = set(rerun.loc[~rerun["kindergarten_ok"], "community_id"])
    label = "base" if speed == 60 else f"walk_speed={speed}"
    base_failures = result.failures.set_index("community_id")
    cleared = {c for c, runs in base_failures["disappears_at"].items() if label in runs.split(";")}
    appeared = {
        c
        for c, runs in result.emerging.set_index("community_id")["appears_at"].items()
        if label in runs.split(";")
    }
    assert failing == (set(base_failures.index) - cleared) | appeared


def test_metres_rule_makes_speed_irrelevant(tmp_path):
    study = _study(_profile(tmp_path, "metres"))
    result = assess_robustness(study, walk_speeds=SPEEDS, snap_limits=(), progress=False)
    assert not result.runs["thresholds_changed"].any()
    assert "change nothing" in result.notes[0]
    failures = result.failures.set_index("community_id")
    # 600 m whatever the speed: F and G (720 m) now fail in every run
    assert failures.loc["F", "robustness"] == failures.loc["G", "robustness"] == "robust"
    assert failures.loc["S", "robustness"] == "unrouted"
    assert result.emerging.empty


def test_dropped_pois_only_add_gaps(tmp_path):
    # a second kindergarten on the street at x = 1100 serves F (400 m) and R (50 m)
    study = _study(_profile(tmp_path, "minutes"), extra_facilities=(1100,))
    seeds = (0, 1, 2, 3, 4, 5)
    result = assess_robustness(
        study, walk_speeds=(), snap_limits=(), drop_shares=(0.5,), seeds=seeds, progress=False
    )
    assert result.runs["label"].tolist()[1:] == [f"drop=50%,seed={s}" for s in seeds]
    # dropping never clears a gap: G (720 m) stays, S is never routed
    failures = result.failures.set_index("community_id")["robustness"]
    assert failures.to_dict() == {"G": "robust", "S": "unrouted"}
    # F and R fail whenever the second kindergarten (facility 1) is the one dropped,
    # E (560 m from the first) whenever the first is
    dropped = {s: int(np.random.default_rng(s).permutation(2)[0]) for s in seeds}
    assert set(dropped.values()) == {0, 1}
    first = ";".join(f"drop=50%,seed={s}" for s in seeds if dropped[s] == 0)
    second = ";".join(f"drop=50%,seed={s}" for s in seeds if dropped[s] == 1)
    emerging = result.emerging.set_index("community_id")
    assert emerging["appears_at"].to_dict() == {"E": first, "F": second, "R": second}


def test_bad_assumptions_and_outputs(minutes_study, tmp_path):
    with pytest.raises(InputError, match="between 0 and 1"):
        assess_robustness(minutes_study, drop_shares=(1.5,), progress=False)
    with pytest.raises(InputError, match="m/min"):
        assess_robustness(minutes_study, walk_speeds=(1.2,), progress=False)
    result = assess_robustness(minutes_study, walk_speeds=SPEEDS, progress=False)
    written = write_robustness_outputs(result, tmp_path / "out")
    assert [p.name for p in written] == [
        "robustness_failures.csv",
        "robustness_runs.csv",
        "robustness.gpkg",
        "robustness_summary.json",
    ]
    table = pd.read_csv(written[0], encoding="utf-8-sig", keep_default_na=False)
    assert set(table["robustness"]) == {"robust", "fragile"}
    gaps = gpd.read_file(written[2], layer="gaps")
    assert sorted(gaps["robustness"]) == ["fragile", "mixed", "robust"]


def test_min_count_holds_in_every_run(tmp_path):
    # two kindergartens needed within 10 minutes; a second one on the street at x = -1000
    path = tmp_path / "robust-two.yaml"
    text = PROFILE.replace("RULE", "minutes").replace(
        "max_walk_m: 600,", "max_walk_m: 600, min_count: 2,"
    )
    path.write_text(text, encoding="utf-8")
    study = _study(load_standard(path), extra_facilities=(-1000,))
    result = assess_robustness(study, walk_speeds=SPEEDS, snap_limits=SNAPS, progress=False)
    failures = result.failures.set_index("community_id")
    # G's gate (-700, 0): 300 m and 720 m, both within reach only at 80 m/min (800 m)
    assert failures.loc["G", "robustness"] == "fragile"
    assert failures.loc["G", "disappears_at"] == "walk_speed=80"
    # F's gate (700, 0): 720 m and 1700 m: never two; R likewise; S (routed at 400 m) 470, 1250
    assert failures.loc["F", "robustness"] == failures.loc["R", "robustness"] == "robust"
    assert failures.loc["S", "robustness"] == "robust"
    assert failures.loc["S", "runs_routed"] == 1
    # E's gate (-540, 0): 460 m and 560 m: met at 60 m/min, one short at 50 m/min (500 m)
    assert result.emerging.set_index("community_id")["appears_at"].to_dict() == {
        "E": "walk_speed=50"
    }
    # E's cell centre (-350, 50) is 420 m from the nearest but 700 m from the second: a gap
    # at 600 m that clears only at 80 m/min
    cells = result.cells.to_crs(METRIC_CRS)
    centre_x = cells.geometry.centroid.x.round().astype(int)
    labels = zip(cells["robustness"], cells["disappears_at"], strict=True)
    cell = dict(zip(centre_x, labels, strict=True))
    assert cell[-350] == ("fragile", "walk_speed=80")
    study_cells, _ = study.gaps()
    assert set(study_cells.loc[study_cells["kindergarten_gap"], "cell_id"]) == set(
        result.cells["cell_id"]
    )
