"""CPU time of secret masking on audit-log chunks: the RE2 search against Hyperscan's, one run.

Replays what an export's masker sees on the ``log`` table of ``metadata_export.py --masking``
(no database, no S3: only the masking step, in this process): chunks of 25,000 ``log.extra``
values in six record batches, 1 % of them a ``variables set`` audit record holding a variable's
value, the other rows the same ~100-byte JSON; 100 variables and 20 connections (password and an
``api_key`` extra) as the known secrets, and Airflow's default sensitive names. Each search is
timed on the same chunks (process CPU time, medians of ``--repeat``); RE2 is what runs without
the ``fast-masking`` extra, Hyperscan what runs with it. Both must mask the same rows.

    .venv-airflow2/bin/python benchmarks/masking_search.py --rows 1000000 --repeat 5
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time

import pyarrow as pa

from airflow_provider_mwaaops.metadata.masking import AIRFLOW_SENSITIVE_FIELDS, SecretMasker

CHUNK_ROWS = 25_000
BATCHES_PER_CHUNK = 6
AUDIT_ROW = json.dumps(
    {"host_name": "worker-1.ip-10-0-0-1.ec2.internal", "full_command": "['airflow', 'tasks', 'run']"}
)


def _md5(number: int) -> str:
    return hashlib.md5(str(number).encode()).hexdigest()


def known_secrets() -> frozenset[str]:
    """The benchmark database's secrets (metadata_export.py's FILL_SECRETS)."""
    secrets = {f"bench-secret-value-{_md5(g)}" for g in range(1, 101)}
    secrets |= {f"bench-pw-{_md5(g)}" for g in range(1, 21)} | {f"bench-key-{_md5(g)}" for g in range(1, 21)}
    secrets |= {json.dumps({"api_key": f"bench-key-{_md5(g)}", "sslmode": "require"}) for g in range(1, 21)}
    return frozenset(secrets)


def chunk() -> pa.ChunkedArray:
    values = []
    for row in range(CHUNK_ROWS):
        if row % 100:
            values.append(AUDIT_ROW)
            continue
        var = 1 + row // 100 % 100
        argv = ["airflow", "variables", "set", f"bench_var_{var}", f"bench-secret-value-{_md5(var)}"]
        values.append(json.dumps({"host_name": "worker-1", "full_command": str(argv)}))
    whole = pa.array(values, pa.string())
    step = -(-CHUNK_ROWS // BATCHES_PER_CHUNK)
    return pa.chunked_array([whole.slice(start, step) for start in range(0, CHUNK_ROWS, step)])


def measure(search: str, chunks: int, repeat: int) -> tuple[list[float], list[str | None]]:
    """CPU seconds of masking ``chunks`` chunks, per repeat; and one chunk's masked values."""
    if search == "re2":
        sys.modules["hyperscan"] = None  # type: ignore[assignment]  # import hyperscan -> ImportError
    else:
        sys.modules.pop("hyperscan", None)
    masker = SecretMasker(known_secrets(), AIRFLOW_SENSITIVE_FIELDS)
    values = chunk()
    masked, _ = masker._mask_array(values, json_like=True)  # compile outside the timing
    times = []
    for _ in range(repeat):
        started = time.process_time()
        for _ in range(chunks):
            masker._mask_array(values, json_like=True)
        times.append(time.process_time() - started)
    return times, masked.to_pylist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    chunks = max(1, args.rows // CHUNK_ROWS)
    results = {}
    for search in ("re2", "hyperscan"):
        results[search] = measure(search, chunks, args.repeat)
    if results["re2"][1] != results["hyperscan"][1]:
        raise SystemExit("the two searches masked different values")
    rows = chunks * CHUNK_ROWS
    text_bytes = sum(len(v) for v in chunk().to_pylist()) * chunks
    print(f"| search | CPU s per {rows:,} log rows (median, min-max of {args.repeat}) | ns per byte |")
    print("|---|---|---|")
    for search, (times, _) in results.items():
        median = statistics.median(times)
        spread = f"{min(times):.3f}-{max(times):.3f}"
        print(f"| {search} | {median:.3f} ({spread}) | {median * 1e9 / text_bytes:.2f} |")


if __name__ == "__main__":
    main()
