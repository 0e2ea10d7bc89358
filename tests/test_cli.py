"""The command line, end to end on the synthetic demo data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lifecircle.datasets import demo_data

OUTPUT_FILES = {
    "communities.csv",
    "communities.gpkg",
    "isochrones.gpkg",
    "gaps.gpkg",
    "facilities.csv",
    "summary.json",
    "results.xlsx",
}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from lifecircle.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    result = run_cli("demo", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "synthetic" in result.stdout
    return out


def test_demo_writes_every_output(demo_out: Path):
    assert {p.name for p in demo_out.iterdir()} >= OUTPUT_FILES
    raw = (demo_out / "communities.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    table = pd.read_csv(demo_out / "communities.csv", encoding="utf-8-sig")
    assert len(table) == 66
    for column in (
        "community_id",
        "name",
        "population",
        "score",
        "missing",
        "tier_15min_pass",
        "elderly_care_ok",
        "kindergarten_m",
        "kindergarten_min",
        "kindergarten_n",
        "kindergarten_ok",
        "lon",
        "lat",
    ):
        assert column in table.columns
    assert table["name"].str.startswith("示例").all()
    from lifecircle.outputs import Vocabulary

    zh = Vocabulary("zh")  # the demo's tables are for Chinese readers by default
    sheets = pd.read_excel(demo_out / "results.xlsx", sheet_name=None)
    ids = ("communities", "summary", "missing", "provenance", "facilities", "rejects", "onemap")
    assert {zh.sheet(i) for i in ids} <= set(sheets)
    rejects = sheets[zh.sheet("rejects")]
    assert len(rejects) == 171  # POI rows of no life-circle type, listed with a reason
    assert rejects[zh.header("reason")].nunique() == 1


def test_demo_summary_carries_provenance_and_gaps(demo_out: Path):
    summary = json.loads((demo_out / "summary.json").read_text(encoding="utf-8"))
    assert summary["standard"]["id"] == "puxieshi-2021"
    assert summary["parameters"]["walk_speed_m_per_min"] == 60
    items = summary["provenance"]["categories"]
    # the plan's own four categories: 教育, 商业交通, 文体, 养老
    assert {c["id"] for c in items} == {
        "education",
        "commerce_transport",
        "culture_sports",
        "elderly_care",
    }
    assert all(c["status"] and c["source"] for c in items)
    assert any("synthetic" in a.lower() for a in summary["attribution"])
    results = summary["results"]
    assert results["compounds"] == 66
    assert results["population"] == 78602  # households x 2.62, whole people per compound
    # the demo's deliberate gap: no elderly care across the river
    elderly = results["coverage"]["categories"]["elderly_care"]
    assert elderly["population_share"] < 1
    assert summary["gaps"]["population_by_item"]["elderly_care"] > 1000
    loading = {r["kind"]: r for r in summary["loading"]}
    assert loading["facilities"]["rows_read"] == loading["facilities"]["loaded"] + 171


def test_score_command_warns_about_gcj02(tmp_path: Path):
    data = demo_data()
    result = run_cli(
        "score",
        "--network",
        str(data.streets),
        "--facilities",
        str(data.pois),
        "--communities",
        str(data.compounds),
        "--gates",
        str(data.gates),
        "--standard",
        "gb50180-2018",
        "--no-isochrones",
        "--no-robustness",
        "--no-maps",
        "--out",
        str(tmp_path),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert "fit the street network far better as GCJ-02" in result.stderr
    assert "pass --facilities-crs gcj02" in result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert any("--facilities-crs gcj02" in w for w in summary["warnings"])
    assert not (tmp_path / "isochrones.gpkg").exists()


def test_bad_input_exits_2_naming_file_and_column(tmp_path: Path):
    data = demo_data()
    compounds = tmp_path / "compounds.csv"
    compounds.write_text("community_id,name\nC1,甲\n", encoding="utf-8")
    result = run_cli(
        "score",
        "--network",
        str(data.streets),
        "--facilities",
        str(data.pois),
        "--communities",
        str(compounds),
        "--out",
        str(tmp_path / "out"),
        "--quiet",
    )
    assert result.returncode == 2
    assert "compounds.csv" in result.stderr
    assert "error:" in result.stderr
    assert "Traceback" not in result.stderr


def test_refuses_to_overwrite_inputs(tmp_path: Path):
    data = demo_data()
    communities = tmp_path / "communities.gpkg"
    import geopandas as gpd

    gpd.read_file(data.compounds).to_file(communities)
    result = run_cli(
        "score",
        "--network",
        str(data.streets),
        "--facilities",
        str(data.pois),
        "--facilities-crs",
        "gcj02",
        "--communities",
        str(communities),
        "--no-isochrones",
        "--out",
        str(tmp_path),
        "--quiet",
    )
    assert result.returncode == 2
    assert "overwrite" in result.stderr
    assert len(gpd.read_file(communities)) == 66


def test_usage_errors_and_help():
    assert run_cli("--help").returncode == 0
    missing = run_cli("score")
    assert missing.returncode == 2
    assert "--network" in missing.stderr


def test_standards_commands():
    listed = run_cli("standards", "list")
    assert listed.returncode == 0
    assert {"gb50180-2018", "puxieshi-2021", "tdt1062-2021"} <= {
        line.split()[0] for line in listed.stdout.splitlines()
    }
    shown = run_cli("standards", "show", "gb50180-2018")
    assert shown.returncode == 0
    assert "kindergarten" in shown.stdout
    assert "CONFIRMED_SUPERSEDED" in shown.stdout
    unknown = run_cli("standards", "show", "gb-nope")
    assert unknown.returncode == 2
    assert "gb50180-2018" in unknown.stderr


def test_batch_command_reports_failed_areas(tmp_path: Path):
    data = demo_data()
    config = tmp_path / "batch.yaml"
    config.write_text(
        "\n".join(
            [
                "out: results",
                "standard: puxieshi-2021",
                "facilities_crs: gcj02",
                "isochrones: false",
                "robustness: false",
                "maps: false",
                "workers: 1",
                "areas:",
                "  - id: demo",
                "    name: 示例",
                f"    network: {data.streets}",
                f"    facilities: [{data.pois}]",
                f"    communities: {data.compounds}",
                f"    gates: {data.gates}",
                "  - id: broken",
                f"    network: {data.streets}",
                f"    facilities: [{tmp_path / 'missing.csv'}]",
                f"    communities: {data.compounds}",
            ]
        ),
        encoding="utf-8",
    )
    result = run_cli("batch", str(config), "--quiet")
    assert result.returncode == 3, result.stderr
    summary = pd.read_csv(tmp_path / "results" / "batch_summary.csv", encoding="utf-8-sig")
    assert summary.set_index("area_id")["status"].to_dict() == {"demo": "ok", "broken": "failed"}
    assert "missing.csv" in summary.set_index("area_id").loc["broken", "error"]
    assert (tmp_path / "results" / "demo" / "communities.csv").exists()
    # a second run skips the finished area and still reports the failure
    again = run_cli("batch", str(config), "--quiet")
    assert again.returncode == 3


def _demo_study_args() -> list[str]:
    data = demo_data()
    return [
        "--network",
        str(data.streets),
        "--facilities",
        str(data.pois),
        "--facilities-crs",
        "gcj02",
        "--communities",
        str(data.compounds),
        "--gates",
        str(data.gates),
        "--standard",
        "puxieshi-2021",
        # the site and scenario results are tested here; the rest of the pipeline elsewhere
        "--no-isochrones",
        "--no-robustness",
        "--no-maps",
        "--quiet",
    ]


def test_site_command(tmp_path: Path):
    result = run_cli(
        "site", *_demo_study_args(), "--type", "elderly_daycare", "--k", "2", "--out", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    sites = pd.read_csv(tmp_path / "sites.csv", encoding="utf-8-sig")
    assert sites["rank"].tolist() == [1, 2]
    assert (sites["type"] == "elderly_daycare").all()
    assert sites["residents_newly_covered"].iloc[0] >= sites["residents_newly_covered"].iloc[1] > 0
    assert "elderly_daycare" in result.stdout


def test_scenario_command(tmp_path: Path):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "name: 新日间照料中心\n"
        "add_facilities:\n"
        "  - {id: new-1, type: elderly_daycare, lon: 120.6581, lat: 28.0142}\n",
        encoding="utf-8",
    )
    result = run_cli("scenario", str(scenario), *_demo_study_args(), "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    changes = pd.read_csv(tmp_path / "o" / "scenario_changes.csv", encoding="utf-8-sig")
    assert len(changes) > 0
    assert set(changes["change"]) == {"gained"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nadd_facility: []\n", encoding="utf-8")
    failed = run_cli("scenario", str(bad), *_demo_study_args(), "--out", str(tmp_path / "b"))
    assert failed.returncode == 2
    assert "bad.yaml" in failed.stderr
