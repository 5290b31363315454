#!/usr/bin/env python3
"""Smoke-test airflow-provider-mwaaops on every Amazon MWAA version, as installed under its pins.

``check_mwaa_constraints.py`` proves the package *resolves* under each MWAA constraints set; this
script proves it *works* there. For each ``<constraints-dir>/<V>/`` it

1. builds (or reuses) ``.venv-mwaa-<V>`` on CPython 3.12, MWAA's Python, with the package's runtime
   (extras ``snowflake,postgres,report,fast-masking``) installed under ``airflow_constraints.txt``
   and ``mwaa_essential_constraints.txt`` exactly as MWAA's pip would;
2. installs the testing kit (the ``testing`` extra) beside it with the recipe of docs/testing.rst:
   the same constraints minus the pins the kit must lift (a pin below one of the kit's own lower
   bounds, with its lockstep companions: :data:`KIT_LOCKSTEP`), then checks that no other pinned
   package moved;
3. runs one pytest process there (one emulator, one Airflow home): every module the provider info
   names imports, ``example_dags/`` loads with no import error, and every example that needs no
   PostgreSQL or Snowflake runs to success under ``dag.test()`` against the emulator.

An environment is reused while the hash of its constraints files, ``pyproject.toml`` and the recipe
below is unchanged. Prints one line per MWAA version and exits non-zero if any version failed.

Usage (from the repo root; ``scripts/test`` runs it)::

    python scripts/mwaa_matrix.py [--jobs N] [--versions 2.11.0,3.0.6] [--constraints-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_mwaa_constraints import (  # a sibling script, not a package
    CONSTRAINT_FILES,
    DEFAULT_CONSTRAINTS_DIR,
    PIN_RE,
    find_uv,
    normalize,
    read_pins,
    version_key,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO_ROOT / "example_dags"
LOG_DIR = REPO_ROOT / ".mwaa-matrix-logs"
# MWAA runs CPython 3.12; several MWAA pins cannot install on 3.11 (see docs/install.rst).
PYTHON_VERSION = "3.12"
RUNTIME_EXTRAS = "snowflake,postgres,report,fast-masking"
KIT_EXTRA = "testing"
# The kit lifts a pin only when it is below the kit's own lower bound (docs/testing.rst): MWAA
# 2.11.x pins moto 5.0.11 and 3.0.6 pins 5.1.10 under the kit's moto>=5.2.6 (3.2.1+ pin no moto).
# Lifting moto lifts what moto pins exactly: its S3 Select parser py-partiql-parser (moto 5.2.6
# needs 0.6.3; MWAA 2.11.x pins 0.5.5, 3.0.6 pins 0.6.1).
KIT_LOCKSTEP = {"moto": ("py-partiql-parser",)}
# Providers an MWAA image ships that the examples use when present (AssetWatcher's SQS trigger).
IMAGE_PROVIDERS = ("apache-airflow-providers-common-messaging",)
# What makes an example need a service the matrix does not run, found in its source.
NEEDS = {
    "PostgreSQL": ("airflow.providers.postgres", "psycopg2"),
    "Snowflake": ("airflow.providers.snowflake", "snowflake.connector"),
}
# Loaded under CI load beside two full suites: Airflow's 30 s per DAG file is far too tight there.
DAGBAG_IMPORT_TIMEOUT_S = "600"
PYTEST_TIMEOUT_S = "1200"
INSTALL_TIMEOUT_S = 1800
SMOKE_TIMEOUT_S = 2400
RECIPE = f"py{PYTHON_VERSION}|{RUNTIME_EXTRAS}|{KIT_EXTRA}|{KIT_LOCKSTEP}|{','.join(IMAGE_PROVIDERS)}|2"


class MatrixError(Exception):
    """A step of one version failed; the message is the short reason for the summary line."""


@dataclass
class Outcome:
    """One MWAA version's result, rendered as its single summary line."""

    version: str
    ok: bool = False
    reason: str = ""
    env: str = ""
    env_seconds: float = 0.0
    smoke_seconds: float = 0.0
    tests: str = ""
    lifted: str = ""
    skipped: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.env_seconds + self.smoke_seconds

    def line(self) -> str:
        verdict = "ok" if self.ok else f"FAILED ({self.reason})"
        skipped = ", ".join(self.skipped) or "nothing"
        return (
            f"MWAA {self.version}: {verdict} in {self.seconds:.0f}s "
            f"(env {self.env} {self.env_seconds:.0f}s, "
            f"smoke {self.smoke_seconds:.0f}s: {self.tests or '-'}); "
            f"kit lifted: {self.lifted or '-'}; skipped: {skipped}"
        )


