"""Population by age group, and coverage weighted by the residents an item serves.

Each item of a standard serves a group of residents: a kindergarten children of
3-6, elderly care residents of 60 and over, most items everyone. Profiles name
the group of every requirement, category and demand entry (``beneficiaries``);
the groups are defined in ``data/census_shares.yaml``.

A compound's group population comes from its own columns when it has them
(``pop_60plus``, ``60岁及以上``...; see the ``headers`` of each group), otherwise
from its population times the group's share for the district. The default
shares are China's Seventh National Census (2020) bulletin figures for the
whole country, finer groups split from them (DERIVED); a study can pass its
own.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"population": [1000.0, 2000.0], "60岁及以上": [300, None]})
>>> pops = group_populations(frame)
>>> pops["pop_age_60plus"].tolist(), pops["pop_source"].tolist()
([300, 374], ['mixed', 'census_share'])
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import read_yaml, read_yaml_text
from .errors import InputError
from .scoring import score_items
from .standards import ALL_RESIDENTS, STATUSES, Standard

logger = logging.getLogger(__name__)

__all__ = [
    "GROUP_SHARES_FILE",
    "POP_SOURCE_CENSUS",
    "POP_SOURCE_COLUMN",
    "POP_SOURCE_MIXED",
    "POP_SOURCE_UNKNOWN",
    "coverage_by_group",
    "coverage_by_group_summary",
    "group_column",
    "group_populations",
    "load_shares",
]

GROUP_SHARES_FILE = "census_shares.yaml"
POP_SOURCE_COLUMN = "column"
POP_SOURCE_CENSUS = "census_share"
POP_SOURCE_MIXED = "mixed"
POP_SOURCE_UNKNOWN = "unknown"

_SHARE_COLUMNS = [
    "name_zh",
    "name_en",
    "min_age",
    "max_age",
    "share",
    "status",
    "source",
    "source_what",
    "derivation",
    "headers",
    "parts",
]


def group_column(group: str) -> str:
    """The column that holds a group's population, e.g. ``pop_age_60plus``.

    Examples
    --------
    >>> group_column("all")
    'pop_all'
    """
    return f"pop_{group}"


@cache
def _packaged_shares_text() -> str:
    return (resources.files("lifecircle") / "data" / GROUP_SHARES_FILE).read_text(encoding="utf-8")


def load_shares(
    overrides: str | Path | Mapping[str, float] | pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The beneficiary groups with their population shares and provenance.

    Parameters
    ----------
    overrides
        Shares for the study's district, replacing the packaged census defaults
        of the groups they name: a mapping ``{group: share}``, a DataFrame with
        ``group`` and ``share`` columns (optional ``status``, ``source``), or the
        path of a YAML file with a ``shares:`` mapping (each value a number or
        ``{share, status, source}``) or a CSV file with those columns. Shares are
        fractions (0.187) or percentages (18.7).

    Returns
    -------
    pandas.DataFrame
        Indexed by group id: ``name_zh``, ``name_en``, ``min_age``, ``max_age``,
        ``share``, ``status``, ``source``, ``source_what``, ``derivation``,
        ``headers`` (column names recognised on compounds) and ``parts`` (groups
        summing to this one).

    Raises
    ------
    InputError
        Unknown group, share outside 0-1 (or 0-100 %), unreadable file.

    Examples
    --------
    >>> shares = load_shares()
    >>> float(shares.loc["age_60plus", "share"]), shares.loc["age_3_6", "status"]
    (0.187, 'DERIVED')
    >>> float(load_shares({"age_60plus": 25}).loc["age_60plus", "share"])
    0.25
    """
    data = read_yaml_text(_packaged_shares_text(), source="census_shares.yaml")
    sources = data["sources"]
    rows = {}
    for group, entry in data["groups"].items():
        source = sources.get(entry["source"], {})
        rows[group] = {
            "name_zh": entry.get("name_zh", ""),
            "name_en": entry.get("name_en", ""),
            "min_age": entry.get("min_age"),
            "max_age": entry.get("max_age"),
            "share": float(entry["share"]),
            "status": entry["status"],
            "source": entry["source"],
            "source_what": " ".join(str(source.get("what", "")).split()),
            "derivation": " ".join(str(entry.get("derivation", "")).split()),
            "headers": list(entry.get("headers", [])),
            "parts": list(entry.get("parts", [])),
        }
    shares = pd.DataFrame.from_dict(rows, orient="index")[_SHARE_COLUMNS]
    if overrides is not None:
        _apply_overrides(shares, overrides)
    return shares


