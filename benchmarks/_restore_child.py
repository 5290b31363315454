"""One measured restore, in a fresh process (a process never gives its RSS back).

Started by ``metadata_restore.py`` with ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` pointing at the
target database (mwaa-dr writes through Airflow's own engine) and the emulator's AWS variables.
Prints one JSON line: how long the restore itself took and the peak RSS (``VmHWM``).

    python _restore_child.py ours TARGET_URL EXPORT_URL EXPORT_ID TABLE
    python _restore_child.py mwaadr BUCKET PREFIX TABLE
    python _restore_child.py backup BUCKET PREFIX TABLE      (mwaa-dr's backup, not measured)
"""

from __future__ import annotations

import json
import os
import sys
import time
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _metadata_child import peak_rss_mb


def ours(target_url: str, export_url: str, export_id: str, table: str) -> dict:
    # What a restoring task has imported anyway (mwaa-dr's child imports Airflow before its timer too).
    import airflow.utils.db  # noqa: F401

    import airflow_provider_mwaaops.compat  # noqa: F401
    from airflow_provider_mwaaops.metadata.restore import RestoreOptions, restore_metadata
    from airflow_provider_mwaaops.metadata.sinks import open_sink

    sink = open_sink(export_url)
    options = RestoreOptions(tables=[table], reactivate_dags=False)
    start = time.perf_counter()
    report = restore_metadata(sink, export_id, target_url, options)
    seconds = time.perf_counter() - start
    stats = report.tables[table]
    return {"seconds": seconds, "inserted": stats.inserted, "unchanged": stats.unchanged}


def _mwaadr_table(prefix: str, table: str):  # type: ignore[no-untyped-def]
    from mwaa_dr.v_2_11.dr_factory import DRFactory_2_11

    factory = DRFactory_2_11(dag_id="bench", path_prefix=prefix, storage_type="S3")
    return {t.name: t for t in factory.tables()}[table]


def mwaadr(bucket: str, prefix: str, table: str) -> dict:
    model = _mwaadr_table(prefix, table)
    start = time.perf_counter()
    model.restore(dag_run=SimpleNamespace(conf={"bucket": bucket}))
    return {"seconds": time.perf_counter() - start, "batch_size": model.batch_size}


def backup(bucket: str, prefix: str, table: str) -> dict:
    model = _mwaadr_table(prefix, table)
    start = time.perf_counter()
    model.backup(dag_run=SimpleNamespace(conf={"bucket": bucket}))
    return {"seconds": time.perf_counter() - start}


def main(argv: list[str]) -> None:
    kind = argv[0]
    real_stdout = os.dup(1)
    os.dup2(2, 1)  # mwaa-dr prints its SQL and counters; stdout carries the one JSON line
    if kind == "ours":
        result = ours(*argv[1:5])
    elif kind == "mwaadr":
        result = mwaadr(*argv[1:4])
    else:
        result = backup(*argv[1:4])
    result["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.flush()
    os.write(real_stdout, (json.dumps(result) + "\n").encode())


if __name__ == "__main__":
    main(sys.argv[1:])
