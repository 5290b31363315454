"""One task instance, whatever try: the keys Airflow's own tables use for it.

Re-attaching to an AWS run (``aws.resumable``), the CloudWatch log cursor (``log.cloudwatch``) and
the end-reason lookup in the event log (``log.reasons``) all name a task instance the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TaskInstanceRef"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class TaskInstanceRef:
    """One task instance: what every try of it has in common."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1

    @classmethod
    def of(cls, ti: Any) -> TaskInstanceRef:
        """From an ORM TaskInstance (Airflow 2), a RuntimeTaskInstance (Airflow 3) or a key."""
        map_index = getattr(ti, "map_index", None)
        index = -1 if map_index is None else int(map_index)
        return cls(str(ti.dag_id), str(ti.task_id), str(ti.run_id), index)

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> TaskInstanceRef:
        return cls.of(context["ti"])

    def key(self, max_length: int = 80) -> str:
        """A deterministic name for this task instance: ``[A-Za-z0-9_.-]``, at most ``max_length``.

        The readable part (``dag.task.run[.map_index]``, sanitised) may be cut; a hash of the exact,
        unsanitised identity keeps two task instances apart (``a:b`` and ``a_b`` sanitise alike).
        """
        identity = f"{self.dag_id}\x1f{self.task_id}\x1f{self.run_id}\x1f{self.map_index}"
        digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
        parts = [self.dag_id, self.task_id, self.run_id]
        if self.map_index >= 0:
            parts.append(str(self.map_index))
        readable = _UNSAFE.sub("_", ".".join(parts)).strip("._-") or "airflow"
        return f"{readable[: max_length - len(digest) - 1]}-{digest}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "task_id": self.task_id,
            "run_id": self.run_id,
            "map_index": self.map_index,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskInstanceRef:
        return cls(
            str(data["dag_id"]), str(data["task_id"]), str(data["run_id"]), int(data.get("map_index", -1))
        )
