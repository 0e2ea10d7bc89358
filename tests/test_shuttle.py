"""The elderly shuttle: trip times by hand, the method against brute force, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, box

from lifecircle.errors import InputError, MissingDataError
from lifecircle.network import network_from_lines
from lifecircle.shuttle import (
    ShuttleInstance,
    ShuttleParams,
    brute_force_plan,
    drivable_network,
    evaluate_lines,
    evaluate_loop,
    loop_order,
    plan_shuttle,
    ride_times,
    shuttle_defaults,
    solve_instance,
    solve_lines,
    trip_times,
    write_shuttle_outputs,
)
from lifecircle.study import Study

from .conftest import METRIC_CRS

PARAMS = ShuttleParams(
    walk_speed_m_per_min=50.0,
    vehicle_speed_kmh=18.0,  # 300 m/min
    headway_min=6.0,  # mean wait 3 min
    dwell_min=0.5,
    target_min=15.0,
    max_access_walk_m=300.0,
)


def test_defaults_carry_source_and_status():
    d = shuttle_defaults()
    assert d["elderly_walk_speed"] == pytest.approx(
        {**d["elderly_walk_speed"], "m_per_min": 50, "status": "ASSUMPTION"}
    )
    assert d["target"]["status"] == "CONFIRMED" and "15分钟内到达目的地" in d["target"]["quote"]
    assert ShuttleParams.from_defaults().walk_speed_m_per_min == 50.0
    with pytest.raises(InputError, match="outside 10-150"):
        ShuttleParams.from_defaults(walk_speed_m_per_min=1.2)


def test_ride_times_follow_the_loop_forward_with_dwell():
    ride = ride_times(np.array([2.0, 3.0, 4.0]), 0.5)
    assert ride[0, 1] == 2.0
    assert ride[0, 2] == 2.0 + 0.5 + 3.0
    assert ride[2, 1] == 4.0 + 0.5 + 2.0  # wraps round through stop 0
    assert np.isinf(np.diag(ride)).all()


def test_trip_is_the_shorter_of_walk_and_ride():
    # compound 0: walk 2 min to stop 0, wait 3, ride 2 to stop 1, walk 1 -> 8 min
    # compound 1: 5 min on foot beats the shuttle
    access = np.array([[2.0, 20.0], [9.0, 9.0]])
    egress = np.array([[30.0], [1.0]])
    direct = np.array([[40.0], [5.0]])
    best, by_shuttle = trip_times(
        access, ride_times(np.array([2.0, 2.0]), 0.5), egress, direct, 3.0
    )
    assert best[:, 0].tolist() == [8.0, 5.0]
    assert by_shuttle[1, 0] == 9.0 + 3.0 + 2.0 + 1.0


def test_loop_order_by_ortools_matches_enumeration():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 1000, (9, 2))
    drive = np.hypot(*(xy[:, None, :] - xy[None, :, :]).T)
    from lifecircle.shuttle import _loop_length, _shortest_loop_by_enumeration

    exact = _loop_length(drive, _shortest_loop_by_enumeration(drive))
    solved = loop_order(drive)  # 9 stops: OR-Tools
    assert sorted(solved) == list(range(9))
    assert _loop_length(drive, solved) == pytest.approx(exact, rel=1e-6)


def _line_instance(n_candidates: int = 6) -> ShuttleInstance:
    """Candidates every 500 m along one road; compounds beside some of them."""
    x = np.arange(n_candidates) * 500.0
    compounds = np.array([0.0, 1000.0, 1500.0])  # x of each compound, 20 m off the road
    access = np.abs(compounds[:, None] - x[None, :]) + 20.0
    dest_x = 2500.0
    egress = (np.abs(x - dest_x) + 20.0)[:, None]
    direct = (np.abs(compounds - dest_x) + 40.0)[:, None]
    drive = np.abs(x[:, None] - x[None, :])
    return ShuttleInstance(
        access_m=access,
        egress_m=egress,
        drive_m=drive,
        direct_m=direct,
        weights=np.array([100.0, 50.0, 30.0]),
        fixed=np.array([5]),  # the stop at the destination, x = 2500
    )


def test_line_case_by_hand_and_against_brute_force():
    instance = _line_instance()
    # compound at x=0 boarding at x=0: walk 0.4 + wait 3 + ride 2500 m/300 = 8.33
    # + walk 0.4 = 12.13 min (the loop goes 0 -> 2500 first); on foot 2540 m = 50.8 min
    value, best, _ = evaluate_loop(instance, [0, 5], PARAMS)
    assert best[0, 0] == pytest.approx(0.4 + 3 + 2500 / 300 + 0.4)
    # compound at x=1500 walks 1040 m (20.8 min) or boards at 0: walks 1520 m, no
    assert best[2, 0] == pytest.approx(1040 / 50)
    # x=1000 walks 1020 m to either stop (20.4 min) and 1540 m direct: not reached
    assert value == 100.0
    # one boarding stop: x=0 (100 residents) beats x=1000 (50) and x=1500 (30)
    loop, solved = solve_instance(instance, 1, PARAMS)
    assert (sorted(loop), solved) == ([0, 5], 100.0)
    assert brute_force_plan(instance, 1, PARAMS)[1] == 100.0
    # two: x=0 and x=1000; x=1500 would need 10.4 min on foot to x=1000 plus the ride
    loop, solved = solve_instance(instance, 2, PARAMS)
    assert (sorted(loop), solved) == ([0, 2, 5], 150.0)
    assert brute_force_plan(instance, 2, PARAMS)[1] == 150.0
    # three: everyone; from x=0 the ride passes two stops: 2500/300 + 2 x 0.5
    loop, solved = solve_instance(instance, 3, PARAMS)
    assert solved == brute_force_plan(instance, 3, PARAMS)[1] == 180.0
    _, best, _ = evaluate_loop(instance, loop, PARAMS)
    assert best[0, 0] == pytest.approx(0.4 + 3 + 2500 / 300 + 2 * 0.5 + 0.4)


@pytest.mark.parametrize("seed", range(4))
def test_method_never_beats_and_stays_near_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, c = 8, 7
    xy_c = rng.uniform(0, 2500, (c, 2))
    xy_h = rng.uniform(0, 2500, (n, 2))
    dest = rng.uniform(0, 2500, (2, 2))
    dist = lambda a, b: np.hypot(*(a[:, None, :] - b[None, :, :]).T).T  # noqa: E731
    egress = dist(xy_c, dest)
    instance = ShuttleInstance(
        access_m=dist(xy_h, xy_c),
        egress_m=egress,
        drive_m=dist(xy_c, xy_c) * 1.2,
        direct_m=dist(xy_h, dest),
        weights=rng.integers(10, 200, n).astype(float),
        fixed=np.unique(np.argmin(egress, axis=0)),
    )
    _, solved = solve_instance(instance, 2, PARAMS)
    _, optimum = brute_force_plan(instance, 2, PARAMS)
    assert solved <= optimum + 1e-9
    if optimum > 0:
        assert solved >= 0.5 * optimum


@pytest.fixture(scope="module")
def road_study():
    """A 2.5 km road (drivable) with a footpath; one daycare at the far end."""
    lines = gpd.GeoDataFrame(
        {"highway": ["residential", "footway"]},
        geometry=[LineString([(0, 0), (2500, 0)]), LineString([(0, 0), (0, -400)])],
        crs=METRIC_CRS,
    )
    net = network_from_lines(lines, crs=METRIC_CRS)
    facilities = gpd.GeoDataFrame(
        {
            "facility_id": ["d1", "m1"],
            "type": ["elderly_daycare", "fresh_market"],
            "name": ["日照", "菜场"],
        },
        geometry=[Point(2500, 30), Point(0, -400)],
        crs=METRIC_CRS,
    )
    communities = gpd.GeoDataFrame(
        {"community_id": ["A"], "name": ["甲"], "population": [1000.0], "pop_60plus": [300]},
        geometry=[box(-20, 20, 20, 60)],
        crs=METRIC_CRS,
    )
    return Study(net, facilities, communities, standard="puxieshi-2021", progress=False)


def test_plan_on_a_built_road(road_study, tmp_path: Path):
    plan = plan_shuttle(
        road_study, 1, destinations=["elderly_daycare"], params=PARAMS, spacing_m=500
    )
    reach = plan.reach.set_index("type").loc["elderly_daycare"]
    assert reach["residents_60plus"] == 300
    assert reach["walk_only"] == 0  # about 2.56 km on foot: 51 min
    assert reach["with_shuttle"] == 300
    trip = plan.compounds.loc[0, "elderly_daycare_trip_min"]
    # inside point (0, 40): 40 m to the stop at x=0, wait 3, ride 2500 m / 300 m/min,
    # 30 m to the daycare
    assert trip == pytest.approx(40 / 50 + 3 + 2500 / 300 + 30 / 50, abs=0.05)
    assert plan.stops["kind"].tolist().count("destination") == 1
    x = plan.stops.to_crs(METRIC_CRS).geometry.x.to_numpy()
    loop_m = 2 * abs(x[1] - x[0])  # there and back along the one road
    assert plan.route["length_m"].sum() == pytest.approx(loop_m, abs=0.2)
    assert plan.cycle_min == pytest.approx(loop_m / 300 + 2 * 0.5, abs=0.01)
    first = plan.timetable[plan.timetable["trip"] == 1]
    assert first["arrive"].tolist()[0] == "07:00"
    written = write_shuttle_outputs(plan, tmp_path)
    assert [p.name for p in written] == [
        "shuttle.gpkg",
        "shuttle_timetable.csv",
        "shuttle_reach.csv",
        "shuttle.json",
    ]
    assert set(gpd.list_layers(written[0])["name"]) == {"stops", "route"}
    summary = json.loads(written[3].read_text(encoding="utf-8"))
    assert summary["reach"]["elderly_daycare"]["with_shuttle"] == 300


def test_bad_input_gets_clear_errors(road_study):
    with pytest.raises(InputError, match="k = 99 boarding stops, but only"):
        plan_shuttle(road_study, 99, destinations=["elderly_daycare"], spacing_m=500)
    with pytest.raises(InputError, match="no destination of type hospital"):
        plan_shuttle(road_study, 1, destinations=["hospital"])
    with pytest.raises(MissingDataError, match="no drivable way"):
        paths = gpd.GeoDataFrame(
            {"highway": ["footway"]}, geometry=[LineString([(0, 0), (10, 0)])], crs=METRIC_CRS
        )
        drivable_network(paths)
    # the market sits at the end of a footpath 400 m from any road:
    far = PARAMS.__class__(**{**PARAMS.__dict__, "target_min": 5.0})
    with pytest.raises(MissingDataError, match="unreachable by road"):
        plan_shuttle(road_study, 1, destinations=["fresh_market"], params=far, spacing_m=500)


def test_drivable_network_keeps_the_ways_cars_may_use():
    lines = gpd.GeoDataFrame(
        {
            "highway": ["primary", "footway", "service", "residential"],
            "access": [None, None, "private", None],
        },
        geometry=[
            LineString([(0, 0), (100, 0)]),
            LineString([(100, 0), (200, 0)]),
            LineString([(200, 0), (300, 0)]),
            LineString([(0, 0), (0, 100)]),
        ],
        crs=METRIC_CRS,
    )
    net = drivable_network(lines)
    assert net.total_length_m == pytest.approx(200.0)


@pytest.fixture(scope="module")
def demo_study():
    return Study.from_demo()


def test_runs_on_the_demo(demo_study):
    plan = plan_shuttle(demo_study, 2)
    reach = plan.reach.set_index("type")
    assert (reach["with_shuttle"] >= reach["walk_only"]).all()
    assert reach.loc["elderly_daycare", "with_shuttle"] > reach.loc["elderly_daycare", "walk_only"]
    # the demo hospital stands by a street piece cut off from the rest, but a main
    # street lies within the snap limit: it is routed from there, and the shuttle reaches it
    assert reach.loc["hospital", "with_shuttle"] >= reach.loc["hospital", "walk_only"] > 0
    assert not any("示例中心医院" in note for note in plan.notes)
    assert isinstance(plan.timetable, pd.DataFrame) and len(plan.timetable)


def test_two_lines_share_the_stops_and_each_trip_rides_one():
    # a hub at x=0 with stops west and east: two lines beat one long loop for these trips
    x = np.array([0.0, -1500.0, -3000.0, 1500.0, 3000.0])
    drive = np.abs(x[:, None] - x[None, :])
    instance = ShuttleInstance(
        access_m=np.array([[9e9, 9e9, 20.0, 9e9, 9e9], [9e9, 9e9, 9e9, 9e9, 20.0]]),
        egress_m=np.array([[20.0], [9e9], [9e9], [9e9], [9e9]]),
        drive_m=drive,
        direct_m=np.array([[9e9], [9e9]]),
        weights=np.array([10.0, 20.0]),
        fixed=np.array([0]),
    )
    lines, value = solve_lines(instance, 4, PARAMS, 2)
    assert sorted(sorted(line) for line in lines) == [[0, 1, 2], [0, 3, 4]]
    # each rides 3000 m back to the hub on its own line: walk 0.4, wait 3, ride 10, walk
    # 0.4, and a dwell of 0.5 when the line passes the nearer stop on the way back
    _, best = evaluate_lines(instance, lines, PARAMS)
    line_of = {line[1]: line for line in lines} | {line[2]: line for line in lines}
    expected = [0.4 + 3 + 10 + 0.4 + (0.0 if line_of[r][-1] == r else 0.5) for r in (2, 4)]
    assert best[:, 0] == pytest.approx(expected)
    assert value == 30.0
    _, single = solve_instance(instance, 4, PARAMS)
    assert single < value  # one loop: the ride from one end passes the far side


def test_demo_with_two_lines(demo_study):
    plan = plan_shuttle(demo_study, 4, lines=2)
    assert plan.lines == 2 and set(plan.route["line"]) == {1, 2}
    assert plan.summary()["lines"] == 2
