# Sourced by scripts/test and scripts/demo: builds the project's virtual environments with uv.
# Safe to run repeatedly; an up-to-date environment costs a second or two.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The two Airflow lines we test: the newest 3.3.x and the newest 2.11.x on PyPI.
AIRFLOW3_SPEC="apache-airflow~=3.3.0"
AIRFLOW2_SPEC="apache-airflow~=2.11.0"
PYTHON_VERSION="${MWAAOPS_PYTHON:-3.11}"
VENV_AIRFLOW3="$ROOT/.venv"
VENV_AIRFLOW2="$ROOT/.venv-airflow2"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_uv() {
  if command -v uv >/dev/null 2>&1; then
    UV="$(command -v uv)"
  else
    # No uv on PATH: install it into a private tools venv (pip from PyPI only).
    if [ ! -x "$ROOT/.tools/bin/uv" ]; then
      log "installing uv into .tools/"
      python3 -m venv "$ROOT/.tools"
      "$ROOT/.tools/bin/python" -m pip install --quiet --disable-pip-version-check uv
    fi
    UV="$ROOT/.tools/bin/uv"
  fi
  export PATH="$(dirname "$UV"):$PATH"
}

# make_env VENV AIRFLOW_SPEC: a venv with the package (editable) and every extra, on one Airflow line.
make_env() {
  local venv="$1" spec="$2"
  if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv (Python $PYTHON_VERSION)"
    "$UV" venv --quiet --seed --python "$PYTHON_VERSION" "$venv"
  fi
  local extra_pkgs=()
  # Airflow 3's AssetWatcher examples read SQS through common-messaging (MWAA 3.x images ship it).
  case "$spec" in apache-airflow~=3*) extra_pkgs+=("apache-airflow-providers-common-messaging") ;; esac
  # SQLAlchemy as MWAA ships it: 2.0.x under every Airflow 3 constraints file (2.0.49, 2.0.51), 1.4
  # under 2.11's. A fresh resolve now picks 2.1.x, which no MWAA version runs and this suite has not
  # been checked against (its first symptom: changed type hints of query rows).
  case "$spec" in apache-airflow~=3*) extra_pkgs+=("SQLAlchemy>=2.0,<2.1") ;; esac
  # cryptography 51 made a fresh resolve trade snowflake-connector-python 4.8 (which caps it) for
  # 4.0 and pyOpenSSL 22, which fails at import on cryptography 51 ("module 'lib' has no
  # attribute 'GEN_EMAIL'"). Keep the connector the snowflake extra is tested with.
  case "$spec" in apache-airflow~=3*) extra_pkgs+=("snowflake-connector-python>=4.8") ;; esac
  log "installing airflow-provider-mwaaops[test,docs,snowflake,postgres,report,fast-masking] with $spec into $(basename "$venv")"
  "$UV" pip install --quiet --python "$venv/bin/python" -e "$ROOT[test,docs,snowflake,postgres,report,fast-masking]" \
    "$spec" uv "${extra_pkgs[@]}"
}

ensure_uv
