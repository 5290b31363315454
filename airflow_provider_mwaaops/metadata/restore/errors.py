"""The one exception a restore raises for anything the user can act on."""

from __future__ import annotations


class RestoreError(Exception):
    """A restore refused or failed; names the table and/or file concerned.

    Raised before any write for a bad export (missing or corrupt manifest, checksum mismatch,
    newer schema) or a target a strict restore must not touch; raised after a rollback otherwise.
    """

    def __init__(
        self, message: str, table: str | None = None, file: str | None = None, rolled_back: bool = False
    ) -> None:
        where = ", ".join(
            part for part in (f"table {table}" if table else "", f"file {file}" if file else "") if part
        )
        super().__init__(f"{message} ({where})" if where and where not in message else message)
        self.table = table
        self.file = file
        #: True when the failure happened while writing (and the transaction was rolled back);
        #: False when the restore refused before writing anything.
        self.rolled_back = rolled_back
