"""The message an on-call engineer receives when an Airflow callback fires, shaped for Amazon SNS.

Why a module of its own: the notifier (``SnsRunStatusNotifier``) and the publishing operator
(``SnsPublishResultOperator``) must send the same message, and the message has to survive SNS's limits
whatever Airflow hands over. Three things shape it:

* **What Airflow gives.** A task-level callback gets the task's context (``ti``, ``task``,
  ``exception``...); a DAG-level one gets either the context of the run's last task instance plus
  ``reason``, or, when Airflow has no task instance to offer, only ``dag``, ``run_id`` and
  ``reason``. Every field is therefore read defensively and left out when Airflow did not provide it.
* **Who reads it.** SNS's ``MessageStructure="json"`` lets one publish carry a body per protocol:
  people (email, SMS) get readable text, machines (SQS, Lambda, HTTP(S), Firehose) get a JSON
  document with the same fields. Message attributes (``dag_id``, ``task_id``, ``state``,
  ``environment``, ...) let subscription filter policies route without parsing the body.
* **SNS's limits.** A subject of at most 100 ASCII characters without line breaks, and at most
  256 KB for the message with its attributes. Tracebacks are the part that grows without bound,
  so they (then the exception text, then any detail) are cut in the middle, keeping the start and
  the end where the useful frames are, until the whole publish fits. Nothing here raises for a
  long traceback.

Secrets: every text that leaves goes through Airflow's secrets masker first, so a connection
password or a sensitive Variable that ended up in an exception message is sent as ``***``.
"""

from __future__ import annotations

import json
import logging
import socket
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow_provider_mwaaops import airflow_ui, config, secrets_masking

log = logging.getLogger(__name__)

#: SNS rejects a publish whose message (with its attributes) exceeds 256 KiB.
SNS_MAX_MESSAGE_BYTES = 256 * 1024
#: SNS subjects are printable ASCII on one line, at most 100 characters.
SNS_MAX_SUBJECT_CHARS = 100
#: Room kept free under the limit for the request's own framing and rounding in our estimate.
SIZE_SAFETY_MARGIN_BYTES = 2 * 1024
#: Protocols that get the readable text body; every other protocol key gets the JSON document.
TEXT_PROTOCOLS = ("default", "email")
JSON_PROTOCOLS = ("email-json", "sqs", "lambda", "http", "https", "firehose")
#: SMS subscribers get one short line, since carriers split long texts and charge per part.
SMS_MAX_CHARS = 140
#: Marker put where a text was cut, so a reader knows something is missing.
TRIM_MARKER = "\n... [{count} characters trimmed to fit the SNS size limit] ...\n"
#: Per-field ceilings before any size-based trimming (an exception message is meant to be read).
MAX_EXCEPTION_MESSAGE_CHARS = 8 * 1024
MAX_ATTRIBUTE_VALUE_CHARS = 256
#: A result larger than this goes into the JSON document as cut text rather than as a value.
MAX_RESULT_DOCUMENT_CHARS = 16 * 1024
#: SNS allows at most 10 message attributes per publish.
SNS_MAX_MESSAGE_ATTRIBUTES = 10

PAYLOAD_SCHEMA = "airflow-provider-mwaaops/notification/v1"


