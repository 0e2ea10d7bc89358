"""Result tables for readers: headers by language, data dictionary, rounding, words,
the streaming Excel writer and its text cleaning, and the map context layers."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest

from lifecircle.outputs import (
    MAX_CELL_CHARS,
    Vocabulary,
    reader_table,
    source_word,
    status_word,
    street_class,
    write_excel,
    write_outputs,
)
from lifecircle.study import Study

SHEETS_ZH = ["小区", "覆盖率", "缺失项目", "标准来源", "设施", "剔除行", "说明"]


@pytest.fixture(scope="module")
def study() -> Study:
    return Study.from_demo()


@pytest.fixture(scope="module")
def zh_out(study: Study, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("outputs-zh")
    cells, gaps = study.gaps()
    write_outputs(study, out, cells=cells, gaps=gaps, lang="zh")
    return out


def test_chinese_workbook_has_chinese_sheets_and_headers(zh_out: Path, study: Study):
    book = openpyxl.load_workbook(zh_out / "results.xlsx", read_only=False)
    assert book.sheetnames == SHEETS_ZH
    sheet = book["小区"]
    headers = [c.value for c in sheet[1]]
    scores = study.score()
    assert len(headers) == scores.shape[1] - 1 + 2  # no geometry; lon and lat
    for header in ("小区编号", "名称", "人口", "得分", "养老·满足", "幼儿园·最近步行（米）"):
        assert header in headers
    assert "十五分钟生活圈·达标" in headers
    assert not any(h.endswith(("_ok", "_min", "_m")) for h in headers)
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(headers)).column_letter}67"
    widths = [sheet.column_dimensions[sheet.cell(1, i).column_letter].width for i in (1, 2)]
    assert all(6 <= w <= 50 for w in widths)


def test_dictionary_explains_every_column_in_both_languages(zh_out: Path):
    sheets = pd.read_excel(zh_out / "results.xlsx", sheet_name=None)
    dictionary = sheets["说明"]
    described = sum(frame.shape[1] for name, frame in sheets.items() if name != "说明")
    assert len(dictionary) == described
    assert list(dictionary.columns) == [
        "工作表",
        "中文列名",
        "英文列名（机器标识）",
        "单位",
        "说明（中文）",
        "说明（英文）",
    ]
    row = dictionary[dictionary["英文列名（机器标识）"] == "kindergarten_m"].iloc[0]
    assert row["中文列名"] == "幼儿园·最近步行（米）" and row["单位"] == "米"
    assert row["说明（英文）"] == "Kindergarten: walking metres to the nearest facility"
    assert dictionary["说明（中文）"].notna().all() and dictionary["说明（英文）"].notna().all()


def test_numbers_are_rounded_for_reading(zh_out: Path, study: Study):
    table = pd.read_excel(zh_out / "results.xlsx", sheet_name="小区")
    scores = study.score().set_index("community_id")
    table = table.set_index("小区编号")
    expected_pop = scores["population"].round(0)
    assert (table["人口"] == expected_pop.loc[table.index]).all()
    assert (table["人口"] % 1 == 0).all()
    metres = table["幼儿园·最近步行（米）"].dropna()
    assert (metres % 1 == 0).all()
    assert (metres == scores.loc[metres.index, "kindergarten_m"].round(0)).all()
    minutes = table["幼儿园·最近步行（分钟）"].dropna()
    assert np.allclose(minutes, scores.loc[minutes.index, "kindergarten_min"].round(1))
    assert (minutes * 10 % 1).abs().max() < 1e-9
    machine = pd.read_csv(zh_out / "communities.csv", encoding="utf-8-sig")
    assert "community_id" in machine.columns  # the English CSV keeps the ids
    raw = pd.read_csv(zh_out / "communities.csv", encoding="utf-8-sig", dtype=str)
    for column in ("population", "kindergarten_m", "score", "lon"):
        decimals = raw[column].dropna().str.partition(".")[2].str.len()
        assert decimals.max() <= (7 if column == "lon" else 4), column  # no float noise


def test_status_codes_and_source_keys_read_as_words(zh_out: Path):
    missing = pd.read_excel(zh_out / "results.xlsx", sheet_name="缺失项目")
    # the plan's four categories are CONFIRMED by its own text
    assert set(missing["核实状态"]) == {"已核实"}
    assert all(source.startswith("蒲鞋市街道") for source in set(missing["来源"]))
    assert set(missing["项目"]) <= {"教育", "商业交通", "文体", "养老"}
    coverage = pd.read_excel(zh_out / "results.xlsx", sheet_name="覆盖率")
    assert coverage["统计层级"].iloc[0] == "层级" and coverage["项目"].iloc[0] == "十五分钟生活圈"
    assert status_word("UNCONFIRMED", "zh") == "未核实"
    assert source_word("S_NOT_KNOWN", "zh") == "S_NOT_KNOWN"


def test_chinese_csv_beside_the_english_one(zh_out: Path):
    chinese = pd.read_csv(zh_out / "communities_zh.csv", encoding="utf-8-sig")
    english = pd.read_csv(zh_out / "communities.csv", encoding="utf-8-sig")
    assert len(chinese) == len(english) == 66
    assert list(chinese.columns)[:3] == ["小区编号", "名称", "人口"]
    assert set(chinese["养老·满足"]) <= {"是", "否"}
    assert english["elderly_care_ok"].dtype == bool


def test_english_workbook_keeps_sheet_ids(study: Study, tmp_path: Path):
    write_outputs(study, tmp_path, lang="en")
    book = openpyxl.load_workbook(tmp_path / "results.xlsx", read_only=True)
    assert book.sheetnames[:6] == [
        "communities",
        "summary",
        "missing",
        "provenance",
        "facilities",
        "rejects",
    ]
    assert book.sheetnames[-1] == "dictionary"
    assert not (tmp_path / "communities_zh.csv").exists()
    missing = pd.read_excel(tmp_path / "results.xlsx", sheet_name="missing")
    assert set(missing["status"]) == {"confirmed"}


def test_excel_writer_cleans_control_characters_and_cuts_long_text(tmp_path: Path):
    frame = pd.DataFrame(
        {"name": ["a\x00b\x07c", "x" * (MAX_CELL_CHARS + 500), None], "population": [1.4, 2.6, 3]}
    )
    write_excel({"communities": frame}, tmp_path / "t.xlsx", lang="zh")
    read = pd.read_excel(tmp_path / "t.xlsx", sheet_name="小区")
    assert read["名称"].iloc[0] == "abc"
    assert read["名称"].iloc[1].startswith("x" * MAX_CELL_CHARS)
    assert read["名称"].iloc[1].endswith(f"[cut: {MAX_CELL_CHARS + 500} characters]")
    assert pd.isna(read["名称"].iloc[2])
    assert read["人口"].tolist() == [1, 3, 3]


def test_vocabulary_names_derived_columns_and_leaves_unknown_ones():
    vocabulary = Vocabulary("en", {"tiers": [{"id": "15min", "name_en": "15-minute circle"}]})
    assert vocabulary.header("tier_15min_pass") == "15-minute circle: pass"
    assert vocabulary.header("park_min") == "Park: nearest (min)"
    assert vocabulary.header("some_new_column") == "some_new_column"
    assert vocabulary.unit("park_m") == "m" and vocabulary.unit("population") == "persons"
    table = reader_table(pd.DataFrame({"status": ["DERIVED"], "park_ok": [True]}), vocabulary)
    assert table.iloc[0].tolist() == ["derived", "yes"]


def test_map_context_has_every_street_once_by_class(zh_out: Path, study: Study):
    streets = gpd.read_file(zh_out / "context.gpkg", layer="streets")
    net = study.network
    used = np.unique(net.seg_way)
    assert len(streets) == len(used)
    assert streets.to_crs(net.crs).length.sum() == pytest.approx(net.seg_len.sum(), rel=1e-6)
    expected = street_class(net.ways.iloc[used]["highway"]).value_counts().to_dict()
    assert streets["class"].value_counts().to_dict() == expected


def test_workbook_formats_shares_styles_headers_and_keeps_every_sheet(tmp_path: Path):
    shares = pd.DataFrame({"item": ["park", "clinic"], "population_share": [0.5, 0.25]})
    twice = pd.DataFrame([["a", "b"]], columns=["name", "name"])
    empty = pd.DataFrame(columns=["file", "row", "column", "reason", "value"])
    write_excel(
        {"summary": shares, "facilities": twice, "rejects": empty},
        tmp_path / "t.xlsx",
        lang="zh",
    )
    book = openpyxl.load_workbook(tmp_path / "t.xlsx")
    sheet = book[book.sheetnames[0]]
    assert [c.value for c in sheet[1]] == ["项目", "满足人口比例"]
    assert sheet["B2"].value == 0.5 and sheet["B2"].number_format == "0.0%"
    assert sheet["A2"].number_format == "General"
    assert sheet["A1"].font.b and sheet["A1"].alignment.wrap_text
    assert sheet["A1"].fill.fgColor.rgb.endswith("ECEFF1")
    assert [c.value for c in book[book.sheetnames[1]][1]] == ["名称", "名称 (2)"]
    rejects = book[book.sheetnames[2]]
    assert rejects.max_row == 1 and rejects.freeze_panes == "A2"
    assert book.sheetnames[-1] == "说明"
