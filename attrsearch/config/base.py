"""Shared pieces of the configuration: a strict pydantic base, YAML loading, one-line errors."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from types import UnionType
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from attrsearch.errors import UserError

M = TypeVar("M", bound=BaseModel)


def non_finite(value: Any, path: str = "") -> tuple[str, float] | None:
    """``(dotted path, number)`` of the first ``inf``/``nan`` float inside ``value`` (mappings, lists,
    scalars; the path is ``""`` when ``value`` itself is one), or None. Pydantic models inside are not
    entered: they check their own fields."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, value)
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = non_finite(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


# The error type of a boolean given for a number field; its ``field`` joins the error's location.
BOOL_NUMBER = "attrsearch_bool_number"


def _number_types(annotation: Any) -> tuple[bool, bool]:
    """(takes a number, takes a bool) of a field annotation, through ``X | None`` and unions."""
    if annotation in (int, float):
        return True, False
    if annotation is bool:
        return False, True
    if get_origin(annotation) in (Union, UnionType):
        parts = [_number_types(a) for a in get_args(annotation)]
        return any(n for n, _ in parts), any(b for _, b in parts)
    return False, False


def _bool_in_number(value: Any, annotation: Any) -> bool:
    """A bool given for a number field (or inside a ``list``/``tuple`` of numbers) that takes no bool."""
    if get_origin(annotation) in (list, tuple, set, frozenset) and isinstance(value, (list, tuple)):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return any(_bool_in_number(v, args[0]) for v in value) if len(args) == 1 else False
    if not isinstance(value, bool):
        return False
    number, boolean = _number_types(annotation)
    return number and not boolean


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo in a YAML file must not be silently ignored), and so are
    non-finite numbers (``.inf``, ``.nan`` in YAML): in a typed float field through
    ``allow_inf_nan=False``, and anywhere inside a free-form value (``options: {width: .inf}``,
    ``choice: [.nan]``) through the validator below. An ``inf`` weight or range end only shows up later as
    a diverged training run, so it is refused where it is read, naming the field."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False)

    # Field pairs (lo, hi) of this model that must satisfy lo < hi (e.g. area bounds a < b): a search
    # space over both samples them jointly instead of drawing invalid pairs.
    ORDERED_PAIRS: ClassVar[tuple[tuple[str, str], ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        """``true``/``false`` in a number field is refused: pydantic's lax mode would read ``epochs: true``
        (or ``--set train.epochs=true``) as 1 epoch. Strings and floats keep pydantic's own rules. (A
        model validator: a field validator on every field would also sit on a union's tag field.)"""
        if isinstance(data, dict):
            for key, value in data.items():
                field = cls.model_fields.get(key) if isinstance(key, str) else None
                if field is not None and _bool_in_number(value, field.annotation):
                    raise PydanticCustomError(
                        BOOL_NUMBER,
                        "expected a number, not a boolean (got {got})",
                        {"field": key, "got": str(value).lower()},
                    )
        return data

    @field_validator("*", mode="after")
    @classmethod
    def _finite_inside(cls, value: Any) -> Any:
        found = non_finite(value)
        if found is not None:
            where = f" at {found[0]}" if found[0] else ""
            raise ValueError(f"numbers must be finite (got {found[1]}{where})")
        return value


# Tags of discriminated unions (e.g. objective names): pydantic puts the tag into an error's location
# (``objective.wysiwyc.lambda_tv``); the one-line message leaves it out (``objective.lambda_tv``).
_UNION_TAGS: set[str] = set()


def register_union_tags(tags: Any) -> None:
    """Declare the tags of a discriminated union, so error locations read as the user's file does."""
    _UNION_TAGS.update(str(t) for t in tags)


def format_validation_error(err: ValidationError, source: str | None = None) -> str:
    """The first pydantic error as one line: ``source: dotted.field: message``."""
    first = err.errors()[0]
    parts_in = [str(p) for p in first.get("loc", ()) if not str(p).startswith("function-")]
    loc = ".".join(p for i, p in enumerate(parts_in) if not (i > 0 and p in _UNION_TAGS))
    if first.get("type") == BOOL_NUMBER:  # raised by the model, for one of its fields
        loc = ".".join(p for p in (loc, str((first.get("ctx") or {}).get("field", ""))) if p)
    msg = first.get("msg", "invalid value")
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if first.get("type") == "extra_forbidden":
        msg = "unknown field"
    elif first.get("type") == "missing":
        msg = "field required"
    elif first.get("type") == "union_tag_invalid":
        ctx = first.get("ctx") or {}
        kind = parts_in[-1] if parts_in else "name"
        choices = ", ".join(sorted(re.findall(r"'([^']+)'", str(ctx.get("expected_tags", "")))))
        loc = f"{loc}.{ctx.get('discriminator', 'name')}".strip(".").replace("'", "")
        return ": ".join(
            [p for p in (source, loc) if p] + [f"unknown {kind} {ctx.get('tag')!r}; choose one of {choices}"]
        )
    if (
        "input" in first
        and first.get("type") not in ("extra_forbidden", "missing")
        and not isinstance(first["input"], dict)
    ):
        shown = repr(first["input"])
        if len(shown) <= 60 and shown not in msg:
            msg = f"{msg} (got {shown})"
    parts = [p for p in (source, loc) if p]
    return ": ".join(parts + [msg])


def validate(model: type[M], data: Any, source: str | None = None) -> M:
    """Validate ``data`` against ``model``; a ``UserError`` with one line naming the field on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise UserError(format_validation_error(err, source)) from None


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping key given twice (plain PyYAML keeps the last one, so a
    second ``lr:`` further down a file silently replaces the first). Keys brought in by a merge (``<<:``)
    may be overridden, as YAML intends."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: SafeLoader's own error reports it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first given at line {first})", key_node.start_mark
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str = "<string>") -> Any:
    """YAML text through ``StrictLoader``; a ``UserError`` ``source: invalid YAML at line N: problem``."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{source}: invalid YAML{where}: {problem}") from None


def read_yaml(path: str | Path) -> Any:
    """Parse a config or sweep YAML file (``parse_yaml``: duplicate keys refused); a ``UserError``
    naming the file when it is missing, unreadable, malformed or empty (no document, or only comments:
    an empty experiment file would otherwise silently train the built-in defaults; ``{}`` says so)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such config file")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: unreadable config file ({type(err).__name__})") from None
    data = parse_yaml(text, str(path))
    if data is None:
        raise UserError(f"{path}: empty file (expected a mapping of config fields; write {{}} for every default)")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config fields at the top level")
    return data


def stable_hash(data: Any, length: int = 12) -> str:
    """A short content hash of JSON-able data; used as a cache key (dataset arrays, explananda)."""
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def set_dotted(data: dict, dotted: str, value: Any) -> None:
    """Set ``data['a']['b'] = value`` for ``dotted='a.b'``, creating mappings on the way."""
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            node[key] = nxt
        node = nxt
    node[keys[-1]] = value


def get_dotted(data: dict, dotted: str, default: Any = None) -> Any:
    node: Any = data
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node
