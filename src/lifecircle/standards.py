"""Planning standards as versioned data.

A *standard profile* is a YAML file that says which facility types a residential
compound needs within which walking distance: tiers (15-, 10-, 5-minute life
circles, the residential block), per-type requirements, category rules ("at least
one of these types") and optional per-capita demand. Every threshold carries the
id of its source and a confidence status, so that every output can show which
figures were read in the standard and which are assumptions.

Profiles ship with the package (``gb50180-2018``, ``puxieshi-2021``,
``six-kinds-15min``, ``tdt1062-2021``) and users can write their own with the same schema
(``data/standards/schema.json``). Profiles are validated on load; every problem is
reported as an :class:`~lifecircle.errors.InputError` naming the file and the key
path, e.g. ``requirements[3].type``.

Thresholds
----------
A requirement or category may give ``max_walk_m`` (metres) and/or ``walk_min``
(minutes). The profile's ``threshold_rule`` decides which wins:

* ``metres``: ``max_walk_m`` when given, else ``walk_min`` x walking speed;
* ``minutes``: ``walk_min`` x walking speed when given, else ``max_walk_m``.

An item that gives neither uses its tier's ``walk_m`` / ``walk_min`` by the same
rule (the standard's "level default" distance).

Examples
--------
>>> std = load_standard("gb50180-2018")
>>> std.threshold_m(std.requirement("kindergarten"))
300.0
>>> load_standard("puxieshi-2021", walk_speed=80).type_threshold_m("bus_stop")
1200.0
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import read_yaml, read_yaml_text
from .errors import InputError, InternalError

if TYPE_CHECKING:
    # imported where used: listing and loading a profile should not wait for pandas
    import jsonschema
    import pandas as pd

__all__ = [
    "ALL_RESIDENTS",
    "FACILITY_TYPE_IDS",
    "MAX_WALK_SPEED",
    "MIN_WALK_SPEED",
    "STATUSES",
    "THRESHOLD_RULES",
    "USER_OVERRIDE_SOURCE",
    "CategoryRule",
    "Demand",
    "Requirement",
    "Standard",
    "Tier",
    "beneficiary_groups",
    "check_threshold_rule",
    "check_walk_speed",
    "list_standards",
    "load_standard",
]

logger = logging.getLogger(__name__)

FACILITY_TYPE_IDS: tuple[str, ...] = (
    "kindergarten",
    "nursery",
    "primary_school",
    "middle_school",
    "health_station",
    "health_centre",
    "clinic",
    "hospital",
    "pharmacy",
    "fresh_market",
    "supermarket",
    "convenience_store",
    "parcel_point",
    "bus_stop",
    "metro_station",
    "park",
    "sports",
    "fitness",
    "culture_centre",
    "culture_station",
    "library",
    "elderly_daycare",
    "nursing_home",
    "community_canteen",
    "community_service",
    "public_toilet",
)

STATUSES: tuple[str, ...] = (
    "CONFIRMED",
    "CONFIRMED_SECONDARY",
    "CONFIRMED_SUPERSEDED",
    "CONFIRMED_FIXTURE",
    "UNCONFIRMED",
    "DERIVED",
    "ASSUMPTION",
)

THRESHOLD_RULES: tuple[str, ...] = ("metres", "minutes")

# The beneficiary group of items that serve everyone (data/census_shares.yaml).
ALL_RESIDENTS = "all"
_GROUPS_FILE = "census_shares.yaml"

# Source id recorded when the user overrides the profile's walking speed.
USER_OVERRIDE_SOURCE = "USER_OVERRIDE"

# Metres per minute. The bounds catch a speed given in m/s or km/h by mistake.
MIN_WALK_SPEED = 20.0
MAX_WALK_SPEED = 150.0

_PACKAGE = "lifecircle"
_DATA_DIR = ("data", "standards")
_SCHEMA_FILE = "schema.json"
_PROFILE_SUFFIXES = (".yaml", ".yml")
_MAX_REPORTED_ERRORS = 10
_RULE_ALIASES = {
    "metres": "metres",
    "meters": "metres",
    "m": "metres",
    "minutes": "minutes",
    "min": "minutes",
}


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Tier:
    """A level of the life circle, e.g. the 15-minute residential area.

    ``walk_m`` / ``walk_min`` are the tier's own distance, used by requirements
    that give no distance of their own. Its pass column is ``tier_<id>_pass``.
    """

    id: str
    name_zh: str
    name_en: str
    walk_min: float | None
    walk_m: float | None
    status: str
    source: str
    note: str
    quote: str = ""


@dataclass(frozen=True)
class Requirement:
    """One facility type required within a walking distance at one tier.

    ``optional`` requirements are reported but do not fail their tier. A compound
    meets the requirement when at least ``min_count`` facilities of the type are
    within the threshold.
    """

    type: str
    tier: str
    max_walk_m: float | None
    walk_min: float | None
    status: str
    source: str
    clause: str
    note: str
    optional: bool
    weight: float
    min_count: int
    beneficiaries: str = ALL_RESIDENTS
    quote: str = ""
    clause_zh: str = ""


@dataclass(frozen=True)
class CategoryRule:
    """A group of facility types; met when any member type is within the threshold.

    ``status`` is that of the category and its distance; ``members_status`` that of
    the choice of member types (the same unless the profile says otherwise).
    """

    id: str
    name_zh: str
    name_en: str
    types: tuple[str, ...]
    tier: str
    max_walk_m: float | None
    walk_min: float | None
    status: str
    source: str
    clause: str
    weight: float
    note: str = ""
    beneficiaries: str = ALL_RESIDENTS
    quote: str = ""
    members_status: str = ""
    clause_zh: str = ""


@dataclass(frozen=True)
class Demand:
    """Per-capita demand for one facility type, for capacity-aware measures.

    ``per_1000_beneficiaries`` is the demand per 1,000 residents of the
    ``beneficiaries`` group (e.g. beds per 1,000 residents aged 60+);
    ``per_1000_residents`` the same demand per 1,000 of all residents. At least
    one is given.
    """

    type: str
    per_1000_residents: float | None
    unit: str
    status: str
    source: str
    note: str
    beneficiaries: str = ALL_RESIDENTS
    per_1000_beneficiaries: float | None = None
    quote: str = ""


Item = Requirement | CategoryRule


@dataclass(frozen=True)
class Standard:
    """A validated planning-standard profile.

    Build one with :func:`load_standard`; derive variants with
    :meth:`with_overrides`.
    """

    id: str
    title: str
    title_zh: str
    version: str
    description: str
    walk_speed_m_per_min: float
    walk_speed_status: str
    walk_speed_source: str
    threshold_rule: str
    tiers: tuple[Tier, ...]
    requirements: tuple[Requirement, ...]
    categories: tuple[CategoryRule, ...]
    demand: tuple[Demand, ...]
    sources: dict[str, dict]
    path: str | None
    walk_speed_note: str = ""

    # ---------------------------------------------------------------- lookups

    def tier(self, tier_id: str) -> Tier:
        """Return the tier with this id.

        Examples
        --------
        >>> load_standard("gb50180-2018").tier("10min").walk_m
        500.0
        """
        for tier in self.tiers:
            if tier.id == tier_id:
                return tier
        known = ", ".join(t.id for t in self.tiers)
        raise KeyError(f"standard {self.id} has no tier {tier_id!r} (tiers: {known})")

    def requirement(self, type_id: str) -> Requirement | None:
        """Return the requirement for a facility type, or None if it has none.

        Examples
        --------
        >>> load_standard("gb50180-2018").requirement("middle_school").tier
        '15min'
        """
        return next((r for r in self.requirements if r.type == type_id), None)

    def requirements_for_tier(self, tier_id: str) -> tuple[Requirement, ...]:
        """Return the requirements of one tier, in profile order.

        Examples
        --------
        >>> [r.type for r in load_standard("gb50180-2018").requirements_for_tier("block")]
        ['convenience_store', 'parcel_point']
        """
        return tuple(r for r in self.requirements if r.tier == tier_id)

    def categories_for_tier(self, tier_id: str) -> tuple[CategoryRule, ...]:
        """Return the category rules of one tier, in profile order.

        Examples
        --------
        >>> len(load_standard("puxieshi-2021").categories_for_tier("15min"))
        4
        """
        return tuple(c for c in self.categories if c.tier == tier_id)

    def scored_types(self) -> list[str]:
        """Return the requirement types, then category member types, each once.

        Examples
        --------
        >>> load_standard("puxieshi-2021").scored_types()[:3]
        ['kindergarten', 'primary_school', 'middle_school']
        """
        ordered = [r.type for r in self.requirements]
        ordered += [t for c in self.categories for t in c.types]
        return list(dict.fromkeys(ordered))

    # ------------------------------------------------------------- thresholds

    def threshold_m(self, item: Item) -> float:
        """Return the walking distance (metres) within which the item is met.

        Examples
        --------
        >>> std = load_standard("gb50180-2018")
        >>> std.threshold_m(std.requirement("health_centre"))  # the tier's 1000 m
        1000.0
        >>> std.with_overrides(threshold_rule="minutes").threshold_m(
        ...     std.requirement("health_centre"))  # 15 min x 60 m/min
        900.0
        """
        return self._resolve(item)[0]

    def threshold_min(self, item: Item) -> float:
        """Return the threshold in minutes at the profile's walking speed.

        Examples
        --------
        >>> std = load_standard("gb50180-2018")
        >>> std.threshold_min(std.requirement("kindergarten"))
        5.0
        """
        return self._resolve(item)[0] / self.walk_speed_m_per_min

    def threshold_basis(self, item: Item) -> str:
        """Say in words where the item's threshold comes from.

        Examples
        --------
        >>> std = load_standard("puxieshi-2021")
        >>> std.threshold_basis(std.categories[0])
        'walk_min 15 min x 60 m/min (walk speed ASSUMPTION)'
        """
        return self._resolve(item)[1]

    def type_threshold_m(self, type_id: str) -> float | None:
        """Return the distance within which a facility type counts, if it is scored.

        The type's requirement decides; a type without a requirement takes the
        largest threshold of the categories that contain it.

        Examples
        --------
        >>> load_standard("gb50180-2018").type_threshold_m("primary_school")
        500.0
        >>> load_standard("gb50180-2018").type_threshold_m("hospital") is None
        True
        """
        requirement = self.requirement(type_id)
        if requirement is not None:
            return self.threshold_m(requirement)
        thresholds = [self.threshold_m(c) for c in self.categories if type_id in c.types]
        return max(thresholds) if thresholds else None

    def _resolve(self, item: Item) -> tuple[float, str]:
        """Apply the threshold rule: the item's own figures first, then its tier's."""
        found = self._pick_figure(item.max_walk_m, item.walk_min, owner="", metres_key="max_walk_m")
        if found is None:
            tier = self.tier(item.tier)
            owner = f"tier {tier.id} ({tier.status}) "
            found = self._pick_figure(tier.walk_m, tier.walk_min, owner=owner, metres_key="walk_m")
        if found is None:
            # load_standard rejects such profiles, so reaching here is a bug.
            raise InternalError(f"{self.id}: no distance for {_item_name(item)}")
        return found

    def _pick_figure(
        self, metres: float | None, minutes: float | None, *, owner: str, metres_key: str
    ) -> tuple[float, str] | None:
        """Choose between a figure in metres and one in minutes by the threshold rule."""
        speed = self.walk_speed_m_per_min
        options: list[tuple[str, float, str]] = []
        if metres is not None:
            options.append(("metres", float(metres), f"{owner}{metres_key} {metres:g} m"))
        if minutes is not None:
            text = (
                f"{owner}walk_min {minutes:g} min x {speed:g} m/min "
                f"(walk speed {self.walk_speed_status})"
            )
            options.append(("minutes", float(minutes) * speed, text))
        if not options:
            return None
        preferred = [option for option in options if option[0] == self.threshold_rule]
        _, value, text = (preferred or options)[0]
        return value, text

    # --------------------------------------------------------------- variants

    def with_overrides(
        self, *, walk_speed: float | None = None, threshold_rule: str | None = None
    ) -> Standard:
        """Return a copy with another walking speed and/or threshold rule.

        A user walking speed is recorded with status ASSUMPTION and source
        ``USER_OVERRIDE``, so outputs show that it did not come from the profile.

        Examples
        --------
        >>> std = load_standard("puxieshi-2021").with_overrides(walk_speed=80)
        >>> std.threshold_m(std.categories[0]), std.walk_speed_source
        (1200.0, 'USER_OVERRIDE')
        """
        changes: dict[str, Any] = {}
        if walk_speed is not None:
            speed = check_walk_speed(walk_speed)
            sources = copy.deepcopy(self.sources)
            sources[USER_OVERRIDE_SOURCE] = {
                "what": (
                    f"walking speed set by the user: {speed:g} m/min "
                    f"(the profile gives {self.walk_speed_m_per_min:g} m/min)"
                ),
                "url": None,
            }
            changes.update(
                walk_speed_m_per_min=speed,
                walk_speed_status="ASSUMPTION",
                walk_speed_source=USER_OVERRIDE_SOURCE,
                walk_speed_note="Set by the user for this run.",
                sources=sources,
            )
        if threshold_rule is not None:
            changes["threshold_rule"] = check_threshold_rule(threshold_rule)
        return replace(self, **changes)

    # ---------------------------------------------------------------- outputs

    def provenance(self) -> pd.DataFrame:
        """Return one row per requirement and category with its threshold and source.

        Columns: kind, item, tier, threshold_m, threshold_min, status, source,
        source_what, source_url, clause, note, then basis (how the threshold was
        computed), optional, members (category types), beneficiaries, quote,
        members_status, clause_zh (the clause in Chinese, empty when the profile
        has none) and standard.

        Examples
        --------
        >>> frame = load_standard("puxieshi-2021").provenance()
        >>> row = frame.iloc[0]
        >>> row["item"], float(row["threshold_m"]), row["status"]
        ('education', 900.0, 'CONFIRMED')
        """
        rows = [self._provenance_row("requirement", r, r.type) for r in self.requirements]
        rows += [self._provenance_row("category", c, c.id) for c in self.categories]
        import pandas as pd

        return pd.DataFrame(rows, columns=_PROVENANCE_COLUMNS)

    def _provenance_row(self, kind: str, item: Item, name: str) -> dict[str, Any]:
        threshold, basis = self._resolve(item)
        source = self.sources.get(item.source, {})
        return {
            "kind": kind,
            "item": name,
            "tier": item.tier,
            "threshold_m": threshold,
            "threshold_min": threshold / self.walk_speed_m_per_min,
            "status": item.status,
            "source": item.source,
            "source_what": _source_description(source),
            "source_url": source.get("url") or "",
            "clause": item.clause,
            "note": item.note,
            "basis": basis,
            "optional": item.optional if isinstance(item, Requirement) else False,
            "members": ",".join(item.types) if isinstance(item, CategoryRule) else item.type,
            "beneficiaries": item.beneficiaries,
            "quote": item.quote,
            "members_status": (
                item.members_status if isinstance(item, CategoryRule) else item.status
            ),
            "clause_zh": item.clause_zh,
            "standard": self.id,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the profile, with computed thresholds, as JSON-serialisable data.

        Examples
        --------
        >>> data = load_standard("gb50180-2018").to_dict()
        >>> data["requirements"][0]["type"], data["requirements"][0]["threshold_m"]
        ('middle_school', 1000.0)
        >>> _ = json.dumps(data)
        """
        return {
            "id": self.id,
            "title": self.title,
            "title_zh": self.title_zh,
            "version": self.version,
            "description": self.description,
            "walk_speed": {
                "m_per_min": self.walk_speed_m_per_min,
                "status": self.walk_speed_status,
                "source": self.walk_speed_source,
                "note": self.walk_speed_note,
            },
            "threshold_rule": self.threshold_rule,
            "tiers": [asdict(t) for t in self.tiers],
            "requirements": [self._item_dict(r) for r in self.requirements],
            "categories": [self._item_dict(c) for c in self.categories],
            "demand": [asdict(d) for d in self.demand],
            "sources": copy.deepcopy(self.sources),
            "path": self.path,
        }

    def _item_dict(self, item: Item) -> dict[str, Any]:
        data = asdict(item)
        if "types" in data:
            data["types"] = list(data["types"])
        threshold, basis = self._resolve(item)
        data.update(
            threshold_m=threshold,
            threshold_min=threshold / self.walk_speed_m_per_min,
            threshold_basis=basis,
        )
        return data


