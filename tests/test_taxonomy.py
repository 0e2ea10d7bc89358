"""Tests of the facility taxonomy: data file, classifier, user files, real OSM data."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lifecircle.errors import InputError
from lifecircle.loading import load_facilities
from lifecircle.standards import list_standards, load_standard
from lifecircle.taxonomy import (
    FacilityType,
    Taxonomy,
    check_file,
    default_taxonomy,
    evaluate,
    explode_types,
    load_taxonomy,
    read_overrides,
)

BEIJING_OSM = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "osm" / "beijing_wudaokou.osm"
)

TYPE_IDS = [
    "kindergarten", "nursery", "primary_school", "middle_school", "health_station",
    "health_centre", "clinic", "hospital", "pharmacy", "fresh_market", "supermarket",
    "convenience_store", "parcel_point", "bus_stop", "metro_station", "park", "sports",
    "fitness", "culture_centre", "culture_station", "library", "elderly_daycare",
    "nursing_home", "community_canteen", "community_service", "public_toilet",
]  # fmt: skip
CATEGORY_IDS = {
    "education", "health", "commerce", "transport", "culture", "sports", "green_space",
    "elderly_care", "admin_service", "municipal",
}  # fmt: skip
STATUSES = {"CONFIRMED", "CONFIRMED_FIXTURE", "CONFIRMED_SECONDARY", "UNCONFIRMED", "ASSUMPTION"}


@pytest.fixture(scope="module")
def tax() -> Taxonomy:
    return default_taxonomy()


def classify(tax: Taxonomy, **columns: list[object]) -> list[object]:
    return tax.classify(pd.DataFrame(columns)).tolist()


# ------------------------------------------------------------------ the data file
def test_packaged_taxonomy_has_the_26_types_and_10_categories(tax: Taxonomy) -> None:
    assert sorted(tax.type_ids()) == sorted(TYPE_IDS)
    assert set(tax.categories) == CATEGORY_IDS
    assert {t.category for t in tax.types.values()} <= CATEGORY_IDS
    assert tax.category_of("nursing_home") == "elderly_care"
    assert tax.category_of("community_service") == "admin_service"


def test_priority_order_puts_specific_types_first(tax: Taxonomy) -> None:
    order = tax.type_ids()
    for first, later in [
        ("nursery", "kindergarten"),
        ("health_station", "health_centre"),
        ("health_station", "clinic"),
        ("health_centre", "hospital"),
        ("elderly_daycare", "nursing_home"),
        ("fresh_market", "supermarket"),
        ("culture_centre", "culture_station"),
        ("community_service", "culture_station"),
    ]:
        assert order.index(first) < order.index(later), (first, later)


def test_types_have_display_fields(tax: Taxonomy) -> None:
    colors = [t.color for t in tax.types.values()]
    assert all(re.fullmatch(r"#[0-9a-fA-F]{6}", c) for c in colors)
    assert len(set(colors)) == len(colors)
    assert all(t.icon and t.name_zh and t.name_en for t in tax.types.values())
    assert tax.types["bus_stop"] == FacilityType(
        "bus_stop", "公交车站", "Bus stop", "transport", "bus", "#17becf"
    )


def test_every_rule_group_records_source_and_status(tax: Taxonomy) -> None:
    groups = [g for rules in tax._rules.values() for g in rules.groups]
    assert len(groups) > 80
    assert all(g.source for g in groups)
    assert {g.status for g in groups} <= STATUSES


def test_known_wrong_amap_codes_are_not_used(tax: Taxonomy) -> None:
    codes = {
        code: tax.classify(pd.DataFrame({"typecode": [code], "name": ["某某单位"]})).item()
        for code in ["141300", "141400", "141201", "100105", "100106", "100107"]
    }
    assert codes == dict.fromkeys(codes)
    assert classify(tax, typecode=["080100"]) == ["sports"]


def test_to_frame_lists_types_in_priority_order(tax: Taxonomy) -> None:
    frame = tax.to_frame()
    assert frame["id"].tolist() == tax.type_ids()
    assert frame["priority"].tolist() == list(range(1, 27))
    row = frame.set_index("id").loc["primary_school"]
    assert row["amap_typecodes"] == "141200, 141203"
    assert "amenity=school" in row["osm"]
    assert row["category_zh"] == "教育"


def test_category_of_unknown_type_is_an_input_error(tax: Taxonomy) -> None:
    with pytest.raises(InputError, match="unknown facility type 'school'"):
        tax.category_of("school")


def test_default_taxonomy_is_cached() -> None:
    assert default_taxonomy() is default_taxonomy()
    assert load_taxonomy() is not default_taxonomy()


# ------------------------------------------------------------------- input styles
def test_osm_tag_columns(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {
            "amenity": ["kindergarten", "school", "hospital", "pharmacy", None, None, "toilets"],
            "shop": [None, None, None, None, "supermarket", None, None],
            "leisure": [None, None, None, None, None, "park", None],
            "name": ["向阳幼儿园", "清华附小", "海淀医院", None, "物美", None, None],
        },
        index=[10, 20, 30, 40, 50, 60, 70],
    )
    result = tax.classify(table)
    assert result.index.tolist() == [10, 20, 30, 40, 50, 60, 70]
    assert result.dtype == object
    assert result.tolist() == [
        "kindergarten", "primary_school", "hospital", "pharmacy", "supermarket", "park",
        "public_toilet",
    ]  # fmt: skip


def test_osm_social_facility_and_transport_tags(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {
            "amenity": ["social_facility", "social_facility", None, None, None],
            "social_facility": ["day_care", "nursing_home", None, None, None],
            "social_facility:for": ["senior", "senior", None, None, None],
            "highway": [None, None, "bus_stop", None, None],
            "railway": [None, None, None, "subway_entrance", None],
            "healthcare": [None, None, None, None, "centre"],
        }
    )
    assert tax.classify(table).tolist() == [
        "elderly_daycare", "nursing_home", "bus_stop", "metro_station", "health_centre",
    ]  # fmt: skip


def test_osm_yes_values_and_isced_levels(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {
            "public_transport": ["platform", "platform", None, None],
            "bus": ["yes", "no", None, None],
            "amenity": [None, None, "school", "school"],
            "isced:level": [None, None, "1", "2;3"],
        }
    )
    assert tax.classify(table).tolist() == ["bus_stop", None, "primary_school", "middle_school"]


def test_amap_typecodes_including_joined_and_numeric(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {
            "typecode": ["141203", "060703|060706", "141201|141204", 60200, 90601.0, None],
            "name": ["实验二小", "东门市场", "某某幼儿园", "某某店", "某某堂", "某某"],
        }
    )
    assert tax.classify(table).tolist() == [
        "primary_school", "fresh_market", "kindergarten", "convenience_store", "pharmacy", None,
    ]  # fmt: skip


def test_amap_useful_codes(tax: Taxonomy) -> None:
    expected = {
        "141202": "middle_school",
        "141204": "kindergarten",
        "090100": "hospital",
        "090101": "hospital",
        "090102": "health_centre",
        "090200": "hospital",
        "090300": "clinic",
        "060200": "convenience_store",
        "060400": "supermarket",
        "060706": "fresh_market",
        "150700": "bus_stop",
        "150500": "metro_station",
        "110101": "park",
        "140500": "library",
        "140800": "culture_centre",
        "200300": "public_toilet",
        "060100": None,
        "130100": None,
    }
    table = pd.DataFrame({"typecode": list(expected), "name": ["某某"] * len(expected)})
    assert dict(zip(expected, tax.classify(table), strict=True)) == expected


def test_amap_codes_that_need_a_name(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {
            "typecode": ["130100", "130100", "060100", "060700", "060700", "141204"],
            "name": ["学院路街道办事处", "海淀区税务局", "华联超市", "八里庄农贸市场", "小商品城",
                     "阳光宝宝屋"],
        }
    )  # fmt: skip
    assert tax.classify(table).tolist() == [
        "community_service", None, "supermarket", "fresh_market", None, "nursery",
    ]  # fmt: skip


def test_amap_type_strings(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {
            "type": [
                "科教文化服务;学校;小学",
                "购物服务;综合市场;农副产品市场|购物服务;超级市场;超市",
                "医疗保健服务;综合医院;卫生院",
                "体育休闲服务;运动场馆;综合体育馆",
                "餐饮服务;中餐厅;中餐厅",
            ],
            "name": ["某某", "某某", "某某", "某某", "某某"],
        }
    )
    assert tax.classify(table).tolist() == [
        "primary_school", "fresh_market", "health_centre", "sports", None,
    ]  # fmt: skip


def test_keyword_only_tables(tax: Taxonomy) -> None:
    names = {
        "阳光托育中心": "nursery",
        "蓝天幼儿园": "kindergarten",
        "温州市实验小学": "primary_school",
        "温州二中": "middle_school",
        "温州市第二中学": "middle_school",
        "蒲鞋市街道社区卫生服务站": "health_station",
        "鹿城区社区卫生服务中心": "health_centre",
        "温州医科大学附属第一医院": "hospital",
        "张氏口腔诊所": "clinic",
        "老百姓大药房": "pharmacy",
        "蒲鞋市居家养老服务中心": "elderly_daycare",
        "鹿城区社会福利院": "nursing_home",
        "新田园长者食堂": "community_canteen",
        "黎明菜市场": "fresh_market",
        "美宜佳": "convenience_store",
        "世纪联华超市": "supermarket",
        "菜鸟驿站(锦绣路店)": "parcel_point",
        "公交首末站": "bus_stop",
        "地铁1号线某某站B口": "metro_station",
        "蒲鞋市街道文化活动中心": "culture_centre",
        "新田园社区党群服务中心": "community_service",
        "新田园社区文化家园": "culture_station",
        "温州市图书馆": "library",
        "温州体育中心": "sports",
        "百姓健身房": "fitness",
        "松台山公园": "park",
        "新田园公共厕所": "public_toilet",
        "中国工商银行": None,
    }
    assert dict(zip(names, classify(tax, name=list(names)), strict=True)) == names


def test_direct_type_column_wins_over_every_rule(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {
            "type": ["park", "公园", "Bus Stop", " KINDERGARTEN ", "幼儿园", "school", None],
            "amenity": ["hospital", None, None, None, None, None, None],
            "name": ["某医院", "某某", "某某", "某某", "某某", "光明小学", "光明小学"],
        }
    )
    explained = tax.explain(table)
    assert explained["type"].tolist() == [
        "park", "park", "bus_stop", "kindergarten", "kindergarten", "primary_school",
        "primary_school",
    ]  # fmt: skip
    assert explained["matched_by"].tolist()[:5] == ["type column"] * 5
    assert explained["matched_by"].tolist()[5:] == ["keyword 小学", "keyword 小学"]


def test_english_names(tax: Taxonomy) -> None:
    names = {
        "Sunshine Kindergarten": "kindergarten",
        "Haidian Hospital": "hospital",
        "Pet Hospital": None,
        "Chaoyang Park": "park",
        "Olympic Park Parking": None,
        "Zhongguancun Science Park": None,
        "7-Eleven": "convenience_store",
        "Wudaokou Subway Station": "metro_station",
        "Public Toilet": "public_toilet",
        "Tsinghua University": None,
        "Beijing No.4 Middle School": "middle_school",
        "Community Health Service Station": "health_station",
    }
    assert dict(zip(names, classify(tax, name=list(names)), strict=True)) == names


def test_full_width_text_is_normalised(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {"name": ["ＣＨＡＯＹＡＮＧ　ＰＡＲＫ", "某某"], "typecode": [None, "１４１２０３"]}
    )
    assert tax.classify(table).tolist() == ["park", "primary_school"]


# ------------------------------------------------------------------- exclusions
def test_exclusions_veto_a_type(tax: Taxonomy) -> None:
    names = {
        "瑞鹏宠物医院": None,
        "安安动物医院": None,
        "蓝天驾校(实验学校店)": None,
        "新东方小学英语培训": None,
        "小学生课后辅导中心": None,
        "朝阳公园停车场": None,
        "朝阳公园里小区": None,
        "公园路": None,
        "人民医院站": None,
        "温州中学高中部": None,
        "瓯海高级中学": None,
        "农贸市场批发中心": None,
        "健身器材专卖店": None,
        "万科公园壹号": None,
    }
    assert dict(zip(names, classify(tax, name=list(names)), strict=True)) == names


def test_exclusions_also_veto_tags(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {
            "amenity": ["hospital", "school", "university", None, None],
            "typecode": [None, None, None, "141202", "141202"],
            "name": ["宠物医院", "新东方小学培训部", "清华大学", "温州大学", "温州大学附属中学"],
        }
    )
    assert tax.classify(table).tolist() == [None, None, None, None, "middle_school"]


# ------------------------------------------------------------------- priorities
def test_priority_cases(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {
            "amenity": ["clinic", "clinic", "kindergarten", "kindergarten", "school", "school",
                        "school", "school", "school", None, None],
            "leisure": [None] * 9 + ["track", None],
            "shop": [None] * 10 + ["supermarket"],
            "name": ["新田园社区卫生服务站", "张氏诊所", "小星星托育园", "小星星幼儿园",
                     "九年一贯制学校", "清华大学附属小学", "北京大学附属中学", "清华大学附属幼儿园",
                     "温州外国语学校", "清华附小操场", "永辉生鲜超市"],
        }
    )  # fmt: skip
    assert tax.classify(table).tolist() == [
        "health_station", "clinic", "nursery", "kindergarten", "primary_school",
        "primary_school", "middle_school", "kindergarten", "middle_school", "sports",
        "fresh_market",
    ]  # fmt: skip


def test_type_code_gives_the_school_level_before_the_name_rule(tax: Taxonomy) -> None:
    table = pd.DataFrame({"typecode": ["141202", "141200", None], "name": ["某某实验学校"] * 3})
    assert tax.classify(table).tolist() == ["middle_school", "primary_school", "primary_school"]


def test_tags_outrank_name_keywords(tax: Taxonomy) -> None:
    # a pharmacy named after a hospital stays a pharmacy
    assert classify(tax, amenity=["pharmacy"], name=["人民医院药房"]) == ["pharmacy"]
    # a restaurant or a road named after a school is not a school
    table = pd.DataFrame(
        {"amenity": ["restaurant", None], "highway": [None, "residential"],
         "name": ["清华附中食堂", "小学路"]}
    )  # fmt: skip
    assert tax.classify(table).tolist() == [None, None]


def test_daycare_before_nursing_home(tax: Taxonomy) -> None:
    names = ["某某社区日间照料中心", "某某养老院", "某某托老所", "某某老年公寓"]
    assert classify(tax, name=names) == [
        "elderly_daycare", "nursing_home", "elderly_daycare", "nursing_home",
    ]  # fmt: skip


def test_unmatched_rows_are_none(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {"amenity": ["bank", None, None], "name": ["中国银行", None, ""], "shop": [None, None, "x"]}
    )
    explained = tax.explain(table)
    assert explained["type"].tolist() == [None, None, None]
    assert explained["matched_by"].isna().all()


def test_empty_and_name_less_tables(tax: Taxonomy) -> None:
    assert tax.classify(pd.DataFrame()).tolist() == []
    assert tax.classify(pd.DataFrame({"name": pd.Series([], dtype=object)})).tolist() == []
    assert classify(tax, amenity=["toilets", None]) == ["public_toilet", None]
    with pytest.raises(InputError, match="expected a table"):
        tax.classify(["幼儿园"])  # type: ignore[arg-type]


def test_explain_labels(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {
            "amenity": ["kindergarten", "school", None, None, None, None],
            "typecode": [None, None, "141203", "130100", None, None],
            "type": [None, None, None, None, "科教文化服务;学校;小学", None],
            "name": ["某某", "清华附小", "某某", "新田园居委会", "某某", "阳光幼儿园"],
        },
        index=pd.MultiIndex.from_tuples([("node", i) for i in range(6)]),
    )
    explained = tax.explain(table)
    assert explained.index.equals(table.index)
    assert explained.to_dict("list") == {
        "type": ["kindergarten", "primary_school", "primary_school", "community_service",
                 "primary_school", "kindergarten"],
        "matched_by": ["osm amenity=kindergarten", "osm amenity=school name~附小",
                       "amap typecode 141203", "amap typecode 130100 + name~居委会",
                       "amap type 科教文化服务;学校;小学", "keyword 幼儿园"],
    }  # fmt: skip


# ------------------------------------------------------- every type is reachable
KEYWORD_SAMPLES = {
    "nursery": "某某托育中心",
    "kindergarten": "某某幼儿园",
    "primary_school": "某某小学",
    "middle_school": "某某中学",
    "health_station": "某某卫生服务站",
    "health_centre": "某某社区卫生服务中心",
    "hospital": "某某医院",
    "clinic": "某某诊所",
    "pharmacy": "某某药店",
    "elderly_daycare": "某某日间照料中心",
    "nursing_home": "某某敬老院",
    "community_canteen": "某某长者食堂",
    "fresh_market": "某某农贸市场",
    "convenience_store": "某某便利店",
    "supermarket": "某某超市",
    "parcel_point": "某某菜鸟驿站",
    "bus_stop": "某某公交站",
    "metro_station": "某某地铁站",
    "library": "某某图书馆",
    "culture_centre": "某某文化馆",
    "community_service": "某某居委会",
    "culture_station": "某某文化活动室",
    "sports": "某某体育馆",
    "fitness": "某某健身房",
    "park": "某某公园",
    "public_toilet": "某某公厕",
}
TAG_SAMPLES = {
    "nursery": {"amenity": "childcare"},
    "kindergarten": {"amenity": "kindergarten"},
    "primary_school": {"typecode": "141203"},
    "middle_school": {"typecode": "141202"},
    "health_station": {"amenity": "clinic", "name": "某某社康中心"},
    "health_centre": {"typecode": "090102"},
    "hospital": {"amenity": "hospital"},
    "clinic": {"amenity": "doctors"},
    "pharmacy": {"amenity": "pharmacy"},
    "elderly_daycare": {"amenity": "social_facility", "name": "某某养老驿站"},
    "nursing_home": {"amenity": "nursing_home"},
    "community_canteen": {"amenity": "restaurant", "name": "某某社区食堂"},
    "fresh_market": {"amenity": "marketplace"},
    "convenience_store": {"shop": "convenience"},
    "supermarket": {"shop": "supermarket"},
    "parcel_point": {"amenity": "parcel_locker"},
    "bus_stop": {"highway": "bus_stop"},
    "metro_station": {"railway": "station"},
    "library": {"amenity": "library"},
    "culture_centre": {"amenity": "arts_centre"},
    "community_service": {"typecode": "120304"},
    "culture_station": {"amenity": "community_centre"},
    "sports": {"leisure": "pitch"},
    "fitness": {"leisure": "fitness_station"},
    "park": {"leisure": "park"},
    "public_toilet": {"typecode": "200300"},
}


def test_samples_cover_every_type(tax: Taxonomy) -> None:
    assert set(KEYWORD_SAMPLES) == set(TAG_SAMPLES) == set(tax.type_ids())


@pytest.mark.parametrize("type_id", TYPE_IDS)
def test_every_type_is_reachable_by_keyword(tax: Taxonomy, type_id: str) -> None:
    explained = tax.explain(pd.DataFrame({"name": [KEYWORD_SAMPLES[type_id]]}))
    assert explained["type"].item() == type_id
    assert explained["matched_by"].item().startswith("keyword ")


@pytest.mark.parametrize("type_id", TYPE_IDS)
def test_every_type_is_reachable_by_tag_or_code(tax: Taxonomy, type_id: str) -> None:
    explained = tax.explain(pd.DataFrame([TAG_SAMPLES[type_id]]))
    assert explained["type"].item() == type_id
    assert explained["matched_by"].item().startswith(("osm ", "amap "))


def test_classification_is_vectorised_over_many_rows(tax: Taxonomy) -> None:
    names = np.array(list(KEYWORD_SAMPLES.values()) * 400, dtype=object)
    result = tax.classify(pd.DataFrame({"name": names}))
    assert len(result) == 26 * 400
    assert result.value_counts().to_dict() == dict.fromkeys(KEYWORD_SAMPLES, 400)


# ------------------------------------------------------------------- user files
def write(tmp_path: Path, text: str, name: str = "my_taxonomy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


USER_BANK = """
types:
  - id: bank
    name_zh: 银行
    name_en: Bank
    category: commerce
    icon: bank
    color: "#123456"
    match:
      - source: test
        status: ASSUMPTION
        osm: [{amenity: bank}]
        amap_typecodes: ['160100']
        keywords: ['银行']