@dataclass
class NotificationMessage:
    """A notification ready to publish: subject, readable text, JSON document and attributes."""

    subject: str
    text: str
    document: dict[str, Any]
    attributes: dict[str, str] = field(default_factory=dict)
    protocols: tuple[str, ...] = TEXT_PROTOCOLS + JSON_PROTOCOLS + ("sms",)

    def sns_message(self) -> str:
        """The ``Message`` for ``MessageStructure="json"``: one body per protocol."""
        document_json = json.dumps(self.document, default=str, ensure_ascii=False)
        bodies: dict[str, str] = {}
        for protocol in self.protocols:
            if protocol in TEXT_PROTOCOLS:
                bodies[protocol] = self.text
            elif protocol == "sms":
                bodies[protocol] = _shorten(self.subject, SMS_MAX_CHARS)
            else:
                bodies[protocol] = document_json
        bodies.setdefault("default", self.text)
        return json.dumps(bodies, ensure_ascii=False)

    def sns_message_attributes(self) -> dict[str, dict[str, str]]:
        return {
            name: {"DataType": "String", "StringValue": value}
            for name, value in self.attributes.items()
            if value
        }

    def publish_kwargs(
        self,
        target_arn: str,
        *,
        message_group_id: str | None = None,
        message_deduplication_id: str | None = None,
    ) -> dict[str, Any]:
        """Arguments for ``sns.publish``; group and deduplication ids only for FIFO topics."""
        kwargs: dict[str, Any] = {
            "TargetArn": target_arn,
            "Message": self.sns_message(),
            "MessageStructure": "json",
            "Subject": self.subject,
        }
        if attributes := self.sns_message_attributes():
            kwargs["MessageAttributes"] = attributes
        if message_group_id:
            kwargs["MessageGroupId"] = message_group_id
        if message_deduplication_id:
            kwargs["MessageDeduplicationId"] = message_deduplication_id
        return kwargs

    def size_bytes(self) -> int:
        """What SNS counts against its 256 KiB limit: message body, subject and attributes."""
        size = len(self.sns_message().encode()) + len(self.subject.encode())
        for name, value in self.sns_message_attributes().items():
            size += len(name.encode()) + len(value["DataType"]) + len(value["StringValue"].encode())
        return size


# -- reading the context ---------------------------------------------------------------------------
def _get(obj: Any, name: str) -> Any:
    """Attribute or mapping lookup that never raises: contexts differ per line and per level."""
    if obj is None:
        return None
    try:
        if isinstance(obj, Mapping):
            return obj.get(name)
        return getattr(obj, name, None)
    except Exception:
        return None