def find_python() -> str:
    """A CPython 3.12 interpreter: $MWAAOPS_MWAA_PYTHON, uv's discovery, PATH, then pyenv's store."""
    candidates = [os.environ.get("MWAAOPS_MWAA_PYTHON", "")]
    uv = find_uv()
    found = subprocess.run([*uv, "python", "find", PYTHON_VERSION], capture_output=True, text=True)
    candidates.append(found.stdout.strip() if found.returncode == 0 else "")
    candidates.append(shutil.which(f"python{PYTHON_VERSION}") or "")
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(
        str(p) for p in pyenv_root.glob(f"versions/{PYTHON_VERSION}*/bin/python{PYTHON_VERSION}")
    )
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == PYTHON_VERSION:
            return candidate
    sys.exit(
        f"mwaa_matrix: no CPython {PYTHON_VERSION} found (MWAA's Python). Install one "
        f"(`uv python install {PYTHON_VERSION}`) or point MWAAOPS_MWAA_PYTHON at its interpreter."
    )


def env_key(vdir: Path, python: str) -> str:
    """Hash of everything an environment is built from; a change rebuilds it from scratch."""
    digest = hashlib.sha256(RECIPE.encode())
    digest.update(python.encode())
    for path in [*(vdir / name for name in CONSTRAINT_FILES), REPO_ROOT / "pyproject.toml"]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def kit_requirements() -> list[str]:
    """The testing kit's requirements, as pyproject declares them (``moto[server]>=5.2.6``, ...)."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["optional-dependencies"][KIT_EXTRA])


def kit_exemptions(pins: dict[str, str]) -> list[str]:
    """Pinned names the kit must lift: pins outside a kit requirement, plus their lockstep pins."""
    from packaging.requirements import Requirement

    lifted = []
    for line in kit_requirements():
        req = Requirement(line)
        name = normalize(req.name)
        if name in pins and not req.specifier.contains(pins[name], prereleases=True):
            lifted += [name, *(normalize(n) for n in KIT_LOCKSTEP.get(name, ()))]
    return [name for name in dict.fromkeys(lifted) if name in pins]


def kit_constraints(vdir: Path, target: Path, exempt: Sequence[str]) -> None:
    """Both constraints files in one, minus the ``exempt`` pins: the recipe of docs/testing.rst."""
    lines = [
        line
        for name in CONSTRAINT_FILES
        for line in (vdir / name).read_text(encoding="utf-8").splitlines()
        if not ((m := PIN_RE.match(line.strip())) and normalize(m[1]) in exempt)
    ]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_logged(cmd: Sequence[str], log: Path, timeout: float, what: str, **kwargs: object) -> None:
    """Run ``cmd`` appending its output to ``log``; raise :class:`MatrixError` naming ``what``."""
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        try:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, **kwargs)  # type: ignore[call-overload]
        except subprocess.TimeoutExpired as err:
            raise MatrixError(f"{what} timed out after {timeout:.0f}s") from err
    if proc.returncode != 0:
        raise MatrixError(f"{what} failed, exit {proc.returncode}")


def build_env(uv: list[str], python: str, vdir: Path, venv: Path, log: Path) -> str:
    """Create ``venv`` with the runtime under MWAA's pins and the kit beside it; 'reused' if current."""
    key = env_key(vdir, python)
    stamp = venv / ".mwaa-matrix-key"
    if stamp.is_file() and stamp.read_text().strip() == key and (venv / "bin" / "python").is_file():
        return "reused"
    shutil.rmtree(venv, ignore_errors=True)
    target = str(venv / "bin" / "python")
    run_logged([*uv, "venv", "--quiet", "--no-config", "--python", python, str(venv)], log, 300, "uv venv")
    pins = {**read_pins(vdir / CONSTRAINT_FILES[0]), **read_pins(vdir / CONSTRAINT_FILES[1])}
    constraints = [arg for name in CONSTRAINT_FILES for arg in ("-c", str(vdir / name))]
    image_providers = [p for p in IMAGE_PROVIDERS if normalize(p) in pins]
    install = [*uv, "pip", "install", "--no-config", "--python", target]
    runtime = [f"apache-airflow=={vdir.name}", "-e", f"{REPO_ROOT}[{RUNTIME_EXTRAS}]", *image_providers]
    run_logged([*install, *constraints, *runtime], log, INSTALL_TIMEOUT_S, "runtime install", cwd=venv)
    exempt = kit_exemptions(pins)
    kit_file = venv / "kit-constraints.txt"
    kit_constraints(vdir, kit_file, exempt)
    kit = ["-c", str(kit_file), "-e", f"{REPO_ROOT}[{KIT_EXTRA}]"]
    run_logged([*install, *kit], log, INSTALL_TIMEOUT_S, "testing kit install", cwd=venv)
    check_pins_held(uv, target, pins, exempt)
    (venv / ".mwaa-matrix-lifted").write_text(describe_lifted(uv, target, pins, exempt) + "\n")
    stamp.write_text(key + "\n")
    return "created"


