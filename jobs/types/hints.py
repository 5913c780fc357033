"""A job type's params schema read from its function's type hints, and the JSON-strict fields it is made of.

Each param's hint becomes a marshmallow field that takes JSON as the JSON Schema of `GET /api/job-types` says:
`str`; `int` (strict: no "1", no 1.5, no true); `float` (ints too; no NaN or infinity); `bool` (true or false
only); `list[X]` and `dict[str, X]` of those (bare `list`, `dict` and `Any`: any JSON); `Literal[...]` of str,
int or bool values (an enum); `X | None` (null allowed); `Annotated[X, validator, "description"]` with any
marshmallow validator (`Range`, `Length`, `OneOf`, `Regexp`...). A default makes a param optional; without one
it is required. Any other hint, a param without one, `*args` or `**kwargs` is a TypeError at registration that
names the param: such a type gives `schema=` instead.

Written here rather than taken from marshmallow-dataclass (8.7.1, its last release, from before marshmallow 4),
which was tried on a dataclass made from the signature: inside `Annotated` it takes marshmallow fields but not
validators (`Range` raises TypeError), it maps `Literal` to an untyped Raw field (no JSON type for the form),
`int` to a lenient Integer ("1" accepted) and `float` to one that takes NaN, and it adds typeguard and
typing-inspect. The mapping SPEC asks for is the hundred lines below.
"""

from __future__ import annotations

import copy
import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

from marshmallow import Schema, ValidationError, fields, validate

EMPTY = inspect.Parameter.empty
HINTS = "str, int, float, bool, list[...], dict[str, ...], Literal[...], X | None or Annotated[X, validator]"


class JsonNumber(fields.Float):
    """A JSON number: "1.5", a string, is refused, as the document's `type: number` says (Float would parse it)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, str):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class JsonBoolean(fields.Boolean):
    """true or false, as the document's `type: boolean` says (Boolean would take "yes", "on", 1)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def _integer(**options: Any) -> fields.Field:
    return fields.Integer(strict=True, **options)  # marshmallow 4's strict Integer refuses "1", 1.5 and true


def _number(**options: Any) -> fields.Field:
    return JsonNumber(allow_nan=False, **options)


SCALARS: dict[Any, Callable[..., fields.Field]] = {
    str: fields.String,
    int: _integer,
    float: _number,
    bool: JsonBoolean,
}


def schema_from_hints(func: Callable[..., Any]) -> Schema:
    """The schema of `func`'s params from its signature's hints; TypeError naming a param it cannot map."""
    where = f"{func.__module__}.{func.__qualname__}"
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:  # a name the hints use that is not importable where the function is
        raise TypeError(f"{where}: cannot read its type hints ({exc}); register it with schema=") from exc
    declared: dict[str, fields.Field] = {}
    for param in inspect.signature(func).parameters.values():
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise TypeError(f"{where}: param {param.name!r} cannot be passed by name; a job's params are")
        if param.name not in hints:
            raise TypeError(f"{where}: param {param.name!r} has no type hint; give it one, or register with schema=")
        try:
            field = param_field(hints[param.name], param.default)
        except TypeError as exc:
            raise TypeError(f"{where}: param {param.name!r}: {exc}") from None
        # A param named like a Schema attribute (load, fields, validate...) is declared under another key.
        key = f"param:{param.name}" if hasattr(Schema, param.name) else param.name
        if key != param.name:
            field.data_key = field.attribute = param.name
        declared[key] = field
    return Schema.from_dict(declared, name=f"{func.__qualname__}Params")()


def param_field(hint: Any, default: Any = EMPTY) -> fields.Field:
    """The field of one param: required without a default; with one, optional, and the default must fit."""
    if default is EMPTY:
        return field_for(hint, required=True)
    # A mutable default is copied for each job, as a fresh list per call would be.
    mutable = isinstance(default, list | dict | set)
    field = field_for(
        hint,
        load_default=(lambda: copy.deepcopy(default)) if mutable else default,
        metadata={"default": default} if mutable else {},
    )
    try:
        field.deserialize(default)
    except ValidationError as exc:
        raise TypeError(f"its default {default!r} does not fit its hint: {exc.messages}") from None
    return field


def field_for(hint: Any, **options: Any) -> fields.Field:
    """The marshmallow field for a type hint, with `options` (required, load_default, validate...)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        validators = [extra for extra in hint.__metadata__ if isinstance(extra, validate.Validator)]
        notes = [extra for extra in hint.__metadata__ if isinstance(extra, str)]
        if notes:
            options["metadata"] = {**options.get("metadata", {}), "description": " ".join(notes)}
        return field_for(args[0], **{**options, "validate": [*options.get("validate", ()), *validators]})
    if origin in (Union, types.UnionType):
        rest = [arg for arg in args if arg is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"{hint} is a union; only X | None is supported")
        return field_for(rest[0], **{**options, "allow_none": True})
    if origin is Literal:
        values = [arg for arg in args if arg is not None]
        kinds = {type(value) for value in values}
        if len(kinds) != 1 or not kinds <= {str, int, bool}:
            raise TypeError(f"{hint}: a Literal's values must be all str, all int or all bool")
        if len(values) < len(args):
            options["allow_none"] = True
        return field_for(kinds.pop(), **{**options, "validate": [*options.get("validate", ()), validate.OneOf(values)]})
    if hint is Any:
        return fields.Raw(**{"allow_none": True, **options})
    if hint in SCALARS:
        return SCALARS[hint](**options)
    if hint is list or origin is list:
        return fields.List(field_for(args[0] if args else Any), **options)
    if hint is dict or origin is dict:
        keys, values = args or (str, Any)
        if keys is not str:
            raise TypeError(f"{hint}: a dict's keys must be str (JSON object keys are strings)")
        return fields.Dict(keys=fields.String(), values=field_for(values), **options)
    raise TypeError(f"cannot map {hint!r} to JSON; use {HINTS}, or register with schema=")