def _apply_overrides(
    shares: pd.DataFrame, overrides: str | Path | Mapping[str, float] | pd.DataFrame
) -> None:
    origin = "the shares given"
    if isinstance(overrides, str | Path):
        origin = str(overrides)
        table = _read_overrides_file(Path(overrides))
    elif isinstance(overrides, pd.DataFrame):
        table = overrides
    else:
        table = pd.DataFrame({"group": list(overrides), "share": list(overrides.values())})
    if "group" not in table or "share" not in table:
        raise InputError("group shares need the columns group and share", file=origin)
    for row, entry in enumerate(table.to_dict("records"), start=1):
        group = str(entry["group"]).strip()
        if group == ALL_RESIDENTS or group not in shares.index:
            known = ", ".join(g for g in shares.index if g != ALL_RESIDENTS)
            raise InputError(
                f"row {row}: unknown group {group!r}; known groups: {known}", file=origin
            )
        share = _as_fraction(entry["share"], f"row {row} ({group})", origin)
        status = str(entry.get("status") or "ASSUMPTION")
        if status not in STATUSES:
            raise InputError(
                f"row {row}: unknown status {status!r}; use one of: {', '.join(STATUSES)}",
                file=origin,
            )
        shares.loc[group, "share"] = share
        shares.loc[group, "status"] = status
        shares.loc[group, "source"] = str(entry.get("source") or "USER_OVERRIDE")
        shares.loc[group, "source_what"] = f"share given for the study ({origin})"
        shares.loc[group, "derivation"] = "given for the study"


def _read_overrides_file(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError("group shares file not found", file=path)
    if path.suffix.lower() == ".csv":
        try:
            return pd.read_csv(path, encoding="utf-8-sig")
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the shares table: {exc}", file=path) from exc
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("shares"), dict):
        raise InputError("expected a YAML mapping with a 'shares:' mapping", file=path)
    rows = []
    for group, value in data["shares"].items():
        entry = value if isinstance(value, dict) else {"share": value}
        rows.append({"group": group, **entry})
    return pd.DataFrame(rows)


def _as_fraction(value: Any, where: str, origin: str) -> float:
    try:
        share = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: share {value!r} is not a number", file=origin) from None
    if share > 1.0:
        share /= 100.0  # given in per cent
    if not np.isfinite(share) or not 0.0 <= share <= 1.0:
        raise InputError(f"{where}: share {value!r} is outside 0-1 (or 0-100 %)", file=origin)
    return share


# --------------------------------------------------------------------- populations


def _find_header(columns: pd.Index, headers: list[str]) -> str | None:
    wanted = {h.strip().lower() for h in headers}
    return next((c for c in columns if str(c).strip().lower() in wanted), None)


def _numeric_column(frame: pd.DataFrame, column: str) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = frame[column].notna() & values.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise InputError(
            f"column {column!r}, row {row}: {frame[column].iloc[row - 1]!r} is not a number"
        )
    if (values < 0).any():
        row = int(np.flatnonzero((values < 0).to_numpy())[0]) + 1
        raise InputError(f"column {column!r}, row {row}: negative population")
    return values.astype(float)


