#!/usr/bin/env python3
"""Check that airflow-provider-mwaaops resolves under every Amazon MWAA constraints set.

MWAA installs a user's ``requirements.txt`` against the Airflow constraints file of its image and
always adds its own "essential" constraints on top.  A lower bound in our ``pyproject.toml`` that is
newer than what an MWAA image pins makes ``pip install airflow-provider-mwaaops`` fail *on the
customer's environment*, long after our own tests passed.  This script catches that in CI.

For each ``<constraints-dir>/<V>/`` (holding ``airflow_constraints.txt`` and
``mwaa_essential_constraints.txt``) it runs ``uv pip compile`` for MWAA's target (CPython 3.12,
Linux x86_64) with ``apache-airflow==V`` plus our runtime dependencies and the selected extras,
read straight from ``pyproject.toml`` (no build of the project is needed, and the dynamic version
does not matter for resolution).  uv resolves from PyPI metadata without installing anything.

It proves installability only; ``scripts/mwaa_matrix.py`` (which shares its helpers with this
script) installs the same requirements under the same two files and runs the package there.

Usage (from the repo root)::

    python scripts/check_mwaa_constraints.py [--constraints-dir DIR] [--extras EXTRAS]

(``EXTRAS`` defaults to ``snowflake,postgres,report,fast-masking``.)

Exit status is 0 only if every version resolves and the result pins ``apache-airflow==V`` and
contains each of our direct dependencies.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# CI clones the repo with shared/ beside it, exactly like the developers' layout.
DEFAULT_CONSTRAINTS_DIR = REPO_ROOT.parent / "shared" / "mwaa-constraints"
CONSTRAINT_FILES = ("airflow_constraints.txt", "mwaa_essential_constraints.txt")
# MWAA runs its images on CPython 3.12 / x86_64 Linux; manylinux_2_28 is a conservative glibc floor
# (the Amazon Linux 2023 base has glibc 2.34), so we never count on a wheel the image cannot use.
PYTHON_VERSION = "3.12"
PYTHON_PLATFORM = "x86_64-manylinux_2_28"
UV_TIMEOUT_S = 900
MAX_WORKERS = 5
NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def normalize(name: str) -> str:
    """PEP 503 name, so ``Flask_Babel`` in a constraints file matches ``flask-babel`` from uv."""
    return re.sub(r"[-_.]+", "-", name).lower()


def find_uv() -> list[str]:
    """Locate uv: PATH first (CI bootstrap), then next to this interpreter, then ``python -m uv``."""
    if found := shutil.which("uv"):
        return [found]
    beside = Path(sys.executable).parent / ("uv.exe" if os.name == "nt" else "uv")
    if beside.is_file():
        return [str(beside)]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    sys.exit("check_mwaa_constraints: uv not found (not on PATH, not beside the interpreter, no `uv` module)")


def project_requirements(pyproject: Path, extras: Sequence[str]) -> list[str]:
    """Runtime dependencies plus the requested extras, as PEP 508 lines, straight from pyproject."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    reqs = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            sys.exit(f"check_mwaa_constraints: extra {extra!r} not in {pyproject} ({sorted(optional)})")
        reqs.extend(optional[extra])
    return reqs


