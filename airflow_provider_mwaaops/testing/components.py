"""Real Airflow components (scheduler, triggerer, dag processor) as subprocesses of a test.

Some behaviour only exists where Airflow's own long-running components make decisions: the
scheduler failing a task whose heartbeat stopped, requeueing one stuck in queued, the triggerer
running deferred waits. ``dag.test()`` never exercises those paths, so tests that need them start
the real ``airflow scheduler`` (and friends) against an
:class:`~airflow_provider_mwaaops.testing.airflow_env.IsolatedAirflow` with a few configuration
overrides (small timeouts keep such tests short), and stop them cleanly afterwards.

Each component runs in its own process group so that stopping it also stops what it spawned (the
LocalExecutor's workers and their task processes); its stdout and stderr go to a log file whose
text is available while it runs, for assertions and for failure messages.

Example::

    config = {"scheduler": {"task_instance_heartbeat_timeout": 5}}
    with AirflowComponents(airflow, ["scheduler", "dag-processor"], config=config) as components:
        ...  # trigger a DAG run and wait for its state in the metadata DB
    print(components["scheduler"].output())

On Airflow 2.11 the scheduler parses DAG files itself; :func:`default_component_commands` gives
the set each line needs. The API server (needed by Airflow 3 task processes) is a separate
helper, :mod:`airflow_provider_mwaaops.testing.api_server`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from types import TracebackType

    from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow

T = TypeVar("T")

#: Airflow configuration overrides, ``{section: {key: value}}``.
ConfigOverrides = Mapping[str, Mapping[str, Any]]


class ComponentError(RuntimeError):
    """A component exited early or a wait on it timed out; the message carries its log tail."""


def config_environ(config: ConfigOverrides | None) -> dict[str, str]:
    """Environment variables that set ``config`` in an Airflow process (``AIRFLOW__SECTION__KEY``)."""
    environ: dict[str, str] = {}
    for section, options in (config or {}).items():
        for key, value in options.items():
            if isinstance(value, bool):
                value = "True" if value else "False"
            environ[f"AIRFLOW__{section.upper()}__{key.upper()}"] = str(value)
    return environ


def default_component_commands(triggerer: bool = False) -> list[str]:
    """The components a line needs to run DAGs: Airflow 3 parses DAGs in a separate dag processor."""
    from airflow_provider_mwaaops.compat import STANDALONE_DAG_PROCESSOR

    commands = ["scheduler", "dag-processor"] if STANDALONE_DAG_PROCESSOR else ["scheduler"]
    if triggerer:
        commands.append("triggerer")
    return commands


class AirflowComponent:
    """One ``airflow <command>`` process against an isolated Airflow, with its log captured.

    :param airflow_env: the installation (home, metadata DB) the component runs against.
    :param command: the Airflow CLI command and its arguments, e.g. ``["scheduler"]``.
    :param config: configuration overrides for this process only.
    :param extra_environ: further environment variables (the emulator's AWS settings, say).
    :param python: interpreter whose Airflow to run; defaults to the current one.
    :param log_path: where stdout and stderr go; defaults to ``<home>/components/<name>.log``.
    """

    def __init__(
        self,
        airflow_env: IsolatedAirflow,
        command: str | Sequence[str],
        *,
        config: ConfigOverrides | None = None,
        extra_environ: Mapping[str, str] | None = None,
        python: str = sys.executable,
        log_path: Path | None = None,
    ):
        self.command = [command] if isinstance(command, str) else list(command)
        self.name = "-".join(self.command)
        self.airflow_env = airflow_env
        self.environ = {
            **os.environ,
            **airflow_env.environ,
            **config_environ(config),
            **(extra_environ or {}),
            # Unbuffered, so the log file shows what happened up to a crash or a kill.
            "PYTHONUNBUFFERED": "1",
        }
        self.python = python
        self.log_path = log_path or airflow_env.home / "components" / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> AirflowComponent:
        if self._process is not None:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [self.python, "-m", "airflow", *self.command],
            env=self.environ,
            cwd=str(self.airflow_env.home),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            # Its own process group: stopping the component also stops executor workers and tasks.
            start_new_session=True,
        )
        return self

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM the component's process group, then SIGKILL what is left after ``timeout``."""
        process = self._process
        if process is None:
            return None
        try:
            if process.poll() is None:
                self._signal_group(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._signal_group(process.pid, signal.SIGKILL)
                    process.wait(10)
            # Children that outlived a clean exit (task processes) go too.
            self._signal_group(process.pid, signal.SIGKILL)
            self._wait_group_gone(process.pid)
            return process.returncode
        finally:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    @staticmethod
    def _wait_group_gone(pgid: int, timeout: float = 10.0) -> None:
        # SIGKILL is delivered asynchronously; a caller that next drops the database or reads the
        # logs must not race processes that are still dying.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.1)

    def __enter__(self) -> AirflowComponent:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- observation -------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def output(self) -> str:
        """Everything the component has written so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def check_running(self) -> None:
        """Raise :class:`ComponentError` with the log tail if the component has exited."""
        if self._process is not None and self._process.poll() is not None:
            raise ComponentError(
                f"airflow {self.name} exited with {self._process.returncode}:\n{self.tail()}"
            )

    def wait_for_output(self, text: str, timeout: float = 60.0) -> None:
        """Wait until ``text`` appears in the component's log."""
        wait_until(lambda: text in self.output(), timeout, f"{text!r} in the {self.name} log", [self])


class AirflowComponents:
    """Several components started together and stopped in reverse order.

    Index by name (``components["scheduler"]``) to reach one of them.
    """

    def __init__(
        self,
        airflow_env: IsolatedAirflow,
        commands: Sequence[str | Sequence[str]] | None = None,
        *,
        config: ConfigOverrides | None = None,
        extra_environ: Mapping[str, str] | None = None,
        python: str = sys.executable,
    ):
        self.components = [
            AirflowComponent(airflow_env, command, config=config, extra_environ=extra_environ, python=python)
            for command in (commands if commands is not None else default_component_commands())
        ]

    def __getitem__(self, name: str) -> AirflowComponent:
        for component in self.components:
            if component.name == name or component.command[0] == name:
                return component
        raise KeyError(name)

    def __iter__(self) -> Iterator[AirflowComponent]:
        return iter(self.components)

    def start(self) -> AirflowComponents:
        started: list[AirflowComponent] = []
        try:
            for component in self.components:
                started.append(component.start())
        except BaseException:
            for component in reversed(started):
                component.stop()
            raise
        return self

    def stop(self, timeout: float = 20.0) -> None:
        for component in reversed(self.components):
            component.stop(timeout)

    def check_running(self) -> None:
        for component in self.components:
            component.check_running()

    def logs(self) -> str:
        """Every component's log tail, for a failure message."""
        return "\n".join(f"--- airflow {c.name} ---\n{c.tail()}" for c in self.components)

    def wait_until(self, predicate: Callable[[], T], timeout: float, what: str, interval: float = 1.0) -> T:
        """Wait for ``predicate`` to return a truthy value while every component keeps running."""
        return wait_until(predicate, timeout, what, self.components, interval)

    def __enter__(self) -> AirflowComponents:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    components: Sequence[AirflowComponent] = (),
    interval: float = 1.0,
) -> T:
    """Poll ``predicate`` until it returns a truthy value; fail early if a component died.

    The error names what was awaited and carries the components' log tails, which is usually all
    one needs to see why a scheduler never got there.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        for component in components:
            component.check_running()
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- airflow {c.name} ---\n{c.tail()}" for c in components)
            raise ComponentError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")
        time.sleep(interval)
