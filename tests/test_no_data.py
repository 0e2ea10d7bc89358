"""A type without any facility in the data is no_data, never passed off as a service gap."""

from __future__ import annotations

import numpy as np
import pytest

from lifecircle.options import Options
from lifecircle.study import Study


def _without(type_id: str, basis: str) -> Study:
    base = Study.from_demo(options=Options(standard="puxieshi-2021", progress=False))
    kept = base.facilities[base.facilities["type"] != type_id]
    return Study(
        base.network,
        kept,
        base.communities,
        gates=base.gates,
        boundary=base.boundary,
        options=base.options.replace(score_basis=basis),
    )


@pytest.fixture(scope="module")
def demo() -> Study:
    return Study.from_demo(options=Options(standard="puxieshi-2021", progress=False))


def test_complete_data_has_no_no_data_item(demo: Study) -> None:
    scores = demo.score()
    assert (scores["no_data"] == "").all()
    assert np.array_equal(scores["score_all"], scores["score_with_data"])
    assert demo.summary()["data_checks"]["types_without_data"] == []


@pytest.mark.parametrize("basis", ["all", "with_data"])
def test_a_type_absent_from_the_data_is_no_data(demo: Study, basis: str) -> None:
    members = next(c for c in demo.standard.categories if c.id == "elderly_care").types
    study = _without("elderly_daycare", basis)
    for other in members:
        if other != "elderly_daycare":
            study.facilities = study.facilities[study.facilities["type"] != other].reset_index(
                drop=True
            )
    scores = study.score()
    assert (scores["no_data"] == "elderly_care").all()
    assert not scores["missing"].str.contains("elderly_care").any()
    # elderly care was one of the plan's equally weighted categories
    n_items = len(demo.standard.categories) + len(
        [r for r in demo.standard.requirements if not r.optional]
    )
    with_data = scores["score_with_data"].to_numpy()
    all_items = scores["score_all"].to_numpy()
    assert (with_data >= all_items).all()
    assert scores["score"].equals(scores["score_all" if basis == "all" else "score_with_data"])
    summary = study.summary()
    results = summary["results"]
    assert results["no_data"] == ["elderly_care"]
    assert results["items_with_data"] == n_items - 1
    assert results["coverage"]["categories"]["elderly_care"]["verdict"] == "no_data"
    tier = study.score()["tier_15min_pass"]
    if basis == "all":
        assert not tier.any()  # every compound lacks an item the data cannot show
    else:
        assert tier.sum() > 0
    assert any("no_data, not gaps" in w for w in summary["warnings"])
