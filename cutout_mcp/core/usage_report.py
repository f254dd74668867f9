"""The operator's usage report: who spent what, per caller, tool, model and day, as a table, CSV or JSON.

`cutout-mcp usage` reads the ledger the servers write (`core.storage.usage`, read-only) and groups its
charges by the dimensions asked for. Each row has `calls` and `credits` (every paid call the ledger
counts as spent, as the budget does) and, apart, `unknown_calls` and `unknown_credits`: the part of them
whose outcome is unknown (a timeout, a 5xx, a lost answer, or a call still in flight), which cutout.pro
may or may not have charged. Callers are named as people know them, by the function allowance policies
use (`config.allowances.principal_name`), tools by their MCP names, models by the edit model (videos have
one, called `image-to-video`). Days are UTC.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from cutout_mcp.config import Settings
from cutout_mcp.config.allowances import principal_name
from cutout_mcp.core.storage.usage import UsageRow, read_usage
from cutout_mcp.errors import CutoutMcpError

DIMENSIONS = ("principal", "tool", "model", "day")
FORMATS = ("table", "csv", "json")
COUNTS = ("calls", "credits", "unknown_calls", "unknown_credits")
TOOLS = {"video": "generate_video", "edit": "edit_image"}
VIDEO_MODEL = "image-to-video"
"""The model column of a video: cutout.pro's Image-to-Video API has one model, and no name for it."""
UNRECORDED_MODEL = "(not recorded)"
"""The model of an edit the ledger has no model for: one reserved by a server older than the one that stores
the model with the reservation, whose outcome stayed unknown."""

UNKNOWN_NOTE = (
    "unknown: the outcome of these calls is unknown (a timeout, a 5xx, a lost answer, or still in flight).",
    "They count as spent, as they do for the budget, though cutout.pro may not have charged them; your",
    "cutout.pro account lists what it charged.",
)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class UsageReportError(CutoutMcpError):
    """The report's arguments cannot be read (a date, a dimension); the message says which and how."""


@dataclass(frozen=True)
class Window:
    """The UTC days a report covers: from `since` at 00:00 through the end of `until`, either open."""

    since: date | None = None
    until: date | None = None

    @property
    def start(self) -> float:
        return float("-inf") if self.since is None else _epoch(self.since)

    @property
    def end(self) -> float:
        """Exclusive: 00:00 UTC of the day after `until`."""
        return float("inf") if self.until is None else _epoch(self.until + timedelta(days=1))

    def describe(self) -> str:
        if self.since is not None and self.until is not None:
            return f"from {self.since} through {self.until}"
        if self.since is not None:
            return f"since {self.since}"
        if self.until is not None:
            return f"through {self.until}"
        return "at any time"


def _epoch(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


def parse_window(since: str | None, until: str | None) -> Window:
    """The days `--since` and `--until` name; a bad date, or an end before the start, is refused."""
    window = Window(_date("--since", since), _date("--until", until))
    if window.since is not None and window.until is not None and window.until < window.since:
        raise UsageReportError(f"--until {window.until} is before --since {window.since}; swap them.")
    return window


def _date(flag: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        if not _DATE.fullmatch(text.strip()):
            raise ValueError
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageReportError(f"{flag} {text!r} is not a date: write YYYY-MM-DD (a UTC day).") from None


def parse_dimensions(values: Sequence[str] | None) -> tuple[str, ...]:
    """`--by` values, repeated or comma-separated, in the order given (at least one); `principal` when none is."""
    chosen: list[str] = []
    for value in values or ["principal"]:
        for part in (p.strip() for p in value.split(",")):
            if part not in DIMENSIONS:
                raise UsageReportError(f"--by {part!r} is not one of {', '.join(DIMENSIONS)}.")
            if part not in chosen:
                chosen.append(part)
    return tuple(chosen)


def _keys(row: UsageRow) -> dict[str, str]:
    model = VIDEO_MODEL if row.kind == "video" else (row.detail or UNRECORDED_MODEL)
    day = (date(1970, 1, 1) + timedelta(days=row.day)).isoformat()
    return {
        "principal": principal_name(row.principal),
        "tool": TOOLS.get(row.kind, row.kind),
        "model": model,
        "day": day,
    }


def group(rows: Iterable[UsageRow], by: Sequence[str]) -> list[dict[str, str | int]]:
    """One entry per distinct value of the `by` dimensions (sorted by them), with the four counts summed."""
    sums: dict[tuple[str, ...], list[int]] = {}
    for row in rows:
        keys = _keys(row)
        counts = sums.setdefault(tuple(keys[d] for d in by), [0, 0, 0, 0])
        for i, value in enumerate((row.calls, row.credits, row.unknown_calls, row.unknown_credits)):
            counts[i] += value
    return [
        {**dict(zip(by, key, strict=True)), **dict(zip(COUNTS, counts, strict=True))}
        for key, counts in sorted(sums.items())
    ]


def totals(groups: Iterable[dict[str, str | int]]) -> dict[str, int]:
    summed = dict.fromkeys(COUNTS, 0)
    for entry in groups:
        for name in COUNTS:
            summed[name] += int(entry[name])
    return summed


def render(groups: list[dict[str, str | int]], by: Sequence[str], fmt: str, title: str) -> str:
    """The report in `fmt`: a table for people, CSV (header, then rows) or a JSON list of objects."""
    if fmt == "json":
        return json.dumps(groups, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[*by, *COUNTS], lineterminator="\n")
        writer.writeheader()
        writer.writerows(groups)
        return out.getvalue()
    return _table(groups, by, title)


def _table(groups: list[dict[str, str | int]], by: Sequence[str], title: str) -> str:
    if not groups:
        return f"No paid calls recorded {title}.\n"
    total = totals(groups)
    header = [*by, *(name.replace("_", " ") for name in COUNTS)]
    body = [[str(entry[name]) for name in (*by, *COUNTS)] for entry in groups]
    last = ["total", *[""] * (len(by) - 1), *(str(total[name]) for name in COUNTS)]
    widths = [max(len(cells[i]) for cells in [header, *body, last]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        text = [c.ljust(w) if i < len(by) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(text).rstrip()

    lines = [f"Paid calls recorded {title}", "", line(header), *(line(cells) for cells in body)]
    lines += ["  ".join("-" * w for w in widths), line(last)]
    if total["unknown_credits"]:
        lines += ["", *UNKNOWN_NOTE]
    return "\n".join(lines) + "\n"


def usage_report(settings: Settings, window: Window, by: Sequence[str], fmt: str) -> str:
    """The report of the ledger `settings` name over `window`, read-only, in `fmt`."""
    ledger = read_usage(settings, window.start, window.end)
    return render(group(ledger.rows, by), by, fmt, f"{window.describe()} (UTC) in {ledger.where}")
