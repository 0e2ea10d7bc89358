"""Facility taxonomy: which facility type a POI row is.

The rules live in a data file, ``lifecircle/data/taxonomy.yaml``, which maps
rows of OpenStreetMap extracts, Amap (高德) POI exports and plain tables to the
stable facility type ids used everywhere in lifecircle (``kindergarten``,
``bus_stop``, ...). The file's header documents its layout. A planner can
extend it, or replace it, with a file of the same layout.

A row is classified in stages, the first hit winning (the data file's header
gives the details): planner overrides, a ``type`` column holding a type id or
name, specific tags and type codes, decisive names (幼儿园, 菜市场, 小学),
generic tags (``amenity=childcare``), other name keywords. A type's
``exclude`` regexes veto it (宠物医院 is no hospital); a vetoed tag is flagged as
an implausible tag/name pair. A type's ``also`` rules add the further types a
row serves (a 九年一贯制 school is a primary and a middle school).

:meth:`Taxonomy.audit` tells how every row was typed, :func:`check_file` does it
for a file (a planner edits its CSV and feeds it back with
:meth:`Taxonomy.with_overrides`), :func:`explode_types` gives one row per type
served, and :func:`evaluate` measures precision and recall on labelled rows.

Examples
--------
>>> import pandas as pd
>>> rows = pd.DataFrame({"name": ["清华附小", "宠物医院", "朝阳公园"],
...                      "amenity": ["school", None, None]})
>>> default_taxonomy().classify(rows).tolist()
['primary_school', None, 'park']
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import read_yaml, read_yaml_text
from .errors import InputError

__all__ = [
    "KEY_COLUMNS",
    "NOT_A_FACILITY",
    "FacilityCategory",
    "FacilityType",
    "Taxonomy",
    "check_file",
    "default_taxonomy",
    "evaluate",
    "explode_types",
    "load_taxonomy",
    "read_overrides",
]

logger = logging.getLogger(__name__)

PACKAGED_FILE = "lifecircle/data/taxonomy.yaml"

_TOP_KEYS = frozenset({"version", "categories", "exclude_sets", "keyword_skip", "types"})
_TYPE_KEYS = frozenset(
    {"id", "name_zh", "name_en", "category", "icon", "color", "match", "exclude", "before", "also"}
)
_REQUIRED_TYPE_KEYS = ("id", "name_zh", "name_en", "category")
_GROUP_KEYS = frozenset(
    {
        "source",
        "status",
        "osm",
        "amap_typecodes",
        "amap_types",
        "keywords",
        "require_name",
        "generic",
        "decisive",
    }
)
_ALSO_KEYS = (_GROUP_KEYS - {"generic", "decisive"}) | {"types"}
_MATCHER_KEYS = ("osm", "amap_typecodes", "amap_types", "keywords")
_STATUSES = frozenset(
    {
        "CONFIRMED",
        "CONFIRMED_FIXTURE",
        "CONFIRMED_SECONDARY",
        "CONFIRMED_SUPERSEDED",
        "UNCONFIRMED",
        "DERIVED",
        "ASSUMPTION",
    }
)
_ID_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
_COLOR_PATTERN = re.compile(r"#[0-9a-fA-F]{6}")
_CODE_PATTERN = re.compile(r"\d{6}|\d{1,5}\*")
_DEFAULT_ICON = "map-marker"
_DEFAULT_COLOR = "#7f7f7f"


# --------------------------------------------------------------------- public types
@dataclass(frozen=True)
class FacilityType:
    """One facility type of the taxonomy.

    Attributes
    ----------
    id
        Stable lower-case id used everywhere downstream, e.g. ``"kindergarten"``.
    name_zh, name_en
        Display names.
    category
        Category id, e.g. ``"education"``.
    icon
        Font Awesome 4 icon name for maps.
    color
        Hex colour for maps, e.g. ``"#6baed6"``.

    Examples
    --------
    >>> default_taxonomy().types["bus_stop"].icon
    'bus'
    """

    id: str
    name_zh: str
    name_en: str
    category: str
    icon: str
    color: str


@dataclass(frozen=True)
class FacilityCategory:
    """One facility category (education, health, ...).

    Examples
    --------
    >>> default_taxonomy().categories["health"].name_zh
    '医疗卫生'
    """

    id: str
    name_zh: str
    name_en: str


# ------------------------------------------------------------------- compiled rules
@dataclass(frozen=True)
class _TagTest:
    """One key of an OSM tag set: a value set or a regex."""

    key: str
    values: frozenset[str] | None = None
    pattern: re.Pattern[str] | None = None

    def describe(self) -> str:
        if self.pattern is not None:
            return f"{self.key}~{self.pattern.pattern}"
        return f"{self.key}={'|'.join(sorted(self.values or ()))}"


@dataclass(frozen=True)
class _CodeSet:
    """Amap type codes: exact six-digit codes and prefixes written ``"1509*"``."""

    exact: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)

    def describe(self) -> str:
        return ", ".join([*sorted(self.exact), *(f"{p}*" for p in self.prefixes)])


@dataclass(frozen=True)
class _RuleGroup:
    """A rule group of one type: matchers plus provenance."""

    osm: tuple[tuple[_TagTest, ...], ...] = ()
    amap_codes: _CodeSet = _CodeSet()
    amap_types: frozenset[str] = frozenset()
    keywords: re.Pattern[str] | None = None
    keyword_texts: tuple[str, ...] = ()
    require_name: re.Pattern[str] | None = None
    source: str = ""
    status: str = ""
    generic: bool = False
    decisive: bool = False

    @property
    def has_tag_rules(self) -> bool:
        return bool(self.osm or self.amap_codes or self.amap_types)


@dataclass(frozen=True)
class _AlsoRule:
    """Rows of the owning type that match ``group`` also serve ``types``."""

    group: _RuleGroup
    types: tuple[str, ...]


@dataclass(frozen=True)
class _TypeRules:
    groups: tuple[_RuleGroup, ...]
    exclude: re.Pattern[str] | None
    exclude_texts: tuple[str, ...]
    also: tuple[_AlsoRule, ...] = ()


@dataclass
class _Document:
    """A parsed, validated taxonomy file (or the merge of several)."""

    categories: dict[str, FacilityCategory]
    exclude_sets: dict[str, tuple[str, ...]]
    keyword_skip: list[_RuleGroup]
    types: dict[str, tuple[FacilityType, _TypeRules]]


# ----------------------------------------------------------------------- the table
def _as_text(values: pd.Series) -> pd.Series:
    """Cell values as stripped strings (object dtype, None when missing).

    Whole floats lose their ``.0`` so that a code read as 141203.0 stays 141203.
    """
    text = values.astype("string").str.strip()
    text = text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    text = text.where(text != "")
    return text.astype(object).where(text.notna(), None).reset_index(drop=True)


class _Rows:
    """Normalised views of the columns the rules read, computed once per table."""

    def __init__(self, table: pd.DataFrame) -> None:
        self._table = table
        self._tags: dict[str, pd.Series | None] = {}
        self.size = len(table)
        name = self._column("name")
        if name is None:
            self.name = pd.Series([""] * self.size, dtype=object)
        else:
            normalised = _as_text(name).astype("string").str.normalize("NFKC")
            self.name = normalised.fillna("").astype(object)
        self.codes = self._exploded_codes()
        self.amap_types, self.amap_type_last = self._exploded_amap_types()

    def _column(self, key: str) -> pd.Series | None:
        if key not in self._table.columns:
            return None
        column = self._table[key]
        if isinstance(column, pd.DataFrame):
            raise InputError("the column appears more than once", column=key)
        return column

    def tag(self, key: str) -> pd.Series | None:
        """The OSM tag column ``key`` as text, or None when the table lacks it."""
        if key == "name":
            return self.name.where(self.name != "", None)
        if key not in self._tags:
            column = self._column(key)
            self._tags[key] = None if column is None else _as_text(column)
        return self._tags[key]

    def type_text(self) -> pd.Series | None:
        column = self._column("type")
        if column is None:
            return None
        return _as_text(column).astype("string").str.normalize("NFKC").str.lower()

    def _exploded_codes(self) -> pd.Series | None:
        column = self._column("typecode")
        if column is None:
            return None
        text = _as_text(column).astype("string").str.normalize("NFKC").astype(object)
        parts = text.str.split(r"[|;,\s]+", regex=True).explode()
        parts = parts[parts.notna() & (parts != "")].astype(str)
        short_numbers = parts.str.fullmatch(r"\d{1,5}")
        # spreadsheets drop the leading zero of codes such as 060200
        return parts.where(~short_numbers, parts.str.zfill(6))

    def _exploded_amap_types(self) -> tuple[pd.Series | None, pd.Series | None]:
        column = self._column("type")
        if column is None:
            return None, None
        text = _as_text(column).astype("string").str.normalize("NFKC").astype(object)
        parts = text.str.split("|").explode()
        parts = parts[parts.notna()].astype(str).str.strip()
        parts = parts[parts != ""]
        return parts, parts.str.rsplit(";", n=1).str[-1].str.strip()


# ----------------------------------------------------------------------- matching
def _contains(values: pd.Series, pattern: re.Pattern[str]) -> np.ndarray:
    """Whether each value contains ``pattern`` (False for missing values)."""
    with warnings.catch_warnings():
        # rule regexes group alternatives with (...); only the yes/no answer matters here
        warnings.filterwarnings("ignore", "This pattern is interpreted", UserWarning)
        found = values.str.contains(pattern.pattern, flags=pattern.flags, na=False)
    return found.to_numpy(dtype=bool)


def _name_hits(pattern: re.Pattern[str], rows: _Rows, pos: np.ndarray) -> np.ndarray:
    return _contains(rows.name.iloc[pos], pattern)


def _matched_text(pattern: re.Pattern[str], values: pd.Series) -> pd.Series:
    """The first substring each value has in common with ``pattern``."""
    found = values.str.extract(f"({pattern.pattern})", flags=pattern.flags)[0]
    return found.fillna("").astype(str)


def _match_tag_set(
    tests: tuple[_TagTest, ...], rows: _Rows, pos: np.ndarray
) -> tuple[np.ndarray, pd.Series]:
    """Rows (of ``pos``) that carry every tag of the set, with a label each."""
    hit = np.ones(len(pos), dtype=bool)
    for test in tests:
        column = rows.tag(test.key)
        if column is None:
            return np.zeros(len(pos), dtype=bool), pd.Series(dtype=object)
        values = column.iloc[pos]
        if test.pattern is not None:
            hit &= _contains(values, test.pattern)
        else:
            hit &= values.isin(test.values or ()).to_numpy(bool)
        if not hit.any():
            return hit, pd.Series(dtype=object)
    label = pd.Series("osm", index=pos[hit], dtype=object)
    for test in tests:
        values = rows.tag(test.key).iloc[pos[hit]]  # type: ignore[union-attr]
        if test.pattern is not None:
            label += f" {test.key}~" + _matched_text(test.pattern, values).to_numpy()
        else:
            label += f" {test.key}=" + values.astype(str).to_numpy()
    return hit, label


def _match_codes(codes: _CodeSet, rows: _Rows, pos: np.ndarray) -> tuple[np.ndarray, pd.Series]:
    if rows.codes is None or not codes:
        return np.zeros(len(pos), dtype=bool), pd.Series(dtype=object)
    candidates = rows.codes[rows.codes.index.isin(pos)]
    found = candidates.isin(codes.exact)
    if codes.prefixes:
        found |= candidates.str.startswith(codes.prefixes)
    first = candidates[found].groupby(level=0).first()
    return np.isin(pos, first.index), "amap typecode " + first.astype(object)


def _match_amap_types(
    types: frozenset[str], rows: _Rows, pos: np.ndarray
) -> tuple[np.ndarray, pd.Series]:
    if rows.amap_types is None or rows.amap_type_last is None or not types:
        return np.zeros(len(pos), dtype=bool), pd.Series(dtype=object)
    in_pos = rows.amap_types.index.isin(pos)
    full, last = rows.amap_types[in_pos], rows.amap_type_last[in_pos]
    first = full[full.isin(types) | last.isin(types)].groupby(level=0).first()
    return np.isin(pos, first.index), "amap type " + first.astype(object)


def _match_keywords(
    pattern: re.Pattern[str], rows: _Rows, pos: np.ndarray
) -> tuple[np.ndarray, pd.Series]:
    hit = _name_hits(pattern, rows, pos)
    matched = _matched_text(pattern, rows.name.iloc[pos[hit]])
    return hit, pd.Series("keyword " + matched.to_numpy(), index=pos[hit], dtype=object)


def _group_applies(group: _RuleGroup, *, by_keyword: bool) -> bool:
    return group.keywords is not None if by_keyword else group.has_tag_rules


#: Classification stages after overrides and the ``type`` column, in order.
_STAGES = ("specific", "decisive", "generic", "keyword")
NOT_A_FACILITY = "none"


def _in_stage(group: _RuleGroup, stage: str) -> bool:
    if stage == "specific":
        return group.has_tag_rules and not group.generic
    if stage == "decisive":
        return group.keywords is not None and group.decisive
    if stage == "generic":
        return group.has_tag_rules and group.generic
    return group.keywords is not None and not group.decisive


class _State:
    """What is known about each row while the stages run."""

    def __init__(self, size: int) -> None:
        self.types = np.full(size, None, dtype=object)
        # types served besides the main one, for the few rows that serve several
        self.extra: dict[int, list[str]] = {}
        self.reasons = np.full(size, None, dtype=object)
        self.rule_ids = np.full(size, None, dtype=object)
        self.sources = np.full(size, "", dtype=object)
        self.statuses = np.full(size, "", dtype=object)
        self.stage = np.full(size, "", dtype=object)
        self.flags: list[list[str]] = [[] for _ in range(size)]
        self.decided = np.zeros(size, dtype=bool)

    def decide(
        self,
        pos: np.ndarray,
        types: Sequence[str],
        reasons: np.ndarray | str,
        rule_id: str,
        source: str,
        status: str,
    ) -> None:
        """Rows ``pos`` serve ``types`` (main first; ``none``: not a facility)."""
        served = [t for t in types if t != NOT_A_FACILITY]
        self.types[pos] = served[0] if served else None
        for i in pos if len(served) > 1 else ():
            self.extra[int(i)] = list(served[1:])
        self.reasons[pos] = reasons
        self.rule_ids[pos] = rule_id
        self.sources[pos] = source
        self.statuses[pos] = status
        self.decided[pos] = True

    def add_types(self, pos: np.ndarray, types: Sequence[str]) -> None:
        for i in pos:
            served = self.extra.setdefault(int(i), [])
            served.extend(t for t in types if t not in served and t != self.types[i])

    def flag_implausible(
        self, pos: np.ndarray, labels: np.ndarray, type_id: str, rows: _Rows
    ) -> None:
        for i, label in zip(pos, labels, strict=True):
            if not self.decided[i]:
                self.flags[i].append(f"implausible: {label} ({type_id}) with name {rows.name[i]}")

    def frame(self, index: pd.Index) -> pd.DataFrame:
        joined = self.types.copy()
        for i, served in self.extra.items():
            if served and joined[i] is not None:
                joined[i] = ";".join([joined[i], *served])
        return pd.DataFrame(
            {
                "type": pd.Series(self.types, index=index, dtype=object),
                "types": pd.Series(joined, index=index, dtype=object),
                "matched_by": pd.Series(self.reasons, index=index, dtype=object),
                "rule_id": pd.Series(self.rule_ids, index=index, dtype=object),
                "rule_source": pd.Series(self.sources, index=index, dtype=object),
                "rule_status": pd.Series(self.statuses, index=index, dtype=object),
                "flags": pd.Series(["; ".join(f) for f in self.flags], index=index, dtype=object),
            }
        )


def _match_group(
    group: _RuleGroup, rows: _Rows, pos: np.ndarray, *, by_keyword: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (of ``pos``) the group matches, with a ``matched_by`` label each."""
    found_labels: list[pd.Series] = []
    hit = np.zeros(len(pos), dtype=bool)
    if by_keyword:
        clauses: list[tuple[str, Any]] = [("keywords", group.keywords)]
    else:
        clauses = [("osm", tags) for tags in group.osm]
        clauses += [("codes", group.amap_codes), ("types", group.amap_types)]
    for kind, rule in clauses:
        todo = pos[~hit]
        if len(todo) == 0:
            break
        if kind == "osm":
            found, labels = _match_tag_set(rule, rows, todo)
        elif kind == "codes":
            found, labels = _match_codes(rule, rows, todo)
        elif kind == "types":
            found, labels = _match_amap_types(rule, rows, todo)
        else:
            found, labels = _match_keywords(rule, rows, todo)
        hit[~hit] = found
        if found.any():
            found_labels.append(labels)
    matched = pos[hit]
    if len(matched) == 0:
        return matched, np.array([], dtype=object)
    reasons = pd.concat(found_labels).loc[matched]
    if group.require_name is not None:
        named = _name_hits(group.require_name, rows, matched)
        matched = matched[named]
        names = rows.name.iloc[matched]
        reasons = reasons.loc[matched] + (
            " + name~" + _matched_text(group.require_name, names).to_numpy()
        )
    return matched, reasons.to_numpy(dtype=object)


