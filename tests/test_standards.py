"""Tests for lifecircle.standards: packaged profiles, thresholds, validation."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecircle.errors import InputError
from lifecircle.standards import (
    FACILITY_TYPE_IDS,
    STATUSES,
    USER_OVERRIDE_SOURCE,
    CategoryRule,
    Requirement,
    Standard,
    list_standards,
    load_standard,
)

PACKAGED_IDS = ["gb50180-2018", "puxieshi-2021", "six-kinds-15min", "tdt1062-2021"]
SCHEMA_PATH = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "lifecircle"
    / "data"
    / "standards"
    / "schema.json"
)


def minimal_profile() -> dict[str, Any]:
    """A small valid user profile: two tiers, two requirements, two categories, one demand."""
    return {
        "id": "my-city",
        "title": "My city",
        "version": 2024,
        "walk_speed": {"m_per_min": 60, "status": "ASSUMPTION", "source": "S_ME"},
        "threshold_rule": "metres",
        "tiers": [
            {
                "id": "15min",
                "walk_min": 15,
                "walk_m": 1000,
                "status": "ASSUMPTION",
                "source": "S_ME",
            },
            {"id": "5min", "walk_min": 5, "walk_m": None, "status": "ASSUMPTION", "source": "S_ME"},
        ],
        "requirements": [
            {
                "type": "kindergarten",
                "tier": "5min",
                "max_walk_m": 400,
                "status": "CONFIRMED",
                "source": "S_LOCAL",
                "clause": "幼儿园 400 m",
            },
            {"type": "clinic", "tier": "15min", "status": "UNCONFIRMED", "source": "S_LOCAL"},
        ],
        "categories": [
            {
                "id": "green",
                "types": ["park", "fitness"],
                "tier": "15min",
                "walk_min": 12,
                "status": "ASSUMPTION",
                "source": "S_ME",
            },
            {
                "id": "daily",
                "types": ["fitness", "supermarket"],
                "tier": "5min",
                "status": "ASSUMPTION",
                "source": "S_ME",
            },
        ],
        "demand": [
            {
                "type": "kindergarten",
                "per_1000_residents": 30,
                "unit": "seats",
                "status": "UNCONFIRMED",
                "source": "S_LOCAL",
                "note": "local norm",
            },
        ],
        "sources": {
            "S_ME": {"what": "our own choice", "url": None},
            "S_LOCAL": {"what": "local planning rule", "url": "https://example.org/rule"},
        },
    }


def write_profile(tmp_path: Path, data: Any, name: str = "profile.yaml") -> Path:
    path = tmp_path / name
    text = data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ packaged profiles


def test_list_standards_describes_every_packaged_profile() -> None:
    listing = list_standards()
    assert [entry["id"] for entry in listing] == PACKAGED_IDS
    for entry in listing:
        assert set(entry) == {"id", "title", "title_zh", "version", "path"}
        assert Path(entry["path"]).name == f"{entry['id']}.yaml"
        assert Path(entry["path"]).is_file()
    assert [entry["version"] for entry in listing] == ["2018", "2021", "2022", "2021"]


@pytest.mark.parametrize("standard_id", PACKAGED_IDS)
def test_packaged_profile_validates_against_the_json_schema(standard_id: str) -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    path = Path(load_standard(standard_id).path or "")
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(path.read_text("utf-8")))


def test_schema_lists_the_same_type_ids_and_statuses_as_the_module() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert tuple(schema["$defs"]["type_id"]["enum"]) == FACILITY_TYPE_IDS
    assert tuple(schema["$defs"]["status"]["enum"]) == STATUSES
    assert len(FACILITY_TYPE_IDS) == 26


@pytest.mark.parametrize("standard_id", PACKAGED_IDS)
def test_every_item_has_a_status_and_a_defined_source(standard_id: str) -> None:
    std = load_standard(standard_id)
    items: list[Any] = [*std.tiers, *std.requirements, *std.categories, *std.demand]
    assert items
    for item in items:
        assert item.status in STATUSES
        assert item.source in std.sources, item
        assert std.sources[item.source]["what"].strip()
    assert std.walk_speed_source in std.sources
    assert std.walk_speed_status == "ASSUMPTION"


@pytest.mark.parametrize("standard_id", PACKAGED_IDS)
def test_no_type_is_required_twice_and_ids_make_valid_columns(standard_id: str) -> None:
    std = load_standard(standard_id)
    types = [r.type for r in std.requirements]
    assert len(types) == len(set(types))
    for tier in std.tiers:
        assert f"tier_{tier.id}_pass".isidentifier()
    for category in std.categories:
        assert f"{category.id}_ok".isidentifier()
        assert category.id not in FACILITY_TYPE_IDS


def test_gb50180_tiers_and_key_thresholds() -> None:
    std = load_standard("gb50180-2018")
    assert [t.id for t in std.tiers] == ["15min", "10min", "5min", "block"]
    assert [(t.walk_min, t.walk_m) for t in std.tiers] == [
        (15.0, 1000.0),
        (10.0, 500.0),
        (5.0, 300.0),
        (None, 300.0),
    ]
    assert std.tier("block").status == "ASSUMPTION"
    assert std.threshold_rule == "metres"

    kindergarten = std.requirement("kindergarten")
    assert kindergarten is not None
    assert (kindergarten.tier, std.threshold_m(kindergarten)) == ("5min", 300.0)
    assert kindergarten.status == "CONFIRMED_SUPERSEDED"
    assert kindergarten.source == "S_JZSC"
    assert "300m" in kindergarten.clause

    assert std.type_threshold_m("middle_school") == 1000.0
    assert std.requirement("middle_school").status == "CONFIRMED_SUPERSEDED"  # type: ignore[union-attr]
    assert std.type_threshold_m("primary_school") == 500.0
    assert std.type_threshold_m("culture_station") == 500.0
    assert std.type_threshold_m("convenience_store") == 300.0  # block fallback


def test_gb50180_keeps_the_drafts_honest_statuses() -> None:
    std = load_standard("gb50180-2018")
    statuses = {r.type: r.status for r in std.requirements}
    superseded = {"kindergarten", "nursery", "primary_school", "middle_school"}
    assert {t for t, s in statuses.items() if s == "CONFIRMED_SUPERSEDED"} == superseded
    assert statuses["park"] == "CONFIRMED_SECONDARY"
    assert statuses["sports"] == statuses["community_service"] == "ASSUMPTION"
    # Appendix B of the 2018 text was not read: nothing may claim CONFIRMED.
    assert "CONFIRMED" not in statuses.values()
    assert statuses["health_centre"] == "UNCONFIRMED"


def test_gb50180_leaves_out_hospital_and_makes_metro_optional() -> None:
    std = load_standard("gb50180-2018")
    assert std.requirement("hospital") is None
    assert std.type_threshold_m("hospital") is None
    metro = std.requirement("metro_station")
    assert metro is not None and metro.optional and std.threshold_m(metro) == 800.0
    assert [r.type for r in std.requirements if r.optional] == ["metro_station"]
    assert len(std.requirements) == 24
    assert [r.type for r in std.requirements_for_tier("block")] == [
        "convenience_store",
        "parcel_point",
    ]


PLAN_TEXT = Path("/work/shared/reference/puxieshi_2020_summary_2021_plan.txt")
PLAN_QUOTE = "15分钟步行可达范围内有完善的教育、商业交通、文体、养老等公共设施"


def test_puxieshi_has_the_plans_four_categories_at_fifteen_minutes() -> None:
    std = load_standard("puxieshi-2021")
    assert std.threshold_rule == "minutes"
    assert std.requirements == ()
    assert [t.id for t in std.tiers] == ["15min"]
    assert {c.id: c.types for c in std.categories} == {
        "education": ("kindergarten", "primary_school", "middle_school"),
        "commerce_transport": ("fresh_market", "supermarket", "convenience_store", "bus_stop"),
        "culture_sports": ("culture_centre", "culture_station", "fitness", "park", "sports"),
        "elderly_care": ("elderly_daycare", "nursing_home", "community_canteen"),
    }
    assert [c.name_zh for c in std.categories] == ["教育", "商业交通", "文体", "养老"]
    # the minutes and the names are the plan's; the members are not
    assert {c.status for c in std.categories} == {"CONFIRMED"}
    assert {c.members_status for c in std.categories} == {"ASSUMPTION"}
    assert std.tier("15min").status == "CONFIRMED"
    assert all(PLAN_QUOTE in c.quote for c in std.categories)
    assert "等" in std.description or "open" in std.description
    assert [std.threshold_m(c) for c in std.categories] == [900.0] * 4
    beneficiaries = {c.id: c.beneficiaries for c in std.categories}
    assert beneficiaries == {
        "education": "age_3_15",
        "commerce_transport": "all",
        "culture_sports": "all",
        "elderly_care": "age_60plus",
    }


@pytest.mark.skipif(not PLAN_TEXT.is_file(), reason="plan text not in /work/shared/reference")
def test_puxieshi_quotes_are_in_the_plans_text() -> None:
    text = PLAN_TEXT.read_text(encoding="utf-8")
    std = load_standard("puxieshi-2021")
    assert PLAN_QUOTE in text
    assert "以家为中心的15分钟步行可达范围内" in text
    assert std.tier("15min").quote.split(" (")[0] in text
    plan = " ".join(std.sources["S_PUXIESHI_PLAN"]["what"].split())
    assert "001008003001085/2021-30196" in plan and "001008003001085/2021-30196" in text


def test_six_kind_profile_is_apart_from_the_plan() -> None:
    six = load_standard("six-kinds-15min")
    assert [c.name_zh for c in six.categories] == ["养老", "医疗", "教育", "商业", "交通", "文体"]
    assert {c.status for c in six.categories} == {"CONFIRMED_SECONDARY"}
    assert {c.members_status for c in six.categories} == {"ASSUMPTION"}
    assert {c.source for c in six.categories} == {"S_WENHUI"}
    assert "养老、医疗、教育、商业、交通、文体" in six.sources["S_WENHUI"]["what"]
    assert "S_WENHUI" not in load_standard("puxieshi-2021").sources
    assert [six.threshold_m(c) for c in six.categories] == [900.0] * 6


def test_nothing_is_confirmed_without_the_standards_own_text() -> None:
    for standard_id in ("gb50180-2018", "tdt1062-2021", "six-kinds-15min"):
        std = load_standard(standard_id)
        statuses = [t.status for t in std.tiers] + [r.status for r in std.requirements]
        statuses += [c.status for c in std.categories] + [d.status for d in std.demand]
        assert "CONFIRMED" not in statuses, standard_id


def test_gb_secondary_confirmations_carry_the_findings_quotes() -> None:
    std = load_standard("gb50180-2018")
    assert std.tier("10min").status == "CONFIRMED_SECONDARY"
    assert "约500米" in std.tier("10min").quote
    assert std.tier("15min").status == "CONFIRMED_SECONDARY"
    assert "半径1 km" in std.tier("15min").quote
    assert "300 m" in std.tier("5min").quote
    park = std.requirement("park")
    assert park is not None and park.status == "CONFIRMED_SECONDARY"
    assert "1.0公顷以上" in park.quote
    for type_id in ("kindergarten", "primary_school", "middle_school", "nursery"):
        requirement = std.requirement(type_id)
        assert requirement is not None and requirement.status == "CONFIRMED_SUPERSEDED"
        assert "服务半径不宜大于" in requirement.quote
    every = [*std.tiers, *std.requirements]
    assert all(item.quote for item in every if item.status.startswith("CONFIRMED"))


def test_profiles_name_each_items_beneficiaries() -> None:
    std = load_standard("gb50180-2018")
    groups = {r.type: r.beneficiaries for r in std.requirements}
    assert groups["kindergarten"] == "age_3_6"
    assert groups["primary_school"] == "age_6_12"
    assert groups["middle_school"] == "age_12_15"
    assert groups["nursing_home"] == groups["elderly_daycare"] == "age_60plus"
    assert groups["bus_stop"] == "all"
    nursing = next(d for d in std.demand if d.type == "nursing_home")
    assert (nursing.beneficiaries, nursing.per_1000_beneficiaries) == ("age_60plus", 40.0)
    frame = std.provenance().set_index("item")
    assert frame.loc["kindergarten", "beneficiaries"] == "age_3_6"


def test_unknown_beneficiary_group_is_rejected(tmp_path: Path) -> None:
    text = (
        "id: t\ntitle: t\nversion: 1\nthreshold_rule: metres\n"
        "walk_speed: {m_per_min: 60, status: ASSUMPTION, source: S}\n"
        "tiers: [{id: a, walk_m: 300, status: ASSUMPTION, source: S}]\n"
        "requirements: [{type: kindergarten, tier: a, status: ASSUMPTION, source: S,"
        " beneficiaries: toddlers}]\n"
        "sources: {S: {what: s}}\n"
    )
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(
        InputError, match=r"requirements\[0\]\.beneficiaries: unknown group 'toddlers'"
    ):
        load_standard(path)


def test_tdt1062_is_explicit_about_what_was_not_read() -> None:
    std = load_standard("tdt1062-2021")
    assert [(t.id, t.walk_m, t.walk_min) for t in std.tiers] == [
        ("15min", 1000.0, 15.0),
        ("5_10min", 500.0, 10.0),
    ]
    assert {r.status for r in std.requirements} == {"ASSUMPTION"}
    assert all("not read" in r.note or "gb50180" in r.note for r in std.requirements)
    assert all(r.max_walk_m is None and r.walk_min is None for r in std.requirements)
    assert std.type_threshold_m("kindergarten") == 500.0
    assert std.type_threshold_m("middle_school") == 1000.0
    assert "UNCONFIRMED" in std.tier("15min").note


# ------------------------------------------------------------------------ thresholds


def test_puxieshi_threshold_follows_walking_speed() -> None:
    assert load_standard("puxieshi-2021").type_threshold_m("bus_stop") == 900.0
    faster = load_standard("puxieshi-2021", walk_speed=80)
    assert faster.type_threshold_m("bus_stop") == 1200.0
    assert faster.threshold_min(faster.categories[0]) == 15.0
    # No metre figure anywhere, so the metres rule still converts 15 min.
    metres = load_standard("puxieshi-2021", threshold_rule="metres", walk_speed=50)
    assert metres.type_threshold_m("park") == 750.0


def test_gb50180_thresholds_under_both_rules_and_speeds() -> None:
    std = load_standard("gb50180-2018")
    health_centre = std.requirement("health_centre")
    kindergarten = std.requirement("kindergarten")
    assert health_centre is not None and kindergarten is not None
    assert std.threshold_m(health_centre) == 1000.0  # tier walk_m
    assert std.threshold_min(health_centre) == pytest.approx(1000 / 60)
    assert std.threshold_basis(health_centre) == "tier 15min (CONFIRMED_SECONDARY) walk_m 1000 m"

    minutes = std.with_overrides(threshold_rule="minutes")
    assert minutes.threshold_m(health_centre) == 900.0  # tier 15 min x 60 m/min
    assert minutes.threshold_m(kindergarten) == 300.0  # its own radius, no minutes given
    slow = std.with_overrides(threshold_rule="minutes", walk_speed=50)
    assert slow.threshold_m(health_centre) == 750.0
    assert slow.threshold_min(kindergarten) == 6.0
    assert std.with_overrides(walk_speed=75).threshold_min(kindergarten) == 4.0
    # Under the metres rule the block tier has only metres: 300 m at any speed.
    assert slow.type_threshold_m("parcel_point") == 300.0


def test_tdt1062_minutes_rule_uses_level_minutes() -> None:
    std = load_standard("tdt1062-2021", threshold_rule="minutes")
    assert std.type_threshold_m("kindergarten") == 600.0  # 10 min x 60 m/min
    assert std.type_threshold_m("middle_school") == 900.0


def test_type_threshold_takes_the_largest_category_threshold(tmp_path: Path) -> None:
    std = load_standard(write_profile(tmp_path, minimal_profile()))
    assert std.type_threshold_m("kindergarten") == 400.0  # requirement
    assert std.type_threshold_m("clinic") == 1000.0  # tier walk_m
    assert std.type_threshold_m("fitness") == 720.0  # max(12 min x 60, 5 min x 60)
    assert std.type_threshold_m("supermarket") == 300.0
    assert std.type_threshold_m("library") is None
    assert std.scored_types() == ["kindergarten", "clinic", "park", "fitness", "supermarket"]


@settings(deadline=None)
@given(speed=st.floats(min_value=20, max_value=150, allow_nan=False))
def test_minute_thresholds_scale_with_speed(speed: float) -> None:
    std = load_standard("puxieshi-2021", walk_speed=speed)
    for category in std.categories:
        assert std.threshold_m(category) == pytest.approx(15 * speed)
        assert std.threshold_min(category) == pytest.approx(15.0)
    gb = load_standard("gb50180-2018", walk_speed=speed)
    assert gb.type_threshold_m("kindergarten") == 300.0


# ------------------------------------------------------------------ overrides, outputs


def test_with_overrides_records_the_user_speed_and_leaves_the_original() -> None:
    std = load_standard("puxieshi-2021")
    faster = std.with_overrides(walk_speed=80)
    assert isinstance(faster, Standard) and faster is not std
    assert (std.walk_speed_m_per_min, faster.walk_speed_m_per_min) == (60.0, 80.0)
    assert faster.walk_speed_source == USER_OVERRIDE_SOURCE
    assert USER_OVERRIDE_SOURCE in faster.sources
    assert USER_OVERRIDE_SOURCE not in std.sources
    assert "80 m/min" in faster.sources[USER_OVERRIDE_SOURCE]["what"]
    assert load_standard("gb50180-2018", threshold_rule="Meters").threshold_rule == "metres"


@pytest.mark.parametrize("speed", [1.2, 0, -60, 5000, float("nan"), "fast"])
def test_implausible_walking_speed_is_an_input_error(speed: Any) -> None:
    with pytest.raises(InputError, match=r"metres per minute|m/min"):
        load_standard("gb50180-2018", walk_speed=speed)


def test_unknown_threshold_rule_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown threshold rule 'hours'"):
        load_standard("gb50180-2018", threshold_rule="hours")


def test_provenance_has_one_row_per_item_with_its_source() -> None:
    std = load_standard("gb50180-2018")
    frame = std.provenance()
    assert len(frame) == 24
    assert list(frame.columns[:11]) == [
        "kind",
        "item",
        "tier",
        "threshold_m",
        "threshold_min",
        "status",
        "source",
        "source_what",
        "source_url",
        "clause",
        "note",
    ]
    row = frame.set_index("item").loc["kindergarten"]
    assert row["kind"] == "requirement"
    assert (row["tier"], row["threshold_m"], row["threshold_min"]) == ("5min", 300.0, 5.0)
    assert row["status"] == "CONFIRMED_SUPERSEDED"
    assert row["source_url"] == "https://jz.jzsc.net/jingguanshejishuoming/96531.html"
    assert "GB 50180-93" in row["source_what"]
    for _, entry in frame.iterrows():
        requirement = std.requirement(entry["item"])
        assert requirement is not None
        assert entry["threshold_m"] == std.threshold_m(requirement)
        assert entry["status"] == requirement.status
        assert entry["source"] == requirement.source
    repo_row = frame.set_index("item").loc["health_station"]
    assert repo_row["source"] == "S_DRAFT_UNSOURCED" and repo_row["source_url"] == ""


def test_provenance_of_categories_lists_members() -> None:
    frame = load_standard("puxieshi-2021", walk_speed=80).provenance()
    assert frame["kind"].tolist() == ["category"] * 4
    assert frame["threshold_m"].tolist() == [1200.0] * 4
    assert frame.loc[1, "members"] == "fresh_market,supermarket,convenience_store,bus_stop"
    assert frame.loc[1, "members_status"] == "ASSUMPTION"
    assert frame.loc[0, "basis"] == "walk_min 15 min x 80 m/min (walk speed ASSUMPTION)"


def test_to_dict_is_json_serialisable_and_carries_thresholds() -> None:
    data = load_standard("gb50180-2018").to_dict()
    restored = json.loads(json.dumps(data, ensure_ascii=False))
    assert restored["id"] == "gb50180-2018"
    assert restored["walk_speed"] == {
        "m_per_min": 60.0,
        "status": "ASSUMPTION",
        "source": "S_TOOLKIT",
        "note": restored["walk_speed"]["note"],
    }
    by_type = {r["type"]: r for r in restored["requirements"]}
    assert by_type["kindergarten"]["threshold_m"] == 300.0
    assert by_type["health_centre"]["threshold_basis"].startswith("tier 15min")
    assert len(restored["tiers"]) == 4
    categories = load_standard("puxieshi-2021").to_dict()["categories"]
    assert categories[1]["types"] == [
        "fresh_market",
        "supermarket",
        "convenience_store",
        "bus_stop",
    ]


# ------------------------------------------------------------------------ user profiles


def test_user_profile_loads_from_a_path(tmp_path: Path) -> None:
    path = write_profile(tmp_path, minimal_profile())
    std = load_standard(path)
    assert std.id == "my-city" and std.version == "2024"
    assert std.path == str(path)
    assert load_standard(str(path)).requirements == std.requirements
    requirement = std.requirements[0]
    assert isinstance(requirement, Requirement)
    assert (requirement.weight, requirement.min_count, requirement.optional) == (1.0, 1, False)
    assert isinstance(std.categories[0], CategoryRule)
    assert std.demand[0].per_1000_residents == 30.0 and std.demand[0].unit == "seats"


def test_user_profile_by_bare_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_profile(tmp_path, minimal_profile(), name="local.yml")
    monkeypatch.chdir(tmp_path)
    assert load_standard("local.yml").id == "my-city"


def test_packaged_ids_are_matched_loosely() -> None:
    assert load_standard("GB50180-2018").id == "gb50180-2018"
    assert load_standard("gb50180").id == "gb50180-2018"
    assert load_standard(" tdt1062 ").id == "tdt1062-2021"


def test_unknown_standard_lists_the_available_ids() -> None:
    with pytest.raises(InputError) as caught:
        load_standard("gb99999")
    message = str(caught.value)
    assert "unknown standard 'gb99999'" in message
    for standard_id in PACKAGED_IDS:
        assert standard_id in message
    assert caught.value.exit_code == 2


def test_missing_profile_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_standard(tmp_path / "absent.yaml")


def _break(mutate: Any) -> dict[str, Any]:
    data = copy.deepcopy(minimal_profile())
    mutate(data)
    return data


BROKEN_PROFILES = {
    "unknown type": (
        _break(lambda d: d["requirements"][1].update(type="school")),
        "requirements[1].type: unknown facility type 'school'",
    ),
    "missing status": (
        _break(lambda d: d["requirements"][0].pop("status")),
        "requirements[0].status: missing",
    ),
    "bad tier id": (
        _break(lambda d: d["tiers"][0].update(id="15-min")),
        "tiers[0].id: '15-min' is not identifier-like",
    ),
    "source not in sources": (
        _break(lambda d: d["requirements"][0].update(source="S_NOWHERE")),
        "requirements[0].source: source 'S_NOWHERE' is not defined in sources",
    ),
    "unknown status": (
        _break(lambda d: d["categories"][0].update(status="PROBABLY")),
        "categories[0].status: unknown status 'PROBABLY'",
    ),
    "unknown tier": (
        _break(lambda d: d["requirements"][1].update(tier="20min")),
        "requirements[1].tier: unknown tier '20min'",
    ),
    "type twice": (
        _break(lambda d: d["requirements"][1].update(type="kindergarten")),
        "requirements[1].type: 'kindergarten' already used by requirements[0]",
    ),
    "category id is a type id": (
        _break(lambda d: d["categories"][0].update(id="park")),
        "categories[0].id: 'park' is a facility type id",
    ),
    "misspelt key": (
        _break(lambda d: d["requirements"][0].update(max_walk=300)),
        "requirements[0].max_walk: unknown key",
    ),
    "unknown category member": (
        _break(lambda d: d["categories"][1]["types"].append("bakery")),
        "categories[1].types[2]: unknown facility type 'bakery'",
    ),
    "negative distance": (
        _break(lambda d: d["requirements"][0].update(max_walk_m=-5)),
        "requirements[0].max_walk_m",
    ),
    "no distance at all": (
        _break(lambda d: d["tiers"][0].update(walk_m=None, walk_min=None)),
        "requirements[1]: no distance",
    ),
    "nothing to score": (
        _break(lambda d: d.update(requirements=[], categories=[])),
        "neither requirements nor categories",
    ),
    "walk speed in m/s": (
        _break(lambda d: d["walk_speed"].update(m_per_min=1.3)),
        "walk_speed.m_per_min: 1.3 is outside",
    ),
    "walk speed source missing": (
        _break(lambda d: d["walk_speed"].update(source="S_X")),
        "walk_speed.source: source 'S_X' is not defined",
    ),
    "bad threshold rule": (
        _break(lambda d: d.update(threshold_rule="hours")),
        "threshold_rule: 'hours' is not one of: metres, minutes",
    ),
    "duplicate tier": (
        _break(lambda d: d["tiers"].append(dict(d["tiers"][0]))),
        "tiers[2].id: duplicate tier id '15min'",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_PROFILES))
def test_broken_profile_names_the_key_path(tmp_path: Path, case: str) -> None:
    data, expected = BROKEN_PROFILES[case]
    path = write_profile(tmp_path, data)
    with pytest.raises(InputError) as caught:
        load_standard(path)
    message = str(caught.value)
    assert expected in message
    assert message.startswith(f"{path}: invalid standard profile: ")
    assert caught.value.file == str(path)


def test_bad_yaml_reports_the_line(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "id: x\ntiers: [\n  {id: 15min\n")
    with pytest.raises(InputError, match=r"line \d+, column \d+: not valid YAML"):
        load_standard(path)


def test_duplicate_yaml_key_is_rejected(tmp_path: Path) -> None:
    text = yaml.safe_dump(minimal_profile()) + "threshold_rule: minutes\n"
    path = write_profile(tmp_path, text)
    with pytest.raises(InputError, match=r"line \d+: duplicate key threshold_rule"):
        load_standard(path)


def test_profile_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "- just\n- a list\n")
    with pytest.raises(InputError, match="must be a YAML mapping, not list"):
        load_standard(path)


def test_many_problems_are_reported_together(tmp_path: Path) -> None:
    data = minimal_profile()
    for requirement in data["requirements"]:
        requirement.pop("status")
        requirement["type"] = "bakery"
    with pytest.raises(InputError) as caught:
        load_standard(write_profile(tmp_path, data))
    message = str(caught.value)
    assert "requirements[0].status: missing" in message
    assert "requirements[1].status: missing" in message
    assert "requirements[1].type: unknown facility type 'bakery'" in message


def test_extension_keys_are_allowed(tmp_path: Path) -> None:
    data = minimal_profile()
    data["x_local_comment"] = "kept for the planners"
    assert load_standard(write_profile(tmp_path, data)).id == "my-city"


@pytest.mark.parametrize("standard_id", PACKAGED_IDS)
def test_every_packaged_clause_has_its_chinese_wording(standard_id: str) -> None:
    std = load_standard(standard_id)
    items: list[Requirement | CategoryRule] = [*std.requirements, *std.categories]
    for item in items:
        if item.clause:
            assert item.clause_zh, (standard_id, item)
            assert re.search(r"[\u4e00-\u9fff]", item.clause_zh)
            assert not re.search(r"[A-Za-z]{4,}", item.clause_zh), item.clause_zh
        else:
            assert item.clause_zh == ""


def test_clause_zh_is_carried_to_provenance_and_the_dict() -> None:
    std = load_standard("puxieshi-2021")
    row = std.provenance().set_index("item").loc["education"]
    assert row["clause"] == "教育 within a 15-minute walk of home"
    assert row["clause_zh"] == "以家为中心的15分钟步行可达范围内有教育设施"
    assert std.to_dict()["categories"][0]["clause_zh"] == row["clause_zh"]
    gb = load_standard("gb50180-2018").provenance().set_index("item")
    assert gb.loc["primary_school", "clause_zh"].startswith("小学：服务半径不宜大于500m")
    assert gb.loc["clinic", "clause_zh"] == ""  # no clause, no wording


def test_schema_refuses_a_clause_zh_that_is_not_text() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    path = Path(load_standard("puxieshi-2021").path or "")
    profile = yaml.safe_load(path.read_text("utf-8"))
    profile["categories"][0]["clause_zh"] = 15
    with pytest.raises(jsonschema.ValidationError, match="15 is not of type"):
        jsonschema.Draft202012Validator(schema).validate(profile)
