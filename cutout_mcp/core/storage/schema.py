"""The versioned schema of both backends: migration N brings a database from version N-1 to N.

Each backend applies the missing migrations at start-up inside one transaction that first takes a
lock every other starting process also takes (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a transaction
advisory lock), and records the version reached in `schema_version`. So replicas started together
upgrade the database once, and a process never sees a half-made schema.

Version 1 is the ledger as it was before versioning (`CREATE ... IF NOT EXISTS`), so an existing
`ledger.sqlite3` upgrades in place. Version 2 adds what several processes need to act as one server:
the spend counter that makes the budget exact, the dedupe guards, the charges' request key and the
durable tasks. Version 3 adds the secrets every process must share, such as the key that seals a
spend question's state (`Storage.shared_secret`). Version 4 tells a job's image source from its identity
and remembers its staged object (`IMAGE_SOURCES`). Version 5 keeps each charge's MCP session and indexes
the charges by caller and time, so allowances, session caps and rates are counted in the reserving
transaction (`CALLER_LIMITS`). Version 6 makes those counts constant-cost counters (`caller_counters`).

Times are epoch seconds (REAL / DOUBLE PRECISION) from the server's clock, job and edit ids are
cutout.pro's 64-bit integers.
"""

from __future__ import annotations

SCHEMA_LOCK_ID = 0x6375_746F_7574  # "cutout": the PostgreSQL advisory lock held while migrating

IMAGE_SOURCES: tuple[str, ...] = (
    "ALTER TABLE video_jobs ADD COLUMN image_ref TEXT",
    "UPDATE video_jobs SET image_ref = image_url",
    "ALTER TABLE video_jobs ADD COLUMN staged_key TEXT",
    "DROP INDEX IF EXISTS video_jobs_same_request",
    "CREATE INDEX video_jobs_same_image ON video_jobs (principal, image_ref, status)",
    "CREATE INDEX video_jobs_staged ON video_jobs (staged_key) WHERE staged_key IS NOT NULL",
)
"""Version 4, the same in both dialects: `image_url` now holds where the image came from (a URL, a path,
`upload:…`, `data: (…)`), `image_ref` what identifies the request (the URL, or the staged content's
digest) and `staged_key` the staged object to delete once the job is finished."""

CALLER_LIMITS: tuple[str, ...] = (
    "ALTER TABLE charges ADD COLUMN session_id TEXT",
    "CREATE INDEX charges_by_time ON charges (principal, created_at)",
    "CREATE INDEX charges_by_session ON charges (session_id) WHERE session_id IS NOT NULL",
)
"""Version 5, the same in both dialects: `session_id` is the key of the MCP session a charge was made in
(a digest, never the transport's id itself); the indexes serve the counts `Storage.reserve` makes."""


def caller_counters(real: str, caller_of_json: str, infinity: str, keyed: str = "") -> tuple[str, ...]:
    """Version 6: each charge names its caller as the allowance policy knows it (`caller`: a token's name
    or an OAuth subject, `config.allowances.principal_name`; filled here for existing charges, whose
    principal is `local`, a name, or a JSON triple [client_id, issuer, subject]), and `caller_use`, the
    counters `Storage.reserve` moves and checks: per caller, one row per allowance window (`scope` '')
    holding the credits of the caller's charges made within it, and one per MCP session (`scope` the
    session's key, a window from -infinity to infinity) holding those of the caller's charges in that
    session. A caller's rows sit together in the key's order, and the ones holding a time are one index
    range each, so one statement moves them all. A window's row is filled from the charges the first time
    it is asked for (which windows exist depends on the policy, not known here); a session's row moves with
    every charge stored with its session, so the existing ones are summed here, and the charges need no
    index by session any more. `keyed` makes SQLite keep the table in its key's own b-tree (`WITHOUT ROWID`):
    one b-tree to find and write instead of two."""
    return (
        "ALTER TABLE charges ADD COLUMN caller TEXT",
        f"UPDATE charges SET caller = {caller_of_json}",  # noqa: S608 - a constant expression
        "DROP INDEX charges_by_time",
        "CREATE INDEX charges_by_caller ON charges (caller, created_at)",
        f"""CREATE TABLE caller_use (
            caller TEXT NOT NULL, scope TEXT NOT NULL, window_end {real} NOT NULL, window_start {real} NOT NULL,
            used BIGINT NOT NULL, PRIMARY KEY (caller, scope, window_end, window_start)){keyed}""",
        "INSERT INTO caller_use (caller, scope, window_end, window_start, used) SELECT caller, session_id, "  # noqa: S608
        f"{infinity}, -{infinity}, SUM(credits) FROM charges WHERE session_id IS NOT NULL GROUP BY caller, session_id",
        "DROP INDEX charges_by_session",
    )


SQLITE_CALLER = (
    "CASE WHEN json_valid(principal) AND json_type(principal) = 'array' THEN COALESCE(json_extract(principal, "
    "'$[2]'), json_extract(principal, '$[0]'), 'None') ELSE principal END"
)
POSTGRES_CALLER = (
    "CASE WHEN principal LIKE '[%' THEN COALESCE(principal::jsonb ->> 2, principal::jsonb ->> 0, 'None') "
    "ELSE principal END"
)

