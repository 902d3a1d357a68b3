"""How ``--help`` names an option's value. Typer 0.29 prints Python annotations there (``<bool>`` beside every
flag, ``--help`` included, ``<list[str]>`` for a repeatable option, ``<int range>``); this prints nothing for a
flag and the click-style names otherwise: ``TEXT``, ``INTEGER``, ``FLOAT``, ``PATH``, ``TEXT ...`` for a
repeatable option (give it once per value). An option's own ``metavar`` wins (an argument's is its name column).
Applied once, on import of :mod:`cli` (it changes only how help is printed, not what is parsed)."""
from __future__ import annotations

import re

from typer.core import TyperArgument, TyperOption

_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "bool": "BOOLEAN", "path": "PATH", "file": "FILE",
          "directory": "DIRECTORY", "int range": "INTEGER", "float range": "FLOAT", "datetime": "DATETIME"}


def readable(label: str | None) -> str | None:
    """``<list[str]>`` -> ``TEXT ...``, ``<int range>`` -> ``INTEGER``, ``<path>`` -> ``PATH``."""
    if not label:
        return label
    m = re.fullmatch(r"<(.*)>(\.\.\.)?", label)
    if not m:
        return label
    inner, many = m.group(1), bool(m.group(2))
    listed = re.fullmatch(r"list\[(.*)\]", inner)
    if listed:
        inner, many = listed.group(1), True
    name = _NAMES.get(inner, inner.upper() if re.fullmatch(r"[a-z_ ]+", inner) else inner)
    return f"{name} ..." if many else name


def install() -> None:
    if getattr(TyperOption, "_amr_prune_help", False):
        return
    option_type, argument_type = TyperOption.display_type_rich, TyperArgument.display_type_rich

    def option(self, ctx):
        if self.metavar is not None:
            return self.metavar
        if self.is_flag or self.count:
            return None
        return readable(option_type(self, ctx))

    def argument(self, ctx):                     # an argument's metavar is its name column already
        return readable(argument_type(self, ctx))

    TyperOption.display_type_rich, TyperArgument.display_type_rich = option, argument
    TyperOption._amr_prune_help = True
