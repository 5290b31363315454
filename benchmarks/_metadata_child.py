"""One measured export, in a fresh process (a process never gives its RSS back).

Started by ``metadata_export.py`` with the environment it prepares (the emulator's AWS variables,
an ``AIRFLOW_HOME`` and ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` pointing at the benchmark DB).
Prints one JSON line: what was exported, how long the export itself took and the peak RSS.

    python _metadata_child.py ours URL DEST EXPORT_ID MODE TABLES [--import-airflow] [--no-masking] [--legacy]
    python _metadata_child.py mwaadr BUCKET PREFIX TABLE
    python _metadata_child.py limit URL TABLE

Row counts come from what each one wrote: our manifest, the records of mwaa-dr's CSV (read back
after the peak RSS is taken, so the check costs the measurement nothing) and COPY's own count.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def ours(
    url: str,
    dest: str,
    export_id: str,
    mode: str,
    tables: str,
    import_airflow: bool,
    masking: bool = True,
    legacy: bool = False,
) -> dict:
    if import_airflow:  # what an exporting task carries anyway: Airflow and its models
        import airflow.models  # noqa: F401

    import airflow_provider_mwaaops
    from airflow_provider_mwaaops.metadata.export import run_export
    from airflow_provider_mwaaops.metadata.sinks import open_sink
    from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource

    source = DatabaseSource(url)
    sink = open_sink(dest)
    # The package before issue 17 has no masking (nor its switch).
    options: dict[str, Any] = {} if legacy else {"mask_secrets": masking}
    start = time.perf_counter()
    manifest = run_export(
        source,
        sink,
        export_id=export_id,
        mode=mode,
        tables=tables.split(",") if tables != "default" else None,
        **options,
    )
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": {n: t.rows for n, t in manifest.tables.items() if t.rows},
        "files": sum(len(t.files) for t in manifest.tables.values()),
        "bytes": sum(f.bytes for t in manifest.tables.values() for f in t.files),
        "package": airflow_provider_mwaaops.__file__,
    }


def mwaadr(bucket: str, prefix: str, table: str) -> dict:
    from types import SimpleNamespace

    import boto3
    from mwaa_dr.v_2_11.dr_factory import DRFactory_2_11

    factory = DRFactory_2_11(dag_id="bench", path_prefix=prefix, storage_type="S3")
    tables = {t.name: t for t in factory.tables()}
    start = time.perf_counter()
    tables[table].backup(dag_run=SimpleNamespace(conf={"bucket": bucket}))
    seconds = time.perf_counter() - start
    size = boto3.client("s3").head_object(Bucket=bucket, Key=f"{prefix}/{table}.csv")["ContentLength"]
    return {
        "seconds": seconds,
        "bytes": size,
        "batch_size": tables[table].batch_size,
        # mwaa-dr exports ``SELECT ... WHERE export_filter``: the driver counts the rows it should hold.
        "export_filter": tables[table].export_filter,
        "csv": f"{bucket}/{prefix}/{table}.csv",
    }


def csv_records(location: str) -> int:
    """Records in an S3 CSV, read as a stream (values may hold newlines: csv.reader decides)."""
    import codecs
    import csv

    import boto3

    bucket, key = location.split("/", 1)
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    lines = codecs.iterdecode(body.iter_lines(keepends=True), "utf-8")
    return sum(1 for _ in csv.reader(lines))


def limit(url: str, table: str) -> dict:
    """The physical limit: the server formats every row as CSV, the client drops it (/dev/null)."""
    import psycopg2

    conn = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        with conn.cursor() as cur, open(os.devnull, "wb") as sink:
            counted = _CountingSink(sink)
            start = time.perf_counter()
            cur.copy_expert(f"COPY (SELECT * FROM {table}) TO STDOUT WITH (FORMAT csv)", counted)
            seconds = time.perf_counter() - start
            return {"seconds": seconds, "rows": cur.rowcount, "bytes": counted.bytes}
    finally:
        conn.close()


class _CountingSink:
    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        return self.inner.write(data)  # type: ignore[attr-defined]


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM): counted from exec, unlike ``getrusage``'s ``ru_maxrss``,
    which includes the parent's image at fork time."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv: list[str]) -> None:
    kind = argv[0]
    # mwaa-dr prints its SQL; keep our stdout to the one JSON line.
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    if kind == "ours":
        result = ours(
            *argv[1:6],
            import_airflow="--import-airflow" in argv,
            masking="--no-masking" not in argv,
            legacy="--legacy" in argv,
        )
    elif kind == "limit":
        result = limit(*argv[1:3])
    else:
        result = mwaadr(*argv[1:4])
    result["peak_rss_mb"] = peak_rss_mb()
    if "csv" in result:  # after the peak RSS: reading the CSV back is the check, not the export
        result["rows"] = csv_records(result.pop("csv"))
    sys.stdout.flush()
    os.write(real_stdout, (json.dumps(result) + "\n").encode())


if __name__ == "__main__":
    main(sys.argv[1:])
