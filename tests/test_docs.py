"""The documentation builds without a single warning, API reference included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
SPHINX_OPTIONS = ["-W", "--keep-going", "-n", "-b", "html"]  # warnings fail, nitpicky references


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", *SPHINX_OPTIONS, str(DOCS_DIR), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, (
        f"sphinx-build exited with {result.returncode}\n--- stdout ---\n{result.stdout}\n"
        f"--- stderr ---\n{result.stderr}"
    )