SQLITE: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS video_jobs (
            id INTEGER PRIMARY KEY, principal TEXT NOT NULL, image_url TEXT NOT NULL, prompt TEXT,
            status TEXT NOT NULL, percentage REAL NOT NULL DEFAULT 0, wait_number INTEGER NOT NULL DEFAULT 0,
            result_url TEXT, cover_url TEXT, credits INTEGER NOT NULL, created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS video_jobs_newest ON video_jobs (principal, created_at DESC)",
        "CREATE INDEX IF NOT EXISTS video_jobs_same_request ON video_jobs (principal, image_url, status)",
        """CREATE TABLE IF NOT EXISTS charges (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, principal TEXT NOT NULL, kind TEXT NOT NULL,
            ref_id INTEGER, detail TEXT, credits INTEGER NOT NULL, created_at REAL NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS charges_by_principal ON charges (principal)",
    ),
    (
        "ALTER TABLE charges ADD COLUMN dedupe_key TEXT",
        "CREATE INDEX charges_unrecorded ON charges (dedupe_key, seq) WHERE dedupe_key IS NOT NULL AND ref_id IS NULL",
        "CREATE TABLE spend (id INTEGER PRIMARY KEY CHECK (id = 1), spent INTEGER NOT NULL)",
        "INSERT INTO spend (id, spent) SELECT 1, COALESCE(SUM(credits), 0) FROM charges",
        "CREATE TABLE guards (key TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL)",
        """CREATE TABLE tasks (
            task_id TEXT PRIMARY KEY, owner TEXT NOT NULL, tool TEXT NOT NULL, status TEXT NOT NULL,
            created_at REAL NOT NULL, updated_at REAL NOT NULL, expires_at REAL NOT NULL,
            status_message TEXT, resume_hint TEXT, result TEXT, error TEXT, job_id INTEGER,
            credits INTEGER NOT NULL DEFAULT 0, lease_holder TEXT, lease_expires REAL NOT NULL DEFAULT 0)""",
        "CREATE INDEX tasks_working ON tasks (lease_expires) WHERE status = 'working'",
        "CREATE INDEX tasks_expiry ON tasks (expires_at)",
    ),
    ("CREATE TABLE secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL)",),
    IMAGE_SOURCES,
    CALLER_LIMITS,
    caller_counters("REAL", SQLITE_CALLER, "9e999", " WITHOUT ROWID"),
)

POSTGRES: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS video_jobs (
            id BIGINT PRIMARY KEY, principal TEXT NOT NULL, image_url TEXT NOT NULL, prompt TEXT,
            status TEXT NOT NULL, percentage DOUBLE PRECISION NOT NULL DEFAULT 0,
            wait_number INTEGER NOT NULL DEFAULT 0, result_url TEXT, cover_url TEXT, credits INTEGER NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS video_jobs_newest ON video_jobs (principal, created_at DESC)",
        "CREATE INDEX IF NOT EXISTS video_jobs_same_request ON video_jobs (principal, image_url, status)",
        """CREATE TABLE IF NOT EXISTS charges (
            seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, principal TEXT NOT NULL, kind TEXT NOT NULL,
            ref_id BIGINT, detail TEXT, credits INTEGER NOT NULL, created_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS charges_by_principal ON charges (principal)",
    ),
    (
        "ALTER TABLE charges ADD COLUMN dedupe_key TEXT",
        "CREATE INDEX charges_unrecorded ON charges (dedupe_key, seq) WHERE dedupe_key IS NOT NULL AND ref_id IS NULL",
        "CREATE TABLE spend (id INTEGER PRIMARY KEY CHECK (id = 1), spent BIGINT NOT NULL)",
        "INSERT INTO spend (id, spent) SELECT 1, COALESCE(SUM(credits), 0) FROM charges",
        "CREATE TABLE guards (key TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL)",
        """CREATE TABLE tasks (
            task_id TEXT PRIMARY KEY, owner TEXT NOT NULL, tool TEXT NOT NULL, status TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL, status_message TEXT, resume_hint TEXT, result TEXT, error TEXT,
            job_id BIGINT, credits INTEGER NOT NULL DEFAULT 0, lease_holder TEXT,
            lease_expires DOUBLE PRECISION NOT NULL DEFAULT 0)""",
        "CREATE INDEX tasks_working ON tasks (lease_expires) WHERE status = 'working'",
        "CREATE INDEX tasks_expiry ON tasks (expires_at)",
    ),
    ("CREATE TABLE secrets (name TEXT PRIMARY KEY, value BYTEA NOT NULL)",),
    IMAGE_SOURCES,
    CALLER_LIMITS,
    caller_counters("DOUBLE PRECISION", POSTGRES_CALLER, "'Infinity'::double precision"),
)

VERSION = len(SQLITE)
assert len(POSTGRES) == VERSION, "both backends reach the same schema version"

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"


class NewerSchemaError(Exception):
    """The database was made by a newer cutout-mcp; this one must not write to it."""

    def __init__(self, found: int) -> None:
        super().__init__(
            f"the database has schema version {found}, newer than this cutout-mcp knows ({VERSION}); "
            "upgrade cutout-mcp on every replica"
        )
        self.found = found


def pending(current: int, migrations: tuple[tuple[str, ...], ...]) -> list[tuple[int, tuple[str, ...]]]:
    """The migrations after `current`, numbered; raises NewerSchemaError for a database from the future."""
    if current > len(migrations):
        raise NewerSchemaError(current)
    return [(number, migrations[number - 1]) for number in range(current + 1, len(migrations) + 1)]
