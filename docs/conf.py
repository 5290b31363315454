"""Sphinx configuration for airflow-provider-mwaaops.

Build locally with ``python -m sphinx -W --keep-going -n -b html docs docs/_build/html``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

# autodoc imports the package, and airflow_provider_mwaaops.compat imports Airflow, which fixes its
# home and database at first import and creates files there. Point it at a throw-away directory
# before anything can import airflow, so a docs build never touches ~/airflow or a real database.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="mwaaops-docs-airflow-")
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{Path(_AIRFLOW_HOME) / 'airflow.db'}"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"

# Document the checkout this conf.py belongs to, even when another copy is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_provider_mwaaops import __version__  # noqa: E402  (after the environment is set)

project = "airflow-provider-mwaaops"
author = "airflow-provider-mwaaops developers"
copyright = "airflow-provider-mwaaops developers"
release = __version__
version = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]
# No intersphinx: the build must work offline. References to Airflow and third-party types stay
# plain text; nitpick_ignore_regex below keeps them from failing a nitpicky (-n) build.

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

html_theme = "furo"
html_title = f"airflow-provider-mwaaops {release}"

autodoc_member_order = "bysource"
# Show defaults as written (``python: str = sys.executable``), not as evaluated on the build machine.
autodoc_preserve_defaults = True
autodoc_typehints = "signature"
autodoc_default_options = {"show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# External names only. Never add airflow_provider_mwaaops here: a broken reference to our own
# package is a real documentation bug.
_EXTERNAL = (
    r"airflow(\..*)?",
    r"aiobotocore(\..*)?",
    r"boto(3|core)?(\..*)?",
    r"_?pytest(\..*)?",
    r"pathlib(\..*)?",
    r"typing(\..*)?",
    r"collections\.abc(\..*)?",
    r"types(\..*)?",
    r"datetime(\..*)?",
    r"enum(\..*)?",
    r"contextlib(\..*)?",
    r"subprocess(\..*)?",
    r"Context",  # Airflow's task context, imported only for type checking
    r"Config",  # botocore.config.Config
    r"AioBaseClient",
    r"AioSession",
    r"AwsGenericHook",  # amazon provider classes named in annotations of the operator bases
    r"BaseAwsLink",
    r"PokeReturnValue",  # Airflow's, re-exported by compat
    r"airflow_provider_mwaaops\..*\._?T",  # TypeVars have no page of their own
    # metadata analysis (report, Athena, Snowflake): Arrow, DuckDB and the Snowflake provider
    r"(pyarrow|pa|pafs|ds)(\..*)?",
    r"duckdb(\..*)?",
    r"SnowflakeHook",
    r"Path",
    # metadata export: SQLAlchemy engines, argparse parsers in signatures
    r"(sqlalchemy|sa|argparse)(\..*)?",
    r"cryptography(\..*)?",  # Fernet keys of the metadata secrets
    r"(numpy|np)(\..*)?",  # the masker's row search answers with NumPy booleans
)
nitpick_ignore_regex = [(r"py:.*", pattern) for pattern in _EXTERNAL]


def _dataclass_factory_defaults(app, what, name, obj, options, signature, return_annotation):
    """Render ``field(default_factory=dict)`` as ``dict()`` instead of ``<factory>``.

    Sphinx cannot parse the ``<factory>`` placeholder of a dataclass signature and falls back to
    splitting it on commas, which yields broken cross-references such as ``dict[str``.
    """
    if what != "class" or not signature or "<factory>" not in signature:
        return None
    import dataclasses

    if not dataclasses.is_dataclass(obj):
        return None
    for field in dataclasses.fields(obj):
        if field.init and field.default_factory is not dataclasses.MISSING:
            factory = getattr(field.default_factory, "__qualname__", "factory")
            signature = signature.replace("<factory>", f"{factory}()", 1)
    return signature, return_annotation


def setup(app):
    app.connect("autodoc-process-signature", _dataclass_factory_defaults)
    return {"parallel_read_safe": True}
