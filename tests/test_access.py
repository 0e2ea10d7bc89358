"""2SFCA with demand counted among each type's beneficiaries."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point

from lifecircle.access import required_per_member, two_step_fca
from lifecircle.census import group_populations
from lifecircle.engine import ReachEngine
from lifecircle.network import network_from_lines
from lifecircle.scoring import FACILITY_LAYER, ORIGIN_LAYER
from lifecircle.standards import Demand, load_standard

from .conftest import METRIC_CRS


@pytest.fixture()
def setting():
    net = network_from_lines(
        gpd.GeoSeries([LineString([(0, 0), (3000, 0)])], crs=METRIC_CRS), crs=METRIC_CRS
    )
    engine = ReachEngine(net)
    facilities = gpd.GeoDataFrame(
        {"type": ["nursing_home", "nursing_home"], "capacity": [30.0, 20.0]},
        geometry=[Point(0, 0), Point(3000, 0)],
        crs=METRIC_CRS,
    )
    origins = gpd.GeoSeries([Point(100, 0), Point(500, 0), Point(2900, 0)], crs=METRIC_CRS)
    engine.add_layer(FACILITY_LAYER, facilities)
    engine.add_layer(ORIGIN_LAYER, origins)
    return engine, facilities


def test_beds_are_shared_among_residents_aged_60_plus(setting) -> None:
    engine, facilities = setting
    std = load_standard("gb50180-2018")  # nursing home: 1000 m, 40 beds per 1,000 aged 60+
    population = np.array([1000.0, 1000.0, 1000.0])
    pops = group_populations(
        pd.DataFrame({"population": population, "pop_60plus": [400, 100, 250]})
    )
    out = two_step_fca(engine, facilities, population, np.arange(3), std, pops)
    # home 1 (30 beds) serves compounds 0 and 1: 500 people aged 60+ -> 0.06 per head;
    # home 2 (20 beds) serves compound 2 only: 250 aged 60+ -> 0.08 per head
    assert out["nursing_home_supply_per_1000"].tolist() == pytest.approx([60.0, 60.0, 80.0])
    assert out["nursing_home_supply_ratio"].tolist() == pytest.approx([1.5, 1.5, 2.0])


def test_without_age_columns_the_census_share_estimates_the_group(setting) -> None:
    engine, facilities = setting
    std = load_standard("gb50180-2018")
    population = np.array([1000.0, 1000.0, 1000.0])
    out = two_step_fca(engine, facilities, population, np.arange(3), std)
    # 187 aged 60+ per compound: 30 / 374 and 20 / 187 beds per head
    expected = [30 / 374 * 1000, 30 / 374 * 1000, 20 / 187 * 1000]
    assert out["nursing_home_supply_per_1000"].tolist() == pytest.approx(expected, abs=0.01)


def test_per_resident_demand_is_converted_with_the_groups_share() -> None:
    demand = Demand("kindergarten", 30.0, "seats", "ASSUMPTION", "S", "", "age_3_6")
    # 30 seats per 1,000 residents; 2,000 residents of whom 80 aged 3-6: 0.75 per child
    assert required_per_member(demand, np.array([1000.0, 1000.0]), np.array([50.0, 30.0])) == (
        pytest.approx(0.75)
    )
    everyone = Demand("kindergarten", 30.0, "seats", "ASSUMPTION", "S", "")
    assert required_per_member(everyone, np.array([1000.0]), np.array([1000.0])) == 0.03