_PROVENANCE_COLUMNS = [
    "kind",
    "item",
    "tier",
    "threshold_m",
    "threshold_min",
    "status",
    "source",
    "source_what",
    "source_url",
    "clause",
    "note",
    "basis",
    "optional",
    "members",
    "beneficiaries",
    "quote",
    "members_status",
    "clause_zh",
    "standard",
]


def _item_name(item: Item) -> str:
    return f"requirement {item.type}" if isinstance(item, Requirement) else f"category {item.id}"


def _source_description(source: Mapping[str, Any]) -> str:
    what = str(source.get("what", "")).strip()
    repo = source.get("repo")
    return f"{what} (repo: {repo})" if repo else what


# ------------------------------------------------------------------ user options


def check_walk_speed(value: float) -> float:
    """Return a walking speed in metres per minute, or raise InputError.

    Examples
    --------
    >>> check_walk_speed(75)
    75.0
    """
    try:
        speed = float(value)
    except (TypeError, ValueError) as exc:
        message = f"walking speed must be a number of metres per minute, not {value!r}"
        raise InputError(message) from exc
    if not math.isfinite(speed) or not MIN_WALK_SPEED <= speed <= MAX_WALK_SPEED:
        raise InputError(
            f"walking speed {value!r} m/min is outside {MIN_WALK_SPEED:g}-{MAX_WALK_SPEED:g} "
            "m/min; give metres per minute (1.0 m/s = 60 m/min, 5 km/h = 83.3 m/min)"
        )
    return speed


