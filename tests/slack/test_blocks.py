"""What /tasklog says, as pure functions: wording and Block Kit limits, without Slack."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from slack_tasklog.reports.stats import AgentStats, Stats
from slack_tasklog.slack.blocks import (
    export_filename,
    format_seconds,
    help_message,
    stats_message,
    syntax_error_message,
)
from slack_tasklog.slack.grammar import StatsRequest, Window

UTC = timezone.utc


def agent(name: str, tasks: int = 10) -> AgentStats:
    return AgentStats(name, tasks, tasks - 1, tasks - 2, 1.5, 9.75, 80.0)


def test_many_agents_stay_within_block_kit_limits() -> None:
    stats = Stats(
        since=datetime(2024, 1, 8, tzinfo=UTC),
        until=datetime(2024, 1, 15, tzinfo=UTC),
        tasks=6000,
        finished=5000,
        succeeded=4000,
        unassigned=12,
        unrouted=3,
        agents=tuple(agent(f"agent-{i:02d}" + "x" * 200, 100 - i) for i in range(60)),
    )
    message = stats_message(stats, StatsRequest(), user_id="U1")
    blocks = message["blocks"]
    assert len(blocks) <= 50
    assert "…and 35 more agents" in str(blocks[-2])
    for block in blocks:
        assert len(block.get("text", {}).get("text", "")) <= 3000
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2000
    assert len(blocks[0]["text"]["text"]) <= 150
    assert message["text"] == (
        "Task log, the last 7 days: 6,000 tasks, 80.0% success, 12 with no agent confident enough."
    )
    assert blocks[1]["fields"][0]["text"] == "*Tasks*\n6,000"
    assert blocks[1]["fields"][3]["text"] == "*In progress*\n1,000"
    assert "2024-01-08 00:00 to 2024-01-15 00:00 UTC" in blocks[-1]["elements"][0]["text"]


def test_agent_names_are_escaped_and_shortened() -> None:
    stats = Stats(
        since=None, until=None, tasks=1, finished=1, succeeded=1, agents=(agent("<!channel> & " + "y" * 300),)
    )
    text = stats_message(stats, StatsRequest(window=Window("all", None)), user_id="U1")["blocks"][3]["text"]["text"]
    assert text.startswith("*&lt;!channel&gt; &amp; yyy")
    assert "<!channel>" not in text
    assert "…*" in text
    assert "88.9% success (8 of 9 finished) · median 1.5 s · p95 9.8 s · mean confidence 80.0" in text


def test_peoples_verdict_sits_next_to_the_reported_success_rate() -> None:
    voted = AgentStats("Grok", 10, 9, 8, 1.5, 9.75, 80.0, voted=4, approved=3, disagreed=1)
    quiet = AgentStats("Writer", 5, 5, 5, 1.0, 2.0, 70.0)  # nobody voted: nothing to say
    stats = Stats(since=None, until=None, tasks=15, finished=14, succeeded=13, agents=(voted, quiet), voted=4,
                  approved=3, disagreed=1)  # fmt: skip
    blocks = stats_message(stats, StatsRequest(window=Window("all", None)), user_id="U1")["blocks"]
    assert blocks[1]["fields"][4:] == [
        {"type": "mrkdwn", "text": "*Approved by people*\n75.0% of 4 voted"},
        {"type": "mrkdwn", "text": "*Reported successful, voted down*\n1"},
    ]
    assert "88.9% success (8 of 9 finished) · 75.0% approved by people (3 of 4 voted, 1 reported successful but " \
        "voted down) · median" in blocks[3]["text"]["text"]  # fmt: skip
    assert "approved" not in blocks[4]["text"]["text"]


def test_tokens_and_cost_show_where_there_are_some() -> None:
    from slack_tasklog.reports.stats import Usage

    usage = Usage(input_tokens=12_400, output_tokens=3_100, cost=0.087, costed=30, costed_succeeded=27)
    grok = AgentStats("Grok", 30, 30, 27, 1.0, 2.0, 90.0, usage=usage)
    stats = Stats(since=None, until=None, tasks=30, finished=30, succeeded=27, agents=(grok,), usage=usage)
    blocks = stats_message(stats, StatsRequest(window=Window("all", None)), user_id="U1")["blocks"]
    shown = "12,400 tokens in, 3,100 out · cost 0.087 (0.0029 a task, 0.0032 a success)"
    assert blocks[1]["fields"][-1]["text"] == f"*Tokens and cost*\n{shown}"
    assert blocks[3]["text"]["text"].endswith(f"\n{shown}")
    plain = Stats(since=None, until=None, tasks=30, finished=30, succeeded=27, agents=(AgentStats(
        "Grok", 30, 30, 27, 1.0, 2.0, 90.0),))  # fmt: skip
    blocks = stats_message(plain, StatsRequest(window=Window("all", None)), user_id="U1")["blocks"]
    assert len(blocks[1]["fields"]) == 4
    assert "tokens" not in blocks[3]["text"]["text"]


@pytest.mark.parametrize(("amount", "shown"), [(None, "n/a"), (0.0042, "0.0042"), (12.345, "12.35"), (1234.5, "1,234")])
def test_costs(amount: float | None, shown: str) -> None:
    from slack_tasklog.slack.blocks import format_cost

    assert format_cost(amount) == shown


def test_help_uses_the_registered_command_and_errors_repeat_it() -> None:
    assert "`/agents export [WINDOW]" in help_message("/agents")["text"]
    error = syntax_error_message("/tasklog", "'<b>' is not a window")
    assert error["text"].startswith("Sorry, I couldn't read that: '&lt;b&gt;' is not a window.")
    assert error["response_type"] == "ephemeral"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "n/a"),
        (0.4213, "0.42 s"),
        (0.004213, "0.0042 s"),
        (4.213, "4.2 s"),
        (12.34, "12 s"),
        (245.4, "4 min 05 s"),
        (7380, "2 h 03 min"),
    ],
)
def test_durations(seconds: float | None, shown: str) -> None:
    assert format_seconds(seconds) == shown


def test_filenames_are_safe() -> None:
    assert export_filename("T111", None, None) == "tasklog-T111-all.csv"
    since, until = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
    assert export_filename("../T1", since, until) == "tasklog-T1-20240101-20240201.csv"
    assert export_filename("", since, None) == "tasklog-workspace-20240101-now.csv"