def group_populations(
    communities: pd.DataFrame,
    shares: pd.DataFrame | str | Path | Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Population of every beneficiary group in every compound, in whole people.

    A group's population is read from the compound's own column when it has one
    (any of the group's ``headers``: ``pop_60plus``, ``60岁及以上``...) and the
    value is given; a group made of parts (``age_3_15``) is their sum when all
    parts are given; otherwise it is ``population x share``, rounded.

    Parameters
    ----------
    communities
        Compounds with ``population`` (NaN when unknown) and any age columns.
    shares
        The output of :func:`load_shares`, or overrides for it (see there).

    Returns
    -------
    pandas.DataFrame
        Same index as ``communities``: ``pop_<group>`` for every group
        (nullable integers; missing where the population is unknown), and
        ``pop_source``: ``column`` (every group read from the data),
        ``census_share`` (every group from shares), ``mixed`` or ``unknown``
        (no population and no age columns).

    Raises
    ------
    InputError
        An age column with text or negative numbers (column and row named).
    """
    table = shares if isinstance(shares, pd.DataFrame) and "share" in shares else None
    if table is None:
        table = load_shares(shares)
    total = (
        _numeric_column(communities, "population")
        if "population" in communities
        else pd.Series(np.nan, index=communities.index)
    )
    values: dict[str, pd.Series] = {}
    from_column: dict[str, pd.Series] = {}
    for group in table.index:
        if group == ALL_RESIDENTS:
            values[group], from_column[group] = total, total.notna()
            continue
        header = _find_header(communities.columns, table.loc[group, "headers"])
        given = (
            _numeric_column(communities, header)
            if header is not None
            else pd.Series(np.nan, index=communities.index)
        )
        parts = table.loc[group, "parts"]
        if parts and all(p in values for p in parts):
            summed = sum(values[p].where(from_column[p]) for p in parts)
            given = given.fillna(summed)
        estimate = (total * float(table.loc[group, "share"])).round()
        values[group] = given.fillna(estimate)
        from_column[group] = given.notna()
    out = pd.DataFrame(
        {group_column(g): values[g].round().astype("Int64") for g in table.index},
        index=communities.index,
    )
    age_groups = [g for g in table.index if g != ALL_RESIDENTS]
    read = pd.DataFrame({g: from_column[g] for g in age_groups}, index=communities.index)
    known = pd.DataFrame({g: values[g].notna() for g in age_groups}, index=communities.index)
    source = np.where(
        read.all(axis=1),
        POP_SOURCE_COLUMN,
        np.where(read.any(axis=1), POP_SOURCE_MIXED, POP_SOURCE_CENSUS),
    )
    out["pop_source"] = np.where(known.any(axis=1), source, POP_SOURCE_UNKNOWN)
    return out


# ------------------------------------------------------------------------ coverage


def coverage_by_group(
    scores: pd.DataFrame,
    standard: Standard,
    groups: pd.DataFrame | None = None,
    shares: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Coverage of every item, weighted by the residents it serves.

    Parameters
    ----------
    scores
        Scored compounds (``<item>_ok``, ``tier_<id>_pass``, ``population``).
    standard
        The standard they were scored against.
    groups
        :func:`group_populations` of the same rows (computed from ``scores``
        when not given).
    shares
        The group table (for names); default :func:`load_shares`.

    Returns
    -------
    pandas.DataFrame
        One row per requirement, category and tier: ``kind`` (requirement,
        category, tier), ``item``, ``tier``, ``beneficiaries`` (group id),
        ``group_name_zh``, ``group_population``, ``group_met``,
        ``group_share`` (of the group's residents, the planner's figure),
        ``population_share`` (of all residents, for comparison) and
        ``optional``. Shares are None when the group has no known residents.
        Tiers are weighted by all residents.

    Examples
    --------
    >>> from lifecircle.standards import load_standard
    >>> std = load_standard("puxieshi-2021")
    >>> scores = pd.DataFrame({"population": [1000.0, 1000.0], "pop_60plus": [400, 100],
    ...     "education_ok": [True, True], "commerce_transport_ok": [True, False],
    ...     "culture_sports_ok": [True, True], "elderly_care_ok": [True, False],
    ...     "tier_15min_pass": [True, False]})
    >>> row = coverage_by_group(scores, std).set_index("item").loc["elderly_care"]
    >>> float(row["group_share"]), float(row["population_share"])
    (0.8, 0.5)
    """
    table = shares if shares is not None else load_shares()
    pops = groups if groups is not None else group_populations(scores, table)
    everyone = (
        pd.to_numeric(scores["population"], errors="coerce").astype(float)
        if "population" in scores
        else pd.Series(np.nan, index=scores.index)
    )
    rows = []
    for item in score_items(standard):
        beneficiaries = _item_beneficiaries(standard, item.kind, item.id)
        ok = scores[f"{item.id}_ok"].astype(bool).to_numpy()
        rows.append(
            _coverage_row(item.kind, item.id, item.tier, beneficiaries, ok, pops, everyone, table)
            | {"optional": item.optional}
        )
    for tier in standard.tiers:
        column = f"tier_{tier.id}_pass"
        if column in scores:
            ok = scores[column].astype(bool).to_numpy()
            rows.append(
                _coverage_row("tier", tier.id, tier.id, ALL_RESIDENTS, ok, pops, everyone, table)
                | {"optional": False}
            )
    return pd.DataFrame(rows)


def _item_beneficiaries(standard: Standard, kind: str, item_id: str) -> str:
    if kind == "requirement":
        requirement = standard.requirement(item_id)
        return requirement.beneficiaries if requirement is not None else ALL_RESIDENTS
    category = next(c for c in standard.categories if c.id == item_id)
    return category.beneficiaries


def _coverage_row(
    kind: str,
    item: str,
    tier: str,
    group: str,
    ok: np.ndarray,
    pops: pd.DataFrame,
    everyone: pd.Series,
    table: pd.DataFrame,
) -> dict[str, Any]:
    if group == ALL_RESIDENTS:  # the unrounded population, as in the other summaries
        weights = everyone.to_numpy(dtype=float)
    else:
        weights = pops[group_column(group)].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    known = np.isfinite(weights)
    population = float(weights[known].sum())
    met = float(weights[known & ok].sum())
    all_w = everyone.to_numpy(dtype=float)
    all_known = np.isfinite(all_w)
    all_total = float(all_w[all_known].sum())
    return {
        "kind": kind,
        "item": item,
        "tier": tier,
        "beneficiaries": group,
        "group_name_zh": table.loc[group, "name_zh"] if group in table.index else "",
        "group_population": round(population, 1),
        "group_met": round(met, 1),
        "group_share": round(met / population, 4) if population > 0 else None,
        "population_share": round(float(all_w[all_known & ok].sum()) / all_total, 4)
        if all_total > 0
        else None,
    }


def coverage_by_group_summary(
    scores: pd.DataFrame,
    standard: Standard,
    groups: pd.DataFrame | None = None,
    shares: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """:func:`coverage_by_group` as JSON-ready data for ``summary.json``.

    Returns
    -------
    dict
        ``items``: ``{item: {kind, tier, beneficiaries, group_name_zh,
        group_population, group_met, group_share, population_share}}`` for
        requirements and categories; ``tiers``: the same for tiers;
        ``population_by_group``: ``{group: residents}``; ``pop_source``:
        ``{source: compounds}``; ``shares``: ``{group: {share, status,
        source, derivation}}`` of the groups used.
    """
    table = shares if shares is not None else load_shares()
    pops = groups if groups is not None else group_populations(scores, table)
    frame = coverage_by_group(scores, standard, pops, table)
    fields = [c for c in frame.columns if c not in ("item", "optional")]

    def as_dict(rows: pd.DataFrame) -> dict[str, Any]:
        return {str(r["item"]): {k: _plain(r[k]) for k in fields} for r in rows.to_dict("records")}

    used = sorted(set(frame["beneficiaries"]))
    return {
        "items": as_dict(frame[frame["kind"] != "tier"]),
        "tiers": as_dict(frame[frame["kind"] == "tier"]),
        "population_by_group": {
            g: int(pops[group_column(g)].sum()) for g in table.index if group_column(g) in pops
        },
        "pop_source": {str(k): int(v) for k, v in pops["pop_source"].value_counts().items()},
        "shares": {
            g: {
                "share": float(table.loc[g, "share"]),
                "status": str(table.loc[g, "status"]),
                "source": str(table.loc[g, "source"]),
                "derivation": str(table.loc[g, "derivation"]),
            }
            for g in used
        },
    }


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if value is pd.NA:
        return None
    return value