def check_threshold_rule(value: str) -> str:
    """Return the canonical threshold rule ('metres' or 'minutes'), or raise InputError.

    Examples
    --------
    >>> check_threshold_rule("Meters")
    'metres'
    """
    rule = _RULE_ALIASES.get(str(value).strip().lower())
    if rule is None:
        raise InputError(
            f"unknown threshold rule {value!r}; use one of: {', '.join(THRESHOLD_RULES)}"
        )
    return rule


# ----------------------------------------------------------------------- loading


def list_standards() -> list[dict[str, str]]:
    """Describe the profiles that ship with lifecircle.

    Returns
    -------
    list of dict
        One per profile, sorted by id: ``id``, ``title``, ``title_zh``,
        ``version`` and ``path`` (the YAML file, a good template for local profiles).

    Examples
    --------
    >>> [s["id"] for s in list_standards()]
    ['gb50180-2018', 'puxieshi-2021', 'six-kinds-15min', 'tdt1062-2021']
    """
    listing = []
    for resource in _packaged_profiles().values():
        standard = _load_resource(resource)
        listing.append(
            {
                "id": standard.id,
                "title": standard.title,
                "title_zh": standard.title_zh,
                "version": standard.version,
                "path": str(resource),
            }
        )
    return sorted(listing, key=lambda entry: entry["id"])


