"""Population by age group and group-weighted coverage, against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lifecircle.census import (
    coverage_by_group,
    coverage_by_group_summary,
    group_populations,
    load_shares,
)
from lifecircle.errors import InputError
from lifecircle.standards import beneficiary_groups, load_standard


def test_default_shares_are_the_census_bulletin_with_derived_splits() -> None:
    shares = load_shares()
    bulletin = {"age_0_15": 0.1795, "age_15_60": 0.6335, "age_60plus": 0.1870, "age_65plus": 0.135}
    for group, share in bulletin.items():
        assert shares.loc[group, "share"] == pytest.approx(share)
        assert shares.loc[group, "status"] == "CONFIRMED_SECONDARY"
        assert shares.loc[group, "source"] == "S_CENSUS7_BULLETIN5"
    # the bulletin's three broad groups make up everyone
    assert bulletin["age_0_15"] + bulletin["age_15_60"] + bulletin["age_60plus"] == pytest.approx(1)
    # 0-14 split evenly by single years: 17.95 % x 3/15, x 6/15, x 12/15
    assert shares.loc["age_3_6", "share"] == pytest.approx(0.1795 * 3 / 15, abs=1e-4)
    assert shares.loc["age_6_12", "share"] == pytest.approx(0.1795 * 6 / 15, abs=1e-4)
    assert shares.loc["age_3_15", "share"] == pytest.approx(0.1795 * 12 / 15, abs=1e-4)
    for group in ("age_0_3", "age_3_6", "age_6_12", "age_12_15", "age_3_15"):
        assert shares.loc[group, "status"] == "DERIVED"
        assert (
            "15 single years" in shares.loc[group, "derivation"]
            or "sum" in (shares.loc[group, "derivation"])
        )
    assert shares.loc["age_80plus", "status"] == "UNCONFIRMED"
    assert set(beneficiary_groups()) == set(shares.index)


def test_group_populations_from_shares_are_whole_people() -> None:
    frame = pd.DataFrame({"population": [1000.0, 2620.0, np.nan]})
    pops = group_populations(frame)
    # 1000 x 18.70 % = 187; 2620 x 18.70 % = 489.94 -> 490
    assert pops["pop_age_60plus"].tolist()[:2] == [187, 490]
    assert pops["pop_age_3_6"].tolist()[:2] == [36, 94]  # 35.9 -> 36; 94.06 -> 94
    assert pd.isna(pops["pop_age_60plus"].iloc[2])
    assert pops["pop_source"].tolist() == ["census_share", "census_share", "unknown"]


def test_age_columns_and_chinese_headers_win_over_shares() -> None:
    frame = pd.DataFrame(
        {
            "population": [1000.0, 1000.0],
            "60岁及以上": [300, None],
            "pop_3_6": [50, 40],
            "pop_6_12": [70, 60],
            "pop_12_15": [30, 20],
        }
    )
    pops = group_populations(frame)
    assert pops["pop_age_60plus"].tolist() == [300, 187]
    assert pops["pop_age_3_6"].tolist() == [50, 40]
    # 3-15 is the sum of its parts when they are all given
    assert pops["pop_age_3_15"].tolist() == [150, 120]
    assert pops["pop_source"].tolist() == ["mixed", "mixed"]


def test_every_group_given_makes_the_source_column() -> None:
    shares = load_shares()
    frame = pd.DataFrame({"population": [100.0]})
    for group in shares.index:
        if group != "all":
            frame[shares.loc[group, "headers"][0]] = 1
    assert group_populations(frame)["pop_source"].tolist() == ["column"]


def test_bad_age_column_names_column_and_row() -> None:
    frame = pd.DataFrame({"population": [100.0, 100.0], "pop_60plus": [10, "many"]})
    with pytest.raises(InputError, match=r"column 'pop_60plus', row 2: 'many' is not a number"):
        group_populations(frame)


def test_share_overrides_from_mapping_and_file(tmp_path: Path) -> None:
    assert load_shares({"age_60plus": 0.25}).loc["age_60plus", "share"] == 0.25
    path = tmp_path / "shares.yaml"
    path.write_text(
        "shares:\n  age_60plus: {share: 24.1, status: CONFIRMED, source: LOCAL}\n", "utf-8"
    )
    shares = load_shares(path)
    assert shares.loc["age_60plus", "share"] == pytest.approx(0.241)
    assert shares.loc["age_60plus", "status"] == "CONFIRMED"
    pops = group_populations(pd.DataFrame({"population": [1000.0]}), path)
    assert pops["pop_age_60plus"].tolist() == [241]
    with pytest.raises(InputError, match="unknown group 'age_99'"):
        load_shares({"age_99": 0.1})
    with pytest.raises(InputError, match="outside 0-1"):
        load_shares({"age_60plus": 140})


def _scores() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "community_id": ["A", "B", "C"],
            "population": [1000.0, 2000.0, 1000.0],
            "pop_60plus": [500, 100, 400],
            "pop_3_6": [10, 100, 20],
            "pop_6_12": [20, 200, 40],
            "pop_12_15": [10, 100, 20],
            "education_ok": [False, True, True],
            "commerce_transport_ok": [True, True, True],
            "culture_sports_ok": [True, True, False],
            "elderly_care_ok": [False, True, True],
            "tier_15min_pass": [False, True, False],
        }
    )


def test_coverage_is_weighted_by_the_items_group() -> None:
    frame = coverage_by_group(_scores(), load_standard("puxieshi-2021")).set_index("item")
    elderly = frame.loc["elderly_care"]
    # 60+: A 500 (not met), B 100 and C 400 (met): 500 / 1000
    assert elderly["beneficiaries"] == "age_60plus"
    assert (elderly["group_population"], elderly["group_met"]) == (1000, 500)
    assert elderly["group_share"] == pytest.approx(0.5)
    assert elderly["population_share"] == pytest.approx(3000 / 4000)
    education = frame.loc["education"]
    # children 3-15: A 40 (not met), B 400, C 80: 480 / 520
    assert education["group_share"] == pytest.approx(480 / 520, abs=1e-4)
    tier = frame.loc["15min"]
    assert (tier["kind"], tier["beneficiaries"], tier["group_share"]) == ("tier", "all", 0.5)


def test_coverage_summary_is_json_ready() -> None:
    import json

    summary = coverage_by_group_summary(_scores(), load_standard("puxieshi-2021"))
    json.dumps(summary)
    assert summary["items"]["elderly_care"]["group_share"] == pytest.approx(0.5)
    assert summary["population_by_group"]["age_60plus"] == 1000
    assert summary["shares"]["age_60plus"]["status"] == "CONFIRMED_SECONDARY"
    assert summary["pop_source"] == {"mixed": 3}
