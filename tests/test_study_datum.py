"""Datum checks wired into the study: warnings that name the option, and ``auto``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lifecircle.coords import gcj02_to_bd09
from lifecircle.datasets import demo_data
from lifecircle.options import Options
from lifecircle.study import Study

DEMO = demo_data()


@pytest.fixture(scope="module")
def bd09_pois(tmp_path_factory: pytest.TempPathFactory) -> Path:
    table = pd.read_csv(DEMO.pois, encoding="utf-8-sig", dtype=str)
    lon, lat = table["location"].str.split(",", expand=True).astype(float).T.to_numpy()
    blon, blat = gcj02_to_bd09(lon, lat)
    table["location"] = [f"{x:.6f},{y:.6f}" for x, y in zip(blon, blat, strict=True)]
    path = tmp_path_factory.mktemp("bd09") / "baidu_pois.csv"
    table.to_csv(path, index=False, encoding="utf-8-sig")
    return path


def _study(pois: Path, **crs: str) -> Study:
    options = Options(standard="puxieshi-2021", progress=False, **crs)
    return Study.from_files(DEMO.streets, pois, DEMO.compounds, gates=DEMO.gates, options=options)


@pytest.fixture(scope="module")
def reference() -> dict:
    return _study(DEMO.pois, facilities_crs="gcj02").summary()


def test_a_baidu_export_declared_wgs84_is_caught(bd09_pois: Path, reference: dict) -> None:
    summary = _study(bd09_pois).summary()
    fit = next(f for f in summary["data_checks"]["datum"] if f["layer"] == "facilities")
    assert fit["mismatch"] and fit["best"] == "bd09"
    assert fit["medians_m"]["wgs84"] > 2 * fit["medians_m"]["bd09"]
    assert any("--facilities-crs bd09" in w for w in summary["warnings"])
    # the wrong reading gives a wrong verdict: that is why the warning matters
    assert summary["results"]["completeness"] < reference["results"]["completeness"] - 0.02


def test_auto_reads_the_baidu_export_right(bd09_pois: Path, reference: dict) -> None:
    summary = _study(bd09_pois, facilities_crs="auto").summary()
    fit = next(f for f in summary["data_checks"]["datum"] if f["layer"] == "facilities")
    assert fit["declared"] == "auto" and fit["chosen"] == "bd09" and not fit["mismatch"]
    assert not any("--facilities-crs" in w for w in summary["warnings"])
    # BD-09 -> WGS84 round trips to centimetres: the same verdicts as the GCJ-02 original
    assert summary["results"]["completeness"] == pytest.approx(
        reference["results"]["completeness"], abs=1e-4
    )


def test_wgs84_gates_under_a_gcj02_crs_for_every_layer_are_caught() -> None:
    summary = _study(DEMO.pois, crs="gcj02").summary()
    gates = next(f for f in summary["data_checks"]["datum"] if f["layer"] == "gates")
    assert gates["mismatch"] and gates["best"] == "wgs84"
    assert any("--gates-crs wgs84" in w for w in summary["warnings"])


def test_right_declarations_raise_no_alarm(reference: dict) -> None:
    assert all(not f["mismatch"] for f in reference["data_checks"]["datum"])
    assert not any("fit the street network" in w for w in reference["warnings"])


def test_auto_gives_no_column_name_hint_that_the_fit_answers(caplog) -> None:
    with caplog.at_level("WARNING"):
        summary = _study(DEMO.pois, crs="auto").summary()
    notes = " ".join(" ".join(r["notes"]) for r in summary["loading"])
    assert "looks like an Amap export" not in notes + caplog.text
    fit = next(f for f in summary["data_checks"]["datum"] if f["layer"] == "facilities")
    assert fit["chosen"] == "gcj02"
    # declared wgs84, the same export still gets the hint and the fit's warning
    plain = _study(DEMO.pois).summary()
    assert "looks like an Amap export" in " ".join(" ".join(r["notes"]) for r in plain["loading"])
