"""Values as the task log stores them: one check, whichever layer the value comes from."""

from __future__ import annotations

from slack_tasklog.values import ts_seconds


def test_a_slack_ts_that_is_no_time_falls_back() -> None:
    # A task's request time comes from its ts; one a datetime cannot hold must not sink the writer's batch.
    assert ts_seconds("1700000000.000100", 5.0) == 1700000000.0001
    assert ts_seconds("-86400", 5.0) == -86400.0
    for garbage in ("nan", "inf", "-inf", "1e400", "1e20", "-1e20", "abc", ""):
        assert ts_seconds(garbage, 5.0) == 5.0, garbage