# ----------------------------------------------------------------------- taxonomy
class Taxonomy:
    """Facility types in priority order, with the rules that recognise them.

    Build one with :func:`load_taxonomy` or :func:`default_taxonomy`.

    Attributes
    ----------
    types
        Facility types by id, in priority order (the first type whose rules
        match a row wins).
    categories
        The facility categories by id.
    source
        The file(s) the taxonomy was read from.

    Examples
    --------
    >>> tax = default_taxonomy()
    >>> tax.type_ids()[:3]
    ['nursery', 'kindergarten', 'primary_school']
    >>> tax.category_of("bus_stop")
    'transport'
    """

    def __init__(self, document: _Document, source: str) -> None:
        self.types: dict[str, FacilityType] = {tid: t for tid, (t, _) in document.types.items()}
        self.categories: dict[str, FacilityCategory] = dict(document.categories)
        self.source = source
        self._rules: dict[str, _TypeRules] = {tid: r for tid, (_, r) in document.types.items()}
        self._keyword_skip = tuple(document.keyword_skip)
        self._direct_lookup = _direct_lookup(self.types, source)
        self._overrides: dict[tuple[str, str], tuple[str, ...]] = {}

    def __repr__(self) -> str:
        return f"Taxonomy({len(self.types)} types from {self.source})"

    def __len__(self) -> int:
        return len(self.types)

    def __contains__(self, type_id: object) -> bool:
        return type_id in self.types

    def type_ids(self) -> list[str]:
        """Type ids in priority order.

        Examples
        --------
        >>> len(default_taxonomy().type_ids())
        26
        """
        return list(self.types)

    def category_of(self, type_id: str) -> str:
        """Category id of a facility type.

        Raises
        ------
        InputError
            If ``type_id`` is not a type of this taxonomy.

        Examples
        --------
        >>> default_taxonomy().category_of("park")
        'green_space'
        """
        if type_id not in self.types:
            raise InputError(
                f"unknown facility type {type_id!r}; known types: {', '.join(self.types)}"
            )
        return self.types[type_id].category

    def classify(self, table: pd.DataFrame) -> pd.Series:
        """Facility type id of every row, None where no rule matches.

        Parameters
        ----------
        table
            Any table of facilities. Columns used when present: OSM tag columns
            named as the OSM keys (``amenity``, ``shop``, ``leisure``, ...),
            ``typecode`` (Amap codes, several joined with ``|``), ``type``
            (an Amap type string, or directly a type id or type name) and
            ``name``.

        Returns
        -------
        pandas.Series
            Object dtype, aligned with ``table.index``.

        Examples
        --------
        >>> import pandas as pd
        >>> rows = pd.DataFrame({"typecode": ["141203", "060703|060706", "141201"],
        ...                      "name": ["实验小学", "东门菜场", "某某大学"]})
        >>> default_taxonomy().classify(rows).tolist()
        ['primary_school', 'fresh_market', None]
        """
        return self.explain(table)["type"]

    def explain(self, table: pd.DataFrame) -> pd.DataFrame:
        """Facility type of every row and the rule that decided it.

        Returns
        -------
        pandas.DataFrame
            Aligned with ``table.index``; column ``type`` (as :meth:`classify`)
            and ``matched_by``, e.g. ``"osm amenity=kindergarten"``,
            ``"amap typecode 141203"``, ``"keyword 幼儿园"`` or ``"type column"``.
            :meth:`audit` gives more.

        Examples
        --------
        >>> import pandas as pd
        >>> rows = pd.DataFrame({"name": ["阳光幼儿园"], "type": [None]})
        >>> default_taxonomy().explain(rows).iloc[0].tolist()
        ['kindergarten', 'keyword 幼儿园']
        """
        return self.audit(table)[["type", "matched_by"]]

    def classify_types(self, table: pd.DataFrame) -> pd.Series:
        """Every facility type each row serves, ``";"``-joined, main type first.

        A nine-year school (九年一贯制) serves ``primary_school;middle_school``;
        rows of no type are None. The first type is the one :meth:`classify`
        returns.

        Examples
        --------
        >>> import pandas as pd
        >>> rows = pd.DataFrame({"name": ["某某九年一贯制学校", "阳光幼儿园"]})
        >>> default_taxonomy().classify_types(rows).tolist()
        ['primary_school;middle_school', 'kindergarten']
        """
        return self.audit(table)["types"]

    def audit(self, table: pd.DataFrame) -> pd.DataFrame:
        """How every row was typed, for a planner to check.

        Rules are tried in stages, the first hit winning: an override
        (:meth:`with_overrides`), the ``type`` column, specific tags and type
        codes, decisive names (幼儿园, 菜市场, 小学), generic tags
        (``amenity=childcare``, ``amenity=marketplace``), other name keywords.
        A decisive name therefore outweighs a generic tag, and a specific tag
        (``leisure=track``) outweighs any name. A type's ``also`` rules then
        add the further types a row serves.

        Returns
        -------
        pandas.DataFrame
            Aligned with ``table.index``, columns

            - ``type``: the main type id, or None;
            - ``types``: all types served, ``";"``-joined, main type first;
            - ``matched_by``: the evidence, e.g. ``"osm amenity=school name~附小"``;
            - ``rule_id``: ``"<type>.match[<i>]"`` (the rule group in the
              taxonomy file), ``"type column"`` or ``"override"``;
            - ``rule_source``, ``rule_status``: that group's ``source`` and ``status``;
            - ``flags``: ``"; "``-joined warnings, e.g. a tag whose type the
              name contradicts (``implausible: osm amenity=marketplace
              (fresh_market) with name 中国移动``), or a generic tag that a
              decisive name outweighed. Empty text when there is nothing to say.

        Examples
        --------
        >>> import pandas as pd
        >>> rows = pd.DataFrame({"amenity": ["childcare", "marketplace"],
        ...                      "name": ["北京邮电大学幼儿园", "中国移动"]})
        >>> audit = default_taxonomy().audit(rows)
        >>> audit["type"].tolist()
        ['kindergarten', None]
        >>> audit.loc[1, "flags"]
        'implausible: osm amenity=marketplace (fresh_market) with name 中国移动'
        """
        if not isinstance(table, pd.DataFrame):
            raise InputError(f"expected a table of facilities, got {type(table).__name__}")
        rows = _Rows(table)
        state = _State(rows.size)
        self._assign_overrides(table, state)
        self._assign_direct(rows, state)
        skip = self._keyword_skip_mask(rows)
        for stage in _STAGES:
            self._assign_stage(rows, state, stage, skip)
        self._flag_outweighed_tags(rows, state)
        self._add_also_types(rows, state)
        logger.debug("classified %d of %d rows", int(pd.notna(state.types).sum()), rows.size)
        return state.frame(table.index)

    def with_overrides(self, overrides: pd.DataFrame | str | Path) -> Taxonomy:
        """A copy of this taxonomy that types the listed rows as a planner said.

        Parameters
        ----------
        overrides
            A table with columns ``key_column``, ``key`` and ``types`` (as
            :func:`read_overrides` returns), or the path of an edited
            :func:`check_file` CSV. A row of the classified table whose
            ``key_column`` holds ``key`` gets ``types`` (``";"``-joined type
            ids; ``none`` for "not a facility"), whatever the rules say.

        Examples
        --------
        >>> import pandas as pd
        >>> fix = pd.DataFrame({"key_column": ["osm_id"], "key": ["node/1"],
        ...                     "types": ["fresh_market"]})
        >>> tax = default_taxonomy().with_overrides(fix)
        >>> rows = pd.DataFrame({"osm_id": ["node/1", "node/2"], "name": ["东门", "东门"]})
        >>> tax.classify(rows).tolist()
        ['fresh_market', None]
        """
        table = overrides if isinstance(overrides, pd.DataFrame) else read_overrides(overrides)
        parsed = _parse_overrides(table, self.types)
        copy = Taxonomy.__new__(Taxonomy)
        copy.__dict__.update(self.__dict__)
        copy._overrides = {**self._overrides, **parsed}
        copy.source = f"{self.source} + {len(parsed)} overrides"
        return copy

    def _assign_overrides(self, table: pd.DataFrame, state: _State) -> None:
        for (column, key), types in self._overrides.items():
            if column not in table.columns:
                continue
            values = _as_text(table[column]).to_numpy(dtype=object)
            pos = np.flatnonzero((values == key) & ~state.decided)
            state.decide(pos, types, f"override {column}={key}", "override", "", "OVERRIDE")

    def _assign_direct(self, rows: _Rows, state: _State) -> None:
        text = rows.type_text()
        if text is None:
            return
        direct = text.map(self._direct_lookup)
        known = direct.notna().to_numpy() & ~state.decided
        for type_id in direct[known].unique():
            pos = np.flatnonzero(known & (direct == type_id).to_numpy())
            state.decide(pos, (type_id,), "type column", "type column", "", "")

    def _assign_stage(self, rows: _Rows, state: _State, stage: str, skip: np.ndarray) -> None:
        by_keyword = stage in ("decisive", "keyword")
        open_rows = ~state.decided
        if by_keyword:
            open_rows &= ~skip
        for type_id, rules in self._rules.items():
            pos = np.flatnonzero(open_rows)
            if len(pos) == 0:
                return
            for index, group in enumerate(rules.groups):
                if len(pos) == 0:
                    break
                if not _in_stage(group, stage):
                    continue
                matched, labels = _match_group(group, rows, pos, by_keyword=by_keyword)
                # the veto is checked on matches only: cheaper than on every open row
                allowed = np.ones(len(matched), dtype=bool)
                if rules.exclude is not None and len(matched):
                    allowed = ~_name_hits(rules.exclude, rows, matched)
                if not by_keyword:
                    state.flag_implausible(matched[~allowed], labels[~allowed], type_id, rows)
                rule_id = f"{type_id}.match[{index}]"
                chosen = matched[allowed]
                state.decide(
                    chosen, (type_id,), labels[allowed], rule_id, group.source, group.status
                )
                state.stage[chosen] = stage
                open_rows[matched[allowed]] = False
                pos = pos[~np.isin(pos, matched)]

    def _flag_outweighed_tags(self, rows: _Rows, state: _State) -> None:
        """Say so where a decisive name outweighed a generic tag of another type."""
        pos = np.flatnonzero(state.stage == "decisive")
        for type_id, rules in self._rules.items():
            for group in rules.groups:
                if len(pos) == 0 or not group.generic:
                    continue
                matched, labels = _match_group(group, rows, pos, by_keyword=False)
                for i, label in zip(matched, labels, strict=True):
                    if state.types[i] != type_id:
                        state.flags[i].append(f"name outweighs {label} ({type_id})")

    def _add_also_types(self, rows: _Rows, state: _State) -> None:
        typed = pd.Series(state.types, dtype=object)
        for type_id, rules in self._rules.items():
            pos = np.flatnonzero((typed == type_id).to_numpy())
            for rule in rules.also:
                if len(pos) == 0:
                    break
                hits = [
                    _match_group(rule.group, rows, pos, by_keyword=by_keyword)[0]
                    for by_keyword in (False, True)
                    if _group_applies(rule.group, by_keyword=by_keyword)
                ]
                if hits:
                    state.add_types(np.unique(np.concatenate(hits)), rule.types)

    def _keyword_skip_mask(self, rows: _Rows) -> np.ndarray:
        skip = np.zeros(rows.size, dtype=bool)
        everything = np.arange(rows.size)
        for group in self._keyword_skip:
            matched, _ = _match_group(group, rows, everything, by_keyword=False)
            skip[matched] = True
        return skip

    def to_frame(self) -> pd.DataFrame:
        """One row per type, in priority order, for display and listings.

        Examples
        --------
        >>> frame = default_taxonomy().to_frame()
        >>> frame.loc[frame["id"] == "primary_school", "amap_typecodes"].item()
        '141200, 141203'
        """
        records = []
        for priority, (type_id, facility) in enumerate(self.types.items(), start=1):
            rules = self._rules[type_id]
            codes = sorted({c for g in rules.groups for c in g.amap_codes.describe().split(", ")})
            records.append(
                {
                    "priority": priority,
                    "id": type_id,
                    "name_zh": facility.name_zh,
                    "name_en": facility.name_en,
                    "category": facility.category,
                    "category_zh": self.categories[facility.category].name_zh,
                    "icon": facility.icon,
                    "color": facility.color,
                    "osm": "; ".join(
                        " ".join(t.describe() for t in tags) for g in rules.groups for tags in g.osm
                    ),
                    "amap_typecodes": ", ".join(c for c in codes if c),
                    "keywords": " | ".join(k for g in rules.groups for k in g.keyword_texts),
                    "exclude": " | ".join(rules.exclude_texts),
                    "rule_groups": len(rules.groups),
                }
            )
        return pd.DataFrame.from_records(records)


