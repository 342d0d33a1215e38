"""The /tasklog grammar: pure parsing, no Slack, no database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_tasklog.slack.grammar import (
    DEFAULT_WINDOW,
    CommandSyntaxError,
    ExportRequest,
    HelpRequest,
    StatsRequest,
    TimeFilter,
    Window,
    export_params,
    parse_command,
    split_words,
    stats_params,
)

UTC = timezone.utc


@pytest.mark.parametrize("text", ["", "   ", "help", "HELP", "-h", "--help", "?", "help export"])
def test_help(text: str) -> None:
    assert parse_command(text) == HelpRequest()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stats", StatsRequest()),
        ("stats 24h", StatsRequest(window=Window("24h", timedelta(hours=24)))),
        ("Stats 30D", StatsRequest(window=Window("30d", timedelta(days=30)))),
        ("stats 2w --public", StatsRequest(window=Window("2w", timedelta(weeks=2)), public=True)),
        ("stats all --agent Grok", StatsRequest(window=Window("all", None), agent="Grok")),
        ('stats --agent "Research Bot"', StatsRequest(agent="Research Bot")),
        ("stats --agent \u201cResearch Bot\u201d", StatsRequest(agent="Research Bot")),  # Slack's curly quotes
        ("stats --agent 'R&amp;D &lt;bot&gt;'", StatsRequest(agent="R&D <bot>")),  # Slack's HTML escaping
        ("stats \u2014agent Grok", StatsRequest(agent="Grok")),  # "--" turned into an em dash by the client
        ("stats --agent=Grok 7d", StatsRequest(agent="Grok")),
        ("stats 30 days", StatsRequest(window=Window("30d", timedelta(days=30)))),
        ("stats 24hours", StatsRequest(window=Window("24h", timedelta(hours=24)))),
        ("stats '1 week'", StatsRequest(window=Window("1w", timedelta(weeks=1)))),
    ],
)
def test_stats(text: str, expected: StatsRequest) -> None:
    assert parse_command(text) == expected


def test_export_defaults_to_the_last_seven_days() -> None:
    request = parse_command("export")
    assert request == ExportRequest(time_filter=TimeFilter(window=DEFAULT_WINDOW))
    now = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    assert request.time_filter.bounds(now) == (now - timedelta(days=7), now)


def test_export_dates_are_utc_and_until_includes_its_day() -> None:
    request = parse_command("export --since 2024-01-01 --until 2024-01-31 --agent Writer")
    assert isinstance(request, ExportRequest)
    assert request.agent == "Writer"
    assert request.time_filter.bounds(datetime.now(UTC)) == (
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 2, 1, tzinfo=UTC),
    )
    timed = parse_command("export --since 2024-01-01T10:30Z --until 2024-01-01T14:00+02:00")
    assert isinstance(timed, ExportRequest)
    assert timed.time_filter.since == datetime(2024, 1, 1, 10, 30, tzinfo=UTC)
    assert timed.time_filter.until == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def test_all_is_unbounded_and_one_bound_is_enough() -> None:
    assert parse_command("export all").time_filter.bounds(datetime.now(UTC)) == (None, None)  # type: ignore[union-attr]
    only_since = parse_command("export --since 2024-03-01")
    assert isinstance(only_since, ExportRequest)
    assert only_since.time_filter.bounds(datetime.now(UTC)) == (datetime(2024, 3, 1, tzinfo=UTC), None)
    assert only_since.time_filter.describe() == "since 2024-03-01 00:00 UTC"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("export --since banana", "'banana' is not a date"),
        ("export 99999d", "longer than ten years"),
        ("stats 0h", "empty window"),
        ("export -3d", "'-3d' is not a window"),
        ("stats 7 days 2", "unexpected extra argument"),
        ("stats 7 fortnights", "'7' is not a window"),
        ("stats yesterday", "'yesterday' is not a window"),
        ("frobnicate", "I don't know the command 'frobnicate'"),
        ("stats --since 2024-01-01", "No such option"),
        ("export --public", "No such option"),
        ("stats --agent", "requires an argument"),
        ('stats --agent "Research Bot', "No closing quotation"),
        ("stats --agent ''", "agent name is empty"),
        ("export 7d --since 2024-01-01", "either a window"),
        ("export --since 2024-02-01 --until 2024-01-01", "--since must come before --until"),
        ("export --until 9999-12-31", "is not a date"),
    ],
)
def test_what_it_cannot_read_says_why(text: str, reason: str) -> None:
    with pytest.raises(CommandSyntaxError, match=reason):
        parse_command(text)


def test_split_words_undoes_slack_formatting() -> None:
    assert split_words("export \u2013since 2024-01-01 --agent \u2018R&amp;D\u2019") == [
        "export",
        "--since",
        "2024-01-01",
        "--agent",
        "R&D",
    ]


def test_the_parameters_serve_a_click_command_too() -> None:
    """The CLI of a later issue takes the same parameters and builds the same requests."""
    got: list[object] = []

    @click.command(params=stats_params())
    def stats(**values: object) -> None:
        got.append(StatsRequest.from_params(values))

    @click.command(params=export_params())
    def export(**values: object) -> None:
        got.append(ExportRequest.from_params(values))

    assert stats.main(["30d", "--agent", "Grok"], standalone_mode=False) is None
    assert export.main(["--since", "2024-01-01"], standalone_mode=False) is None
    assert got == [parse_command("stats 30d --agent Grok"), parse_command("export --since 2024-01-01")]


@pytest.mark.parametrize(
    ("window", "words"),
    [("24h", "the last 24 hours"), ("1d", "the last day"), ("7d", "the last 7 days"), ("all", "all time")],
)
def test_window_words(window: str, words: str) -> None:
    assert Window.parse(window).describe() == words


def parses_or_says_why(text: str) -> None:
    """The only exception parse_command raises is CommandSyntaxError, and it always has a reason."""
    reason = ""
    try:
        result = parse_command(text)
    except CommandSyntaxError as error:
        reason = str(error)
        result = None
    assert isinstance(result, StatsRequest | ExportRequest | HelpRequest) or reason


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_says_why(text: str) -> None:
    parses_or_says_why(text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["stats", "export", "7d", "7", "days", "all", "0h", "-3d", "--agent", "Grok", "--public", "--since",
             "--until", "2024-01-01", "banana", '"', "'", "\u201c", "\u2014since", "&amp;", "99999d"]
        ),
        max_size=8,
    )
)  # fmt: skip
def test_command_shaped_text_parses_or_says_why(words: list[str]) -> None:
    parses_or_says_why(" ".join(words))


@pytest.mark.parametrize("text", ["stats 6m", "export 6M", "stats 6 m"])
def test_a_bare_m_is_ambiguous(text: str) -> None:
    # Minutes or months? Say so, rather than "not a window" or a guess.
    with pytest.raises(CommandSyntaxError, match="'6m' is ambiguous: write 6mo for months"):
        parse_command(text)


def test_months_are_30_days() -> None:
    assert parse_command("stats 3mo") == StatsRequest(window=Window("3mo", timedelta(days=90)))
    assert parse_command("stats 2 months") == StatsRequest(window=Window("2mo", timedelta(days=60)))
    assert Window.parse("1 month").describe() == "the last month"
    assert Window.parse("6mo").describe() == "the last 6 months"
    with pytest.raises(ValueError, match="longer than ten years"):
        Window.parse("130mo")
    with pytest.raises(CommandSyntaxError, match="'30min' is not a window"):
        parse_command("stats 30min")
