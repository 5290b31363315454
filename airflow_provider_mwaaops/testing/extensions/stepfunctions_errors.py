"""A ``States.*`` error keeps its name when it leaves a Parallel branch or a Map iteration.

The Amazon States Language: a Parallel state fails when a branch fails, "because of an unhandled
error or by transitioning to a Fail state", and the state's failure carries the branch's error;
the same holds for a Map iteration. Errors named ``States.*`` are the service's own
(``States.ExceedToleratedFailureThreshold`` from a Distributed Map, ``States.Timeout``,
``States.TaskFailed``, ...) and Retry / Catch match them as such.

moto re-wraps the branch's (or iteration's) error name in ``CustomErrorName``, which refuses
``States.*`` names - a rule for the names *authors* give in Fail states - so a Parallel holding a
Distributed Map that exceeds its failure threshold failed with ``States.Runtime`` ("Custom Error
Names MUST NOT begin with the prefix 'States.'") instead of the Map's error. Here the name passes
through: a known ``States.*`` name as moto's own ``StatesErrorName`` (so ``States.TaskFailed``
matching still tells service errors from custom ones), any other name as before.
"""

from __future__ import annotations

from typing import Any

from moto.stepfunctions.parser.asl.component.common.error_name import custom_error_name
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl

_ORIGINAL = custom_error_name.CustomErrorName


class _ServiceErrorName(ErrorName):
    """A ``States.*`` name the engine does not know: kept verbatim."""


def propagated_error_name(error_name: str | None = None) -> Any:
    """The error name a failed branch or iteration hands to its Parallel / Map state."""
    if error_name is not None and error_name.startswith(custom_error_name.ILLEGAL_CUSTOM_ERROR_PREFIX):
        try:
            return StatesErrorName.from_name(error_name)
        except ValueError:
            return _ServiceErrorName(error_name=error_name)
    return _ORIGINAL(error_name=error_name)


def install() -> None:
    """Parallel branches and Map iterations name their failure as the failed state did."""
    for module in (branches_decl, iteration_worker):
        if getattr(module, "CustomErrorName", None) is _ORIGINAL:
            module.CustomErrorName = propagated_error_name  # type: ignore[attr-defined, assignment]