def _direct_lookup(types: Mapping[str, FacilityType], source: str) -> dict[str, str]:
    """Lower-case id and names -> type id; names shared by two types are an error."""
    lookup: dict[str, str] = {}
    for type_id, facility in types.items():
        for label in {type_id, facility.name_zh, facility.name_en}:
            key = label.strip().lower()
            owner = lookup.setdefault(key, type_id)
            if owner != type_id:
                raise InputError(
                    f"types {owner!r} and {type_id!r} share the name {label!r}; "
                    "type names must be unique",
                    file=source,
                )
    return lookup


# -------------------------------------------------------------- audit and overrides
#: Columns that identify a row for an override, in order of preference.
KEY_COLUMNS = ("osm_id", "facility_id", "poi_id", "id", "uid")
OVERRIDE_COLUMNS = ("key_column", "key", "types")


def check_file(
    path: str | Path,
    *,
    taxonomy: Taxonomy | None = None,
    sheet: str | int | None = None,
    layer: str | None = None,
) -> pd.DataFrame:
    """How every row of a facility file is typed, and by which rule.

    Reads the file as :func:`lifecircle.loading.load_facilities` does (any
    table, Amap export or OpenStreetMap file), without checking coordinates,
    and audits every row with :meth:`Taxonomy.audit`.

    Parameters
    ----------
    path
        The facility file.
    taxonomy
        Default :func:`default_taxonomy`.
    sheet, layer
        Excel sheet and GeoPackage layer.

    Returns
    -------
    pandas.DataFrame
        One row per input row: ``row`` (the spreadsheet row number, or the
        1-based OpenStreetMap feature number, as in ``source_row``),
        ``key_column`` and ``key`` (the row's id, or its name when the file has
        no id column), ``name``, ``evidence`` (the tags, type code and type
        the file gives), ``types`` (";"-joined, main type first; empty when
        none), ``matched_by``, ``rule_id``, ``rule_source``, ``rule_status``,
        ``flags`` and an empty ``override`` column. Write it to CSV, fill in
        ``override`` on the rows to change (type ids joined with ";", or
        ``none``) and pass the file to :meth:`Taxonomy.with_overrides`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "pois.csv").write_text(
    ...     "id,name,typecode,lng,lat\\nB1,东门菜市场,060100,116.3,40.0\\n", encoding="utf-8")
    >>> check = check_file(folder / "pois.csv")
    >>> int(check.loc[0, "row"]), check.loc[0, "key"], check.loc[0, "types"]
    (2, 'B1', 'fresh_market')
    >>> check.loc[0, "rule_id"], check.loc[0, "matched_by"]
    ('fresh_market.match[2]', 'keyword 菜市场')
    """
    from . import loading, osm

    tax = taxonomy if taxonomy is not None else default_taxonomy()
    file = Path(path)
    if osm.is_osm_path(file):
        table = pd.DataFrame(osm.osm_facilities_table(file)).drop(columns="geometry")
        first_row = 1
    else:
        raw = loading.read_table(file, sheet=sheet, layer=layer)
        first_row = int(raw.attrs.get("first_data_row", 1))
        table = pd.DataFrame(raw)
        table = table.drop(columns=[c for c in ("geometry",) if c in table.columns])
    table = table.reset_index(drop=True)
    columns = [str(c) for c in table.columns]
    view = table.copy()
    name_column = loading._find_column(columns, loading._FACILITY_NAME_WORDS)
    type_column = loading._find_column(columns, loading._TYPE_WORDS)
    view["name"] = table[name_column] if name_column else None
    if osm.is_osm_path(file):
        view = view.drop(columns=[c for c in ("type",) if c in view.columns])
    elif type_column:
        view["type"] = table[type_column]
    key_column = next((c for c in KEY_COLUMNS if c in columns), "name")
    audit = tax.audit(view)
    result = pd.DataFrame(
        {
            "row": np.arange(len(table), dtype=np.int64) + first_row,
            "key_column": key_column,
            "key": _as_text(view[key_column]).fillna("").to_numpy(dtype=object),
            "name": _as_text(view["name"]).fillna("").to_numpy(dtype=object),
            "evidence": _evidence(view),
        }
    )
    audit = audit.reset_index(drop=True).drop(columns="type")
    result = pd.concat([result, audit], axis=1)
    result["types"] = result["types"].fillna("")
    result["matched_by"] = result["matched_by"].fillna("")
    result["rule_id"] = result["rule_id"].fillna("")
    result["override"] = ""
    logger.info(
        "%s: %d rows, %d typed, %d flagged",
        file.name,
        len(result),
        int((result["types"] != "").sum()),
        int((result["flags"] != "").sum()),
    )
    return result


