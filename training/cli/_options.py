"""Options shared by several ``sursmr-train`` commands, and options derived from a config dataclass."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union

import click

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def input_pipeline_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--input-mode / --input-size: score with another input pipeline than the saved one."""
    command = click.option(
        "--input-size", type=click.IntRange(min=32), default=None, help="Resize target or tile side."
    )(command)
    return click.option(
        "--input-mode",
        type=click.Choice(["resize224", "native"]),
        default=None,
        help="Score with this input pipeline instead of the saved one (the weights do not depend on it).",
    )(command)


def parse_assignments(
    _ctx: click.Context | None, param: click.Parameter | None, items: tuple[str, ...]
) -> dict[str, Any]:
    """``FIELD=JSON`` pairs as a dict (plain strings need no quotes; JSON lists become tuples)."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not FIELD=JSON", param=param)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        parsed[key] = tuple(value) if isinstance(value, list) else value
    return parsed


def _number_type(kind: type, meta: Mapping[str, Any]) -> click.ParamType[Any] | type:
    if meta.get("low") is None and meta.get("high") is None:
        return kind
    range_type = click.IntRange if kind is int else click.FloatRange
    return range_type(
        min=meta.get("low"),
        max=meta.get("high"),
        min_open=meta.get("low_open", False),
        max_open=meta.get("high_open", False),
    )


def field_option(item: dataclasses.Field[Any], hint: Any) -> Decorator:
    """The click option of one dataclass field: flag, type, default and help from its type and metadata.

    ``Literal`` types become choices, ``int``/``float`` ranges come from the
    metadata's ``low``/``high``, ``bool`` becomes ``--x/--no-x`` (or a single
    flag that turns the field off when ``negated``), a ``Mapping`` a repeatable
    ``FIELD=JSON`` option, and a field without a default a required option.
    """
    meta = item.metadata
    flag = meta.get("flag") or "--" + item.name.replace("_", "-")
    required = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
    default = None if item.default is dataclasses.MISSING else item.default
    kwargs: dict[str, Any] = {"help": meta.get("help"), "metavar": meta.get("metavar")}
    if typing.get_origin(hint) in (Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    origin = typing.get_origin(hint)
    if hint is bool and meta.get("negated"):
        return click.option(
            flag, item.name, is_flag=True, default=False, callback=lambda _c, _p, value: not value, **kwargs
        )
    if hint is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", item.name, default=default, show_default=True, **kwargs)
    if origin in (Mapping, dict) or hint in (Mapping, dict):
        return click.option(flag, item.name, multiple=True, callback=parse_assignments, **kwargs)
    if origin is Literal:
        kind: click.ParamType[Any] | type = click.Choice([str(arg) for arg in typing.get_args(hint)])
    elif hint in (int, float):
        kind = _number_type(hint, meta)
    elif meta.get("directory"):
        kind = click.Path(file_okay=False)
    else:
        kind = str
    return click.option(
        flag, item.name, type=kind, default=default, required=required, show_default=default is not None, **kwargs
    )


def config_options(cls: type, skip: tuple[str, ...] = ()) -> Decorator:
    """Add one option per field of the dataclass ``cls`` (in field order, ``--help`` in the same order).

    The command receives the values under the field names, ready for ``cls(**values)``.
    """
    hints = typing.get_type_hints(cls)
    chosen = [item for item in dataclasses.fields(cls) if item.name not in skip]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for item in reversed(chosen):  # click lists options in decoration order, outermost first
            command = field_option(item, hints[item.name])(command)
        return command

    return decorate


__all__ = ["config_options", "field_option", "input_pipeline_options", "parse_assignments"]