def load_standard(
    name_or_path: str | Path,
    *,
    walk_speed: float | None = None,
    threshold_rule: str | None = None,
) -> Standard:
    """Load and validate a packaged profile (by id) or a user profile (by path).

    Parameters
    ----------
    name_or_path
        A packaged id such as ``"gb50180-2018"`` (case-insensitive; ``"gb50180"``
        also works while it names one profile), or the path of a YAML profile.
    walk_speed
        Metres per minute, replacing the profile's walking speed.
    threshold_rule
        ``"metres"`` or ``"minutes"``, replacing the profile's rule.

    Returns
    -------
    Standard

    Raises
    ------
    InputError
        Unknown id (the message lists the available ones), unreadable file, bad
        YAML, or a profile that breaks the schema (the message names the key path).

    Examples
    --------
    >>> std = load_standard("puxieshi-2021", walk_speed=60)
    >>> [c.id for c in std.categories]
    ['education', 'commerce_transport', 'culture_sports', 'elderly_care']
    """
    standard = _load_unmodified(name_or_path)
    if walk_speed is None and threshold_rule is None:
        return standard
    return standard.with_overrides(walk_speed=walk_speed, threshold_rule=threshold_rule)


def _load_unmodified(name_or_path: str | Path) -> Standard:
    if isinstance(name_or_path, Path) or _looks_like_path(name_or_path):
        return _load_file(Path(name_or_path))
    packaged = _packaged_profiles()
    packaged_id = _match_packaged_id(name_or_path, packaged)
    if packaged_id is not None:
        return _load_resource(packaged[packaged_id])
    if Path(name_or_path).is_file():
        return _load_file(Path(name_or_path))
    raise InputError(
        f"unknown standard {name_or_path!r}; available: {', '.join(sorted(packaged))} "
        "(or give the path of a YAML profile)"
    )


