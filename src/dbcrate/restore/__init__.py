"""Restore: plan and preflight everything, then load table by table (recreate or into an
existing schema), with the journal, conflict policies, migrations and the task graph."""

from dbcrate.restore.run import (
    RestoreOptions,
    RestoreReport,
    TableResult,
    iter_restore,
    restore,
    row_keys,
)

__all__ = ["RestoreOptions", "RestoreReport", "TableResult", "iter_restore", "restore", "row_keys"]
