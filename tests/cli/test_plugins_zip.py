"""``mwaaops plugins-zip``: the zip MWAA unpacks into /usr/local/airflow/plugins installs this provider.

The fast tests run the command in-process against a wheel built once per module; the slow one is
the real round trip: the command in a subprocess, the zip unpacked, and the printed requirements
installed with pip ``--no-index`` into a fresh virtualenv that holds only what an MWAA image holds
(Airflow, the Amazon provider and our other runtime dependencies, at this interpreter's versions),
then Airflow itself asked whether it sees the provider and the plugin.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Callable
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from airflow_provider_mwaaops.cli import CliError, main, plugins_zip

DIST = "airflow-provider-mwaaops"
REQUIREMENTS_HEAD = ["--find-links /usr/local/airflow/plugins", "--no-index"]


def make_wheel(directory: Path, name: str, version: str, filename: str | None = None) -> Path:
    """A minimal but well-formed wheel of another project, standing in for e.g. the Snowflake provider."""
    stem = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    path = directory / (filename or f"{stem}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(
            f"{stem}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        whl.writestr(
            f"{stem}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        whl.writestr(f"{stem}.dist-info/RECORD", "")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    """Run ``mwaaops plugins-zip`` in-process: (exit code, stdout lines, stderr)."""
    code = main(["plugins-zip", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our real wheel, built once from this checkout the way the command builds it."""
    source = plugins_zip.find_source_checkout()
    assert source is not None, "the tests run from a source checkout"
    return plugins_zip.build_wheel(source, tmp_path_factory.mktemp("built-wheel"))


@pytest.fixture
def wheel_version(built_wheel: Path) -> str:
    return plugins_zip.inspect_wheel(built_wheel, "--wheel").version


@pytest.fixture
def our_line(wheel_version: str) -> str:
    return f"{DIST}=={wheel_version}"


