"""``mwaaops plugins-zip``: ship this provider to an MWAA environment that cannot reach PyPI.

MWAA unpacks ``plugins.zip`` into ``/usr/local/airflow/plugins`` before it installs
``requirements.txt``, so wheels placed at the zip root can be installed with
``--find-links /usr/local/airflow/plugins --no-index``. The MWAA images already contain every
runtime dependency of this package (Airflow, the Amazon provider, boto3, aiobotocore, s3fs), so
normally the zip only needs our own wheel; ``--extra-wheel`` adds others, such as the Snowflake
provider for the ``snowflake`` extra.

Nothing here imports Airflow: the command runs on a laptop or in CI, often without Airflow.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

from airflow_provider_mwaaops.cli import CliError

DIST_NAME = "airflow-provider-mwaaops"
#: Where MWAA unpacks plugins.zip; the ``--find-links`` target in requirements.txt.
MWAA_PLUGINS_DIR = "/usr/local/airflow/plugins"
#: How much of a failed build's output goes into the error message.
_OUTPUT_TAIL_LINES = 25


@dataclass(frozen=True)
class Wheel:
    """A wheel file checked to be installable by pip, with the name and version from its metadata."""

    path: Path
    name: str
    version: str

    @property
    def requirement(self) -> str:
        """The requirements.txt line that installs exactly this wheel."""
        return f"{self.name}=={self.version}"


@dataclass
class ZipResult:
    """What ``write_plugins_zip`` did, so the command can tell the user what changed in a merge."""

    output: Path
    added: list[str]
    kept: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    shadowing: list[str] = field(default_factory=list)


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: pip treats ``Foo_Bar``, ``foo-bar`` and ``foo.bar`` as one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheel_filename_parts(filename: str) -> tuple[str, str] | None:
    """(name, version) from a wheel filename, or None when pip would not accept the filename."""
    if not filename.endswith(".whl"):
        return None
    parts = filename[: -len(".whl")].split("-")
    if len(parts) not in (5, 6) or not all(parts):
        return None
    return parts[0], parts[1]


def inspect_wheel(path: Path, option: str) -> Wheel:
    """Check ``path`` is a wheel pip will install from a find-links directory, and read its name.

    Everything is checked here, before the zip is written, because a bad wheel would otherwise only
    surface on MWAA as a failed requirements install, minutes after the upload. ``option`` names
    the command-line option in the error message.
    """
    if not path.exists():
        raise CliError(f"{option} {path}: no such file")
    if not path.is_file():
        raise CliError(f"{option} {path}: not a file")
    parts = _wheel_filename_parts(path.name)
    if parts is None:
        raise CliError(f"{option} {path}: not a wheel (expected NAME-VERSION-PYTAG-ABITAG-PLATFORM.whl)")
    if not zipfile.is_zipfile(path):
        raise CliError(f"{option} {path}: not a wheel (not a zip archive)")
    try:
        with zipfile.ZipFile(path) as whl:
            metadata_files = [
                n for n in whl.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n) is not None
            ]
            if len(metadata_files) != 1:
                raise CliError(f"{option} {path}: not a wheel (no single *.dist-info/METADATA inside)")
            metadata = HeaderParser().parsestr(whl.read(metadata_files[0]).decode("utf-8"))
    except (zipfile.BadZipFile, UnicodeDecodeError, OSError) as exc:
        raise CliError(f"{option} {path}: not a wheel ({exc})") from exc
    name, version = metadata.get("Name"), metadata.get("Version")
    if not name or not version:
        raise CliError(f"{option} {path}: not a wheel (METADATA has no Name or Version)")
    # pip decides what a find-links file is from its filename alone, so a renamed wheel would be
    # offered under the wrong name or version and fail (or be skipped) during the MWAA install.
    if canonical_name(parts[0]) != canonical_name(name) or parts[1] != version:
        raise CliError(
            f"{option} {path}: filename does not match the wheel's metadata ({name} {version}); "
            "pip would refuse it"
        )
    return Wheel(path=path, name=name, version=version)


def find_source_checkout() -> Path | None:
    """The project root when this package runs from a source checkout (editable install), else None.

    A checkout has to be built into a wheel; an installed release can be downloaded as the exact
    wheel of its version instead. The project name is checked so that an unrelated pyproject.toml
    that happens to sit next to site-packages is not mistaken for ours.
    """
    import airflow_provider_mwaaops

    root = Path(airflow_provider_mwaaops.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    name = data.get("project", {}).get("name")
    return root if isinstance(name, str) and canonical_name(name) == DIST_NAME else None


def installed_version() -> str:
    """The version pip knows this package by, falling back to ``__version__`` when not installed."""
    try:
        return importlib.metadata.version(DIST_NAME)
    except importlib.metadata.PackageNotFoundError:
        from airflow_provider_mwaaops import __version__

        return __version__


def _run_tool(cmd: Sequence[str], what: str, cwd: Path | None = None) -> None:
    """Run a packaging tool quietly; on failure raise with the tail of its output, which says why."""
    print(f"{what}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-_OUTPUT_TAIL_LINES:])
        raise CliError(f"{what} failed (exit code {proc.returncode}):\n{tail}", exit_code=1)


def _single_wheel_in(directory: Path, what: str) -> Path:
    wheels = sorted(directory.glob("*.whl"))
    if len(wheels) != 1:
        raise CliError(f"{what} produced {len(wheels)} wheels in {directory}, expected one", exit_code=1)
    return wheels[0]


def build_wheel(source: Path, outdir: Path) -> Path:
    """Build the wheel of a source checkout into ``outdir``.

    ``python -m build`` (in the ``test`` extra) is preferred because it is the standard front end;
    ``uv build`` is the fallback for uv-managed environments, which often have no ``build``.
    """
    if importlib.util.find_spec("build") is not None:
        cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", str(outdir), str(source)]
    elif uv := shutil.which("uv"):
        cmd = [uv, "build", "--wheel", "--out-dir", str(outdir), str(source)]
    else:
        raise CliError(
            f"cannot build the wheel from the source checkout {source}: neither the 'build' package "
            "nor 'uv' is available. Install one (pip install build), or pass --wheel PATH.",
            exit_code=1,
        )
    _run_tool(cmd, f"building the {DIST_NAME} wheel", cwd=source)
    return _single_wheel_in(outdir, "the wheel build")


def download_wheel(version: str, outdir: Path) -> Path:
    """Download the released wheel of ``version`` from the package index pip is configured for.

    The installed release is what the user tested against, so its exact wheel is shipped rather
    than whatever is newest; ``--no-deps`` because MWAA already has the dependencies.
    """
    if importlib.util.find_spec("pip") is None:
        raise CliError(
            f"cannot download the {DIST_NAME} {version} wheel: pip is not installed in {sys.executable}. "
            "Download the wheel yourself and pass --wheel PATH.",
            exit_code=1,
        )
    cmd = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
        "--only-binary", ":all:", f"{DIST_NAME}=={version}", "-d", str(outdir),
    ]  # fmt: skip
    _run_tool(cmd, f"downloading the {DIST_NAME} {version} wheel")
    return _single_wheel_in(outdir, "pip download")


def obtain_wheel(workdir: Path) -> Path:
    """Our wheel when none was given: built from a checkout, or downloaded for an installed release."""
    source = find_source_checkout()
    if source is not None:
        return build_wheel(source, workdir)
    return download_wheel(installed_version(), workdir)


def _root_wheel_name(entry: str) -> str | None:
    """The canonical project name of a wheel at the zip root (where pip's find-links looks)."""
    if "/" in entry:
        return None
    parts = _wheel_filename_parts(entry)
    return canonical_name(parts[0]) if parts else None


def _check_extra_wheels(extra_wheels: Sequence[Wheel]) -> None:
    """Refuse two wheels of one project: pip would install one of them, which one being unclear."""
    seen: set[str] = set()
    for extra in extra_wheels:
        key = canonical_name(extra.name)
        if key == DIST_NAME:
            raise CliError(f"--extra-wheel {extra.path}: is {DIST_NAME} itself; pass it as --wheel instead")
        if key in seen:
            raise CliError(f"--extra-wheel {extra.path}: a second wheel of {extra.name}")
        seen.add(key)


def _check_output(output: Path) -> None:
    """Fail on an unusable output path before spending time on a wheel build."""
    if output.is_dir():
        raise CliError(f"--output {output}: is a directory")
    if not output.absolute().parent.is_dir():
        raise CliError(f"--output {output}: directory {output.absolute().parent} does not exist")


def _copy_entry(src: zipfile.ZipFile, info: zipfile.ZipInfo, dst: zipfile.ZipFile) -> None:
    """Copy one entry as is (timestamps, permissions, compression), streaming to bound memory."""
    if info.is_dir():
        dst.writestr(info, b"")
        return
    with src.open(info) as fin, dst.open(info, "w", force_zip64=info.file_size > zipfile.ZIP64_LIMIT) as fout:
        shutil.copyfileobj(fin, fout, 1024 * 1024)


def _add_wheel(path: Path, zout: zipfile.ZipFile) -> None:
    """Store a wheel at the zip root, where ``--find-links /usr/local/airflow/plugins`` finds it."""
    info = zipfile.ZipInfo.from_file(path, arcname=path.name, strict_timestamps=False)
    info.compress_type = zipfile.ZIP_STORED  # a wheel is already deflated
    with path.open("rb") as fin, zout.open(info, "w") as fout:
        shutil.copyfileobj(fin, fout, 1024 * 1024)


def _file_mode() -> int:
    """The mode a newly created file gets, so the atomic temp file doesn't leave plugins.zip at 0600."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_plugins_zip(output: Path, wheels: Sequence[Wheel], merge_into: Path | None = None) -> ZipResult:
    """Write ``output`` with ``wheels`` at its root, after the entries of ``merge_into`` if given.

    Merging keeps the user's own plugins, since MWAA takes one plugins.zip per environment. Wheels
    at the root of the old zip whose project is one we are adding are dropped (an upgrade replaces
    the old wheel rather than leaving two versions in the find-links directory). The zip is written
    to a temporary file in the same directory and moved into place, so an interrupted run never
    leaves a truncated plugins.zip and ``--merge-into`` may name the output file itself.
    """
    _check_output(output)
    output = output.absolute()
    if merge_into is not None:
        if not merge_into.is_file():
            raise CliError(f"--merge-into {merge_into}: no such file")
        if not zipfile.is_zipfile(merge_into):
            raise CliError(f"--merge-into {merge_into}: not a zip archive")
    adding = {canonical_name(w.name) for w in wheels}
    result = ZipResult(output=output, added=[w.path.name for w in wheels])
    fd, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w") as zout:
                if merge_into is not None:
                    _merge_entries(merge_into, adding, zout, result)
                for wheel in wheels:
                    _add_wheel(wheel.path, zout)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(_file_mode())
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result


def _merge_entries(merge_into: Path, adding: set[str], zout: zipfile.ZipFile, result: ZipResult) -> None:
    """Copy the old zip's entries except wheels being replaced, recording what happened in ``result``."""
    try:
        with zipfile.ZipFile(merge_into) as zin:
            for info in zin.infolist():
                if info.filename in result.added or _root_wheel_name(info.filename) in adding:
                    result.replaced.append(info.filename)
                    continue
                # MWAA puts the plugins folder on sys.path, so a copy of our package in the zip
                # would be imported instead of the installed wheel.
                if info.filename.split("/", 1)[0] == "airflow_provider_mwaaops":
                    result.shadowing.append(info.filename)
                _copy_entry(zin, info, zout)
                result.kept.append(info.filename)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # a corrupt entry, found while copying it
        raise CliError(f"--merge-into {merge_into}: cannot read it ({exc})") from exc


def requirements_lines(wheel: Wheel, extra_wheels: Iterable[Wheel] = ()) -> list[str]:
    """The requirements.txt lines that install the zipped wheels on MWAA without reaching PyPI.

    Each wheel is pinned to the version in the zip: with ``--no-index`` nothing else can be found,
    and a pin turns a mismatch into a clear resolver error instead of a surprise.
    """
    return [
        f"--find-links {MWAA_PLUGINS_DIR}",
        "--no-index",
        wheel.requirement,
        *(extra.requirement for extra in extra_wheels),
    ]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Attach the ``plugins-zip`` sub-command to the ``mwaaops`` parser."""
    parser = subparsers.add_parser(
        "plugins-zip",
        help="build a plugins.zip that installs this provider on MWAA without PyPI",
        description=(
            "Write a plugins.zip with the airflow-provider-mwaaops wheel at its root and print the "
            "requirements.txt lines that install it from /usr/local/airflow/plugins, for MWAA "
            "environments that cannot reach PyPI. Without --wheel the wheel is built from the source "
            "checkout, or downloaded for the installed version."
        ),
        epilog=(
            "The requirements.txt lines go to standard output and everything else to standard error, "
            "so `mwaaops plugins-zip >> requirements.txt` works. --no-index applies to the whole "
            "requirements.txt: every other requirement in it must also be in the zip."
        ),
    )
    parser.add_argument(
        "--output", type=Path, default=Path("plugins.zip"), metavar="PATH", help="zip to write (plugins.zip)"
    )
    parser.add_argument("--wheel", type=Path, metavar="PATH", help="use this airflow-provider-mwaaops wheel")
    parser.add_argument(
        "--extra-wheel",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="another wheel to ship, e.g. apache-airflow-providers-snowflake (repeatable)",
    )
    parser.add_argument(
        "--merge-into",
        type=Path,
        metavar="EXISTING_ZIP",
        help="start from this plugins.zip, keeping its entries (an older wheel of ours is replaced)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Validate every input first, then obtain our wheel, write the zip and print what to do next."""
    given = inspect_wheel(args.wheel, "--wheel") if args.wheel is not None else None
    if given is not None and canonical_name(given.name) != DIST_NAME:
        raise CliError(f"--wheel {args.wheel}: is a wheel of {given.name}, not {DIST_NAME}")
    extra_wheels = [inspect_wheel(p, "--extra-wheel") for p in args.extra_wheel]
    _check_extra_wheels(extra_wheels)
    _check_output(args.output)
    if args.merge_into is not None and not args.merge_into.is_file():
        raise CliError(f"--merge-into {args.merge_into}: no such file")
    with tempfile.TemporaryDirectory(prefix="mwaaops-plugins-zip-") as workdir:
        wheel = given or inspect_wheel(obtain_wheel(Path(workdir)), "the built wheel")
        result = write_plugins_zip(args.output, [wheel, *extra_wheels], args.merge_into)

    summary = f"Wrote {result.output} with {', '.join(result.added)}"
    if args.merge_into is not None:
        summary += f"; kept {len(result.kept)} entries of {args.merge_into}"
        if result.replaced:
            summary += f", replaced {', '.join(result.replaced)}"
    print(summary, file=sys.stderr)
    if result.shadowing:
        print(
            f"warning: {args.merge_into} also contains a copy of the airflow_provider_mwaaops package "
            f"({result.shadowing[0]}, ...), which MWAA would import instead of the wheel; remove it.",
            file=sys.stderr,
        )
    print("Add these lines to requirements.txt:", file=sys.stderr, flush=True)
    print("\n".join(requirements_lines(wheel, extra_wheels)), flush=True)
    print(
        f"Then upload {result.output.name} and requirements.txt to the environment's S3 bucket and "
        "select their new versions in the MWAA environment.",
        file=sys.stderr,
    )
    return 0