_EVIDENCE_KEYS = (
    "amenity",
    "shop",
    "leisure",
    "healthcare",
    "social_facility",
    "highway",
    "public_transport",
    "railway",
    "building",
    "typecode",
    "type",
)


def _evidence(view: pd.DataFrame) -> np.ndarray:
    """``key=value`` of the tags and codes a row carries, "; "-joined."""
    parts = pd.Series("", index=view.index, dtype=object)
    for key in _EVIDENCE_KEYS:
        if key not in view.columns:
            continue
        values = _as_text(view[key])
        present = values.notna().to_numpy()
        text = (key + "=" + values.fillna("")).where(present, "")
        glue = np.where((parts != "").to_numpy() & present, "; ", "")
        parts = parts + glue + text.to_numpy()
    return parts.to_numpy(dtype=object)


def read_overrides(path: str | Path) -> pd.DataFrame:
    """The rows of an edited :func:`check_file` CSV whose ``override`` is filled in.

    Returns
    -------
    pandas.DataFrame
        Columns ``key_column``, ``key``, ``types`` (the override text).

    Raises
    ------
    InputError
        The file cannot be read or lacks the columns ``key_column``, ``key``
        and ``override``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "check.csv"
    >>> _ = file.write_text("row,key_column,key,types,override\\n"
    ...                     "2,osm_id,node/1,,fresh_market\\n3,osm_id,node/2,park,\\n", "utf-8")
    >>> read_overrides(file).to_dict("records")
    [{'key_column': 'osm_id', 'key': 'node/1', 'types': 'fresh_market'}]
    """
    file = Path(path)
    try:
        table = pd.read_csv(file, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError("file not found", file=file) from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(f"cannot read the overrides: {exc}", file=file) from exc
    missing = [c for c in ("key_column", "key", "override") if c not in table.columns]
    if missing:
        raise InputError(
            f"missing column {missing[0]}; expected the CSV written from check_file "
            "(columns key_column, key, override)",
            file=file,
        )
    edited = table[table["override"].str.strip() != ""]
    result = pd.DataFrame(
        {
            "key_column": edited["key_column"].str.strip(),
            "key": edited["key"].str.strip(),
            "types": edited["override"].str.strip(),
        }
    )
    result.attrs["file"] = str(file)
    result.attrs["rows"] = (edited.index.to_numpy() + 2).tolist()
    return result.reset_index(drop=True)


def _parse_overrides(
    table: pd.DataFrame, known: Mapping[str, FacilityType]
) -> dict[tuple[str, str], tuple[str, ...]]:
    file = table.attrs.get("file")
    rows = table.attrs.get("rows") or [None] * len(table)
    missing = [c for c in OVERRIDE_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"overrides need the columns {', '.join(OVERRIDE_COLUMNS)}", file=file)
    parsed: dict[tuple[str, str], tuple[str, ...]] = {}
    for row, column, key, text in zip(
        rows, table["key_column"], table["key"], table["types"], strict=True
    ):
        types = tuple(t.strip() for t in str(text).split(";") if t.strip())
        unknown = [t for t in types if t not in known and t != NOT_A_FACILITY]
        if not types or unknown:
            raise InputError(
                f"unknown facility type {unknown[0] if unknown else text!r}; use type ids "
                f"({', '.join(known)}) joined with ';', or {NOT_A_FACILITY!r}",
                file=file,
                row=row,
                column="override",
            )
        parsed[(str(column), str(key))] = types
    return parsed


def explode_types(facilities: pd.DataFrame, *, taxonomy: Taxonomy | None = None) -> pd.DataFrame:
    """One row per (facility, type served), for scoring multi-type facilities.

    Parameters
    ----------
    facilities
        Loaded facilities with ``type`` and, where some serve several types,
        ``types`` (";"-joined, main type first), as
        :func:`lifecircle.loading.load_facilities` writes them.
    taxonomy
        Gives the ``category`` of the added rows; default :func:`default_taxonomy`.

    Returns
    -------
    pandas.DataFrame
        Same class and columns as ``facilities`` (``facility_id`` and geometry
        kept), ``type`` and ``category`` set per row, plus ``type_rank`` (0 for
        the main type). A nine-year school appears as a primary and a middle
        school with one ``facility_id``.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"facility_id": ["a", "b"], "type": ["primary_school", "park"],
    ...                      "types": ["primary_school;middle_school", "park"]})
    >>> explode_types(rows)[["facility_id", "type", "type_rank"]].values.tolist()
    [['a', 'primary_school', 0], ['a', 'middle_school', 1], ['b', 'park', 0]]
    """
    tax = taxonomy if taxonomy is not None else default_taxonomy()
    source = facilities["types"] if "types" in facilities.columns else facilities["type"]
    fallback = facilities["type"] if "type" in facilities.columns else source
    text = source.astype(object).where(source.notna() & (source != ""), fallback)
    lists: list[list[str]] = text.astype("string").fillna("").str.split(";").tolist()
    positions = np.repeat(np.arange(len(facilities)), [len(parts) for parts in lists])
    flat = [t.strip() for parts in lists for t in parts]
    ranks = [rank for parts in lists for rank in range(len(parts))]
    exploded = facilities.iloc[positions].copy()
    exploded["type"] = [t or None for t in flat]
    if "category" in exploded.columns:
        exploded["category"] = [tax.category_of(t) if t in tax else None for t in flat]
    exploded["type_rank"] = np.asarray(ranks, dtype=np.int64)
    return exploded.reset_index(drop=True)


def evaluate(
    labelled: pd.DataFrame | str | Path, *, taxonomy: Taxonomy | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Precision and recall per facility type on a hand-labelled set of rows.

    Parameters
    ----------
    labelled
        A table (or CSV file, ``#`` lines being comments) with columns
        ``name``, ``label`` (type ids joined with ";", or ``none``) and any of
        ``tags`` (OSM tags written ``key=value;key=value``), ``typecode`` and
        ``type`` (Amap fields).
    taxonomy
        Default :func:`default_taxonomy`.

    Returns
    -------
    (per_type, rows)
        ``per_type``: one row per type that is labelled or predicted, columns
        ``type``, ``support`` (rows labelled with it), ``predicted``, ``correct``,
        ``precision``, ``recall`` (NaN when undefined). A row counts for every
        type it serves: a nine-year school labelled and typed
        ``primary_school;middle_school`` is correct twice. ``rows``: the input
        with ``predicted`` types and the audit's ``matched_by`` and ``flags``.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"name": ["阳光幼儿园", "中国移动"],
    ...                      "tags": ["", "amenity=marketplace"],
    ...                      "label": ["kindergarten", "none"]})
    >>> per_type, _ = evaluate(rows)
    >>> per_type[["type", "support", "correct", "precision", "recall"]].values.tolist()
    [['kindergarten', 1, 1, 1.0, 1.0]]
    """
    tax = taxonomy if taxonomy is not None else default_taxonomy()
    if isinstance(labelled, pd.DataFrame):
        table = labelled.copy()
    else:
        table = pd.read_csv(labelled, dtype=str, keep_default_na=False, comment="#")
    view = _tag_columns(table)
    audit = tax.audit(view)
    table["predicted"] = audit["types"].fillna(NOT_A_FACILITY).to_numpy()
    table["matched_by"] = audit["matched_by"].fillna("").to_numpy()
    table["flags"] = audit["flags"].to_numpy()
    truth = table["label"].astype(str).map(_type_set)
    guess = table["predicted"].astype(str).map(_type_set)
    type_ids = sorted(set().union(*truth, *guess), key=lambda t: list(tax.types).index(t))
    records = []
    for type_id in type_ids:
        labelled_as = truth.map(lambda served, t=type_id: t in served)
        predicted_as = guess.map(lambda served, t=type_id: t in served)
        correct = int((labelled_as & predicted_as).sum())
        support, predicted = int(labelled_as.sum()), int(predicted_as.sum())
        records.append(
            {
                "type": type_id,
                "support": support,
                "predicted": predicted,
                "correct": correct,
                "precision": correct / predicted if predicted else np.nan,
                "recall": correct / support if support else np.nan,
            }
        )
    return pd.DataFrame.from_records(records), table


def _type_set(text: str) -> frozenset[str]:
    return frozenset(t.strip() for t in text.split(";") if t.strip() not in ("", NOT_A_FACILITY))


def _tag_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its ``tags`` text (``k=v;k=v``) spread into one column per key."""
    view = table.drop(columns=[c for c in ("tags", "label", "note", "id") if c in table.columns])
    if "tags" not in table.columns:
        return view
    parsed = [
        dict(part.split("=", 1) for part in str(text).split(";") if "=" in part)
        for text in table["tags"]
    ]
    tags = pd.DataFrame.from_records(parsed, index=table.index)
    for column in ("name", "typecode", "type"):
        if column in tags.columns:
            tags = tags.drop(columns=column)
    view = view.replace("", None)
    return pd.concat([view, tags], axis=1)


# ------------------------------------------------------------------------ loading
@cache
def default_taxonomy() -> Taxonomy:
    """The packaged taxonomy (cached).

    Examples
    --------
    >>> default_taxonomy() is default_taxonomy()
    True
    """
    return load_taxonomy()


def load_taxonomy(path: str | Path | None = None, *, extend: bool = True) -> Taxonomy:
    """Read a facility taxonomy.

    Parameters
    ----------
    path
        A YAML file in the layout of the packaged ``taxonomy.yaml``. None reads
        the packaged taxonomy only.
    extend
        True: the file extends the packaged taxonomy. A type with a new id is
        appended (or put before the type named by its ``before`` key); a type
        with an existing id overrides the fields it gives. False: the file's
        types replace the packaged ones. Either way the packaged categories,
        ``exclude_sets`` and ``keyword_skip`` stay available and the file's own
        are added.

    Raises
    ------
    InputError
        If the file cannot be read or breaks the layout; the message names the
        file and the offending key.

    Examples
    --------
    >>> load_taxonomy().types["park"].name_zh
    '公园'
    """
    packaged = _parse_document(_read_packaged(), PACKAGED_FILE, base=None)
    if path is None:
        return Taxonomy(packaged, PACKAGED_FILE)
    file = Path(path)
    raw = _read_yaml(file)
    if not extend:
        packaged.types = {}
    document = _parse_document(raw, str(file), base=packaged)
    if not document.types:
        raise InputError("the taxonomy defines no facility types", file=file)
    label = f"{PACKAGED_FILE} + {file}" if extend else str(file)
    logger.info("loaded facility taxonomy %s (%d types)", label, len(document.types))
    return Taxonomy(document, label)


@cache
def _read_packaged() -> Any:
    text = resources.files("lifecircle").joinpath("data", "taxonomy.yaml").read_text("utf-8")
    return read_yaml_text(text, source="taxonomy.yaml")


def _read_yaml(file: Path) -> Any:
    if not file.is_file():
        raise InputError("file not found", file=file)
    return read_yaml(file)


# ------------------------------------------------------------------------ parsing
class _Where:
    """Location of a key inside a taxonomy file, for error messages."""

    def __init__(self, file: str, key: str = "") -> None:
        self.file = file
        self.key = key

    def __truediv__(self, part: str | int) -> _Where:
        if isinstance(part, int):
            return _Where(self.file, f"{self.key}[{part}]")
        return _Where(self.file, f"{self.key}.{part}" if self.key else part)

    def error(self, message: str) -> InputError:
        where = f"key {self.key}: " if self.key else ""
        return InputError(f"{where}{message}", file=self.file)


def _check_keys(raw: Mapping[str, Any], allowed: Iterable[str], where: _Where) -> None:
    unknown = sorted(set(map(str, raw)) - set(allowed))
    if unknown:
        raise (where / unknown[0]).error(
            f"unknown key; allowed keys here: {', '.join(sorted(allowed))}"
        )


def _mapping(raw: Any, where: _Where) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise where.error(f"expected a mapping, got {type(raw).__name__}")
    return raw


def _sequence(raw: Any, where: _Where) -> Sequence[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise where.error(f"expected a list, got {type(raw).__name__}")
    return raw


def _text(raw: Any, where: _Where) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise where.error("expected a non-empty text")
    return raw.strip()


def _regex(raw: Any, where: _Where) -> re.Pattern[str]:
    text = _text(raw, where)
    try:
        return re.compile(text, re.IGNORECASE)
    except re.error as exc:
        raise where.error(f"invalid regular expression {text!r}: {exc}") from exc


def _alternatives(
    patterns: Sequence[str], where: _Where, *, whole_words: bool = False
) -> re.Pattern[str] | None:
    if not patterns:
        return None
    for i, pattern in enumerate(patterns):
        _regex(pattern, where / i)
    if whole_words:
        patterns = [_whole_word(p) for p in patterns]
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


_ESCAPES_AND_CLASSES = re.compile(r"\\.|\[[^\]]*\]")


def _whole_word(keyword: str) -> str:
    """A keyword with Latin letters matches whole words only.

    ``\\b`` is not enough: Python counts Chinese characters as word characters,
    so ``\\bpark\\b`` fails on 万科Park but matches COCO Park; the guard here is
    "no Latin letter right before or after".

    Examples
    --------
    >>> word = _whole_word("park")
    >>> bool(re.search(word, "parkson")), bool(re.search(word, "万科park"))
    (False, True)
    """
    if not re.search("[A-Za-z]", _ESCAPES_AND_CLASSES.sub("", keyword)):
        return keyword
    core = keyword.removeprefix("\\b").removesuffix("\\b")
    return f"(?<![A-Za-z])(?:{core})(?![A-Za-z])"


def _tag_value(raw: Any, where: _Where) -> str:
    # YAML reads an unquoted yes/no as a boolean; OSM means the text
    if isinstance(raw, bool):
        return "yes" if raw else "no"
    if isinstance(raw, int | float | str) and str(raw).strip():
        return str(raw).strip()
    raise where.error("expected a tag value (text) or a list of them")


def _parse_tag_set(raw: Any, where: _Where) -> tuple[_TagTest, ...]:
    tags = _mapping(raw, where)
    if not tags:
        raise where.error("an OSM tag set needs at least one tag")
    tests = []
    for key, value in tags.items():
        key_where = where / str(key)
        key_text = _text(key, key_where)
        if key_text.endswith("~"):
            tests.append(_TagTest(key_text[:-1], pattern=_regex(value, key_where)))
        else:
            values = value if isinstance(value, list) else [value]
            if not values:
                raise key_where.error("expected at least one value")
            texts = frozenset(_tag_value(v, key_where / i) for i, v in enumerate(values))
            tests.append(_TagTest(key_text, values=texts))
    return tuple(tests)


def _parse_codes(raw: Any, where: _Where) -> _CodeSet:
    exact, prefixes = set(), []
    for i, code in enumerate(_sequence(raw, where)):
        if not isinstance(code, str):
            # an unquoted 060200 is read by YAML as an octal number
            raise (where / i).error(f"quote Amap type codes, e.g. '060200' (got {code!r})")
        code = code.strip()
        if not _CODE_PATTERN.fullmatch(code):
            raise (where / i).error(
                f"expected a 6-digit Amap code or a prefix like '1509*': {code!r}"
            )
        if code.endswith("*"):
            prefixes.append(code[:-1])
        else:
            exact.add(code)
    return _CodeSet(frozenset(exact), tuple(prefixes))


def _flag(raw: Any, where: _Where) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, bool):
        raise where.error(f"expected true or false, got {raw!r}")
    return raw


def _parse_group(raw: Any, where: _Where, allowed: Iterable[str] = _GROUP_KEYS) -> _RuleGroup:
    group = _mapping(raw, where)
    _check_keys(group, allowed, where)
    if not any(group.get(key) for key in _MATCHER_KEYS):
        raise where.error(f"a rule group needs one of {', '.join(_MATCHER_KEYS)}")
    status = group.get("status", "")
    if status and status not in _STATUSES:
        raise (where / "status").error(f"expected one of {', '.join(sorted(_STATUSES))}")
    keywords = [
        _text(k, where / "keywords" / i)
        for i, k in enumerate(_sequence(group.get("keywords"), where / "keywords"))
    ]
    amap_types = _sequence(group.get("amap_types"), where / "amap_types")
    generic = _flag(group.get("generic"), where / "generic")
    decisive = _flag(group.get("decisive"), where / "decisive")
    if decisive and (not keywords or any(group.get(k) for k in _MATCHER_KEYS[:3])):
        raise (where / "decisive").error("a decisive group holds name keywords only")
    if generic and not any(group.get(k) for k in _MATCHER_KEYS[:3]):
        raise (where / "generic").error("a generic group needs osm tags or Amap codes")
    return _RuleGroup(
        osm=tuple(
            _parse_tag_set(tags, where / "osm" / i)
            for i, tags in enumerate(_sequence(group.get("osm"), where / "osm"))
        ),
        amap_codes=_parse_codes(group.get("amap_typecodes"), where / "amap_typecodes"),
        amap_types=frozenset(_text(t, where / "amap_types" / i) for i, t in enumerate(amap_types)),
        keywords=_alternatives(keywords, where / "keywords", whole_words=True),
        keyword_texts=tuple(keywords),
        require_name=(
            None
            if group.get("require_name") is None
            else _regex(group["require_name"], where / "require_name")
        ),
        source=str(group.get("source", "")),
        status=str(status),
        generic=generic,
        decisive=decisive,
    )


def _parse_also(raw: Any, where: _Where) -> tuple[_AlsoRule, ...]:
    rules = []
    for i, entry in enumerate(_sequence(raw, where)):
        entry_where = where / i
        mapping = _mapping(entry, entry_where)
        types = [
            _text(t, entry_where / "types" / j)
            for j, t in enumerate(_sequence(mapping.get("types"), entry_where / "types"))
        ]
        if not types:
            raise (entry_where / "types").error("list the type ids this rule adds")
        group_raw = {k: v for k, v in mapping.items() if k != "types"}
        group = _parse_group(group_raw, entry_where, allowed=_ALSO_KEYS)
        rules.append(_AlsoRule(group, tuple(types)))
    return tuple(rules)


def _parse_exclude(
    raw: Any, sets: Mapping[str, tuple[str, ...]], where: _Where
) -> tuple[re.Pattern[str] | None, tuple[str, ...]]:
    texts: list[str] = []
    for i, item in enumerate(_sequence(raw, where)):
        text = _text(item, where / i)
        if text.startswith("@"):
            if text[1:] not in sets:
                known = ", ".join(f"@{name}" for name in sets)
                raise (where / i).error(f"unknown exclude set {text!r}; known: {known}")
            texts.extend(sets[text[1:]])
        else:
            _regex(text, where / i)
            texts.append(text)
    return _alternatives(texts, where), tuple(texts)


def _parse_categories(
    raw: Any, base: Mapping[str, FacilityCategory] | None, where: _Where
) -> dict[str, FacilityCategory]:
    categories = dict(base or {})
    for key, value in _mapping(raw or {}, where).items():
        key_where = where / str(key)
        if base is not None and key not in base:
            raise key_where.error(
                f"categories are fixed; known categories: {', '.join(base)} "
                "(a file may only rename them)"
            )
        names = _mapping(value, key_where)
        _check_keys(names, ("name_zh", "name_en"), key_where)
        old = categories.get(key)
        categories[key] = FacilityCategory(
            id=str(key),
            name_zh=_text(
                names.get("name_zh", old.name_zh if old else None), key_where / "name_zh"
            ),
            name_en=_text(
                names.get("name_en", old.name_en if old else None), key_where / "name_en"
            ),
        )
    if not categories:
        raise where.error("no facility categories defined")
    return categories


def _parse_type(
    raw: Any,
    old: tuple[FacilityType, _TypeRules] | None,
    document: _Document,
    where: _Where,
) -> tuple[FacilityType, _TypeRules]:
    entry = _mapping(raw, where)
    _check_keys(entry, _TYPE_KEYS, where)
    type_id = str(entry["id"])
    if old is None:
        for key in _REQUIRED_TYPE_KEYS:
            if key not in entry:
                raise (where / key).error(f"missing for the new type {type_id!r}")
    base = old[0] if old else FacilityType(type_id, "", "", "", _DEFAULT_ICON, _DEFAULT_COLOR)
    fields = {
        key: _text(entry[key], where / key)
        for key in ("name_zh", "name_en", "category", "icon", "color")
        if key in entry
    }
    facility = replace(base, **fields)
    if facility.category not in document.categories:
        raise (where / "category").error(
            f"unknown category {facility.category!r}; known: {', '.join(document.categories)}"
        )
    if not _COLOR_PATTERN.fullmatch(facility.color):
        raise (where / "color").error(f"expected a hex colour like '#1a9850': {facility.color!r}")
    if "match" in entry:
        groups = tuple(
            _parse_group(g, where / "match" / i)
            for i, g in enumerate(_sequence(entry["match"], where / "match"))
        )
    else:
        groups = old[1].groups if old else ()
    if "exclude" in entry:
        exclude, texts = _parse_exclude(entry["exclude"], document.exclude_sets, where / "exclude")
    else:
        exclude, texts = (old[1].exclude, old[1].exclude_texts) if old else (None, ())
    if not groups:
        raise (where / "match").error(f"type {type_id!r} has no rule groups")
    if "also" in entry:
        also = _parse_also(entry["also"], where / "also")
    else:
        also = old[1].also if old else ()
    return facility, _TypeRules(groups, exclude, texts, also)


def _place_before(
    types: dict[str, tuple[FacilityType, _TypeRules]], type_id: str, before: Any, where: _Where
) -> dict[str, tuple[FacilityType, _TypeRules]]:
    target = str(before)
    if target not in types or target == type_id:
        raise where.error(f"'before' names an unknown type {target!r}")
    moved = types.pop(type_id)
    reordered: dict[str, tuple[FacilityType, _TypeRules]] = {}
    for key, value in types.items():
        if key == target:
            reordered[type_id] = moved
        reordered[key] = value
    return reordered


def _parse_types(raw: Any, document: _Document, where: _Where) -> None:
    seen: set[str] = set()
    for i, entry in enumerate(_sequence(raw, where)):
        entry_where = where / i
        type_id = _mapping(entry, entry_where).get("id")
        if not isinstance(type_id, str) or not _ID_PATTERN.fullmatch(type_id):
            raise (entry_where / "id").error(
                f"expected a lower-case id like 'health_station', got {type_id!r}"
            )
        if type_id in seen:
            raise (entry_where / "id").error(f"type {type_id!r} is defined twice in this file")
        seen.add(type_id)
        old = document.types.get(type_id)
        document.types[type_id] = _parse_type(entry, old, document, entry_where)
        if "before" in entry:
            document.types = _place_before(
                document.types, type_id, entry["before"], entry_where / "before"
            )


def _parse_document(raw: Any, file: str, base: _Document | None) -> _Document:
    """Validate a taxonomy file and merge it onto ``base``."""
    top = _Where(file)
    if raw is None:
        raise top.error("the file is empty")
    root = _mapping(raw, top)
    _check_keys(root, _TOP_KEYS, top)
    if root.get("version", 1) != 1:
        raise (top / "version").error(f"unsupported version {root['version']!r}; expected 1")
    document = _Document(
        categories=_parse_categories(
            root.get("categories"), base.categories if base else None, top / "categories"
        ),
        exclude_sets=dict(base.exclude_sets) if base else {},
        keyword_skip=list(base.keyword_skip) if base else [],
        types=dict(base.types) if base else {},
    )
    sets_where = top / "exclude_sets"
    for name, patterns in _mapping(root.get("exclude_sets") or {}, sets_where).items():
        texts = [
            _text(p, sets_where / str(name) / i)
            for i, p in enumerate(_sequence(patterns, sets_where / str(name)))
        ]
        _alternatives(texts, sets_where / str(name))
        document.exclude_sets[str(name)] = tuple(texts)
    if root.get("keyword_skip") is not None:
        document.keyword_skip.append(_parse_group(root["keyword_skip"], top / "keyword_skip"))
    _parse_types(root.get("types"), document, top / "types")
    _check_also_types(document, top / "types")
    return document


def _check_also_types(document: _Document, where: _Where) -> None:
    for type_id, (_, rules) in document.types.items():
        for rule in rules.also:
            unknown = [t for t in rule.types if t not in document.types or t == type_id]
            if unknown:
                raise where.error(
                    f"type {type_id!r}: 'also' names {unknown[0]!r}, which is not another "
                    f"type; known: {', '.join(document.types)}"
                )
