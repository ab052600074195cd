"""Hub methods as registered: what kind of function each is, and the check of a client's arguments
against its signature.

Arguments arrive as JSON or MessagePack values, so only what those formats can say is checked:
the count, and each argument against an annotation made of ``str``, ``int``, ``float``, ``bool``,
``bytes``, ``list``, ``dict``, ``None`` and ``Any``, in unions (``str | None``) and with parameters
(``list[str]``: only ``list`` is checked). ``float`` takes an ``int`` (JSON writes ``1.0`` as
``1``); ``int`` does not take a ``bool``. Any other annotation (a dataclass, a ``TypedDict``, a name
that cannot be resolved) is not checked: the handler gets the value as decoded.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from .._errors import ConfigurationError, short, shown

__all__ = ["HubMethod", "MethodKind", "event_handler", "hub_method", "refusal", "short"]

MethodKind: TypeAlias = Literal["sync", "async", "stream"]

_SIMPLE: Final[dict[Any, tuple[type, ...]]] = {
    str: (str,),
    int: (int,),
    float: (int, float),
    bool: (bool,),
    bytes: (bytes,),
    list: (list, tuple),
    tuple: (list, tuple),
    dict: (dict,),
    type(None): (type(None),),
}
_NAMES: Final[dict[Any, str]] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    bytes: "bytes",
}


@dataclass(frozen=True, slots=True)
class _Parameter:
    name: str
    accepts: tuple[type, ...] | None  # None: not checked
    wanted: str  # the annotation, for messages


@dataclass(frozen=True, slots=True)
class HubMethod:
    """One ``@hub.on`` handler: ``function(call, *arguments)``."""

    name: str
    function: Callable[..., Any]
    kind: MethodKind
    parameters: tuple[_Parameter, ...]
    required: int
    variadic: bool

    def check(self, arguments: tuple[Any, ...] | list[Any]) -> str | None:
        """Why ``arguments`` do not fit the method, in words for the client; ``None`` if they do."""
        count, most = len(arguments), len(self.parameters)
        if count < self.required or (count > most and not self.variadic):
            takes = str(most) if self.required == most else f"{self.required} to {most}"
            if self.variadic:
                takes = f"at least {self.required}"
            return (
                f"Invocation of '{self.name}' provides {count} argument(s) but the method takes "
                f"{takes}."
            )
        for position, (parameter, value) in enumerate(
            zip(self.parameters, arguments, strict=False), 1
        ):
            if parameter.accepts is not None and not _accepted(value, parameter.accepts):
                return (
                    f"Argument {position} ('{parameter.name}') of '{self.name}' must be "
                    f"{parameter.wanted}, not {_kind(value)}."
                )
        return None


def _accepted(value: object, accepts: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in accepts:
        return False
    return isinstance(value, accepts)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    kinds: dict[type, str] = {list: "a list", tuple: "a list", dict: "an object"}
    return kinds.get(type(value), type(value).__name__)


def _accepts(annotation: object) -> tuple[tuple[type, ...] | None, str]:
    """The Python types a checked annotation takes and its name, or ``(None, ...)``."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return None, "any value"
    if annotation is None:
        annotation = type(None)
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        accepted: list[type] = []
        names: list[str] = []
        for member in typing.get_args(annotation):
            types_, name = _accepts(member)
            if types_ is None:
                return None, "any value"
            accepted.extend(types_)
            names.append(name)
        return tuple(accepted), " or ".join(names)
    if origin is not None:  # list[str], dict[str, int]: the outer type only
        annotation = origin
    simple = _SIMPLE.get(annotation)
    if simple is None:
        return None, "any value"
    if annotation is type(None):
        return simple, "null"
    if annotation in (list, tuple):
        return simple, "a list"
    if annotation is dict:
        return simple, "an object"
    return simple, _NAMES[annotation]


