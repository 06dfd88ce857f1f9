"""Command-line options built from a config model's fields, so a command takes each option's type,
choices, default and help from the model that validates it (:mod:`dlbench.configs`).

``--batch-size`` is the field ``batch_size``; a ``Literal`` field gets its values as choices, a list
field ``nargs="+"``, a bool ``--x/--no-x``, a float a finite number. The values typed go back into the
model with :func:`field_values`, and the model's bounds refuse a bad one naming the option.
"""

from __future__ import annotations

import argparse
import types
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel


def _strip(tp: Any) -> Any:
    """``X | None`` -> ``X``; ``Annotated[X, ...]`` -> ``X``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            tp = args[0]
    if typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def option_kwargs(model_cls: type[BaseModel], name: str) -> dict[str, Any]:
    """``add_argument`` keyword arguments for the field ``name`` of ``model_cls``."""
    from dlbench.cli import finite_float

    field = model_cls.model_fields[name]
    tp = _strip(field.annotation)
    kw: dict[str, Any] = {"help": field.description}
    if field.is_required():
        kw["required"] = True
    else:
        default = field.get_default(call_default_factory=True)
        kw["default"] = list(default) if isinstance(default, list) else default
    if typing.get_origin(tp) is list:
        kw["nargs"] = "+"
        tp = _strip(typing.get_args(tp)[0])
    if typing.get_origin(tp) is Literal:
        kw["choices"] = list(typing.get_args(tp))
        kw["type"] = type(kw["choices"][0])
    elif tp is bool:
        kw["action"] = argparse.BooleanOptionalAction
    elif tp is float:
        kw["type"] = finite_float
    elif tp is int:
        kw["type"] = int
    return kw


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_field_options(parser, model_cls: type[BaseModel], names, **overrides: dict[str, Any]) -> None:
    """One option per field in ``names``; ``overrides[name]`` replaces any of its keyword arguments."""
    for name in names:
        kw = {**option_kwargs(model_cls, name), **overrides.get(name, {})}
        parser.add_argument(kw.pop("flag", flag(name)), dest=name, **kw)


def field_values(args: argparse.Namespace, names) -> dict[str, Any]:
    """The values typed (or defaulted) for ``names``, to validate with the model."""
    return {name: getattr(args, name) for name in names}