def describe_lifted(uv: list[str], target: str, pins: dict[str, str], exempt: Sequence[str]) -> str:
    """``moto 5.0.11->5.2.6, ...``: what the kit lifted, for the summary line."""
    installed = installed_versions(uv, target)
    return ", ".join(f"{name} {pins[name]}->{installed.get(name, 'absent')}" for name in exempt) or "none"


def installed_versions(uv: list[str], target: str) -> dict[str, str]:
    """``name -> version`` of every distribution installed in the environment of ``target``."""
    freeze = subprocess.run(
        [*uv, "pip", "freeze", "--python", target], capture_output=True, text=True, check=True
    ).stdout
    return {normalize(m[1]): m[2] for line in freeze.splitlines() if (m := PIN_RE.match(line))}


def check_pins_held(uv: list[str], target: str, pins: dict[str, str], exempt: Sequence[str]) -> None:
    """Fail if any pinned package other than the ``exempt`` ones is not at its pinned version."""
    installed = installed_versions(uv, target)
    moved = [
        f"{name} {pinned}->{installed[name]}"
        for name, pinned in sorted(pins.items())
        if name in installed and name not in exempt and installed[name] != pinned
    ]
    if moved:
        raise MatrixError("pins moved: " + ", ".join(moved))


def examples_needing_services() -> dict[str, str]:
    """``example stem -> service`` for examples whose source uses PostgreSQL or Snowflake."""
    needs = {}
    for path in sorted(EXAMPLE_DAGS.glob("example_*.py")):
        source = path.read_text(encoding="utf-8")
        for service, markers in NEEDS.items():
            if any(marker in source for marker in markers):
                needs[path.stem] = service
                break
    return needs


def smoke_node_ids(skip: dict[str, str]) -> list[str]:
    """The smoke subset as pytest node ids: provider modules, the folder load, runnable examples."""
    example_tests = "tests/example_dags/test_example_dags.py"
    runnable = [p.stem for p in sorted(EXAMPLE_DAGS.glob("example_*.py")) if p.stem not in skip]
    return [
        "tests/test_provider_modules.py",
        f"{example_tests}::test_there_are_examples",
        f"{example_tests}::test_example_folder_loads_without_import_errors",
        *(f"{example_tests}::test_example_dag_succeeds[{stem}]" for stem in runnable),
    ]


