"""Every bad path and every bad option, given to every command: exit 2, a message, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecircle.datasets import demo_data

from .conftest import run_main

DEMO = demo_data()


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run_main(args)
    return code, capsys.readouterr().err


def _study_args(tmp_path: Path, **changes: str) -> list[str]:
    files = {
        "--network": str(DEMO.streets),
        "--facilities": str(DEMO.pois),
        "--communities": str(DEMO.compounds),
        "--gates": str(DEMO.gates),
        "--out": str(tmp_path / "out"),
    }
    files.update(changes)
    return [x for pair in files.items() for x in pair]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    empty = folder / "empty.geojson"
    empty.write_text("")
    points = folder / "points.geojson"
    points.write_text(
        '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},'
        '"geometry":{"type":"Point","coordinates":[120.66,28.01]}}]}'
    )
    csv = folder / "boundary.csv"
    csv.write_text("a,b\n1,2\n")
    a_file = folder / "a_file.txt"
    a_file.write_text("x")
    return {
        "missing": folder / "nope.geojson",
        "empty": empty,
        "points": points,
        "csv": csv,
        "folder": folder,
        "a_file": a_file,
    }


COMMANDS = ["score", "site", "scenario"]


def _command_args(command: str, tmp_path: Path, **changes: str) -> list[str]:
    head = [command]
    if command == "scenario":
        scenario = tmp_path / "s.yaml"
        scenario.write_text("name: x\nremove_facilities: []\n", encoding="utf-8")
        head.append(str(scenario))
    return [*head, *_study_args(tmp_path, **changes), "--facilities-crs", "gcj02", "--quiet"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("flag", "which"),
    [
        ("--network", "missing"),
        ("--network", "empty"),
        ("--facilities", "missing"),
        ("--communities", "empty"),
        ("--gates", "missing"),
        ("--boundary", "points"),
        ("--boundary", "csv"),
        ("--boundary", "empty"),
        ("--out", "a_file"),
    ],
)
def test_bad_paths(command: str, flag: str, which: str, tmp_path: Path, bad_files, capsys) -> None:
    code, err = _run(_command_args(command, tmp_path, **{flag: str(bad_files[which])}), capsys)
    assert code == 2, err
    assert "Traceback" not in err and "internal error" not in err
    assert "error" in err


@pytest.mark.parametrize("command", [*COMMANDS, "demo"])
@pytest.mark.parametrize(
    "option",
    [
        ["--walk-speed", "0"],
        ["--walk-speed", "-60"],
        ["--max-snap", "-1"],
        ["--minutes", "5,x"],
        ["--minutes", "0"],
        ["--cell", "0"],
        ["--grid", "hex"],
        ["--lang", "fr"],
        ["--basemap", "google"],
        ["--threshold-rule", "seconds"],
        ["--standard", "no-such-standard"],
        ["--max-reject-share", "2"],
        ["--score-basis", "some"],
    ],
)
def test_bad_options(command: str, option: list[str], tmp_path: Path, capsys) -> None:
    if command == "demo":
        args = ["demo", "--out", str(tmp_path / "o"), "--quiet", *option]
    else:
        args = [*_command_args(command, tmp_path), *option]
    code, err = _run(args, capsys)
    assert code == 2, err
    assert "Traceback" not in err and "internal error" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["map", "{missing}"],
        ["map", "{folder}"],
        ["batch", "{missing}"],
        ["batch", "{empty}"],
        ["standards", "show", "no-such"],
        ["site", "--k", "0"],
        ["site", "--method", "best"],
        ["site", "--type", "no_such_type"],
        ["site", "--spacing", "-5"],
        ["score", "--crs", "moon"],
        ["score", "--facilities-crs", "EPSG:999999"],
    ],
)
def test_other_bad_input(args: list[str], tmp_path: Path, bad_files, capsys) -> None:
    filled = [a.format(**{k: str(v) for k, v in bad_files.items()}) for a in args]
    if filled[0] in ("site", "score") and len(filled) > 1 and filled[1].startswith("--"):
        filled = [*_command_args(filled[0], tmp_path), *filled[1:]]
    code, err = _run(filled, capsys)
    assert code == 2, err
    assert "Traceback" not in err and "internal error" not in err