def leftovers(directory: Path) -> list[str]:
    """Temporary files the atomic write may have left behind."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# --- source checkout and the built wheel -------------------------------------------------------


def test_source_checkout_is_detected() -> None:
    root = plugins_zip.find_source_checkout()
    assert root is not None
    assert (root / "airflow_provider_mwaaops" / "__init__.py").is_file()


def test_built_wheel_is_ours_and_carries_the_cli(built_wheel: Path) -> None:
    wheel = plugins_zip.inspect_wheel(built_wheel, "--wheel")
    assert plugins_zip.canonical_name(wheel.name) == DIST
    with zipfile.ZipFile(built_wheel) as whl:
        names = whl.namelist()
    assert "airflow_provider_mwaaops/cli/plugins_zip.py" in names
    assert not [n for n in names if "__pycache__" in n]


# --- the zip and the printed lines -------------------------------------------------------------


def test_zip_holds_the_wheel_at_its_root(
    built_wheel: Path, our_line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plugins.zip"
    code, lines, err = run_cli(capsys, "--wheel", str(built_wheel), "--output", str(out))

    assert code == 0, err
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == [built_wheel.name]
        assert zf.read(built_wheel.name) == built_wheel.read_bytes()
        assert zf.testzip() is None
    # stdout is exactly the requirements.txt lines, so it can be appended to the file as is.
    assert lines == [*REQUIREMENTS_HEAD, our_line]
    assert "S3 bucket" in err
    assert "plugins.zip" in err
    assert "requirements.txt" in err
    # The temp file + rename must not leave the zip private to its owner.
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert leftovers(tmp_path) == []


def test_output_defaults_to_plugins_zip_in_the_working_directory(
    built_wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "--wheel", str(built_wheel))
    assert code == 0, err
    assert zipfile.ZipFile(tmp_path / "plugins.zip").namelist() == [built_wheel.name]


def test_extra_wheels_are_zipped_and_pinned(
    built_wheel: Path, our_line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snowflake = make_wheel(tmp_path, "apache-airflow-providers-snowflake", "6.3.1")
    other = make_wheel(tmp_path, "Some_Lib", "2.0")
    out = tmp_path / "plugins.zip"
    code, lines, err = run_cli(
        capsys,
        "--wheel", str(built_wheel), "--extra-wheel", str(snowflake), "--extra-wheel", str(other),
        "--output", str(out),
    )  # fmt: skip

    assert code == 0, err
    assert sorted(zipfile.ZipFile(out).namelist()) == sorted([built_wheel.name, snowflake.name, other.name])
    assert lines == [
        *REQUIREMENTS_HEAD,
        our_line,
        "apache-airflow-providers-snowflake==6.3.1",
        "Some_Lib==2.0",
    ]


# --- --merge-into ------------------------------------------------------------------------------


def _user_zip(path: Path, extra_entries: dict[str, bytes]) -> dict[str, zipfile.ZipInfo]:
    entries = {
        "my_plugin.py": b"# the user's own plugin\n",
        "helpers/": b"",
        "helpers/__init__.py": b"X = 1\n",
        "wheels/airflow_provider_mwaaops-0.0.1-py3-none-any.whl": b"not at the root: pip never sees it",
        **extra_entries,
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=(2021, 5, 6, 7, 8, 10))
            info.external_attr = (0o40755 if name.endswith("/") else 0o100640) << 16
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(path) as zf:
        return {i.filename: i for i in zf.infolist()}


def test_merge_keeps_the_users_entries_and_replaces_our_old_wheel(
    built_wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "plugins.zip"
    old_ours = "airflow_provider_mwaaops-0.0.9-py3-none-any.whl"
    unrelated = "other_lib-1.0-py3-none-any.whl"
    before = _user_zip(existing, {old_ours: b"old wheel", unrelated: b"kept"})
    old_bytes = {name: zipfile.ZipFile(existing).read(name) for name in before}

    # In place: --merge-into and --output are the same file, which the atomic write allows.
    code, _, err = run_cli(
        capsys, "--wheel", str(built_wheel), "--merge-into", str(existing), "--output", str(existing)
    )

    assert code == 0, err
    with zipfile.ZipFile(existing) as zf:
        after = {i.filename: i for i in zf.infolist()}
        assert set(after) == (set(before) - {old_ours}) | {built_wheel.name}
        for name, info in before.items():
            if name == old_ours:
                continue
            assert zf.read(name) == old_bytes[name]
            assert after[name].date_time == info.date_time
            assert after[name].external_attr == info.external_attr
            assert after[name].compress_type == info.compress_type
        assert zf.read(built_wheel.name) == built_wheel.read_bytes()
    assert f"replaced {old_ours}" in err
    assert leftovers(tmp_path) == []


def test_merge_replaces_an_older_extra_wheel_too(
    built_wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "old.zip"
    _user_zip(existing, {"apache_airflow_providers_snowflake-6.0.0-py3-none-any.whl": b"old"})
    snowflake = make_wheel(tmp_path, "apache-airflow-providers-snowflake", "6.3.1")
    out = tmp_path / "plugins.zip"

    code, _, err = run_cli(
        capsys, "--wheel", str(built_wheel), "--extra-wheel", str(snowflake),
        "--merge-into", str(existing), "--output", str(out),
    )  # fmt: skip

    assert code == 0, err
    names = zipfile.ZipFile(out).namelist()
    assert snowflake.name in names
    assert "apache_airflow_providers_snowflake-6.0.0-py3-none-any.whl" not in names
    assert "my_plugin.py" in names
    assert zipfile.ZipFile(existing).namelist()[0] == "my_plugin.py", "the source zip is left alone"


def test_merge_warns_about_a_copy_of_the_package_in_the_zip(
    built_wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "old.zip"
    _user_zip(existing, {"airflow_provider_mwaaops/__init__.py": b"__version__ = 'stale'\n"})
    code, _, err = run_cli(
        capsys,
        "--wheel",
        str(built_wheel),
        "--merge-into",
        str(existing),
        "--output",
        str(tmp_path / "p.zip"),
    )
    assert code == 0, err
    assert "warning:" in err
    assert "airflow_provider_mwaaops/__init__.py" in err


def test_a_corrupt_zip_to_merge_is_a_clear_error(
    built_wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "old.zip"
    with zipfile.ZipFile(existing, "w") as zf:  # stored, so the payload is found verbatim below
        zf.writestr("my_plugin.py", b"PAYLOAD-PAYLOAD")
    existing.write_bytes(existing.read_bytes().replace(b"PAYLOAD-PAYLOAD", b"PAYLOAD-CORRUPT"))
    out = tmp_path / "plugins.zip"

    code, lines, err = run_cli(
        capsys, "--wheel", str(built_wheel), "--merge-into", str(existing), "--output", str(out)
    )

    assert code == 2
    assert lines == []
    assert f"--merge-into {existing}: cannot read it" in err
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_an_interrupted_write_leaves_the_old_zip_untouched(
    built_wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plugins.zip"
    _user_zip(out, {})
    original = out.read_bytes()

    def fail(path: Path, zout: zipfile.ZipFile) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plugins_zip, "_add_wheel", fail)
    with pytest.raises(OSError, match="No space left"):
        main(["plugins-zip", "--wheel", str(built_wheel), "--merge-into", str(out), "--output", str(out)])
    assert out.read_bytes() == original
    assert leftovers(tmp_path) == []


# --- bad input ---------------------------------------------------------------------------------


def _not_a_wheel_text(tmp_path: Path) -> Path:
    path = tmp_path / "airflow_provider_mwaaops-0.1.0-py3-none-any.whl"
    path.write_text("this is not a zip")
    return path


def _not_a_wheel_zip(tmp_path: Path) -> Path:
    path = tmp_path / "plugins-backup.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("dag.py", "")
    return path


def _zip_named_whl_without_metadata(tmp_path: Path) -> Path:
    path = tmp_path / "airflow_provider_mwaaops-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("airflow_provider_mwaaops/__init__.py", "")
    return path


def _renamed_wheel(tmp_path: Path) -> Path:
    return make_wheel(tmp_path, DIST, "0.1.0", filename="airflow_provider_mwaaops-9.9.9-py3-none-any.whl")


@pytest.mark.parametrize(
    ("option", "make_bad", "message"),
    [
        pytest.param("--wheel", lambda d: d / "missing.whl", "no such file", id="wheel-missing"),
        pytest.param("--extra-wheel", lambda d: d / "missing.whl", "no such file", id="extra-missing"),
        pytest.param("--wheel", lambda d: d, "not a file", id="wheel-is-a-directory"),
        pytest.param("--wheel", _not_a_wheel_text, "not a wheel", id="wheel-not-a-zip"),
        pytest.param("--wheel", _not_a_wheel_zip, "not a wheel", id="wheel-is-a-plain-zip"),
        pytest.param("--wheel", _zip_named_whl_without_metadata, "not a wheel", id="wheel-without-metadata"),
        pytest.param("--extra-wheel", _not_a_wheel_text, "not a wheel", id="extra-not-a-zip"),
        pytest.param("--wheel", _renamed_wheel, "does not match", id="wheel-renamed"),
        pytest.param(
            "--wheel",
            lambda d: make_wheel(d, "apache-airflow-providers-snowflake", "6.3.1"),
            f"not {DIST}",
            id="wheel-of-another-project",
        ),
        pytest.param(
            "--extra-wheel", lambda d: make_wheel(d, DIST, "0.1.0"), "pass it as --wheel", id="extra-is-ours"
        ),
        pytest.param("--merge-into", lambda d: d / "missing.zip", "no such file", id="merge-missing"),
        pytest.param("--merge-into", _not_a_wheel_text, "not a zip", id="merge-not-a-zip"),
        pytest.param(
            "--output", lambda d: d / "no-such-dir" / "plugins.zip", "does not exist", id="output-dir"
        ),
        pytest.param("--output", lambda d: d, "is a directory", id="output-is-a-directory"),
    ],
)
def test_bad_input_is_a_clear_error(
    option: str,
    make_bad,
    message: str,
    built_wheel: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = str(make_bad(bad_dir))
    out = tmp_path / "plugins.zip"
    argv = ["--wheel", bad if option == "--wheel" else str(built_wheel)]
    argv += ["--output", bad if option == "--output" else str(out)]
    if option in {"--extra-wheel", "--merge-into"}:
        argv += [option, bad]
    # Bad input must be reported before any wheel is built or downloaded.
    monkeypatch.setattr(plugins_zip, "obtain_wheel", lambda workdir: pytest.fail("tried to obtain a wheel"))

    code, lines, err = run_cli(capsys, *argv)

    assert code == 2
    assert lines == []
    assert err.startswith("mwaaops: error: ")
    assert bad in err
    assert message in err
    assert "Traceback" not in err
    assert not out.exists() or out.is_dir()


def test_two_extra_wheels_of_one_project_are_refused(
    built_wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a").mkdir()
    first = make_wheel(tmp_path / "a", "apache-airflow-providers-snowflake", "6.3.1")
    second = make_wheel(tmp_path, "apache-airflow-providers-snowflake", "6.4.0")
    code, _, err = run_cli(
        capsys, "--wheel", str(built_wheel), "--extra-wheel", str(first), "--extra-wheel", str(second),
        "--output", str(tmp_path / "plugins.zip"),
    )  # fmt: skip
    assert code == 2
    assert str(second) in err
    assert not (tmp_path / "plugins.zip").exists()


# --- how the wheel is obtained without --wheel ------------------------------------------------


def hide_module(monkeypatch: pytest.MonkeyPatch, hidden: str) -> None:
    """Make ``importlib.util.find_spec`` report ``hidden`` as not installed."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == hidden else real_find_spec(n, *a)
    )


