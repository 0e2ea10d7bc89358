"""`lifecircle taxonomy check`: the audit CSV, edited, comes back as overrides."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lifecircle.datasets import demo_data
from lifecircle.loading import load_facilities
from lifecircle.taxonomy import default_taxonomy

from .conftest import run_main


def test_check_then_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pois = demo_data().pois
    audit = tmp_path / "audit.csv"
    assert run_main(["taxonomy", "check", str(pois), "--out", str(audit), "--quiet"]) == 0
    assert "350 rows: 179 typed, 171 matched no type" in capsys.readouterr().out
    table = pd.read_csv(audit, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert len(table) == 350
    kindergarten = table[table["name"] == "示例文昌幼儿园"].iloc[0]
    assert kindergarten["types"] == "kindergarten"
    assert kindergarten["rule_id"].startswith("kindergarten.")
    untyped = table[table["types"] == ""].iloc[0]
    table.loc[table["key"] == untyped["key"], "override"] = "community_service"
    table.loc[table["key"] == kindergarten["key"], "override"] = "none"
    table.to_csv(audit, index=False, encoding="utf-8-sig")

    plain = load_facilities(pois, crs="gcj02").data
    fixed = load_facilities(pois, crs="gcj02", taxonomy=default_taxonomy().with_overrides(audit))
    data = fixed.data.set_index("facility_id")
    assert data.loc[untyped["key"], "type"] == "community_service"
    assert kindergarten["key"] not in data.index  # "none": not a facility of any type
    assert len(fixed.data) == len(plain)  # one in, one out


def test_check_refuses_to_overwrite_its_input(tmp_path: Path, capsys) -> None:
    copy = tmp_path / "pois.csv"
    copy.write_bytes(demo_data().pois.read_bytes())
    assert run_main(["taxonomy", "check", str(copy), "--out", str(copy), "--quiet"]) == 2
    assert run_main(["taxonomy", "check", str(tmp_path / "nope.csv")]) == 2