def _looks_like_path(text: str) -> bool:
    return text.lower().endswith(_PROFILE_SUFFIXES) or "/" in text or "\\" in text


def _match_packaged_id(name: str, packaged: Mapping[str, Traversable]) -> str | None:
    wanted = name.strip().lower()
    if wanted in packaged:
        return wanted
    # "gb50180" for "gb50180-2018", as long as only one version ships.
    prefixed = [pid for pid in packaged if pid.split("-", 1)[0] == wanted]
    return prefixed[0] if len(prefixed) == 1 else None


def _packaged_dir() -> Traversable:
    directory = resources.files(_PACKAGE)
    for part in _DATA_DIR:
        directory = directory / part
    return directory


def _packaged_profiles() -> dict[str, Traversable]:
    """Map packaged profile ids (file stems) to their files."""
    profiles = {}
    for entry in _packaged_dir().iterdir():
        if entry.name.endswith(_PROFILE_SUFFIXES):
            profiles[entry.name.rsplit(".", 1)[0]] = entry
    return dict(sorted(profiles.items()))


def _load_resource(resource: Traversable) -> Standard:
    standard = _parse_text(resource.read_text(encoding="utf-8"), str(resource))
    expected = resource.name.rsplit(".", 1)[0]
    if standard.id != expected:
        raise InternalError(f"packaged profile {resource.name} declares id {standard.id!r}")
    return standard