def _kind_of(function: Callable[..., Any]) -> MethodKind:
    if inspect.isasyncgenfunction(function):
        return "stream"
    if inspect.iscoroutinefunction(function):
        return "async"
    if inspect.isgeneratorfunction(function):
        msg = (
            f"{shown(function)} is a generator: a streaming hub method is an async generator "
            "(async def ... yield)."
        )
        raise ConfigurationError(msg)
    return "sync"


def _signature(function: Callable[..., Any], what: str) -> inspect.Signature:
    if not callable(function):
        msg = f"{what} must be a function, not {shown(function)}."
        raise ConfigurationError(msg)
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        msg = f"{what} {shown(function)} has no signature Python can read."
        raise ConfigurationError(msg) from None


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function)
    except Exception:  # a forward reference that cannot be resolved: check nothing
        return {}


def hub_method(name: str, function: Callable[..., Any]) -> HubMethod:
    """``function`` as hub method ``name``: ``function(call, *arguments)``, sync, async or an
    async generator (a streaming method)."""
    signature = _signature(function, f"The handler of {name!r}")
    kind = _kind_of(function)
    hints = _hints(function)
    positional = []
    variadic = False
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            positional.append(parameter)
        elif parameter.kind is parameter.VAR_POSITIONAL:
            variadic = True
        elif parameter.kind is parameter.KEYWORD_ONLY and parameter.default is parameter.empty:
            msg = (
                f"The handler of {name!r} has the keyword-only parameter {parameter.name!r} "
                "without a default: clients pass arguments by position only."
            )
            raise ConfigurationError(msg)
    if not positional:
        msg = (
            f"The handler of {name!r} must take the call as its first parameter: "
            f"def {name}(call, ...)."
        )
        raise ConfigurationError(msg)
    parameters = []
    required = 0
    for parameter in positional[1:]:
        accepts, wanted = _accepts(hints.get(parameter.name, parameter.empty))
        parameters.append(_Parameter(parameter.name, accepts, wanted))
        if parameter.default is parameter.empty:
            required = len(parameters)
    return HubMethod(
        name=name,
        function=function,
        kind=kind,
        parameters=tuple(parameters),
        required=required,
        variadic=variadic,
    )


def event_handler(function: Callable[..., Any], event: str) -> tuple[Callable[..., Any], bool]:
    """An ``on_connected`` / ``on_disconnected`` handler, and whether it takes the close error
    after the call (``on_disconnected`` only: ``def left(call, error)``)."""
    signature = _signature(function, f"The {event} handler")
    if inspect.isasyncgenfunction(function) or inspect.isgeneratorfunction(function):
        msg = f"The {event} handler {shown(function)} must be a function, not a generator."
        raise ConfigurationError(msg)
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    takes_error = event == "on_disconnected" and len(positional) >= 2
    wanted = 2 if takes_error else 1
    if len(positional) != wanted:
        form = "(call) or (call, error)" if event == "on_disconnected" else "(call)"
        msg = f"The {event} handler {shown(function)} must take {form}."
        raise ConfigurationError(msg)
    return function, takes_error


def refusal(
    method: HubMethod | None,
    target: str,
    arguments: tuple[Any, ...] | list[Any],
    *,
    streaming: bool,
    streams: int = 0,
) -> str | None:
    """Why an invocation of ``target`` cannot run, in words for the client (as ASP.NET Core words
    them); ``None`` when it can."""
    target = short(target)
    if method is None:
        return f"Unknown hub method '{target}'"
    if streams:
        return (
            f"Client-to-server streaming is not supported: '{target}' was sent {streams} stream(s)."
        )
    if streaming and method.kind != "stream":
        return (
            f"The client attempted to invoke the non-streaming '{target}' method with a "
            "streaming invocation."
        )
    if not streaming and method.kind == "stream":
        return (
            f"The client attempted to invoke the streaming '{target}' method with a "
            "non-streaming invocation."
        )
    return method.check(arguments)
