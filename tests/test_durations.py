"""Durations as people type them: one parser for options, the CLI and the writer's retention."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from slack_tasklog.durations import describe_duration, parse_duration, parse_retention


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("24h", timedelta(hours=24)),
        ("2w", timedelta(weeks=2)),
        ("30min", timedelta(minutes=30)),
        ("1 minute", timedelta(minutes=1)),
        ("45 mins", timedelta(minutes=45)),
        ("6mo", timedelta(days=180)),
        ("6 months", timedelta(days=180)),
        ("1 MONTH", timedelta(days=30)),
        ("1y", timedelta(days=365)),
        ("2 years", timedelta(days=730)),
        ("10s", timedelta(seconds=10)),
        (" 7 days ", timedelta(days=7)),
    ],
)
def test_units(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["6m", "6M", "6 m", "1m"])
def test_a_bare_m_is_ambiguous_and_refused(text: str) -> None:
    # Six minutes or six months? A purge that guesses minutes deletes everything older than six minutes.
    count = text.strip()[0]
    with pytest.raises(ValueError, match=rf"is ambiguous: write {count}min for minutes or {count}mo for months"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["banana", "", "d", "7", "7 fortnights", "-3d", "1.5h", "9999999d"])
def test_other_nonsense_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration: write a number and a unit, like 90d"):
        parse_duration(text)


def test_zero_and_timedeltas() -> None:
    with pytest.raises(ValueError, match="longer than zero"):
        parse_duration("0d")
    with pytest.raises(ValueError, match="longer than zero"):
        parse_duration(timedelta(0))
    assert parse_duration(timedelta(minutes=5)) == timedelta(minutes=5)


def test_a_retention_under_a_day_must_be_a_timedelta() -> None:
    assert parse_retention("30d") == timedelta(days=30)
    assert parse_retention("1d") == timedelta(days=1)
    with pytest.raises(ValueError, match=r"under a day .* pass a timedelta \(retention=timedelta\(hours=12\)\)"):
        parse_retention("12h")
    with pytest.raises(ValueError, match="ambiguous"):
        parse_retention("6m")
    assert parse_retention(timedelta(hours=12)) == timedelta(hours=12)  # deliberate


def test_describe() -> None:
    assert describe_duration(timedelta(days=180)) == "180 days"
    assert describe_duration(timedelta(days=1)) == "1 day"
    assert describe_duration(timedelta(hours=36)) == "36 hours"
    assert describe_duration(timedelta(minutes=90)) == "90 minutes"
    assert describe_duration(timedelta(seconds=61)) == "61 seconds"


@pytest.mark.parametrize(
    ("retention", "reason"),
    [("6m", "6m is ambiguous: write 6min for minutes or 6mo for months"), ("12h", "under a day")],
)
def test_a_tasklog_refuses_a_retention_that_would_delete_too_much(retention: str, reason: str, tmp_path: Path) -> None:
    from slack_tasklog import TaskLog

    database = tmp_path / "tasklog.db"
    with pytest.raises(ValueError, match=rf"TaskLog\(retention=\.\.\.\): .*{reason}"):
        TaskLog(f"sqlite:///{database}", journal=False, retention=retention)
    log = TaskLog(f"sqlite:///{database}", journal=False, retention=timedelta(hours=12))  # meant
    log.close()