def _load_file(path: Path) -> Standard:
    if not path.is_file():
        raise InputError("standard profile not found", file=path)
    return _parse_data(read_yaml(path), str(path))


def _parse_text(text: str, origin: str) -> Standard:
    return _parse_data(read_yaml_text(text, source=origin), origin)


def _parse_data(data: Any, origin: str) -> Standard:
    if not isinstance(data, dict):
        raise InputError(
            f"a standard profile must be a YAML mapping, not {type(data).__name__}", file=origin
        )
    _validate(data, origin)
    standard = _build_standard(data, origin)
    _warn_about_empty_tiers(standard)
    logger.debug("loaded standard %s from %s", standard.id, origin)
    return standard


# -------------------------------------------------------------------- validation


@cache
def _schema() -> dict[str, Any]:
    return json.loads((_packaged_dir() / _SCHEMA_FILE).read_text(encoding="utf-8"))


@cache
def _validator() -> jsonschema.protocols.Validator:
    import jsonschema

    schema = _schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def _validate(data: dict[str, Any], origin: str) -> None:
    problems = [_describe_schema_error(e) for e in _validator().iter_errors(data)]
    if not problems:
        problems = list(_semantic_problems(data))
    if problems:
        raise InputError(_join_problems(problems), file=origin)


def _join_problems(problems: list[str]) -> str:
    shown = problems[:_MAX_REPORTED_ERRORS]
    message = "invalid standard profile: " + "; ".join(shown)
    hidden = len(problems) - len(shown)
    return message + (f"; and {hidden} more" if hidden else "")


