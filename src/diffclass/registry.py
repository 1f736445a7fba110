"""One registry idiom for everything found by name: strategies, pruning rules and importances, DiDiCM samplers,
backbones and datasets.

The file that implements a thing registers its name, its options with their defaults and a one-line help; the
factory is a lookup; `diffclass strategies` lists what a registry holds. A spec names an entry with options,
`adaptive(keep=10,1;n=8,32)`, and the same spec means the same thing in the CLI and in Python. This module
imports nothing heavy, so listing and parsing stay instant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from diffclass.errors import DiffclassError

# --- option parsers: each turns the text of one option into its value, or raises one clear line ----------------


def integer(low: int = 1, high: int = 1_000_000) -> Callable[[str, str], int]:
    def parse(key: str, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise DiffclassError(f"option {key}={text!r} must be an integer") from None
        if not low <= value <= high:
            raise DiffclassError(f"option {key}={value} must be in [{low}, {high}]")
        return value

    parse.kind = f"int in [{low}, {high}]"  # type: ignore[attr-defined]
    return parse


def number(low: float, high: float, low_open: bool = False) -> Callable[[str, str], float]:
    def parse(key: str, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise DiffclassError(f"option {key}={text!r} must be a number") from None
        if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
            bracket = "(" if low_open else "["
            raise DiffclassError(f"option {key}={text} must be a finite number in {bracket}{low:g}, {high:g}]")
        return value

    parse.kind = f"number in {'(' if low_open else '['}{low:g}, {high:g}]"  # type: ignore[attr-defined]
    return parse


def integers(low: int = 1, high: int = 1_000_000) -> Callable[[str, str], list[int]]:
    one = integer(low, high)

    def parse(key: str, text: str) -> list[int]:
        return [one(key, part) for part in text.split(",")]

    parse.kind = f"comma-separated ints in [{low}, {high}]"  # type: ignore[attr-defined]
    return parse


def choice(*values: str) -> Callable[[str, str], str]:
    def parse(key: str, text: str) -> str:
        if text not in values:
            raise DiffclassError(f"option {key}={text!r}: choose one of {', '.join(values)}")
        return text

    parse.kind = " | ".join(values)  # type: ignore[attr-defined]
    return parse


def text(key: str, value: str) -> str:
    return value


text.kind = "text"  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Option:
    name: str
    default: Any  # None: derived when the entry is built (the help says from what)
    parse: Callable[[str, str], Any]
    help: str = ""

    @property
    def kind(self) -> str:
        return getattr(self.parse, "kind", "")


@dataclass
class Entry:
    name: str
    build: Callable[..., Any]
    options: tuple[Option, ...] = ()
    help: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # what a registry needs besides options (a spec prefix...)

    def option(self, key: str) -> Option | None:
        return next((o for o in self.options if o.name == key), None)

    def parse(self, raw: dict[str, str], strict: bool = True) -> tuple[dict[str, Any], dict[str, str]]:
        """(typed values with the defaults filled in, options this entry does not know). With `strict`, an
        unknown option is an error naming the allowed ones."""
        values = {o.name: o.default for o in self.options}
        rest = {}
        for key, value in raw.items():
            option = self.option(key)
            if option is None:
                rest[key] = value
            else:
                values[key] = option.parse(key, value)
        if strict and rest:
            allowed = ", ".join(o.name for o in self.options) or "none"
            raise DiffclassError(f"unknown option(s) {', '.join(sorted(rest))} for {self.name}; allowed: {allowed}")
        return values, rest

    @property
    def usage(self) -> str:
        """`name(option=default;...)`, the way the entry is spelled with every default written out."""
        shown = ";".join(f"{o.name}={format_option(o.default) if o.default is not None else '…'}" for o in self.options)
        return f"{self.name}({shown})" if shown else self.name


class Registry:
    """Names -> entries, filled by `@registry.register(...)` in the implementing files."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, *options: Option, help: str = "", **extra):
        def wrap(build):
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, build, tuple(options), help, extra)
            return build

        return wrap

    def get(self, name: str) -> Entry:
        if name not in self._entries:
            raise DiffclassError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def names(self) -> list[str]:
        return list(self._entries)

    def create(self, spec: str, *args, **kwargs):
        """Build the entry a spec names, with its options parsed and checked."""
        name, raw = parse_spec(spec)
        entry = self.get(name)
        values, _ = entry.parse(raw)
        return entry.build(values, *args, **kwargs)


# --- spec syntax ------------------------------------------------------------------------------------------------


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """`adaptive(keep=10,1;n=10,100)` -> ("adaptive", {"keep": "10,1", "n": "10,100"})."""
    if not isinstance(spec, str):
        raise DiffclassError(f"a spec must be text, got {type(spec).__name__}")
    spec = spec.strip()
    if "(" not in spec:
        if not spec:
            raise DiffclassError("empty spec: expected name or name(option=value;...)")
        return spec, {}
    if not spec.endswith(")"):
        raise DiffclassError(f"malformed spec {spec!r}: expected name(option=value;...)")
    kind, body = spec[:-1].split("(", 1)
    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in _split_top_level(body, spec))):
        if "=" not in part:
            raise DiffclassError(f"malformed option {part!r} in {spec!r}: expected option=value")
        key, value = part.split("=", 1)
        if key.strip() in options:
            raise DiffclassError(f"option {key.strip()!r} is given twice in {spec!r}")
        options[key.strip()] = value.strip()
    return kind.strip(), options


def _split_top_level(body: str, spec: str) -> list[str]:
    """Split options at `;` outside parentheses, so a nested stage like `final=adaptive(keep=5,1;n=4,16)` stays
    one option (names print it that way, and a name must parse back)."""
    parts, depth, current = [], 0, []
    for char in body:
        if char == ";" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += (char == "(") - (char == ")")
        if depth < 0:
            raise DiffclassError(f"malformed spec {spec!r}: unbalanced parentheses")
        current.append(char)
    if depth != 0:
        raise DiffclassError(f"malformed spec {spec!r}: unbalanced parentheses")
    return parts + ["".join(current)]


def format_option(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(format_option(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_spec(name: str, options: dict[str, object]) -> str:
    shown = ";".join(f"{k}={format_option(v)}" for k, v in options.items())
    return f"{name}({shown})" if shown else name
