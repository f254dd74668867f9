"""The statements both backends run as they are: written with `?` placeholders, which the PostgreSQL backend
turns into `%s`. What differs between the dialects (the budget's row lock, the guard claim, adopting and
renewing task leases) is written in each backend.
"""

from __future__ import annotations

from typing import Any

from cutout_mcp.core.storage.base import TASK_COLUMNS, TaskRow, task_values

STAGED_SQL = {
    "key_of": "SELECT staged_key FROM video_jobs WHERE id = ?",
    "in_use": "SELECT 1 AS used FROM video_jobs WHERE staged_key = ? AND status IN (?, ?) LIMIT 1",
    "forget": "UPDATE video_jobs SET staged_key = NULL WHERE staged_key = ? AND status NOT IN (?, ?)",
    "held": "SELECT 1 AS held FROM guards WHERE substr(key, 1, ?) = ? AND expires_at > ? LIMIT 1",
    "finished": "SELECT DISTINCT staged_key FROM video_jobs WHERE staged_key IS NOT NULL AND status NOT IN (?, ?) "
    "LIMIT ?",
}
"""The staged-image statements, the same in both dialects (PostgreSQL's placeholders are `%s`). `held` takes
(len(prefix), prefix, now): a prefix compared as characters, whatever the database's collation (the guards
table holds only the requests under way, so reading it whole is cheap)."""


TASK_SQL = {
    "insert": f"INSERT INTO tasks ({', '.join(TASK_COLUMNS)}) VALUES ({', '.join('?' * len(TASK_COLUMNS))})",  # noqa: S608 - constant columns
    "get": "SELECT * FROM tasks WHERE task_id = ?",
    "save": "UPDATE tasks SET status_message = ?, resume_hint = ?, job_id = ?, credits = ?, updated_at = ?, "
    "lease_expires = ? WHERE task_id = ? AND status = 'working' AND lease_holder = ?",
    "finish": "UPDATE tasks SET status = ?, status_message = ?, resume_hint = ?, result = ?, error = ?, "
    "updated_at = ? WHERE task_id = ? AND status = 'working' AND (CAST(? AS TEXT) IS NULL OR lease_holder = ?)",
    "delete_expired": "DELETE FROM tasks WHERE expires_at <= ?",
}
"""The task statements the same in both dialects (PostgreSQL's placeholders are `%s`); `save` and `finish`
take `save_values` and `finish_values`. Adopting and renewing leases differ (row locks, arrays)."""


def save_values(row: TaskRow) -> tuple[Any, ...]:
    """`TASK_SQL["save"]`'s parameters: a working task's progress, while `row.lease_holder` holds it."""
    fields = (row.status_message, row.resume_hint, row.job_id, row.credits, row.updated_at, row.lease_expires)
    return (*fields, row.task_id, row.lease_holder)


def finish_values(row: TaskRow, holder: str | None) -> tuple[Any, ...]:
    """`TASK_SQL["finish"]`'s parameters: its end state, if `holder` holds it (None: whoever does)."""
    values = task_values(row)
    return (
        row.status,
        row.status_message,
        row.resume_hint,
        values[9],
        values[10],
        row.updated_at,
        row.task_id,
        holder,
        holder,
    )