def _enum_value(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _aware(value: Any) -> datetime | None:
    if isinstance(value, str):  # contexts built from API models carry ISO strings
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _duration_seconds(start: Any, end: Any, stored: Any = None) -> float | None:
    """Stored duration if Airflow has one, else end - start, else time spent so far."""
    if isinstance(stored, int | float):
        return round(float(stored), 3)
    start_at = _aware(start)
    if start_at is None:
        return None
    end_at = _aware(end) or datetime.now(UTC)
    return round((end_at - start_at).total_seconds(), 3)


def is_dag_level(context: Mapping[str, Any]) -> bool:
    """DAG-level callbacks get a ``reason`` (Airflow 2.11 and 3.x), deadline alerts (3.1+) a
    ``deadline``; task-level ones never have either."""
    return "reason" in context or "deadline" in context


def _exception_details(exception: Any) -> tuple[str | None, str | None, str | None]:
    """Type, message and formatted traceback of the context's ``exception`` (an object or a str)."""
    if exception is None:
        return None, None, None
    if isinstance(exception, BaseException):
        type_name = type(exception).__qualname__
        module = type(exception).__module__
        if module not in ("builtins", "__main__"):
            type_name = f"{module}.{type_name}"
        message = str(exception)
        trace = "".join(traceback.format_exception(type(exception), exception, exception.__traceback__))
        return type_name, message, trace
    # Airflow 3 hands over a string for some failures decided outside the task (e.g. heartbeat).
    return None, str(exception), None


def _end_reason(context: Mapping[str, Any]) -> str | None:
    """Why Airflow itself ended the try (heartbeat timeout, stuck in queued...), when known.

    Comes from the log forwarder; optional, so a missing module or any error just leaves it out.
    """
    try:
        from airflow_provider_mwaaops.log.reasons import end_reason_from_context  # type: ignore[import-not-found]

        reason = end_reason_from_context(context)
        return reason.as_text() if reason is not None else None
    except Exception:
        log.debug("no end reason for this callback", exc_info=True)
        return None


def collect_fields(context: Mapping[str, Any], environment_name: str | None = None) -> dict[str, Any]:
    """Everything an on-call engineer needs from an Airflow callback context, unmasked.

    Keys with no value in this context are present with ``None``, so that machine readers see a
    stable schema.
    """
    dag_level = is_dag_level(context)
    dag = context.get("dag")
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    dag_id = _get(dag, "dag_id") or _get(ti, "dag_id") or _get(dag_run, "dag_id")
    run_id = (
        context.get("run_id") or _get(dag_run, "run_id") or _get(dag_run, "dag_run_id") or _get(ti, "run_id")
    )
    logical_date = context.get("logical_date") or _get(dag_run, "logical_date")
    exception_type, exception_message, trace = _exception_details(context.get("exception"))

    fields: dict[str, Any] = {
        "schema": PAYLOAD_SCHEMA,
        "level": "dag" if dag_level else "task",
        "environment": environment_name if environment_name is not None else config.environment_name(),
        "dag_id": dag_id,
        "run_id": run_id,
        "logical_date": _iso(logical_date),
    }
    if dag_level:
        # The reason is authoritative: on 2.11 the context's dag_run can still say "running".
        state = _state_from_reason(context.get("reason")) or _enum_value(_get(dag_run, "state"))
        reason = context.get("reason")
        if reason is None and context.get("deadline") is not None:
            deadline_time = _get(context["deadline"], "deadline_time")
            reason = f"deadline missed (deadline {_iso(deadline_time)})"
        fields.update(
            {
                "task_id": None,
                "map_index": None,
                "try_number": None,
                "max_tries": None,
                "state": state,
                "reason": reason,
                "last_task_id": _get(ti, "task_id"),
                "start_date": _iso(_get(dag_run, "start_date")),
                "end_date": _iso(_get(dag_run, "end_date")),
                "duration_seconds": _duration_seconds(_get(dag_run, "start_date"), _get(dag_run, "end_date")),
                "hostname": socket.gethostname(),
                "log_url": airflow_ui.dag_run_url(dag_id, run_id) if dag_id and run_id else None,
            }
        )
    else:
        map_index = _get(ti, "map_index")
        try_number = _get(ti, "try_number")
        fields.update(
            {
                "task_id": _get(ti, "task_id") or _get(context.get("task"), "task_id"),
                "map_index": map_index if isinstance(map_index, int) and map_index >= 0 else None,
                "try_number": try_number,
                "max_tries": _get(ti, "max_tries"),
                "state": _task_state(ti),
                "reason": None,
                "last_task_id": None,
                "start_date": _iso(_get(ti, "start_date")),
                "end_date": _iso(_get(ti, "end_date")),
                "duration_seconds": _duration_seconds(
                    _get(ti, "start_date"), _get(ti, "end_date"), _get(ti, "duration")
                ),
                "hostname": _get(ti, "hostname") or socket.gethostname(),
            }
        )
        fields["log_url"] = (
            airflow_ui.task_log_url(
                dag_id,
                run_id,
                fields["task_id"],
                map_index=map_index if isinstance(map_index, int) else -1,
                try_number=try_number if isinstance(try_number, int) else None,
                logical_date=_aware(logical_date),
            )
            if dag_id and run_id and fields["task_id"]
            else None
        )
    fields["exception_type"] = exception_type
    fields["exception_message"] = (
        _shorten(exception_message, MAX_EXCEPTION_MESSAGE_CHARS) if exception_message else None
    )
    fields["traceback"] = trace
    # Only a try (or run) that ended badly can have been ended by Airflow; skip the lookup otherwise.
    fields["end_reason"] = _end_reason(context) if fields["state"] in ("failed", "up_for_retry") else None
    return fields


def _task_state(ti: Any) -> str | None:
    """The try's state; "running" for a try that has not ended yet.

    Task callbacks only fire once a try has started, but Airflow 2.11's ``dag.test()`` runs tasks
    without moving them to running (they stay "scheduled" during on_execute_callback).
    """
    state = _enum_value(_get(ti, "state"))
    if state in (None, "none", "scheduled", "queued") and _get(ti, "end_date") is None:
        return "running"
    return state


def _state_from_reason(reason: Any) -> str | None:
    """A DAG-level context without a dag_run still says in ``reason`` how the run ended."""
    if not reason:
        return None
    return "success" if str(reason) == "success" else "failed"


# -- rendering -------------------------------------------------------------------------------------
def _shorten(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters in the middle: first and last lines are the useful ones."""
    if len(text) <= limit:
        return text
    marker = TRIM_MARKER.format(count=len(text) - limit)
    if limit <= len(marker) + 2:
        return text[:limit]
    keep = limit - len(marker)
    head = keep // 3
    return text[:head] + marker + text[len(text) - (keep - head) :]


def _ascii_subject(text: str) -> str:
    """SNS subjects: printable ASCII, no line breaks, within 100 characters."""
    cleaned = "".join(ch if " " <= ch <= "~" else " " for ch in " ".join(text.split()))
    cleaned = cleaned.strip() or "Airflow notification"
    if len(cleaned) > SNS_MAX_SUBJECT_CHARS:
        cleaned = cleaned[: SNS_MAX_SUBJECT_CHARS - 3].rstrip() + "..."
    return cleaned


def default_subject(fields: Mapping[str, Any]) -> str:
    what = fields["dag_id"] or "unknown DAG"
    if fields["level"] == "task" and fields["task_id"]:
        what = f"{what}.{fields['task_id']}"
        if fields["map_index"] is not None:
            what += f"[{fields['map_index']}]"
    state = fields["state"] or "notification"
    prefix = f"[{fields['environment']}] " if fields["environment"] else ""
    return f"{prefix}Airflow {state}: {what}"


def _tries(fields: Mapping[str, Any]) -> str | None:
    try_number, max_tries = fields["try_number"], fields["max_tries"]
    if try_number is None:
        return None
    if isinstance(max_tries, int):
        # max_tries counts retries: a task with retries=2 has max_tries=2 and 3 tries in all.
        return f"{try_number} of {max_tries + 1}"
    return str(try_number)


def render_text(fields: Mapping[str, Any], headline: str | None = None, body: str | None = None) -> str:
    """The readable body: a headline, the user's own text if any, then one field per line."""
    lines = [headline or default_subject(fields), ""]
    if body:
        lines += [body, ""]
    rows = [
        ("Environment", fields["environment"]),
        ("DAG", fields["dag_id"]),
        ("Task", fields["task_id"]),
        ("Map index", fields["map_index"]),
        ("Run", fields["run_id"]),
        ("Logical date", fields["logical_date"]),
        ("State", fields["state"]),
        ("Reason", fields["reason"]),
        ("Last task", fields["last_task_id"]),
        ("Try", _tries(fields)),
        (
            "Duration",
            f"{fields['duration_seconds']:.1f} s" if fields["duration_seconds"] is not None else None,
        ),
        ("Host", fields["hostname"]),
        ("Ended by Airflow", fields["end_reason"]),
        ("Exception", fields["exception_type"]),
        ("Error", fields["exception_message"]),
        ("Log", fields["log_url"]),
    ]
    width = max(len(label) for label, _ in rows) + 1
    lines += [f"{label + ':':<{width}} {value}" for label, value in rows if value not in (None, "")]
    if fields["traceback"]:
        lines += ["", "Traceback:", fields["traceback"]]
    return "\n".join(lines).rstrip() + "\n"


def _attributes(fields: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, str]:
    """String attributes for filter policies; empty values are left out (SNS rejects them)."""
    attributes: dict[str, str] = {}
    for name in ("dag_id", "task_id", "state", "environment", "level"):
        if fields.get(name):
            attributes[name] = str(fields[name])
    for name, value in (extra or {}).items():
        if value is not None and str(value) != "":
            attributes[str(name)] = str(value)
    if len(attributes) > SNS_MAX_MESSAGE_ATTRIBUTES:
        log.warning(
            "SNS allows %d message attributes; dropping %s",
            SNS_MAX_MESSAGE_ATTRIBUTES,
            sorted(attributes)[SNS_MAX_MESSAGE_ATTRIBUTES:],
        )
        attributes = dict(list(attributes.items())[:SNS_MAX_MESSAGE_ATTRIBUTES])
    return {name: _shorten(value, MAX_ATTRIBUTE_VALUE_CHARS) for name, value in attributes.items()}


def _mask(value: Any) -> Any:
    try:
        return secrets_masking.redact(value)
    except Exception:
        # Masking must not stop the notification, but an unmasked text must not leave either.
        log.warning("secrets masker failed; sending the notification without free-text details")
        if isinstance(value, Mapping):
            return {key: None if key in _FREE_TEXT_FIELDS else val for key, val in value.items()}
        return "[details withheld: the secrets masker failed]"


_FREE_TEXT_FIELDS = ("exception_message", "traceback", "end_reason", "body", "result")


def build_message(
    context: Mapping[str, Any],
    *,
    subject: str | None = None,
    body: str | None = None,
    result: Any = None,
    extra_attributes: Mapping[str, Any] | None = None,
    environment_name: str | None = None,
    protocols: tuple[str, ...] | None = None,
    state: str | None = None,
    max_bytes: int = SNS_MAX_MESSAGE_BYTES,
) -> NotificationMessage:
    """Build the SNS message for a callback (or an operator's) context.

    :param subject: headline instead of the default "[env] Airflow <state>: <dag>.<task>"; cut to
        SNS's 100 characters.
    :param body: the user's own text, placed above the fields in the readable body and as
        ``body`` in the JSON document.
    :param result: any JSON-serialisable value (a query result, say) added as ``result`` to the
        JSON document and, formatted, to the readable body.
    :param extra_attributes: message attributes besides dag_id, task_id, state, environment, level.
    :param environment_name: defaults to ``[mwaaops] environment_name``.
    :param protocols: SNS protocol keys to fill (``default`` is always filled).
    :param state: instead of the task's or run's state (the publishing operator says "result").
    :param max_bytes: size budget; SNS's own limit unless a test asks for less.
    """
    fields = _mask(collect_fields(context, environment_name))
    if state:
        fields["state"] = state
    body = _mask(body) if body else None
    if result is not None:
        result = _mask(result)
        result_text = result if isinstance(result, str) else json.dumps(result, default=str, indent=2)
        body = f"{body}\n\nResult:\n{result_text}" if body else f"Result:\n{result_text}"
        if len(result_text) > MAX_RESULT_DOCUMENT_CHARS:
            # The readable body carries the (trimmable) text; the document keeps a cut copy only.
            result = _shorten(result_text, MAX_RESULT_DOCUMENT_CHARS)
    # Masked first (a cut must not split a secret the masker would then miss), then capped: no
    # text longer than the byte budget can fit, and measuring copies of megabytes costs seconds.
    for key in _FREE_TEXT_FIELDS:
        if isinstance(fields.get(key), str):
            fields[key] = _shorten(fields[key], max_bytes)
    body = _shorten(body, max_bytes) if body else None
    headline = _mask(subject) if subject else default_subject(fields)
    attributes = _attributes(fields, extra_attributes)

    def assemble(current: Mapping[str, Any], current_body: str | None) -> NotificationMessage:
        document = dict(current)
        if current_body:
            document["body"] = current_body
        if result is not None and "result" not in document:
            document["result"] = result
        return NotificationMessage(
            subject=_ascii_subject(headline),
            text=render_text(current, headline, current_body),
            document=document,
            attributes=attributes,
            protocols=protocols or NotificationMessage.protocols,
        )

    message = assemble(fields, body)
    return _fit(message, fields, body, assemble, max_bytes)


def _fit(
    message: NotificationMessage,
    fields: dict[str, Any],
    body: str | None,
    assemble: Any,
    max_bytes: int,
) -> NotificationMessage:
    """Trim the growing parts (traceback, then body, then exception text) until the publish fits.

    Each text appears once per protocol body, JSON-escaped, so what one character costs is
    measured on the real message (size with and without the text) rather than guessed; a couple of
    rounds then suffice even for a 1 MB traceback, and a hard fallback drops the details altogether.
    """
    budget = max_bytes - SIZE_SAFETY_MARGIN_BYTES
    if message.size_bytes() <= budget:
        return message
    current = dict(fields)

    def with_text(key: str, text: str | None) -> NotificationMessage:
        nonlocal body
        if key == "body":
            body = text
        else:
            current[key] = text
        return assemble(current, body)

    for key in ("traceback", "body", "exception_message", "end_reason"):
        text = body if key == "body" else current.get(key)
        if not text:
            continue
        without = with_text(key, None).size_bytes()
        cost_per_char = max((message.size_bytes() - without) / len(text), 1.0)
        if without > budget:
            # Other texts are too big as well: this one keeps half the budget, the next ones share
            # the rest, so a long body does not cost the traceback entirely.
            message = with_text(key, _shorten(text, int(budget / 2 / cost_per_char)))
            continue
        limit = int((budget - without) / cost_per_char)
        for _ in range(8):
            if limit <= 0:
                break
            message = with_text(key, _shorten(text, limit))
            if message.size_bytes() <= budget:
                return message
            limit = int(limit * 0.9)
        message = with_text(key, None)
        if message.size_bytes() <= budget:
            return message
    # Nothing free-form is left; only giant attributes or subject could still be in the way.
    message = assemble({**current, **dict.fromkeys(_FREE_TEXT_FIELDS)}, None)
    message.attributes = {name: value[:64] for name, value in message.attributes.items()}
    return message
