"""Allowance periods and their windows: pure arithmetic on epoch seconds, the same on every replica.

A period is a calendar one (`day`, `week` starting Monday, `month`), renewing at 00:00 UTC, or a
duration (`90s`, `15m`, `12h`, `7d`) whose windows are aligned to the Unix epoch, so `1d` renews at
00:00 UTC too and every replica computes the same window from its clock alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

CALENDAR = ("day", "week", "month")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"([1-9][0-9]{0,9})([smhd])")
DAY = 86400
EPOCH_MONDAY = 4 * DAY
"""1970-01-05, the first Monday after the epoch (1970-01-01 was a Thursday)."""


@dataclass(frozen=True)
class Period:
    """A parsed period: `text` as written, and either a calendar name or a length in seconds."""

    text: str
    calendar: str | None = None
    seconds: int = 0

    def window(self, now: float) -> tuple[float, float]:
        """The window holding `now`: its start (inclusive) and when it renews (exclusive).

        The last window of each period is remembered: every paid call asks, and it changes once a period."""
        last = _LAST_WINDOW.get(self)
        if last is not None and last[0] <= now < last[1]:
            return last
        window = window_start(self, now), renews_at(self, now)
        _LAST_WINDOW[self] = window
        return window


_LAST_WINDOW: dict[Period, tuple[float, float]] = {}


def parse_period(text: str) -> Period:
    """`day`, `week`, `month` or a duration such as `90s`, `15m`, `12h`, `7d`; ValueError otherwise."""
    word = text.strip().lower()
    if word in CALENDAR:
        return Period(word, calendar=word)
    match = _DURATION.fullmatch(word)
    if match is None:
        raise ValueError(f'unknown period "{text}": use day, week, month, or a duration such as 90s, 15m, 12h, 7d')
    return Period(word, seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)])


def window_start(period: Period, now: float) -> float:
    """Epoch seconds at which the window holding `now` began.

    Every boundary is a whole second, so the arithmetic runs on the whole second holding `now`: a float a
    hair before a boundary (or rounded to microseconds by `datetime`) never lands in the next window."""
    whole = math.floor(now)
    if period.calendar is None:
        return float(whole - whole % period.seconds)
    if period.calendar == "day":
        return float(whole - whole % DAY)
    if period.calendar == "week":
        return float(whole - (whole - EPOCH_MONDAY) % (7 * DAY))
    moment = datetime.fromtimestamp(whole, tz=timezone.utc)
    return datetime(moment.year, moment.month, 1, tzinfo=timezone.utc).timestamp()


def renews_at(period: Period, now: float) -> float:
    """Epoch seconds at which the window holding `now` ends and the next one starts."""
    start = window_start(period, now)
    if period.calendar is None:
        return start + period.seconds
    if period.calendar == "day":
        return start + DAY
    if period.calendar == "week":
        return start + 7 * DAY
    first = datetime.fromtimestamp(start, tz=timezone.utc)
    following = (first + timedelta(days=32)).replace(day=1)
    return following.timestamp()


def parse_allowance(text: str) -> tuple[int, Period]:
    """`CUTOUT_ALLOWANCE`: `CREDITS/PERIOD`, such as `200/month` or `50/1d`; ValueError otherwise."""
    credits, slash, period = text.strip().partition("/")
    if not slash or not credits.strip().isdigit():
        raise ValueError("use CREDITS/PERIOD, such as 200/month or 50/1d (credits a whole number of 0 or more)")
    return int(credits), parse_period(period)
