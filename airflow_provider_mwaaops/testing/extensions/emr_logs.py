"""Log files and log events written by emulated EMR runs, straight into moto's S3 and CloudWatch Logs.

EMR writes its logs itself (the user never calls PutObject or PutLogEvents), so the emulator does
too, through moto's backends in this process: a reader sees them through the ordinary S3 and
CloudWatch Logs APIs. A bucket that does not exist gets no logs, like a real LogUri whose bucket is
missing; a CloudWatch log group is created when absent.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable

from moto.logs.models import logs_backends
from moto.s3.models import s3_backends


def split_s3_uri(uri: str) -> tuple[str, str]:
    """("bucket", "key/prefix") of ``s3://bucket/key/prefix`` (also ``s3n://`` / ``s3a://``)."""
    scheme, _, rest = uri.partition("://")
    if not rest or scheme not in ("s3", "s3n", "s3a"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, key = rest.partition("/")
    return bucket, key


def join_s3(uri: str, *parts: str) -> str:
    """``uri`` plus path parts, with exactly one slash between them."""
    return "/".join([uri.rstrip("/"), *(part.strip("/") for part in parts)])


def put_gzip_lines(account_id: str, uri: str, lines: Iterable[str]) -> bool:
    """Write ``lines`` gzip-compressed to ``uri``; False when its bucket does not exist."""
    bucket, key = split_s3_uri(uri)
    backend = s3_backends[account_id]["global"]
    if bucket not in backend.buckets:
        return False
    body = "".join(f"{line}\n" for line in lines).encode()
    backend.put_object(bucket, key, gzip.compress(body), disable_notification=False)
    return True


def put_log_event(
    account_id: str, region_name: str, group: str, stream: str, timestamp_ms: int, message: str
) -> None:
    """Append one event to ``group``/``stream``, creating both when missing."""
    backend = logs_backends[account_id][region_name]
    if group not in backend.groups:
        backend.create_log_group(group, tags={})
    backend.ensure_log_stream(group, stream)
    backend.put_log_events(group, stream, [{"timestamp": timestamp_ms, "message": message}])
