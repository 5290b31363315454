"""Check request parameters against the constraints of AWS's own service model, before a call.

botocore validates only required members, types and minimum lengths on the client; AWS also
enforces maximum lengths, patterns, ranges and enums on the server. The model botocore ships holds
all of them (the "Length Constraints" and "Pattern" lines of each API reference page), so one
walker serves the operators (refuse bad input before any AWS call) and the emulator (answer as
AWS answers).
"""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = ["constraint_errors", "describe_errors", "service_model"]


@functools.cache
def service_model(service_name: str) -> Any:
    """botocore's copy of AWS's model of ``service_name`` (loaded once per process)."""
    import botocore.session

    return botocore.session.get_session().get_service_model(service_name)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    # Java-style Unicode classes of the model (tag keys and values) in Python's terms.
    translated = pattern.replace(r"\p{L}", r"\w").replace(r"\p{Z}", r"\s").replace(r"\p{N}", r"\d")
    return re.compile(translated)


def _camel(member: str) -> str:
    return member[:1].lower() + member[1:]


def _value_text(shape: Any, value: Any) -> str:
    """How a message shows the value: sensitive members (configuration values) are not echoed."""
    return "Value" if shape.metadata.get("sensitive") else f"Value '{value}'"


def _scalar_problem(shape: Any, value: Any) -> str | None:
    meta = shape.metadata
    if shape.type_name == "string" and isinstance(value, str):
        if "min" in meta and len(value) < meta["min"]:
            return f"Member must have length greater than or equal to {meta['min']}"
        if "max" in meta and len(value) > meta["max"]:
            return f"Member must have length less than or equal to {meta['max']}"
        if "pattern" in meta and not _compiled(meta["pattern"]).fullmatch(value):
            return f"Member must satisfy regular expression pattern: {meta['pattern']}"
        if shape.enum and value not in shape.enum:
            return f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
    if shape.type_name in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool):
        if "min" in meta and value < meta["min"]:
            return f"Member must have value greater than or equal to {meta['min']}"
        if "max" in meta and value > meta["max"]:
            return f"Member must have value less than or equal to {meta['max']}"
    return None


def _check(shape: Any, value: Any, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return
        for name in shape.required_members:
            if value.get(name) is None:
                errors.append(
                    f"Value null at '{path + _camel(name)}' failed to satisfy constraint: "
                    "Member must not be null"
                )
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _check(member, value[name], f"{path}{_camel(name)}.", errors)
        return
    where = path.rstrip(".")
    if kind in ("list", "map"):
        size = len(value) if isinstance(value, list | dict) else 0
        meta = shape.metadata
        if "min" in meta and size < meta["min"]:
            errors.append(
                f"Value '{value}' at '{where}' failed to satisfy constraint: "
                f"Member must have length greater than or equal to {meta['min']}"
            )
        elif "max" in meta and size > meta["max"]:
            errors.append(
                f"Value '{value}' at '{where}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {meta['max']}"
            )
        if kind == "list" and isinstance(value, list):
            for index, item in enumerate(value, start=1):
                _check(shape.member, item, f"{where}.{index}.member.", errors)
        if kind == "map" and isinstance(value, dict):
            for key, item in value.items():
                for part, part_shape, text in (("keys", shape.key, key), ("value", shape.value, item)):
                    problem = _scalar_problem(part_shape, text)
                    if problem:
                        label = "Map keys must" if part == "keys" else "Map value must"
                        errors.append(
                            f"{_value_text(part_shape, text)} at '{where}' failed to satisfy constraint: "
                            f"{label} satisfy constraint: [{problem}]"
                        )
        return
    problem = _scalar_problem(shape, value)
    if problem:
        errors.append(f"{_value_text(shape, value)} at '{where}' failed to satisfy constraint: {problem}")


def constraint_errors(service_name: str, operation: str, params: dict[str, Any]) -> list[str]:
    """What AWS's model says is wrong with ``params`` for ``operation`` (empty: nothing).

    Messages are worded as AWS words a constraint violation (``Value 'x' at 'name' failed to
    satisfy constraint: Member must ...``).
    """
    errors: list[str] = []
    _check(service_model(service_name).operation_model(operation).input_shape, params, "", errors)
    return errors


def describe_errors(errors: list[str]) -> str:
    """AWS's summary line for a list of constraint violations."""
    plural = "s" if len(errors) > 1 else ""
    return f"{len(errors)} validation error{plural} detected: {'; '.join(errors)}"
