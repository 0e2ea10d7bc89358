"""Tests of the one options object (lifecircle.options) and the CLI built from it."""

from __future__ import annotations

import dataclasses

import pytest
import typer.main

from lifecircle.cli import app
from lifecircle.errors import InputError
from lifecircle.options import Inputs, Options


def test_defaults_units_and_help_live_in_one_place() -> None:
    opts = Options()
    assert (opts.max_snap_m, opts.cell_m, opts.minutes, opts.grid) == (
        250.0,
        100.0,
        (5, 10, 15),
        "square",
    )
    for spec in Options.specs():
        assert spec.help, spec.name
    assert Options.describe("walk_speed").endswith("[m/min]")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"walk_speed": 0}, "walk_speed must be a positive"),
        ({"max_snap_m": -1}, "max_snap_m must be a positive"),
        ({"minutes": "5,x"}, "minutes must be a number"),
        ({"minutes": [-5]}, "minutes must be positive"),
        ({"threshold_rule": "seconds"}, "threshold_rule must be one of metres, minutes"),
        ({"crs": "moon"}, "crs:"),
        ({"cell_m": 5}, "cell_m must be between"),
        ({"isochrones": "yes"}, "isochrones must be true or false"),
    ],
)
def test_bad_values_are_refused_naming_the_option(changes: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Options(**changes)


def test_replace_and_mapping() -> None:
    opts = Options().replace(walk_speed=60, threshold_rule=None)
    assert opts.walk_speed == 60.0 and opts.threshold_rule is None
    with pytest.raises(InputError, match="unknown option"):
        Options().replace(speed=3)
    with pytest.raises(InputError, match="unknown option"):
        Options.from_mapping({"minute": [5]})
    assert Options.from_mapping({"minutes": [5, 10]}).minutes == (5.0, 10.0)
    assert Options(facilities_crs="gcj02").layer_crs("facilities") == "gcj02"
    assert Options(crs="bd09").layer_crs("gates") == "bd09"


def _flags(command: str) -> set[str]:
    click_app = typer.main.get_command(app)
    cmd = click_app.commands[command]  # type: ignore[attr-defined]
    out: set[str] = set()
    for param in cmd.params:
        out.update(param.opts)
        out.update(getattr(param, "secondary_opts", []))
    return out


@pytest.mark.parametrize("command", ["score", "site", "scenario", "demo", "batch"])
def test_every_study_command_takes_the_same_study_and_run_options(command: str) -> None:
    flags = _flags(command)
    for flag in (
        "--walk-speed",
        "--threshold-rule",
        "--max-snap",
        "--standard",
        "--cell",
        "--grid",
        "--no-isochrones",
        "--no-robustness",
        "--basemap",
        "--lang",
        "--cdn",
    ):
        assert flag in flags, (command, flag)


def test_map_takes_the_render_options() -> None:
    assert {"--basemap", "--lang", "--cdn"} <= _flags("map")


def test_every_option_field_has_a_flag_in_score() -> None:
    flags = _flags("score")
    for spec in Options.specs(("crs", "study", "run", "render")):
        assert f"--{spec.flag}" in flags


def test_inputs_check_refuses_missing_and_empty_files(tmp_path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="no such file"):
        Inputs(tmp_path / "nope.osm", (empty,), empty).check()
    net = tmp_path / "n.geojson"
    net.write_text("{}")
    with pytest.raises(InputError, match="empty"):
        Inputs(net, (empty,), net).check()


def test_options_are_frozen_and_picklable() -> None:
    import pickle

    opts = Options(walk_speed=70)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.walk_speed = 3  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(opts)) == opts
