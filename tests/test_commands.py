"""Every command runs the one pipeline with the same options (in process, on the demo files)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest

from lifecircle.datasets import demo_data

from .conftest import run_main

DEMO = demo_data()
FAST = ["--no-isochrones", "--no-robustness", "--quiet"]


def _files(out: Path, **extra: str) -> list[str]:
    args = {
        "--network": DEMO.streets,
        "--facilities": DEMO.pois,
        "--facilities-crs": "gcj02",
        "--communities": DEMO.compounds,
        "--gates": DEMO.gates,
        "--out": out,
        **extra,
    }
    return [str(x) for pair in args.items() for x in pair]


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def test_score_writes_the_map_and_the_report(tmp_path: Path) -> None:
    out = tmp_path / "score"
    assert run_main(["score", *_files(out), *FAST]) == 0
    assert (out / "map.html").is_file() and (out / "report.html").is_file()
    assert (out / "manifest.json").is_file()


@pytest.mark.parametrize("command", ["site", "scenario"])
def test_site_and_scenario_take_the_threshold_rule(command: str, tmp_path: Path) -> None:
    out = tmp_path / command
    head = [command]
    if command == "scenario":
        plan = tmp_path / "s.yaml"
        plan.write_text("name: none\nremove_facilities: []\n", encoding="utf-8")
        head.append(str(plan))
    extra = ["--type", "养老院", "--k", "1"] if command == "site" else []
    args = [*head, *_files(out), "--threshold-rule", "minutes", "--walk-speed", "70", *FAST]
    assert run_main([*args, *extra, "--no-maps"]) == 0
    options = _summary(out)["options"]
    assert options["threshold_rule"] == "minutes" and options["walk_speed"] == 70.0
    assert _summary(out)["parameters"]["walk_speed_m_per_min"] == 70.0
    if command == "site":
        sites = json.loads((out / "sites.json").read_text(encoding="utf-8"))
        assert sites["target"] == "nursing_home"  # the Chinese name was understood


def test_batch_runs_robustness_and_takes_command_line_options(tmp_path: Path) -> None:
    config = tmp_path / "batch.yaml"
    config.write_text(
        "\n".join(
            [
                "standard: puxieshi-2021",
                "facilities_crs: gcj02",
                "isochrones: false",
                "areas:",
                f"  - {{id: '001', network: {DEMO.streets}, facilities: {DEMO.pois}, "
                f"communities: {DEMO.compounds}, gates: {DEMO.gates}}}",
            ]
        ),
        encoding="utf-8",
    )
    out = tmp_path / "results"
    assert run_main(["batch", str(config), "--out", str(out), "--walk-speed", "60", "--quiet"]) == 0
    area = out / "001"  # the id keeps its text
    assert (area / "robustness_summary.json").is_file()
    assert _summary(area)["options"]["walk_speed"] == 60.0
    assert (area / "map.html").is_file()


def test_shuttle_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "shuttle"
    code = run_main(
        [
            "shuttle",
            *_files(out),
            "--k",
            "2",
            "--destinations",
            "老年人日间照料中心,菜市场",
            "--no-maps",
            *FAST,
        ]
    )
    assert code == 0
    # the walking speed that decides the reach is printed with its status
    assert "within 15 minutes, walking at 50 m/min (assumption)" in capsys.readouterr().out
    reach = (out / "shuttle_reach.csv").read_text(encoding="utf-8-sig")
    assert "elderly_daycare" in reach and "fresh_market" in reach and "hospital" not in reach
    stops = gpd.read_file(out / "shuttle.gpkg", layer="stops")
    assert len(stops) >= 2 + 2  # the boarding stops and one per destination


def test_flatgeobuf_is_read_for_every_layer(tmp_path: Path) -> None:
    fgb = {}
    for name, path in (
        ("network", DEMO.streets),
        ("communities", DEMO.compounds),
        ("boundary", DEMO.boundary),
    ):
        target = tmp_path / f"{name}.fgb"
        gpd.read_file(path).to_file(target, driver="FlatGeobuf")
        fgb[name] = target
    out = tmp_path / "fgb"
    args = _files(
        out,
        **{
            "--network": str(fgb["network"]),
            "--communities": str(fgb["communities"]),
            "--boundary": str(fgb["boundary"]),
        },
    )
    assert run_main(["score", *args, *FAST, "--no-maps"]) == 0
    assert _summary(out)["results"]["compounds"] == 66
