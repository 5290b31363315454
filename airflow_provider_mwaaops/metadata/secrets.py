"""Secret columns (connection passwords/extras, variable values) in exports: excluded or encrypted.

Never plain text. The default leaves them out (nulls, ``"mode": "exclude"`` in the manifest). On
request they are encrypted with an *export key*, independent of the source Airflow's own Fernet
key, so the export can be restored into an environment with another key:

- ``fernet``: a Fernet key kept as an Airflow Variable, the password of an Airflow connection, or an
  AWS Secrets Manager secret; the manifest names where the key lives and its fingerprint (never
  the key).
- ``kms``: a fresh 256-bit data key per export from KMS ``GenerateDataKey``; its encrypted copy is
  stored in the manifest and only ``kms:Decrypt`` on the same KMS key recovers it.

Restore calls :func:`cipher_for_manifest` to get the matching decryptor. In the metadata database
itself Airflow keeps these columns encrypted with its own Fernet key (``[core] fernet_key``): a
source turns them into plain text with :func:`decrypt_stored_secrets` just before the export key
encrypts them, and restore re-encrypts them for the target with :func:`fernet_from_keys`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

if TYPE_CHECKING:
    import pyarrow as pa

MODES = ("exclude", "fernet", "kms")

#: Per table, each secret column and the column saying whether Airflow stored it encrypted.
ENCRYPTED_FLAGS: dict[str, dict[str, str]] = {
    "variable": {"val": "is_encrypted"},
    "connection": {"password": "is_encrypted", "extra": "is_extra_encrypted"},
}


class SecretKeyError(Exception):
    """A key could not be found or does not decrypt: the export key, or the Fernet key Airflow
    stored secrets with."""


def fernet_from_keys(keys: str | None) -> MultiFernet | None:
    """Airflow's own reading of a ``[core] fernet_key`` value: comma-separated keys, the first
    encrypts; ``None`` when there is no key (Airflow then stores secrets unencrypted)."""
    parts = [part.strip() for part in (keys or "").split(",") if part.strip()]
    if not parts:
        return None
    try:
        return MultiFernet([Fernet(part.encode()) for part in parts])
    except (ValueError, TypeError) as err:
        raise SecretKeyError("the Fernet key given for the target (or the source) is not valid") from err


def decrypt_stored_secrets(table: str, chunk: pa.Table, secret_columns: tuple[str, ...]) -> pa.Table:
    """A chunk read from the metadata database with its secret columns in plain text.

    The values Airflow stored encrypted (their flag column says so) are decrypted with this
    Airflow's Fernet key, which must be the source environment's; the export key encrypts them
    again before anything is written.
    """
    from airflow_provider_mwaaops.metadata.arrays import string_array

    for name in secret_columns:
        flag = ENCRYPTED_FLAGS.get(table, {}).get(name)
        values = chunk.column(name).to_pylist()
        flags = chunk.column(flag).to_pylist() if flag else [False] * len(values)
        plain = decrypt_stored_values(table, name, values, flags)
        chunk = chunk.set_column(chunk.schema.get_field_index(name), name, string_array(plain))
    return chunk


def decrypt_stored_values(
    table: str, column: str, values: list[str | None], encrypted: list[Any]
) -> list[str | None]:
    """``values`` of one secret column in plain text, each decrypted where its flag is set."""
    fernet = None
    out = []
    for value, flag in zip(values, encrypted, strict=True):
        if value is not None and flag:
            if fernet is None:
                from airflow.models.crypto import get_fernet

                fernet = get_fernet()
            try:
                value = fernet.decrypt(value.encode()).decode()
            except Exception as err:
                raise SecretKeyError(
                    f"table {table}: cannot decrypt column {column} with this Airflow's Fernet key "
                    f"([core] fernet_key must be the source environment's) ({type(err).__name__})"
                ) from err
        out.append(value)
    return out


def _fingerprint(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


@dataclass
class SecretCipher:
    """Encrypts secret column values with an export key; ``describe()`` goes into the manifest."""

    mode: str
    key: bytes
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            self._fernet = Fernet(self.key)
        except (ValueError, TypeError) as err:
            raise SecretKeyError(
                f"export key ({self.info.get('key_ref', self.mode)}) is not a Fernet key"
            ) from err

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as err:
            raise SecretKeyError(
                f"the export key ({self.info.get('key_ref', self.mode)}) does not decrypt "
                "this export's secrets"
            ) from err

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "key_fingerprint": _fingerprint(self.key), **self.info}


def _resolve_fernet_key(
    key_variable: str | None, key_conn_id: str | None, key_secret_id: str | None, aws_conn_id: str | None
) -> tuple[bytes, str]:
    given = [x for x in (key_variable, key_conn_id, key_secret_id) if x]
    if len(given) != 1:
        raise SecretKeyError("fernet mode needs exactly one of key_variable, key_conn_id, key_secret_id")
    if key_variable:
        from airflow_provider_mwaaops.compat import Variable

        try:
            value = Variable.get(key_variable)
        except KeyError as err:
            raise SecretKeyError(f"Variable {key_variable!r} (the export key) does not exist") from err
        return str(value).strip().encode(), f"variable:{key_variable}"
    if key_conn_id:
        from airflow_provider_mwaaops.compat import BaseHook

        password = BaseHook.get_connection(key_conn_id).password
        if not password:
            raise SecretKeyError(f"connection {key_conn_id!r} (the export key) has no password")
        return password.strip().encode(), f"connection:{key_conn_id}"
    from airflow.providers.amazon.aws.hooks.secrets_manager import SecretsManagerHook

    assert key_secret_id is not None
    secret = SecretsManagerHook(aws_conn_id=aws_conn_id).get_secret(key_secret_id)
    return str(secret).strip().encode(), f"secretsmanager:{key_secret_id}"


def _kms_client(aws_conn_id: str | None, region_name: str | None) -> Any:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id=aws_conn_id, region_name=region_name, client_type="kms").get_conn()


def make_cipher(
    mode: str = "exclude",
    *,
    key_variable: str | None = None,
    key_conn_id: str | None = None,
    key_secret_id: str | None = None,
    kms_key_id: str | None = None,
    aws_conn_id: str | None = "aws_default",
    region_name: str | None = None,
) -> SecretCipher | None:
    """The cipher for an export (``None`` for ``exclude``)."""
    if mode not in MODES:
        raise ValueError(f"secrets mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "exclude":
        return None
    if mode == "fernet":
        key, ref = _resolve_fernet_key(key_variable, key_conn_id, key_secret_id, aws_conn_id)
        return SecretCipher("fernet", key, {"key_ref": ref})
    if not kms_key_id:
        raise SecretKeyError("kms mode needs kms_key_id")
    response = _kms_client(aws_conn_id, region_name).generate_data_key(KeyId=kms_key_id, KeySpec="AES_256")
    key = base64.urlsafe_b64encode(response["Plaintext"])
    return SecretCipher(
        "kms",
        key,
        {
            "key_ref": f"kms:{response.get('KeyId', kms_key_id)}",
            "kms_key_id": response.get("KeyId", kms_key_id),
            "encrypted_data_key": base64.b64encode(response["CiphertextBlob"]).decode(),
        },
    )


def cipher_for_manifest(
    secrets: dict[str, Any],
    *,
    key_variable: str | None = None,
    key_conn_id: str | None = None,
    key_secret_id: str | None = None,
    aws_conn_id: str | None = "aws_default",
    region_name: str | None = None,
) -> SecretCipher | None:
    """The decryptor for an export's secrets (``None`` when they were excluded).

    For ``fernet`` the caller names where the key lives (the same place as at export time, or a
    copy); its fingerprint must match the manifest's. For ``kms`` the data key is decrypted with
    KMS.
    """
    mode = secrets.get("mode", "exclude")
    if mode == "exclude":
        return None
    if mode == "kms":
        blob = base64.b64decode(secrets["encrypted_data_key"])
        plaintext = _kms_client(aws_conn_id, region_name).decrypt(CiphertextBlob=blob)["Plaintext"]
        return SecretCipher("kms", base64.urlsafe_b64encode(plaintext), {"key_ref": secrets.get("key_ref")})
    if mode != "fernet":
        raise SecretKeyError(f"unknown secrets mode {mode!r} in manifest")
    if not (key_variable or key_conn_id or key_secret_id):
        ref = str(secrets.get("key_ref", ""))
        kind, _, name = ref.partition(":")
        key_variable = name if kind == "variable" else None
        key_conn_id = name if kind == "connection" else None
        key_secret_id = name if kind == "secretsmanager" else None
    key, ref = _resolve_fernet_key(key_variable, key_conn_id, key_secret_id, aws_conn_id)
    if _fingerprint(key) != secrets.get("key_fingerprint"):
        raise SecretKeyError(
            f"export key from {ref} has fingerprint {_fingerprint(key)}, the export was encrypted with "
            f"{secrets.get('key_fingerprint')} ({secrets.get('key_ref')})"
        )
    return SecretCipher("fernet", key, {"key_ref": ref})