"""


def test_user_file_adds_a_type(tmp_path: Path) -> None:
    tax = load_taxonomy(write(tmp_path, USER_BANK))
    assert tax.type_ids()[:26] == default_taxonomy().type_ids()
    assert tax.type_ids()[-1] == "bank"
    assert tax.category_of("bank") == "commerce"
    table = pd.DataFrame(
        {"amenity": ["bank", None, "school"], "typecode": [None, "160100", None],
         "name": ["某某", "某某", "清华附小"]}
    )  # fmt: skip
    assert tax.classify(table).tolist() == ["bank", "bank", "primary_school"]
    assert "my_taxonomy.yaml" in tax.source


def test_user_type_can_take_priority_with_before(tmp_path: Path) -> None:
    text = USER_BANK.replace("    color:", "    before: hospital\n    color:")
    tax = load_taxonomy(write(tmp_path, text))
    order = tax.type_ids()
    assert order.index("bank") == order.index("hospital") - 1
    # a bank's clinic is now a bank: the earlier type wins
    assert tax.classify(pd.DataFrame({"name": ["银行医院"]})).item() == "bank"


def test_user_file_overrides_a_type(tmp_path: Path) -> None:
    text = """
types:
  - id: park
    icon: leaf
    match:
      - source: local survey
        status: CONFIRMED
        keywords: ['公园', '绿地']