def _key_path(parts: Iterable[str | int]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _describe_schema_error(error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in instance]
        key = missing[0] if missing else "?"
        return f"{_key_path([*path, key])}: missing (required)"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = [k for k in instance if k not in allowed and not str(k).startswith("x_")]
        return (
            f"{_key_path([*path, str(extra[0]) if extra else '?'])}: unknown key "
            f"(allowed: {', '.join(allowed)})"
        )
    if error.validator == "enum":
        return f"{_key_path(path)}: {_describe_enum_error(error)}"
    if error.validator == "pattern" and path and path[-1] == "id":
        return (
            f"{_key_path(path)}: {instance!r} is not identifier-like (use lower-case letters, "
            "digits and _; it becomes part of a column name)"
        )
    return f"{_key_path(path)}: {error.message}"


def _describe_enum_error(error: jsonschema.ValidationError) -> str:
    allowed = list(error.validator_value)
    if allowed == list(FACILITY_TYPE_IDS):
        return f"unknown facility type {error.instance!r}; known types: {', '.join(allowed)}"
    if allowed == list(STATUSES):
        return f"unknown status {error.instance!r}; use one of: {', '.join(allowed)}"
    return f"{error.instance!r} is not one of: {', '.join(map(str, allowed))}"


def _semantic_problems(data: Mapping[str, Any]) -> Iterable[str]:
    """Check what JSON Schema cannot: references between parts of the profile."""
    requirements = data.get("requirements") or []
    categories = data.get("categories") or []
    if not requirements and not categories:
        yield "(top level): the profile has neither requirements nor categories"
    yield from _walk_speed_problems(data["walk_speed"])
    yield from _source_problems(data)
    tiers: dict[str, Mapping[str, Any]] = {}
    for index, tier in enumerate(data["tiers"]):
        if tier["id"] in tiers:
            yield f"tiers[{index}].id: duplicate tier id {tier['id']!r}"
        tiers[tier["id"]] = tier
    yield from _tier_reference_problems("requirements", requirements, tiers)
    yield from _tier_reference_problems("categories", categories, tiers)
    yield from _duplicate_problems("requirements", requirements, "type", "requirement")
    yield from _duplicate_problems("categories", categories, "id", "category")
    yield from _duplicate_problems("demand", data.get("demand") or [], "type", "demand entry")
    yield from _beneficiary_problems(data)
    for index, category in enumerate(categories):
        if category["id"] in FACILITY_TYPE_IDS:
            yield (
                f"categories[{index}].id: {category['id']!r} is a facility type id; category "
                "ids become <id>_ok columns and must differ from type ids"
            )


@cache
def beneficiary_groups() -> tuple[str, ...]:
    """The beneficiary group ids defined in ``data/census_shares.yaml``.

    Examples
    --------
    >>> "age_60plus" in beneficiary_groups()
    True
    """
    text = (resources.files(_PACKAGE) / "data" / _GROUPS_FILE).read_text(encoding="utf-8")
    return tuple(read_yaml_text(text, source=_GROUPS_FILE)["groups"])


def _beneficiary_problems(data: Mapping[str, Any]) -> Iterable[str]:
    known = beneficiary_groups()
    for section in ("requirements", "categories", "demand"):
        for index, entry in enumerate(data.get(section) or []):
            group = entry.get("beneficiaries", ALL_RESIDENTS)
            if group not in known:
                yield (
                    f"{section}[{index}].beneficiaries: unknown group {group!r}; "
                    f"known groups: {', '.join(known)}"
                )


def _walk_speed_problems(walk_speed: Mapping[str, Any]) -> Iterable[str]:
    speed = walk_speed["m_per_min"]
    if not MIN_WALK_SPEED <= speed <= MAX_WALK_SPEED:
        yield (
            f"walk_speed.m_per_min: {speed!r} is outside {MIN_WALK_SPEED:g}-{MAX_WALK_SPEED:g} "
            "m/min (give metres per minute)"
        )


def _source_problems(data: Mapping[str, Any]) -> Iterable[str]:
    defined = set(data["sources"])
    cited: list[tuple[str, str]] = [("walk_speed.source", data["walk_speed"]["source"])]
    for section in ("tiers", "requirements", "categories", "demand"):
        for index, entry in enumerate(data.get(section) or []):
            cited.append((f"{section}[{index}].source", entry["source"]))
    for where, source in cited:
        if source not in defined:
            yield (
                f"{where}: source {source!r} is not defined in sources "
                f"(defined: {', '.join(sorted(defined))})"
            )


def _tier_reference_problems(
    section: str, entries: list[Mapping[str, Any]], tiers: Mapping[str, Mapping[str, Any]]
) -> Iterable[str]:
    for index, entry in enumerate(entries):
        tier = tiers.get(entry["tier"])
        if tier is None:
            yield (
                f"{section}[{index}].tier: unknown tier {entry['tier']!r} "
                f"(tiers: {', '.join(tiers)})"
            )
            continue
        has_own = entry.get("max_walk_m") is not None or entry.get("walk_min") is not None
        has_tier = tier.get("walk_m") is not None or tier.get("walk_min") is not None
        if not (has_own or has_tier):
            yield (
                f"{section}[{index}]: no distance; give max_walk_m or walk_min, or walk_m "
                f"or walk_min on tier {entry['tier']!r}"
            )


def _duplicate_problems(
    section: str, entries: list[Mapping[str, Any]], key: str, noun: str
) -> Iterable[str]:
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        value = entry[key]
        if value in first_seen:
            yield (
                f"{section}[{index}].{key}: {value!r} already used by {section}"
                f"[{first_seen[value]}]; each {key} may appear in one {noun} only"
            )
        else:
            first_seen[value] = index


def _warn_about_empty_tiers(standard: Standard) -> None:
    for tier in standard.tiers:
        if not standard.requirements_for_tier(tier.id) and not standard.categories_for_tier(
            tier.id
        ):
            logger.warning(
                "standard %s: tier %s has no requirements or categories and always passes",
                standard.id,
                tier.id,
            )


# ---------------------------------------------------------------------- building


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _build_standard(data: Mapping[str, Any], origin: str | None) -> Standard:
    walk_speed = data["walk_speed"]
    return Standard(
        id=data["id"],
        title=data["title"],
        title_zh=data.get("title_zh", ""),
        version=str(data["version"]),
        description=str(data.get("description", "")).strip(),
        walk_speed_m_per_min=float(walk_speed["m_per_min"]),
        walk_speed_status=walk_speed["status"],
        walk_speed_source=walk_speed["source"],
        threshold_rule=data["threshold_rule"],
        tiers=tuple(_build_tier(t) for t in data["tiers"]),
        requirements=tuple(_build_requirement(r) for r in data.get("requirements") or []),
        categories=tuple(_build_category(c) for c in data.get("categories") or []),
        demand=tuple(_build_demand(d) for d in data.get("demand") or []),
        sources={key: dict(value) for key, value in data["sources"].items()},
        path=origin,
        walk_speed_note=str(walk_speed.get("note", "")).strip(),
    )


def _build_tier(raw: Mapping[str, Any]) -> Tier:
    return Tier(
        id=raw["id"],
        name_zh=raw.get("name_zh", ""),
        name_en=raw.get("name_en", ""),
        walk_min=_optional_float(raw.get("walk_min")),
        walk_m=_optional_float(raw.get("walk_m")),
        status=raw["status"],
        source=raw["source"],
        note=str(raw.get("note", "")).strip(),
        quote=str(raw.get("quote", "")).strip(),
    )


def _build_requirement(raw: Mapping[str, Any]) -> Requirement:
    return Requirement(
        type=raw["type"],
        tier=raw["tier"],
        max_walk_m=_optional_float(raw.get("max_walk_m")),
        walk_min=_optional_float(raw.get("walk_min")),
        status=raw["status"],
        source=raw["source"],
        clause=str(raw.get("clause", "")).strip(),
        clause_zh=str(raw.get("clause_zh", "")).strip(),
        note=str(raw.get("note", "")).strip(),
        optional=bool(raw.get("optional", False)),
        weight=float(raw.get("weight", 1.0)),
        min_count=int(raw.get("min_count", 1)),
        beneficiaries=str(raw.get("beneficiaries", ALL_RESIDENTS)),
        quote=str(raw.get("quote", "")).strip(),
    )


def _build_category(raw: Mapping[str, Any]) -> CategoryRule:
    return CategoryRule(
        id=raw["id"],
        name_zh=raw.get("name_zh", ""),
        name_en=raw.get("name_en", ""),
        types=tuple(raw["types"]),
        tier=raw["tier"],
        max_walk_m=_optional_float(raw.get("max_walk_m")),
        walk_min=_optional_float(raw.get("walk_min")),
        status=raw["status"],
        source=raw["source"],
        clause=str(raw.get("clause", "")).strip(),
        clause_zh=str(raw.get("clause_zh", "")).strip(),
        weight=float(raw.get("weight", 1.0)),
        note=str(raw.get("note", "")).strip(),
        beneficiaries=str(raw.get("beneficiaries", ALL_RESIDENTS)),
        quote=str(raw.get("quote", "")).strip(),
        members_status=str(raw.get("members_status", raw["status"])),
    )


def _build_demand(raw: Mapping[str, Any]) -> Demand:
    return Demand(
        type=raw["type"],
        per_1000_residents=_optional_float(raw.get("per_1000_residents")),
        unit=raw["unit"],
        status=raw["status"],
        source=raw["source"],
        note=str(raw.get("note", "")).strip(),
        beneficiaries=str(raw.get("beneficiaries", ALL_RESIDENTS)),
        per_1000_beneficiaries=_optional_float(raw.get("per_1000_beneficiaries")),
        quote=str(raw.get("quote", "")).strip(),
    )
