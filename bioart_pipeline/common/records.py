"""Frozen dataclasses to and from JSON: the job files every compute backend passes around."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a (nested) dataclass from `dataclasses.asdict` output read back from JSON:
    lists become the tuples the fields declare, Paths come back from strings. Keys the class
    does not know are an error, so a job file from other code is refused, not half-read."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}")
    return cls(**{k: _value(hints[k], v) for k, v in data.items()})


def _value(kind: Any, value: Any) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        return _value(next(a for a in args if a is not type(None)), value)
    if dataclasses.is_dataclass(kind):
        return from_dict(kind, value)  # type: ignore[arg-type]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], v) for v in value)
        return tuple(_value(a, v) for a, v in zip(args, value, strict=True))
    if origin is dict:
        return {k: _value(args[1], v) for k, v in value.items()}
    if kind is Path:
        return Path(value)
    return value