"""
    tax = load_taxonomy(write(tmp_path, text))
    park = tax.types["park"]
    assert (park.icon, park.name_zh, park.color) == ("leaf", "公园", "#1a9850")
    assert tax.type_ids() == default_taxonomy().type_ids()
    table = pd.DataFrame({"name": ["滨江绿地", "朝阳公园停车场"], "leisure": [None, None]})
    # the exclude list is kept when the override does not give one
    assert tax.classify(table).tolist() == ["park", None]
    # leisure=park is gone: the override replaced the match groups
    assert tax.classify(pd.DataFrame({"leisure": ["park"]})).tolist() == [None]
    assert default_taxonomy().classify(pd.DataFrame({"name": ["滨江绿地"]})).tolist() == [None]


def test_user_file_replaces_the_taxonomy(tmp_path: Path) -> None:
    tax = load_taxonomy(write(tmp_path, USER_BANK), extend=False)
    assert tax.type_ids() == ["bank"]
    table = pd.DataFrame({"amenity": ["bank", "school"], "name": ["某某", "清华附小"]})
    assert tax.classify(table).tolist() == ["bank", None]


def test_user_file_may_use_packaged_exclude_sets(tmp_path: Path) -> None:
    text = USER_BANK + "    exclude: ['@road_name', '宠物']\n"
    tax = load_taxonomy(write(tmp_path, text))
    assert classify(tax, name=["银行路", "宠物银行", "建设银行"]) == [None, None, "bank"]


BROKEN_FILES = {
    "unknown_type_key": ("types:\n  - id: park\n    colour: '#000000'\n", "types[0].colour"),
    "unknown_category": (
        "types:\n  - id: bank\n    name_zh: 银行\n    name_en: Bank\n    category: money\n"
        "    match: [{keywords: [银行]}]\n",
        "types[0].category",
    ),
    "bad_keyword_regex": (
        "types:\n  - id: park\n    match: [{keywords: ['公园', '(绿地']}]\n",
        "types[0].match[0].keywords[1]",
    ),
    "bad_osm_regex": (
        "types:\n  - id: park\n    match: [{osm: [{leisure: park, 'name~': '[公园'}]}]\n",
        "types[0].match[0].osm[0].name~",
    ),
    "unquoted_code": (
        "types:\n  - id: park\n    match: [{amap_typecodes: [110101]}]\n",
        "types[0].match[0].amap_typecodes[0]",
    ),
    "short_code": (
        "types:\n  - id: park\n    match: [{amap_typecodes: ['1101']}]\n",
        "types[0].match[0].amap_typecodes[0]",
    ),
    "unknown_exclude_set": (
        "types:\n  - id: park\n    exclude: ['@nope']\n",
        "types[0].exclude[0]",
    ),
    "new_type_without_name": (
        "types:\n  - id: bank\n    category: commerce\n    match: [{keywords: [银行]}]\n",
        "types[0].name_zh",
    ),
    "empty_group": ("types:\n  - id: park\n    match: [{source: x}]\n", "types[0].match[0]"),
    "bad_status": (
        "types:\n  - id: park\n    match: [{keywords: [x], status: SURE}]\n",
        "types[0].match[0].status",
    ),
    "bad_id": ("types:\n  - id: Park Land\n", "types[0].id"),
    "duplicate_id": ("types:\n  - id: park\n  - id: park\n", "types[1].id"),
    "bad_color": ("types:\n  - id: park\n    color: green\n", "types[0].color"),
    "unknown_before": ("types:\n  - id: park\n    before: nowhere\n", "types[0].before"),
    "new_category": ("categories:\n  money: {name_zh: 钱, name_en: Money}\n", "categories.money"),
    "unknown_top_key": ("type:\n  - id: park\n", "key type:"),
    "not_a_mapping": ("- id: park\n", "expected a mapping"),
    "not_yaml": ("types: [\n", "not valid YAML"),
    "empty": ("", "the file is empty"),
    "decisive_with_tags": (
        "types:\n  - id: park\n    match: [{decisive: true, osm: [{leisure: park}]}]\n",
        "types[0].match[0].decisive",
    ),
    "generic_without_tags": (
        "types:\n  - id: park\n    match: [{generic: true, keywords: [公园]}]\n",
        "types[0].match[0].generic",
    ),
    "flag_not_boolean": (
        "types:\n  - id: park\n    match: [{generic: maybe, osm: [{leisure: park}]}]\n",
        "types[0].match[0].generic",
    ),
    "also_unknown_type": (
        "types:\n  - id: park\n    also: [{types: [zoo], keywords: [动物]}]\n",
        "'also' names 'zoo'",
    ),
    "also_without_types": (
        "types:\n  - id: park\n    also: [{keywords: [动物]}]\n",
        "types[0].also[0].types",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_FILES))
def test_broken_user_file_is_an_input_error(tmp_path: Path, case: str) -> None:
    text, key = BROKEN_FILES[case]
    path = write(tmp_path, text, name=f"{case}.yaml")
    with pytest.raises(InputError) as caught:
        load_taxonomy(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert key in message
    assert caught.value.exit_code == 2


def test_missing_user_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_taxonomy(tmp_path / "nope.yaml")


def test_replacing_with_no_types_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="defines no facility types"):
        load_taxonomy(write(tmp_path, "version: 1\n"), extend=False)


def test_names_shared_by_two_types_are_an_input_error(tmp_path: Path) -> None:
    text = USER_BANK.replace("name_zh: 银行", "name_zh: 公园")
    with pytest.raises(InputError, match="share the name '公园'"):
        load_taxonomy(write(tmp_path, text))


# --------------------------------------------------------------- real OSM data
@pytest.fixture(scope="module")
def beijing() -> pd.DataFrame:
    if not BEIJING_OSM.exists():
        pytest.skip(f"shared OSM extract not found at {BEIJING_OSM}")
    osmnx = pytest.importorskip("osmnx")
    features = osmnx.features_from_xml(BEIJING_OSM)
    explained = default_taxonomy().explain(features)
    # the OSM relation tag `type` is a column of its own, so the result is renamed
    return features.join(explained.rename(columns={"type": "facility_type"}))


def one(features: pd.DataFrame, name: str, **tags: str) -> pd.Series:
    rows = features[features["name"] == name]
    for key, value in tags.items():
        rows = rows[rows[key] == value]
    assert len(rows) == 1, f"expected one feature named {name!r}, found {len(rows)}"
    return rows.iloc[0]


def test_beijing_named_facilities(beijing: pd.DataFrame) -> None:
    assert one(beijing, "清华附小", amenity="school")["facility_type"] == "primary_school"
    assert one(beijing, "清华大学附属幼儿园")["facility_type"] == "kindergarten"
    assert one(beijing, "北京大学校医院")["facility_type"] == "hospital"
    assert one(beijing, "清华大学附属中学")["facility_type"] == "middle_school"
    assert one(beijing, "清华大学洁华幼儿园")["facility_type"] == "kindergarten"
    assert one(beijing, "圆明园", leisure="park")["facility_type"] == "park"
    assert one(beijing, "清华附小操场")["facility_type"] == "sports"
    pharmacies = beijing[beijing["name"] == "同仁堂"]
    assert pharmacies["facility_type"].tolist() == ["pharmacy", "pharmacy"]


def test_beijing_universities_and_canteens_are_not_schools(beijing: pd.DataFrame) -> None:
    universities = beijing[beijing["amenity"] == "university"]
    assert set(universities["name"]) == {"清华大学", "北京大学"}
    assert universities["facility_type"].isna().all()
    canteens = beijing[beijing["name"] == "清华附中食堂"]
    assert len(canteens) == 2
    assert canteens["facility_type"].isna().all()


def test_beijing_bus_stops_match_the_tagged_stops(beijing: pd.DataFrame) -> None:
    tagged = beijing["highway"] == "bus_stop"
    classified = beijing["facility_type"] == "bus_stop"
    assert tagged.sum() == 68
    assert (classified == tagged).all()
    assert set(beijing.loc[classified, "matched_by"]) == {"osm highway=bus_stop"}


def test_beijing_overall_result_is_sensible(beijing: pd.DataFrame) -> None:
    counts = beijing["facility_type"].value_counts().to_dict()
    assert counts["kindergarten"] == 2
    assert counts["primary_school"] == 1
    assert counts["hospital"] == 2
    assert counts["pharmacy"] == 2
    assert counts["public_toilet"] == (beijing["amenity"] == "toilets").sum() == 6
    assert counts["metro_station"] == 38
    assert 40 <= counts["sports"] <= 60
    assert 10 <= counts["park"] <= 20
    # roads, paths and buildings stay unclassified: most features are not facilities
    roads = beijing["highway"].notna() & (beijing["highway"] != "bus_stop")
    assert beijing.loc[roads, "facility_type"].isna().all()
    assert 200 <= beijing["facility_type"].notna().sum() <= 260


# ------------------------------------------------- decisive names, flags, several types
def test_decisive_name_outweighs_a_generic_tag(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {"amenity": ["childcare", "childcare", "marketplace", "marketplace"],
         "name": ["北京邮电大学幼儿园", "小太阳托育园", "东门菜市场", "大钟寺"]}
    )  # fmt: skip
    audit = tax.audit(table)
    assert audit["type"].tolist() == ["kindergarten", "nursery", "fresh_market", "fresh_market"]
    assert audit.loc[0, "flags"] == "name outweighs osm amenity=childcare (nursery)"
    assert audit.loc[0, "matched_by"] == "keyword 幼儿园"
    assert audit.loc[3, "rule_status"] == "UNCONFIRMED" and audit.loc[3, "flags"] == ""


def test_specific_tag_still_outweighs_a_decisive_name(tax: Taxonomy) -> None:
    table = pd.DataFrame({"leisure": ["track", "pitch"], "name": ["清华附小操场", "实验小学球场"]})
    assert tax.classify(table).tolist() == ["sports", "sports"]


def test_implausible_tag_and_name_is_flagged_not_typed(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {"amenity": ["marketplace", "marketplace"], "name": ["中国移动", "中国联通营业厅"]}
    )
    audit = tax.audit(table)
    assert audit["type"].tolist() == [None, None]
    assert audit["flags"].tolist() == [
        "implausible: osm amenity=marketplace (fresh_market) with name 中国移动",
        "implausible: osm amenity=marketplace (fresh_market) with name 中国联通营业厅",
    ]


def test_english_keywords_match_whole_words_and_malls_are_not_parks(tax: Taxonomy) -> None:
    names = ["深圳龙岗COCO Park", "Chaoyang Park", "Parkson Plaza", "Sparkle Cafe", "万科Park"]
    table = pd.DataFrame({"name": names, "shop": ["mall", None, None, None, None]})
    assert tax.classify(table).tolist() == [None, "park", None, None, "park"]
    assert classify(tax, name=["Wallmart", "7-ELEVEn便利店", "gymnastics club"]) == [
        None, "convenience_store", None,
    ]  # fmt: skip


def test_schools_of_several_levels_serve_several_types(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {
            "amenity": ["school", "school", "school", None, None, "school"],
            "typecode": [None, None, None, "141202", "141200", None],
            "name": ["华南师范大学附属龙岗大运学校", "某某十二年一贯制学校", "坪地中小学",
                     "十一晋元中学(九年一贯制)", "海淀区特殊教育学校", "诗雅艺术学校"],
        }
    )  # fmt: skip
    assert tax.classify_types(table).tolist() == [
        "primary_school;middle_school", "primary_school;middle_school",
        "primary_school;middle_school", "middle_school;primary_school", None, None,
    ]  # fmt: skip
    assert tax.classify(table).tolist()[:4] == [
        "primary_school", "primary_school", "primary_school", "middle_school",
    ]  # fmt: skip


def test_health_centre_with_day_care_where_the_data_say_so(tax: Taxonomy) -> None:
    table = pd.DataFrame(
        {
            "healthcare": ["centre", "centre", None],
            "social_facility": ["day_care", None, None],
            "typecode": [None, None, "090102"],
            "name": [
                "青龙桥社区卫生服务中心",
                "学院路社区卫生服务中心",
                "甘家口社区卫生服务中心(日间照料中心)",
            ],
        }
    )
    assert tax.classify_types(table).tolist() == [
        "health_centre;elderly_daycare", "health_centre", "health_centre;elderly_daycare",
    ]  # fmt: skip


def test_explode_types_gives_one_row_per_type_served() -> None:
    facilities = pd.DataFrame(
        {
            "facility_id": ["a", "b", "c"],
            "type": ["primary_school", "park", "health_centre"],
            "types": ["primary_school;middle_school", "park", None],
            "category": ["education", "green_space", "health"],
        }
    )
    exploded = explode_types(facilities)
    assert exploded[["facility_id", "type", "category", "type_rank"]].values.tolist() == [
        ["a", "primary_school", "education", 0],
        ["a", "middle_school", "education", 1],
        ["b", "park", "green_space", 0],
        ["c", "health_centre", "health", 0],
    ]


# ------------------------------------------------------------- check file, overrides
AMAP_CSV = (
    "id,name,typecode,type,lng,lat\n"
    "B01,北京邮电大学幼儿园,141204,科教文化服务;学校;幼儿园,116.35,39.96\n"
    "B02,中国移动营业厅,070603,生活服务;营业厅;中国移动营业厅,116.35,39.96\n"
    "B03,大运学校,141200,科教文化服务;学校;学校,114.2,22.7\n"
    "B04,东门市场,060700,购物服务;综合市场;综合市场,114.2,22.7\n"
)


def test_check_file_audits_every_row(tmp_path: Path) -> None:
    path = tmp_path / "amap.csv"
    path.write_text(AMAP_CSV, encoding="utf-8")
    check = check_file(path)
    assert check["row"].tolist() == [2, 3, 4, 5]
    assert check["key_column"].unique().tolist() == ["id"]
    assert check["types"].tolist() == [
        "kindergarten", "", "primary_school;middle_school", "",
    ]  # fmt: skip
    assert check.loc[0, "rule_id"] == "kindergarten.match[2]"
    assert check.loc[0, "rule_status"] == "CONFIRMED"
    assert check.loc[0, "evidence"] == "typecode=141204; type=科教文化服务;学校;幼儿园"
    assert check["override"].eq("").all()


def test_edited_check_file_is_fed_back_as_overrides(tmp_path: Path) -> None:
    path = tmp_path / "amap.csv"
    path.write_text(AMAP_CSV, encoding="utf-8")
    check = check_file(path)
    check.loc[check["key"] == "B04", "override"] = "fresh_market"
    check.loc[check["key"] == "B03", "override"] = "none"
    edited = tmp_path / "check.csv"
    check.to_csv(edited, index=False)
    overrides = read_overrides(edited)
    assert overrides.to_dict("list") == {
        "key_column": ["id", "id"], "key": ["B03", "B04"], "types": ["none", "fresh_market"],
    }  # fmt: skip
    tax = default_taxonomy().with_overrides(edited)
    assert check_file(path, taxonomy=tax)["types"].tolist() == [
        "kindergarten", "", "", "fresh_market",
    ]  # fmt: skip
    loaded = load_facilities(path, crs="gcj02", taxonomy=tax)
    assert loaded.data[["facility_id", "type"]].values.tolist() == [
        ["B01", "kindergarten"], ["B04", "fresh_market"],
    ]  # fmt: skip
    assert default_taxonomy().classify(
        pd.DataFrame({"id": ["B04"], "name": ["东门市场"]})
    ).tolist() == [None]


def test_bad_overrides_name_the_row(tmp_path: Path) -> None:
    edited = tmp_path / "check.csv"
    edited.write_text("row,key_column,key,override\n2,id,B1,\n3,id,B2,market\n", "utf-8")
    with pytest.raises(
        InputError, match=r"check\.csv, row 3, column override: unknown facility type 'market'"
    ):
        default_taxonomy().with_overrides(edited)
    (tmp_path / "plain.csv").write_text("id,name\n1,x\n", "utf-8")
    with pytest.raises(InputError, match="missing column key_column"):
        read_overrides(tmp_path / "plain.csv")


def test_load_facilities_writes_every_type_served(tmp_path: Path) -> None:
    path = tmp_path / "amap.csv"
    path.write_text(AMAP_CSV, encoding="utf-8")
    data = load_facilities(path, crs="gcj02").data
    assert data[["facility_id", "type", "types"]].values.tolist() == [
        ["B01", "kindergarten", "kindergarten"],
        ["B03", "primary_school", "primary_school;middle_school"],
    ]
    exploded = explode_types(data)
    assert exploded["type"].tolist() == ["kindergarten", "primary_school", "middle_school"]
    assert exploded["facility_id"].tolist() == ["B01", "B03", "B03"]


def test_check_file_on_real_osm() -> None:
    if not BEIJING_OSM.exists():
        pytest.skip(f"shared OSM extract not found at {BEIJING_OSM}")
    check = check_file(BEIJING_OSM)
    assert len(check) == 475
    assert check["row"].tolist() == list(range(1, 476))
    assert check["key_column"].unique().tolist() == ["osm_id"]
    school = check.loc[check["name"] == "清华附小"].iloc[0]
    assert school["types"] == "primary_school"
    assert school["evidence"] == "amenity=school"
    assert (check["flags"] != "").sum() == 4


# ---------------------------------------------------------------- evaluation set
EVAL_SET = Path(__file__).parent / "data" / "taxonomy_eval.csv"
TARGET = 0.95


@pytest.fixture(scope="module")
def evaluation() -> tuple[pd.DataFrame, pd.DataFrame]:
    return evaluate(EVAL_SET)


def test_evaluation_set_is_large_and_mixed(evaluation: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    _, rows = evaluation
    assert len(rows) >= 300
    counts = rows["source"].value_counts()
    assert counts["osm"] == 475 and counts["amap"] >= 150
    assert rows["label"].str.split(";").explode().isin([*TYPE_IDS, "none"]).all()


def test_evaluation_meets_the_target_for_every_required_type(
    evaluation: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    per_type, _ = evaluation
    required = set()
    for entry in list_standards():
        required |= set(load_standard(entry["id"]).scored_types())
    scores = per_type.set_index("type")
    assert required <= set(scores.index[scores["support"] >= 5])
    below = scores.loc[sorted(required)].query("precision < @TARGET or recall < @TARGET")
    assert below.empty, below.to_string()


def test_load_facilities_notes_the_flagged_rows(tmp_path: Path) -> None:
    path = tmp_path / "pois.csv"
    path.write_text(
        "name,amenity,lng,lat\n中国移动,marketplace,116.3,40.0\n北京邮电大学幼儿园,childcare,116.3,40.0\n",
        encoding="utf-8",
    )
    result = load_facilities(path)
    assert result.data["type"].tolist() == ["kindergarten"]
    assert result.rejects["row"].tolist() == [2]
    assert (
        "2 rows flagged by the taxonomy (list them all with lifecircle.taxonomy.check_file): "
        "row 2: implausible: osm amenity=marketplace (fresh_market) with name 中国移动; "
        "row 3: name outweighs osm amenity=childcare (nursery)"
    ) in result.notes