def run_smoke(venv: Path, log: Path, skip: dict[str, str]) -> str:
    """One pytest process in ``venv``; returns pytest's final tally, raises on any failure."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT"] = DAGBAG_IMPORT_TIMEOUT_S
    cmd = [
        str(venv / "bin" / "python"),
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "-rfEs",
        "--durations=10",
    ]
    cmd += ["-o", f"timeout={PYTEST_TIMEOUT_S}", *smoke_node_ids(skip)]
    failure = None
    try:
        run_logged(cmd, log, SMOKE_TIMEOUT_S, "smoke", cwd=REPO_ROOT, env=env)
    except MatrixError as err:
        failure = err
    tally = pytest_tally(log)
    if failure is not None:
        raise MatrixError(f"smoke: {tally or failure}")
    return tally


def pytest_tally(log: Path) -> str:
    """pytest's last summary (``12 passed, 1 failed in 80.2s``) without its timing, from the log."""
    lines = [
        line
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
        if re.search(r"\d+ (passed|failed|error)", line)
    ]
    return re.sub(r"\s+in [\d.]+s.*$", "", lines[-1].strip("= ")) if lines else ""


def check_version(uv: list[str], python: str, vdir: Path, skip: dict[str, str]) -> Outcome:
    """Build the version's environment and run its smoke subset; never raises."""
    outcome = Outcome(vdir.name, skipped=[f"{stem} ({service})" for stem, service in skip.items()])
    log = LOG_DIR / f"{vdir.name}.log"
    log.write_text("", encoding="utf-8")
    venv = REPO_ROOT / f".venv-mwaa-{vdir.name}"
    started = time.monotonic()
    try:
        outcome.env = build_env(uv, python, vdir, venv, log)
        outcome.lifted = (venv / ".mwaa-matrix-lifted").read_text().strip()
        outcome.env_seconds = time.monotonic() - started
        started = time.monotonic()
        outcome.tests = run_smoke(venv, log, skip)
        outcome.ok = True
    except MatrixError as err:
        outcome.reason = f"{err}; log: {log.relative_to(REPO_ROOT)}"
    finally:
        if outcome.env:
            outcome.smoke_seconds = time.monotonic() - started
        else:
            outcome.env_seconds = time.monotonic() - started
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--constraints-dir", type=Path, default=DEFAULT_CONSTRAINTS_DIR)
    parser.add_argument("--jobs", type=int, default=2, help="MWAA versions at once (default 2, for 2 cores)")
    parser.add_argument("--versions", default="", help="comma-separated subset, e.g. 2.11.0,3.0.6")
    args = parser.parse_args(argv)

    cdir: Path = args.constraints_dir.resolve()
    if not cdir.is_dir():
        print(f"mwaa_matrix: constraints dir {cdir} not found", file=sys.stderr)
        return 2
    vdirs = sorted((d for d in cdir.iterdir() if d.is_dir()), key=version_key)
    if args.versions:
        wanted = {v.strip() for v in args.versions.split(",")}
        vdirs = [d for d in vdirs if d.name in wanted]
    if not vdirs:
        print(f"mwaa_matrix: no MWAA versions to test in {cdir}", file=sys.stderr)
        return 2

    uv, python = find_uv(), find_python()
    skip = examples_needing_services()
    LOG_DIR.mkdir(exist_ok=True)
    started = time.monotonic()
    print(
        f"MWAA matrix: {len(vdirs)} versions on {python}, {args.jobs} at a time (logs: {LOG_DIR.name}/)",
        flush=True,
    )
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(lambda d: check_version(uv, python, d, skip), vdirs))
    for outcome in outcomes:
        print(outcome.line())
    failed = [o for o in outcomes if not o.ok]
    for outcome in failed:
        tail = (LOG_DIR / f"{outcome.version}.log").read_text(encoding="utf-8", errors="replace").splitlines()
        print(f"--- last lines of {LOG_DIR.name}/{outcome.version}.log ---", *tail[-40:], sep="\n")
    total = time.monotonic() - started
    verdict = f"FAILED on MWAA {', '.join(o.version for o in failed)}" if failed else "all passed"
    print(f"MWAA matrix: {verdict}; {len(outcomes)} versions in {total:.0f}s wall time")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