def read_pins(path: Path) -> dict[str, str]:
    """``name -> version`` for each ``name==version`` line in a constraints or compiled file."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := PIN_RE.match(line.strip()):
            pins[normalize(match[1])] = match[2]
    return pins


def explain_pins(reqs: Sequence[str], constraint_files: Sequence[Path]) -> list[str]:
    """Name our requirements that a constraints file pins outside their range.

    uv's explanation is complete but long; this points straight at the line of pyproject to fix.
    Needs ``packaging`` (present wherever Airflow is); without it uv's text has to do.
    """
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return []
    hints = []
    for path in constraint_files:
        pins = read_pins(path)
        for line in reqs:
            req = Requirement(line)
            pinned = pins.get(normalize(req.name))
            if pinned and not req.specifier.contains(pinned, prereleases=True):
                hints.append(f"{line!r} (ours) vs {req.name}=={pinned} ({path.name})")
    return hints


@dataclass
class Result:
    """Outcome of one MWAA version; ``ok`` drives the exit status, ``text`` is printed as is."""

    version: str
    ok: bool
    text: str


def check_version(uv: list[str], vdir: Path, reqs: Sequence[str]) -> Result:
    """Resolve ``apache-airflow==V`` + our requirements under both constraints files of ``vdir``."""
    version = vdir.name
    files = [vdir / name for name in CONSTRAINT_FILES]
    if missing := [f.name for f in files if not f.is_file()]:
        return Result(version, False, f"MWAA {version}: ERROR, missing {', '.join(missing)} in {vdir}")
    with tempfile.TemporaryDirectory(prefix=f"mwaa-{version}-") as tmp:
        req_in, out = Path(tmp, "requirements.in"), Path(tmp, "requirements.txt")
        req_in.write_text("\n".join([f"apache-airflow=={version}", *reqs]) + "\n", encoding="utf-8")
        cmd = [*uv, "pip", "compile", str(req_in), "--output-file", str(out), "--no-header", "--quiet"]
        cmd += ["--python-version", PYTHON_VERSION, "--python-platform", PYTHON_PLATFORM]
        # --no-config: a [tool.uv] section or a user uv.toml must not bend what MWAA's pip would do.
        cmd += ["--no-config", *(arg for f in files for arg in ("-c", str(f)))]
        try:
            # cwd=tmp keeps uv from discovering a project around the current directory.
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=UV_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return Result(version, False, f"MWAA {version}: ERROR, uv timed out after {UV_TIMEOUT_S}s")
        if proc.returncode != 0:
            uv_text = "\n".join("    " + line for line in proc.stderr.strip().splitlines())
            if "No solution found" not in proc.stderr:
                return Result(version, False, f"MWAA {version}: ERROR, uv exit {proc.returncode}\n{uv_text}")
            hints = "".join(f"\n  conflicting: {h}" for h in explain_pins(reqs, files))
            return Result(version, False, f"MWAA {version}: CONFLICT{hints}\n  uv says:\n{uv_text}")
        pins = read_pins(out)
    problems = []
    if pins.get("apache-airflow") != version:
        problems.append(f"apache-airflow resolved to {pins.get('apache-airflow')}, not {version}")
    # A requirement whose marker excludes py3.12/Linux may rightly be absent, so only unmarked ones.
    names = [normalize(m[1]) for r in reqs if ";" not in r and (m := NAME_RE.match(r))]
    problems += [f"{name} missing from the resolution" for name in names if name not in pins]
    if problems:
        return Result(version, False, f"MWAA {version}: ERROR, " + "; ".join(problems))
    shown = ", ".join(f"{n}=={pins[n]}" for n in dict.fromkeys(["apache-airflow", *names]))
    return Result(version, True, f"MWAA {version}: ok ({shown})")


def version_key(path: Path) -> tuple[tuple[int, int | str], ...]:
    """Sort ``2.11.0 < 2.11.2 < 3.0.6`` numerically, tolerating odd directory names."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in path.name.split("."))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, resolve every MWAA version in parallel, print one verdict per version."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--constraints-dir", type=Path, default=DEFAULT_CONSTRAINTS_DIR)
    parser.add_argument(
        "--extras", default="snowflake,postgres,report,fast-masking", help="comma-separated; '' = none"
    )
    parser.add_argument("--pyproject", type=Path, default=REPO_ROOT / "pyproject.toml")
    parser.add_argument("--allow-missing", action="store_true", help="exit 0 if the dir is absent")
    args = parser.parse_args(argv)

    cdir: Path = args.constraints_dir.resolve()
    if not cdir.is_dir():
        msg = f"check_mwaa_constraints: constraints dir {cdir} not found"
        if args.allow_missing:
            print(f"{msg}; skipped (--allow-missing)")
            return 0
        print(f"{msg} (pass --constraints-dir, or --allow-missing to skip)", file=sys.stderr)
        return 2
    vdirs = sorted((d for d in cdir.iterdir() if d.is_dir()), key=version_key)
    if not vdirs:
        print(f"check_mwaa_constraints: no version directories in {cdir}", file=sys.stderr)
        return 2

    extras = [e.strip() for e in args.extras.split(",") if e.strip()]
    reqs = project_requirements(args.pyproject, extras)
    uv = find_uv()
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(vdirs))) as pool:
        results = list(pool.map(lambda d: check_version(uv, d, reqs), vdirs))
    for result in results:
        print(result.text)
    failed = [r.version for r in results if not r.ok]
    elapsed = time.monotonic() - start
    what = f"airflow-provider-mwaaops[{','.join(extras)}]" if extras else "airflow-provider-mwaaops"
    if failed:
        print(f"FAILED: MWAA {', '.join(failed)} cannot install {what} ({elapsed:.0f}s)")
        return 1
    print(f"all {len(results)} MWAA versions resolve with {what} ({elapsed:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
