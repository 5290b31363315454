"""Secret columns on their way into the target: decrypted from the export, re-encrypted for the target.

An export holds connection passwords/extras and variable values either not at all (``exclude``) or
encrypted with an *export key* (see :mod:`airflow_provider_mwaaops.metadata.secrets`); trigger
kwargs are stored as Airflow keeps them, encrypted with the *source* environment's Fernet key. The
target has its own Fernet key, so every secret is turned into plain text in memory and encrypted
again with the target's key, exactly as Airflow itself would store it.

Comparisons happen in plain text (``SecretCodec.reveal``), because Fernet tokens differ on
every encryption: comparing ciphertext would make every second restore "update" every secret.
"""

from __future__ import annotations

import contextlib
from typing import Any

from cryptography.fernet import InvalidToken

from airflow_provider_mwaaops.metadata.secrets import (
    ENCRYPTED_FLAGS,
    SecretCipher,
    SecretKeyError,
    fernet_from_keys,
)

#: Columns without which a row cannot be inserted (a variable with no value is not a variable).
REQUIRED_FOR_INSERT: dict[str, tuple[str, ...]] = {"variable": ("val",), "trigger": ("kwargs",)}
#: Values a newly inserted row gets for secret flags the export left out (NOT NULL on Airflow 3).
INSERT_DEFAULTS: dict[str, dict[str, Any]] = {
    table: dict.fromkeys(flags.values(), False) for table, flags in ENCRYPTED_FLAGS.items()
}


def is_plain_trigger_kwargs(value: object) -> bool:
    """Trigger kwargs Airflow stored without encryption: it reads a value that starts with ``{`` as
    plain JSON (``airflow.models.trigger.Trigger._decrypt_kwargs``), so some rows hold them so."""
    return str(value).startswith("{")


class SecretCodec:
    """Turns exported secrets into what the target stores, and target rows back into plain text.

    ``export_cipher``: the export key's decryptor (``None`` when the export excluded secrets).
    ``target_fernet_key``: the target Airflow's ``[core] fernet_key`` (``""``: the target keeps
    secrets unencrypted, as Airflow does without a key). ``source_fernet_key``: the source
    environment's key, needed only for trigger kwargs when the two keys differ.
    """

    def __init__(
        self,
        export_cipher: SecretCipher | None,
        target_fernet_key: str | None,
        source_fernet_key: str | None = None,
    ) -> None:
        self.export_cipher = export_cipher
        self.target = fernet_from_keys(target_fernet_key)
        self.source = fernet_from_keys(source_fernet_key)
        #: Count per "table.column and reason", for the report.
        self.notes: dict[str, int] = {}

    def _note(self, what: str) -> None:
        self.notes[what] = self.notes.get(what, 0) + 1

    # -- export -> plain text ----------------------------------------------------------------------
    def incoming(self, table: str, row: dict[str, Any]) -> dict[str, Any] | str:
        """The row with secrets in plain text; excluded ones dropped; or a reason to skip it."""
        if table == "trigger":
            return self._incoming_trigger(row)
        for column, flag in ENCRYPTED_FLAGS.get(table, {}).items():
            if column not in row:
                continue
            value = row.pop(column)
            row.pop(flag, None)
            if value is None:
                if self.export_cipher is None:
                    self._note(f"{table}.{column}: excluded from the export, not restored")
                continue
            if self.export_cipher is None:
                raise SecretKeyError(
                    f"table {table}: column {column} holds a value but the manifest says secrets were "
                    "excluded; the export is inconsistent"
                )
            row[column] = self.export_cipher.decrypt(str(value))
            row[flag] = self.target is not None
        return row

    def _incoming_trigger(self, row: dict[str, Any]) -> dict[str, Any] | str:
        token = row.get("kwargs")
        if token is None:
            return "trigger kwargs missing"
        if is_plain_trigger_kwargs(token):
            return row  # Airflow kept these unencrypted; sealing encrypts them with the target's key
        for fernet in (self.target, self.source):
            if fernet is None:
                continue
            try:
                row["kwargs"] = fernet.decrypt(str(token).encode()).decode()
                return row
            except InvalidToken:
                continue
        if self.target is None and self.source is None:
            return row  # neither side encrypts: kwargs are plain JSON
        return "trigger kwargs encrypted with another Fernet key (pass the source environment's key)"

    # -- target row -> plain text (for comparison) -------------------------------------------------
    def reveal(self, table: str, existing: dict[str, Any]) -> dict[str, Any]:
        row = dict(existing)
        if table == "trigger":
            if self.target is not None and row.get("kwargs") is not None:
                # Unreadable by the target itself: the restore's value will replace it.
                with contextlib.suppress(InvalidToken):
                    row["kwargs"] = self.target.decrypt(str(row["kwargs"]).encode()).decode()
            return row
        for column, flag in ENCRYPTED_FLAGS.get(table, {}).items():
            if row.get(flag) and row.get(column) is not None and self.target is not None:
                with contextlib.suppress(InvalidToken):
                    row[column] = self.target.decrypt(str(row[column]).encode()).decode()
        return row

    # -- plain text -> what the target stores ---------------------------------------------------------
    def seal(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        sealed = dict(row)
        if table == "trigger":
            if self.target is not None and sealed.get("kwargs") is not None:
                sealed["kwargs"] = self.target.encrypt(str(sealed["kwargs"]).encode()).decode()
            return sealed
        for column, flag in ENCRYPTED_FLAGS.get(table, {}).items():
            if column in sealed and sealed[column] is not None:
                if self.target is not None:
                    sealed[column] = self.target.encrypt(str(sealed[column]).encode()).decode()
                sealed[flag] = self.target is not None
        return sealed
