"""The README tells the truth: its commands and options exist, its outputs table is complete."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from lifecircle.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 3)
    return text[start : end if end > 0 else None]


def _command_block() -> str:
    section = _section("Command line")
    return section[section.index("```") + 3 : section.index("```", section.index("```") + 3)]


def _commands() -> dict[str, list[str]]:
    """Documented command -> the flags written on its lines."""
    out: dict[str, list[str]] = {}
    current = None
    for line in _command_block().splitlines():
        words = line.split()
        if words[:1] == ["lifecircle"]:
            name = " ".join(w for w in words[1:3] if re.fullmatch(r"[a-z]+", w))
            group = app_groups()
            current = name if name.split()[0] in group else words[1]
            out.setdefault(current, [])
        if current is not None:
            out[current] += re.findall(r"--[a-z][a-z-]*", line)
    return out


def app_groups() -> set[str]:
    return {"standards", "taxonomy"}


def _click_command(name: str):
    command = typer.main.get_command(app)
    for part in name.split():
        command = command.commands[part]  # type: ignore[attr-defined]
    return command


def _flags(command) -> set[str]:
    flags = {"--help"}
    for param in command.params:
        flags.update(param.opts)
        flags.update(getattr(param, "secondary_opts", []))
    return flags


def test_every_documented_command_and_option_exists() -> None:
    documented = _commands()
    assert {"score", "demo", "map", "site", "scenario", "batch"} <= set(documented)
    for name, flags in documented.items():
        command = _click_command(name)
        missing = sorted(set(flags) - _flags(command))
        assert not missing, f"README documents {missing} for `lifecircle {name}`"


def test_outputs_table_lists_exactly_what_score_writes(demo_outputs: Path) -> None:
    section = _section("Outputs")
    table = section[section.index("| file |") : section.index("\n\n", section.index("| file |"))]
    documented: set[str] = set()
    for row in table.splitlines()[2:]:
        documented.update(re.findall(r"`([\w.]+)`", row.split("|")[1]))
    written = {p.name for p in demo_outputs.iterdir()}
    demo_only = {"sites.csv", "sites.gpkg", "sites.json", "whatif.json"}  # the siting step
    demo_only |= {"shuttle.gpkg", "shuttle_timetable.csv", "shuttle_reach.csv", "shuttle.json"}
    assert documented == written - demo_only
