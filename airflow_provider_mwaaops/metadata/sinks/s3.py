"""Exports in S3 through s3fs (the filesystem Airflow's ObjectStoragePath uses for ``s3://``).

Each file is one PUT (s3fs ``pipe``), which S3 makes visible atomically; the manifest is the last
PUT of an export, so a reader that starts from the manifest never sees a partial export.
Credentials come from an Airflow AWS connection when ``aws_conn_id`` is given (the amazon
provider's hook resolves roles, profiles and the connection's ``endpoint_url``), else from the
standard boto environment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from airflow_provider_mwaaops.metadata.sinks.base import Sink


def _s3fs_options(aws_conn_id: str | None, region_name: str | None) -> dict[str, Any]:
    if aws_conn_id is None:
        return {"client_kwargs": {"region_name": region_name}} if region_name else {}
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    hook = AwsBaseHook(aws_conn_id=aws_conn_id, region_name=region_name, client_type="s3")
    creds = hook.get_credentials()
    client_kwargs: dict[str, Any] = {"region_name": hook.conn_region_name}
    endpoint = hook.conn_config.endpoint_url
    if endpoint:
        client_kwargs["endpoint_url"] = endpoint
    return {
        "key": creds.access_key,
        "secret": creds.secret_key,
        "token": creds.token,
        "client_kwargs": client_kwargs,
    }


class S3Sink(Sink):
    def __init__(
        self,
        url: str,
        aws_conn_id: str | None = None,
        region_name: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        import s3fs

        self.url = "s3://" + url.split("://", 1)[1].rstrip("/")
        self._prefix = self.url.removeprefix("s3://")
        self._options = {**_s3fs_options(aws_conn_id, region_name), **(storage_options or {})}
        # A private instance: s3fs caches instances and directory listings, and an export must
        # see the bucket as it is now (a manifest written a moment ago by another process).
        self.fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False, **self._options)

    def _key(self, path: str) -> str:
        return f"{self._prefix}/{path.lstrip('/')}".rstrip("/")

    def write_bytes(self, path: str, data: bytes) -> None:
        self.fs.pipe_file(self._key(path), data)

    def read_bytes(self, path: str) -> bytes:
        return bytes(self.fs.cat_file(self._key(path)))

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self._key(path)))

    def list_dirs(self, path: str = "") -> list[str]:
        try:
            entries = self.fs.ls(self._key(path), detail=True, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e["type"] == "directory")

    def list_files(self, path: str) -> Iterator[str]:
        try:
            found = self.fs.find(self._key(path))
        except FileNotFoundError:
            return
        for name in sorted(found):
            yield name.removeprefix(self._prefix + "/")

    def delete(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._key(path))

    def storage_options(self) -> dict[str, Any]:
        return dict(self._options)