@pytest.fixture
def recorded_tool(monkeypatch: pytest.MonkeyPatch, built_wheel: Path) -> list[list[str]]:
    """Replace the packaging tool run with one that records the command and 'produces' our wheel."""
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], what: str, cwd: Path | None = None) -> None:
        calls.append(list(cmd))
        [flag] = [f for f in ("-d", "--outdir", "--out-dir") if f in cmd]
        shutil.copy(built_wheel, Path(cmd[cmd.index(flag) + 1]) / built_wheel.name)

    monkeypatch.setattr(plugins_zip, "_run_tool", fake_run)
    return calls


def test_a_checkout_is_built_with_python_m_build(
    recorded_tool: list[list[str]], tmp_path: Path, our_line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = run_cli(capsys, "--output", str(tmp_path / "plugins.zip"))
    assert code == 0, err
    [cmd] = recorded_tool
    assert cmd[:5] == [sys.executable, "-m", "build", "--wheel", "--outdir"]
    assert cmd[-1] == str(plugins_zip.find_source_checkout())
    assert lines[-1] == our_line


def test_a_checkout_falls_back_to_uv_build(
    recorded_tool: list[list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_module(monkeypatch, "build")
    monkeypatch.setattr(shutil, "which", lambda name: "/opt/bin/uv" if name == "uv" else None)
    plugins_zip.obtain_wheel(tmp_path)
    [cmd] = recorded_tool
    assert cmd[:4] == ["/opt/bin/uv", "build", "--wheel", "--out-dir"]


def test_a_checkout_without_build_or_uv_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_module(monkeypatch, "build")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(CliError, match="neither the 'build' package nor 'uv'") as excinfo:
        plugins_zip.obtain_wheel(tmp_path)
    assert excinfo.value.exit_code == 1
    assert "--wheel" in str(excinfo.value)


def test_an_installed_release_is_downloaded_at_its_version(
    recorded_tool: list[list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugins_zip, "find_source_checkout", lambda: None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object())  # pip is "installed"
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "1.2.3" if name == DIST else None)
    plugins_zip.obtain_wheel(tmp_path)
    [cmd] = recorded_tool
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
    assert f"{DIST}==1.2.3" in cmd
    assert {"--no-deps", "--only-binary", ":all:"} <= set(cmd)
    assert cmd[cmd.index("-d") + 1] == str(tmp_path)


def test_an_installed_release_without_pip_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugins_zip, "find_source_checkout", lambda: None)
    hide_module(monkeypatch, "pip")
    with pytest.raises(CliError, match="pip is not installed") as excinfo:
        plugins_zip.obtain_wheel(tmp_path)
    assert excinfo.value.exit_code == 1


def test_a_failing_build_reports_its_output(capsys: pytest.CaptureFixture[str]) -> None:
    cmd = [sys.executable, "-c", "import sys; print('hatchling says no'); sys.exit(3)"]
    with pytest.raises(CliError, match="hatchling says no") as excinfo:
        plugins_zip._run_tool(cmd, "building the wheel")
    assert excinfo.value.exit_code == 1
    assert "exit code 3" in str(excinfo.value)


# --- the command as a process ------------------------------------------------------------------


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow_provider_mwaaops.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def test_python_m_runs_the_cli() -> None:
    from airflow_provider_mwaaops import __version__

    assert _cli("--version").stdout.strip() == f"mwaaops {__version__}"
    assert "plugins-zip" in _cli("--help").stdout
    no_command = _cli()
    assert no_command.returncode == 2
    assert "plugins-zip" in no_command.stderr


def test_the_cli_imports_no_airflow() -> None:
    """The CLI must start fast, and importing Airflow costs seconds."""
    code = (
        "import sys; from airflow_provider_mwaaops.cli import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'airflow', 'boto3', 'botocore'}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


# --- acceptance: a fresh, MWAA-like virtualenv installs the zip and Airflow loads the provider --


def _find_uv() -> list[str] | None:
    """uv from the environment, this venv, the ``uv`` package, or the machine's bootstrap copy."""
    candidates = [os.environ.get("UV"), shutil.which("uv"), str(Path(sys.executable).parent / "uv")]
    if importlib.util.find_spec("uv") is not None:
        import uv

        with contextlib.suppress(FileNotFoundError):
            candidates.append(uv.find_uv_bin())
    candidates.append("/tmp/uvboot/bin/uv")
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return [candidate]
    return None


def _runtime_requirements(wheel: Path) -> list[str]:
    """The names of the wheel's unconditional dependencies: what MWAA must already provide."""
    with zipfile.ZipFile(wheel) as whl:
        [metadata] = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
        headers = HeaderParser().parsestr(whl.read(metadata).decode())
    requirements = [Requirement(line) for line in headers.get_all("Requires-Dist") or []]
    return [r.name for r in requirements if r.marker is None or r.marker.evaluate({"extra": ""})]


def _this_environment_as_constraints(path: Path) -> Path:
    """Pin the fresh venv to this interpreter's versions, as an MWAA constraints file pins an image.

    Local (editable or path) installs are left out: they cannot come from an index.
    """
    pins = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and not dist.read_text("direct_url.json"):
            pins[name.lower()] = f"{name}=={dist.version}"
    pins.pop(DIST, None)
    path.write_text("\n".join(sorted(pins.values())) + "\n")
    return path


def _install_image(command: list[str], run: Callable[[list[str], str], Any]) -> None:
    """Install the image's packages from uv's cache, where the bootstrap just put every one of them.

    Nothing need reach the index (a CI run once failed on PyPI answering a pinned grpcio as
    missing); only a cache that lacks something (pruned, or another cache directory) goes online.
    """
    try:
        run([*command, "--offline"], "uv pip install (image, from uv's cache)")
    except AssertionError as offline_failure:
        warnings.warn(f"installing from uv's cache failed, trying the index: {offline_failure}", stacklevel=2)
        run(command, "uv pip install (image)")


def _json_list(stdout: str) -> list[dict]:
    """The JSON list an ``airflow ... -o json`` command prints, skipping any log lines before it."""
    start = stdout.find("[")
    assert start >= 0, f"no JSON in: {stdout!r}"
    return json.loads(stdout[start:])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_plugins_zip_installs_offline_into_a_fresh_mwaa_like_venv(tmp_path: Path) -> None:
    from airflow_provider_mwaaops.testing.airflow_env import isolated_airflow_environ

    uv = _find_uv()
    if uv is None:
        pytest.skip("uv is needed to create the fresh Airflow virtualenv in reasonable time")
    timings: dict[str, float] = {}
    # A clean environment: no venv, path or Airflow settings of this pytest session leak in.
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AIRFLOW") and k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}
    }

    def run(cmd: list[str], step: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        proc = subprocess.run(
            cmd, capture_output=True, text=True, cwd=tmp_path, env=env or base_env, timeout=400, check=False
        )
        timings[step] = round(time.monotonic() - started, 1)
        assert proc.returncode == 0, f"{step} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        return proc

    # 1. The command, as a user runs it from this checkout: it builds the wheel itself.
    out = tmp_path / "plugins.zip"
    made = run(
        [sys.executable, "-m", "airflow_provider_mwaaops.cli", "plugins-zip", "--output", str(out)],
        "plugins-zip",
    )
    requirements = made.stdout.splitlines()
    assert requirements[:2] == REQUIREMENTS_HEAD
    assert requirements[2].startswith(f"{DIST}==")
    version = requirements[2].split("==", 1)[1]

    # 2. What MWAA does: unpack the zip as the plugins folder.
    plugins_dir = tmp_path / "usr-local-airflow-plugins"
    with zipfile.ZipFile(out) as zf:
        zf.extractall(plugins_dir)
    [wheel] = list(plugins_dir.glob("*.whl"))
    assert wheel.parent == plugins_dir, "wheels must sit at the zip root"

    # 3. A fresh venv holding what an MWAA image holds, at this interpreter's versions.
    venv = tmp_path / "venv"
    python = str(venv / "bin" / "python")
    run([*uv, "venv", "--seed", "--python", sys.executable, str(venv)], "uv venv")
    constraints = _this_environment_as_constraints(tmp_path / "constraints.txt")
    image = {"apache-airflow", "apache-airflow-providers-amazon", *_runtime_requirements(wheel)}
    image_pins = [f"{name}=={importlib.metadata.version(name)}" for name in sorted(image)]
    image_install = [*uv, "pip", "install", "--python", python, "-c", str(constraints), *image_pins]
    _install_image(image_install, run)

    # 4. The printed requirements.txt, with the MWAA path pointing at the unpacked zip, via pip.
    req_file = tmp_path / "requirements.txt"
    req_file.write_text(made.stdout.replace("/usr/local/airflow/plugins", str(plugins_dir)))
    installed = run(
        [python, "-m", "pip", "install", "--disable-pip-version-check", "-r", str(req_file)], "pip install -r"
    )
    assert f"Successfully installed {DIST}-{version}" in installed.stdout
    where = run([python, "-c", "import airflow_provider_mwaaops as p; print(p.__file__)"], "import").stdout
    assert Path(where.strip()).is_relative_to(venv), "the provider must come from the venv, not the checkout"

    # 5. Airflow in the fresh venv sees the provider and the plugin (neither command needs a migrated DB).
    env = {**base_env, **isolated_airflow_environ(tmp_path / "airflow-home")}
    airflow = str(venv / "bin" / "airflow")
    providers = _json_list(
        run([airflow, "providers", "list", "-o", "json"], "airflow providers list", env).stdout
    )
    ours = [p for p in providers if p["package_name"] == DIST]
    assert ours, providers
    assert ours[0]["version"] == version
    plugins = _json_list(run([airflow, "plugins", "-o", "json"], "airflow plugins", env).stdout)
    mwaaops = [p for p in plugins if p["name"] == "mwaaops"]
    assert mwaaops, plugins
    assert f"{DIST}=={version}" in mwaaops[0].get("source", "")

    print(f"\nacceptance timings (s): {timings}")
