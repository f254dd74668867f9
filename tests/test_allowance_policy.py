"""The allowance policy as an operator writes it, and the window arithmetic every replica repeats.

Windows are pure functions of the period and the clock, so property tests hold them for any moment:
month ends and leap years, weeks starting Monday 00:00 UTC, durations aligned to the Unix epoch, and
always `start <= now < renews_at`. A policy that cannot hold is refused with one line naming the file,
the key or line, and what is wrong, in process and when the real command starts.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cutout_mcp.config import ConfigError, Settings
from cutout_mcp.config.allowances import load_policy, principal_name
from cutout_mcp.config.periods import Period, parse_allowance, parse_period, renews_at, window_start

MOMENTS = st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False)  # 1970 to 2100
PERIODS = st.one_of(
    st.sampled_from(["day", "week", "month"]),
    st.builds(lambda n, unit: f"{n}{unit}", st.integers(1, 400), st.sampled_from("smhd")),
).map(parse_period)


def utc(epoch: float) -> datetime:
    """The UTC time of `epoch`, to the second below it (datetime alone rounds to the nearest microsecond, which
    can carry a moment a hair before midnight into the next day)."""
    return datetime.fromtimestamp(math.floor(epoch), tz=timezone.utc)


@given(PERIODS, MOMENTS)
@example(parse_period("month"), 2051222399.9999995)  # a hair before 2035-01-01: datetime rounds it up
def test_every_moment_lies_in_its_window_and_the_next_starts_where_it_ends(period: Period, now: float) -> None:
    start, end = period.window(now)
    assert start <= now < end
    assert window_start(period, end) == end, "the next window starts exactly at renews_at"
    assert renews_at(period, start) == end, "every moment of a window gives the same window"


@pytest.mark.parametrize("text", ["day", "week", "month", "90s", "7d"])
def test_a_moment_a_hair_before_a_boundary_is_still_in_the_window_that_ends_there(text: str) -> None:
    period = parse_period(text)
    boundary = renews_at(period, 2_051_222_000.0)
    before = math.nextafter(boundary, 0.0)
    start, end = period.window(before)
    assert start <= before < end == boundary


@given(MOMENTS)
def test_a_month_is_the_calendar_month_in_utc(now: float) -> None:
    period = parse_period("month")
    start, end = utc(window_start(period, now)), utc(renews_at(period, now))
    moment = utc(now)
    assert (start.year, start.month, start.day, start.hour, start.minute) == (moment.year, moment.month, 1, 0, 0)
    assert end.day == 1
    assert end.hour == 0
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == 1


@given(MOMENTS)
def test_a_week_starts_on_monday_at_midnight_utc(now: float) -> None:
    start = utc(window_start(parse_period("week"), now))
    assert (start.weekday(), start.hour, start.minute, start.second) == (0, 0, 0, 0)
    assert 0 <= now - start.timestamp() < 7 * 86400


@given(st.integers(1, 400), st.sampled_from("smhd"), MOMENTS)
def test_durations_are_aligned_to_the_unix_epoch(n: int, unit: str, now: float) -> None:
    period = parse_period(f"{n}{unit}")
    assert window_start(period, now) % period.seconds == 0
    assert renews_at(period, now) - window_start(period, now) == period.seconds


def test_month_ends_and_leap_years() -> None:
    month = parse_period("month")
    feb_2024 = datetime(2024, 2, 29, 23, 59, 59, tzinfo=timezone.utc).timestamp()
    assert utc(renews_at(month, feb_2024)) == datetime(2024, 3, 1, tzinfo=timezone.utc)
    feb_2100 = datetime(2100, 2, 28, 12, tzinfo=timezone.utc).timestamp()  # not a leap year
    assert utc(renews_at(month, feb_2100)) == datetime(2100, 3, 1, tzinfo=timezone.utc)
    december = datetime(2025, 12, 31, 23, 0, tzinfo=timezone.utc).timestamp()
    assert utc(renews_at(month, december)) == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert utc(renews_at(parse_period("1d"), december)) == datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_single_user_variables_set_the_default() -> None:
    policy = load_policy(
        Settings.load(
            {"CUTOUT_ALLOWANCE": "50/1d", "CUTOUT_SESSION_CREDITS": "40", "CUTOUT_PAID_CALLS_PER_MINUTE": "3"}
        )
    )
    assert policy is not None
    assert (policy.default.credits, policy.default.period.seconds) == (50, 86400)
    assert (policy.default.session_credits, policy.default.paid_calls_per_minute) == (40, 3)
    assert parse_allowance("200/month")[0] == 200
    assert load_policy(Settings.load({})) is None


def test_a_principal_entry_replaces_only_the_keys_it_names(tmp_path: Path) -> None:
    path = tmp_path / "allowances.toml"
    path.write_text(
        '[default]\ncredits = 200\nperiod = "month"\nsession_credits = 40\n\n'
        '[principals.alice]\ncredits = 1000\n\n[principals.ci-bot]\ncredits = 50\nperiod = "1d"\n'
    )
    policy = load_policy(Settings.load({"CUTOUT_ALLOWANCES_FILE": str(path)}))
    assert policy is not None
    alice = policy.for_principal('["alice",null,"alice"]')
    assert alice[0] == "alice"
    assert (alice[1].credits, alice[1].period.text, alice[1].session_credits) == (1000, "month", 40)
    bot = policy.for_principal('["client-7","https://id.example.com","ci-bot"]')
    assert (bot[0], bot[1].credits, bot[1].period.text) == ("ci-bot", 50, "1d")
    assert policy.for_principal("local")[1].credits == 200, "stdio's caller gets [default]"


def test_principals_are_named_as_people_know_them() -> None:
    assert principal_name("local") == "local"
    assert principal_name('["alice",null,"alice"]') == "alice"
    assert principal_name('["client-7","https://id.example.com",null]') == "client-7"


BAD_POLICIES = [
    ("[default]\ncredits = -5\n", "[default] credits: must be a whole number of 0 or more (got -5)"),
    ("[default]\ncredit = 5\n", "[default] credit: unknown key"),
    ('[default]\nperiod = "fortnight"\n', '[default] period: unknown period "fortnight"'),
    ('[principals.bob]\nperiod = "0d"\n', '[principals.bob] period: unknown period "0d"'),
    ("[principals.bob]\nsession_credits = 1.5\n", "[principals.bob] session_credits: must be a whole number"),
    ("[default]\ncredits = 5\n[limits]\n", "unknown table [limits]"),
    ("[default\ncredits = 5\n", "not valid TOML"),
    ("[default]\ncredits = \n", "line 2"),
    ("principals = 3\n", "[principals] must be a table"),
]


@pytest.mark.parametrize(("text", "problem"), BAD_POLICIES)
def test_every_malformed_policy_is_named(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "allowances.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_policy(Settings.load({"CUTOUT_ALLOWANCES_FILE": str(path)}))
    assert str(refused.value).startswith(f"CUTOUT_ALLOWANCES_FILE {path}: ")
    assert problem in str(refused.value)


def test_a_missing_file_and_a_file_with_the_variables_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_policy(Settings.load({"CUTOUT_ALLOWANCES_FILE": str(tmp_path / "nope.toml")}))
    path = tmp_path / "a.toml"
    path.write_text("[default]\ncredits = 5\n")
    with pytest.raises(ConfigError, match="Set CUTOUT_ALLOWANCES_FILE or CUTOUT_ALLOWANCE, not both"):
        load_policy(Settings.load({"CUTOUT_ALLOWANCES_FILE": str(path), "CUTOUT_ALLOWANCE": "5/day"}))


def test_a_session_cap_without_sessions_is_refused() -> None:
    settings = Settings.load({"CUTOUT_SESSION_CREDITS": "40"}, transport="streamable-http", stateless=True)
    with pytest.raises(ConfigError, match="cannot hold with --stateless"):
        load_policy(settings)


CUTOUT_MCP = str(Path(sys.executable).with_name("cutout-mcp"))


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"CUTOUT_ALLOWANCES_FILE": "{dir}/missing.toml"}, "no such file"),
        ({"CUTOUT_ALLOWANCES_FILE": "{dir}/bad.toml"}, "[principals.ci-bot] period: unknown period"),
        ({"CUTOUT_ALLOWANCES_FILE": "{dir}/bad.toml", "CUTOUT_SESSION_CREDITS": "4"}, "not both"),
        ({"CUTOUT_ALLOWANCE": "lots"}, "CUTOUT_ALLOWANCE: use CREDITS/PERIOD"),
        ({"CUTOUT_PAID_CALLS_PER_MINUTE": "-1"}, "CUTOUT_PAID_CALLS_PER_MINUTE: "),
    ],
)
def test_a_bad_policy_stops_the_command_at_once_with_one_line(
    tmp_path: Path, env: dict[str, str], problem: str
) -> None:
    (tmp_path / "bad.toml").write_text('[default]\ncredits = 5\n[principals.ci-bot]\nperiod = "1 day"\n')
    values = {name: value.format(dir=tmp_path) for name, value in env.items()}
    base = {"PATH": os.environ.get("PATH", ""), "CUTOUT_STATE_DIR": str(tmp_path / "state"), "CUTOUT_API_KEY": "k"}
    began = time.monotonic()
    run = subprocess.run(
        [CUTOUT_MCP], env=base | values, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    print(f"exited {run.returncode} after {time.monotonic() - began:.2f} s")
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("cutout-mcp: ")
    assert problem in lines[0]
    assert not (tmp_path / "state").exists(), "nothing was opened before the policy was checked"
