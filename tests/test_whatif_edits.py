"""A scenario's new links and gates in the what-if panel: each edit's coverage set."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecircle.maps import whatif_data, whatif_edits, whatif_totals
from lifecircle.options import Options
from lifecircle.scenarios import load_scenario, run_scenario
from lifecircle.siting import recommend_sites
from lifecircle.study import Study

from .test_browser import READY, browser, tab  # noqa: F401 - the headless Chromium fixtures

# a footpath from a gate of a compound without day care to the nearest centre (641 m)
SCENARIO = """\
name: 新人行道
add_links:
  - {name: 示例新人行道, coords: [[120.6524, 28.015299], [120.657973, 28.012296]]}
add_gates:
  - {community_id: C001, id: C001-new, lon: 120.6525, lat: 28.0154}
"""


@pytest.fixture(scope="module")
def study() -> Study:
    return Study.from_demo(options=Options(standard="puxieshi-2021", progress=False))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("whatif") / "s.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return load_scenario(path)


def test_each_edit_covers_what_the_scenario_gains_alone(study: Study, scenario, tmp_path: Path):
    entries = whatif_edits(study, scenario, "elderly_daycare")
    assert [e["kind"] for e in entries] == ["edit", "edit"]
    link = entries[0]
    assert link["id"] == "示例新人行道" and link["covers"]
    # the same edit alone, re-scored through the scenario engine
    only_link = tmp_path / "link.yaml"
    only_link.write_text(SCENARIO.split("add_gates:")[0], encoding="utf-8")
    diff = run_scenario(study, load_scenario(only_link))
    gained = diff.compounds[
        (diff.compounds["item"] == "elderly_daycare") & (diff.compounds["change"] == "gained")
    ]
    ids = study.communities["community_id"].astype(str).tolist()
    assert sorted(ids[i] for i in link["covers"]) == sorted(gained["community_id"].astype(str))


def test_edits_join_the_sites_and_sum_like_them(study: Study, scenario) -> None:
    siting = recommend_sites(study, "elderly_daycare", 2)
    data = whatif_data(study, siting, scenario=scenario, max_candidates=5)
    edits = [s for s in data["sites"] if s.get("kind") == "edit"]
    assert len(edits) == 2
    both = whatif_totals(data, [edits[0]["id"], data["sites"][0]["id"]])
    union = set(edits[0]["covers"]) | set(data["sites"][0]["covers"])
    assert both["compounds"] == len(union)


def test_the_panel_lists_the_edits_and_sums_a_ticked_one(
    study: Study,
    scenario,
    demo_outputs: Path,
    tmp_path: Path,
    tab,  # noqa: F811 - the fixture imported above
) -> None:
    import shutil

    from lifecircle.maps import render_map, write_whatif

    out = tmp_path / "out"
    shutil.copytree(demo_outputs, out)
    siting = recommend_sites(study, "elderly_daycare", 2)
    write_whatif(study, siting, out, scenario=scenario, max_candidates=3)
    page = render_map(out, basemap="none")
    tab.open(page)
    tab.wait_for(READY)
    tab.js("document.querySelector('.lc-whatif-all').open = true")
    assert "情景：新增道路与出入口" in tab.js("document.querySelector('.lc-whatif').innerText")
    data = whatif_data(study, siting, scenario=scenario, max_candidates=3)
    index = next(i for i, s in enumerate(data["sites"]) if s.get("kind") == "edit")
    tab.js(f"document.querySelector('.lc-whatif input[data-i=\"{index}\"]').click()")
    tab.wait_for("window.lifecircle.whatif && window.lifecircle.whatif.sites.length === 1")
    flips = int(tab.js("document.querySelector('.lc-whatif-c').innerText"))
    assert flips == len(data["sites"][index]["covers"]) > 0
    assert tab.errors() == []
