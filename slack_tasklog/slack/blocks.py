"""Everything ``/tasklog`` says in Slack, as pure functions of what happened.

Each returns a message payload (``text`` for notifications and screen readers, ``blocks`` where layout helps,
``response_type``) ready for ``ack(**message)``, ``respond(**message)`` or ``chat.postEphemeral``. Nothing here does
I/O, so every wording and every Block Kit limit is tested without Slack.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from slack_tasklog.reports.stats import AgentStats, Failure, Stats, Usage
from slack_tasklog.slack.grammar import ExportRequest, StatsRequest, TimeFilter, Window
from slack_tasklog.values import exception_type

__all__ = [
    "HIDDEN_FAILURE",
    "FailureDetails",
    "dm_fallback_message",
    "empty_export_message",
    "export_busy_message",
    "export_comment",
    "export_filename",
    "export_title",
    "failure_message",
    "failure_type",
    "failures_by_type",
    "format_cost",
    "format_seconds",
    "help_message",
    "internal_error_message",
    "refusal_message",
    "role_unknown_message",
    "stats_message",
    "syntax_error_message",
    "usage_text",
    "working_message",
]

Message = dict[str, Any]

# Block Kit: at most 50 blocks a message and 3,000 characters a section; stay well inside both.
_MAX_AGENT_SECTIONS = 25
_MAX_NAME = 80
_MAX_PROBLEM = 300

#: Who sees the full text of the most frequent failures in Slack (``TaskLog(failure_details=...)``): the people who
#: may export (the default; only in their own replies), everyone, or nobody. The others see error types only.
FailureDetails = Literal["exporters", "everyone", "nobody"]
#: What a failure without an exception type shows instead of its text.
HIDDEN_FAILURE = "(details hidden)"
# What storage.summary.failure_of records for a failure without a message: it quotes nothing.
_NO_MESSAGE = "(no error message)"


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn gives meaning to (``<@U1>``, ``<!channel>``, ``&``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    """For inside backticks: escaped, without backticks of its own, and short."""
    shown = text if len(text) <= 120 else text[:119] + "…"
    return escape(shown.replace("`", "'"))


def _name(agent: str) -> str:
    shown = agent if len(agent) <= _MAX_NAME else agent[: _MAX_NAME - 1] + "…"
    return escape(shown)


def _ephemeral(text: str, blocks: list[dict[str, Any]] | None = None) -> Message:
    message: Message = {"response_type": "ephemeral", "text": text}
    if blocks is not None:
        message["blocks"] = blocks
    return message


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _count(value: int, noun: str) -> str:
    return f"{value:,} {noun}" + ("" if value == 1 else "s")


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


# Rounded for people, on purpose: the CSV writes amounts in full for programs (reports.export.amount_text).
def format_cost(value: float | None) -> str:
    """``1,234``, ``12.34``, ``0.0042``: an amount in the prices' currency (``TaskLog(prices=...)``), whole above 100,
    cents above 1, two significant digits below; ``n/a`` for None."""
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:,.2f}"
    return f"{value:.2g}"


def usage_text(usage: Usage) -> str:
    """``12,400 tokens in, 3,100 out · cost 0.087 (0.0029 a task, 0.0032 a success)``, or "" with no usage."""
    parts = []
    if usage.input_tokens or usage.output_tokens:
        parts.append(f"{usage.input_tokens:,} tokens in, {usage.output_tokens:,} out")
    if usage.cost is not None:
        parts.append(
            f"cost {format_cost(usage.cost)} ({format_cost(usage.cost_per_task)} a task, "
            f"{format_cost(usage.cost_per_success)} a success)"
        )
    return " · ".join(parts)


def format_seconds(value: float | None) -> str:
    """``0.42 s``, ``4.2 s``, ``12 s``, ``4 min 05 s``, ``2 h 03 min``: two significant digits under a minute, as
    many as the percentiles have (they are within 1%, see ``_stats``)."""
    if value is None:
        return "n/a"
    if value < 1:
        return f"{value:.2g} s"
    if value < 10:
        return f"{value:.1f} s"
    if value < 60:
        return f"{value:.0f} s"
    whole = round(value)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _instant(value: datetime | None) -> str:
    return "…" if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def _span(since: datetime | None, until: datetime | None) -> str:
    if since is None and until is None:
        return "at any time"
    return f"{_instant(since)} to {_instant(until)} UTC"


def _scope(time_filter: TimeFilter, agent: str | None) -> str:
    """For a title: ``the last 7 days, agent Grok``."""
    words = time_filter.describe()
    if agent is not None:
        words += f", agent {_name(agent)}"
    return words


def _which(time_filter: TimeFilter, agent: str | None) -> str:
    """To follow "tasks": ``requested in the last 7 days``, ``from all time``, ``requested since …``."""
    if time_filter.window is not None:
        words = "from all time" if time_filter.window.span is None else f"requested in {time_filter.describe()}"
    else:
        words = f"requested {time_filter.describe()}"
    if agent is not None:
        words += f" and assigned to {_name(agent)}"
    return words


# -- failures ----------------------------------------------------------------------------------------------------


def failure_type(message: str, keep: Collection[str] = ()) -> str:
    """A failure as people who may not export see it: its exception type, not its message, which can quote the
    request (``ValueError: cannot parse 'pay Bob'`` -> ``ValueError``).

    The decorators record ``"ExcType: message"`` (or ``"ExcType"``); a text without such a type becomes
    :data:`HIDDEN_FAILURE`, unless it is one of ``keep`` (texts that quote nothing, such as the unassigned error).
    """
    if message in keep or message == _NO_MESSAGE:
        return message
    return exception_type(message) or HIDDEN_FAILURE


def failures_by_type(failures: Iterable[Failure], keep: Collection[str] = ()) -> tuple[Failure, ...]:
    """``failures`` by :func:`failure_type`: the tasks of messages of one type summed, most first."""
    merged: dict[str, int] = {}
    for failure in failures:
        shown = failure_type(failure.message, keep)
        merged[shown] = merged.get(shown, 0) + failure.tasks
    return tuple(
        Failure(message, tasks) for message, tasks in sorted(merged.items(), key=lambda item: (-item[1], item[0]))
    )


# -- help and errors (the ack's own answers) --------------------------------------------------------------------


def help_message(command: str) -> Message:
    """What ``/tasklog help`` says: the grammar, with examples."""
    c = escape(command)
    text = "\n".join(
        [
            f"*{c}* reads your agents' task log. Only you see this.",
            f"• `{c} stats [WINDOW] [--agent NAME] [--public]` — tasks, success rate, unassigned tasks and, per "
            "agent, tasks, success rate, median and 95th-percentile execution time and mean confidence. Only you "
            "see it unless you add `--public`.",
            f"• `{c} stats chart [WINDOW] [--agent NAME]` — the same as a picture: tasks and success rate per day "
            "and agent, and how often each agent succeeds at each confidence, uploaded into this conversation.",
            f"• `{c} export [WINDOW] [--since DATE] [--until DATE] [--agent NAME]` — the task log as CSV, uploaded "
            "into this conversation (workspace admins only: it holds everyone's requests).",
            f"• `{c} help` — this message.",
            "*WINDOW* counts back from now: `24h`, `7d` (the default), `30d`, `2w`, or `all`. "
            "*DATE* is `2024-01-15` or `2024-01-15T10:30` in UTC; `--until 2024-01-31` includes the 31st.",
            f"Examples: `{c} stats`, `{c} stats 30d --agent Grok`, `{c} export 24h`, "
            f'`{c} export --since 2024-01-01 --until 2024-01-31`, `{c} stats --agent "Research Bot"`',
        ]
    )
    return _ephemeral(text)


def syntax_error_message(command: str, problem: str) -> Message:
    """The answer to a line the grammar cannot read: the reason, then the help."""
    reason = problem if len(problem) <= _MAX_PROBLEM else problem[: _MAX_PROBLEM - 1] + "…"
    text = f"Sorry, I couldn't read that: {escape(reason)}.\n\n" + help_message(command)["text"]
    return _ephemeral(text)


def working_message(request: ExportRequest) -> Message:
    """The ack of an export: building the file may take a while, so say that it is coming."""
    return _ephemeral(
        f"Preparing the CSV of tasks {_which(request.time_filter, request.agent)}… it will appear in this conversation."
    )


def internal_error_message(verb: str) -> Message:
    """Something in the task log itself failed: say so without details (they are in the app's logs)."""
    nothing = " Nothing was uploaded." if verb == "export" else ""
    return _ephemeral(
        f"Sorry, something went wrong while preparing your {verb}.{nothing} "
        "The app's logs have the details; please try again later."
    )


def export_busy_message() -> Message:
    """The export could not include the latest tasks in time: the database is busy or unreachable."""
    return _ephemeral(
        "Sorry, the task log's database is busy right now, so the export would miss the latest tasks. Nothing was "
        "uploaded; please try again in a minute."
    )


# -- access ------------------------------------------------------------------------------------------------------


def refusal_message(verb: str, *, workspace_admins: bool = True) -> Message:
    """A polite no: who may, and why."""
    who = "workspace admins and owners and the people" if workspace_admins else "the people"
    if verb == "export":
        text = (
            f"Sorry, exports are limited to {who} this app lists as admins, because they contain every user's "
            "requests. Nothing was uploaded; ask one of them if you need the file."
        )
    else:
        text = f"Sorry, task log {verb} are limited to {who} this app lists as admins."
    return _ephemeral(text)


def role_unknown_message(reason: str) -> Message:
    """``users.info`` failed, so the user's role is unknown: refuse, and say why."""
    hint = " The app needs the `users:read` scope, or a list of admins." if reason == "missing_scope" else ""
    return _ephemeral(
        f"Sorry, I couldn't check whether you are a workspace admin (Slack said: {escape(reason)}), so nothing was "
        f"shared.{hint} Please try again later."
    )


# -- stats ---------------------------------------------------------------------------------------------------------


def _agent_line(agent: AgentStats) -> str:
    parts = [
        f"*{_name(agent.agent)}* · {_count(agent.tasks, 'task')}",
        f"{_percent(agent.success_rate)} success ({agent.succeeded:,} of {agent.finished:,} finished)",
    ]
    if agent.voted:
        # What people thought, next to what the agent reported: disagreements are where routing needs work.
        parts.append(
            f"{_percent(agent.approval_rate)} approved by people ({agent.approved:,} of {agent.voted:,} voted"
            + (f", {agent.disagreed:,} reported successful but voted down)" if agent.disagreed else ")")
        )
    parts += [
        f"median {format_seconds(agent.median_execution_time)}",
        f"p95 {format_seconds(agent.p95_execution_time)}",
        "mean confidence " + ("n/a" if agent.mean_confidence is None else f"{agent.mean_confidence:.1f}"),
    ]
    used = usage_text(agent.usage)
    return parts[0] + "\n" + " · ".join(parts[1:]) + (f"\n{used}" if used else "")


def stats_message(
    stats: Stats,
    request: StatsRequest,
    *,
    user_id: str,
    failure_details: bool = False,
    plain_failures: Collection[str] = (),
) -> Message:
    """The stats reply in Block Kit: totals, then one section per agent (the busiest first).

    The most frequent failures show their full text only with ``failure_details``; otherwise their exception types
    (:func:`failure_type`, ``plain_failures`` as they are).
    """
    scope = _scope(request.time_filter, request.agent)
    footer = _context(
        f"Tasks requested {_span(stats.since, stats.until)}. Each task counts once, by its latest round (as in the "
        "CSV); success rate is over finished tasks. "
        + (f"Posted by <@{escape(user_id)}>." if request.public else "Only you can see this.")
    )
    nothing = f"No tasks {_which(request.time_filter, request.agent)}."
    blocks, text = _stats_blocks(stats, scope, nothing, failure_details, plain_failures)
    return {
        "response_type": "in_channel" if request.public else "ephemeral",
        "text": text,
        "blocks": [*blocks, footer],
    }


def _stats_blocks(
    stats: Stats, scope: str, nothing: str, failure_details: bool, plain_failures: Collection[str]
) -> tuple[list[dict[str, Any]], str]:
    """A header, the totals and a section per agent (or ``nothing``), the most frequent failures (in full with
    ``failure_details``, else by type), and the message's plain-text summary."""
    header = {"type": "header", "text": {"type": "plain_text", "text": f"Task log: {scope}"[:150], "emoji": False}}
    if stats.tasks == 0:
        return [header, _section(nothing)], nothing
    fields = [
        {"type": "mrkdwn", "text": f"*Tasks*\n{stats.tasks:,}"},
        {
            "type": "mrkdwn",
            "text": f"*Success rate*\n{_percent(stats.success_rate)} of {stats.finished:,} finished",
        },
        {"type": "mrkdwn", "text": f"*No agent confident enough*\n{stats.unassigned:,}"},
        {"type": "mrkdwn", "text": f"*In progress*\n{stats.in_progress:,}"},
    ]
    if stats.voted:
        fields += [
            {
                "type": "mrkdwn",
                "text": f"*Approved by people*\n{_percent(stats.approval_rate)} of {stats.voted:,} voted",
            },
            {"type": "mrkdwn", "text": f"*Reported successful, voted down*\n{stats.disagreed:,}"},
        ]
    used = usage_text(stats.usage)
    if used:
        fields.append({"type": "mrkdwn", "text": f"*Tokens and cost*\n{used}"})
    totals = {"type": "section", "fields": fields}
    blocks: list[dict[str, Any]] = [header, totals, {"type": "divider"}]
    shown = stats.agents[:_MAX_AGENT_SECTIONS]
    blocks.extend(_section(_agent_line(agent)) for agent in shown)
    if not shown:
        blocks.append(_section("No task has been assigned to an agent yet."))
    hidden = len(stats.agents) - len(shown)
    if hidden:
        blocks.append(_context(f"…and {_count(hidden, 'more agent')}: add `--agent NAME` to see one."))
    if stats.failures:
        failures = stats.failures if failure_details else failures_by_type(stats.failures, plain_failures)
        lines = "\n".join(f"• `{_code(f.message)}`: {_count(f.tasks, 'task')}" for f in failures[:3])
        title = "*Most frequent failures*" if failure_details else "*Most frequent failures* (error types only)"
        blocks.append(_section(f"{title}\n{lines}"))
    text = (
        f"Task log, {scope}: {_count(stats.tasks, 'task')}, {_percent(stats.success_rate)} success, "
        f"{stats.unassigned:,} with no agent confident enough."
    )
    return blocks, text


def digest_message(
    stats: Stats,
    since: datetime,
    until: datetime,
    *,
    failure_details: bool = False,
    plain_failures: Collection[str] = (),
) -> Message:
    """The scheduled digest of one period, posted in a channel (failures by type unless ``failure_details``)."""
    scope = f"{_instant(since)} to {_instant(until)} UTC"
    nothing = "No tasks were requested in this period."
    blocks, text = _stats_blocks(stats, scope, nothing, failure_details, plain_failures)
    footer = _context(
        "Scheduled digest. Each task counts once, by its latest round (as in the CSV); success rate is over finished "
        "tasks. `/tasklog stats` and `/tasklog stats chart` show any window."
    )
    return {"text": text, "blocks": [*blocks, footer]}


def home_view(
    stats: Stats,
    *,
    days: int,
    updated: datetime,
    failure_details: bool = False,
    plain_failures: Collection[str] = (),
) -> dict[str, Any]:
    """The App Home tab: the last ``days`` days in the viewer's workspace, the same sections as ``stats``."""
    request = StatsRequest(window=Window(f"{days}d", timedelta(days=days)))
    message = stats_message(stats, request, user_id="", failure_details=failure_details, plain_failures=plain_failures)
    blocks = message["blocks"][:-1]  # the footer speaks of "only you": a Home tab says it its own way
    blocks.append(
        _context(
            f"Tasks requested {_span(stats.since, stats.until)}; updated {_instant(updated)} UTC, each time you open "
            "this tab. Each task counts once, by its latest round; success rate is over finished tasks. "
            "`/tasklog stats 30d` and `/tasklog stats chart` show more."
        )
    )
    return {"type": "home", "blocks": blocks}


def home_restricted_view() -> dict[str, Any]:
    """The App Home tab of someone who may not see the stats (``stats_access="admins"``)."""
    return {
        "type": "home",
        "blocks": [
            _section("The task log's figures are for this workspace's admins (and the people the app names)."),
        ],
    }


# -- export --------------------------------------------------------------------------------------------------------


def export_filename(team_id: str, since: datetime | None, until: datetime | None) -> str:
    """``tasklog-T111-20240108-20240115.csv``; ``…-all.csv`` without bounds."""
    first = since.strftime("%Y%m%d") if since is not None else "start"
    last = until.strftime("%Y%m%d") if until is not None else "now"
    span = "all" if since is None and until is None else f"{first}-{last}"
    safe_team = "".join(ch for ch in team_id if ch.isalnum()) or "workspace"
    return f"tasklog-{safe_team}-{span}.csv"


def export_title(request: ExportRequest) -> str:
    """The file's title in Slack."""
    return f"Task log: {_scope(request.time_filter, request.agent)}"


def export_comment(
    request: ExportRequest,
    *,
    rows: int,
    since: datetime | None,
    until: datetime | None,
    user_id: str,
    elsewhere: str | None = None,
) -> str:
    """The message posted with the file: who asked, the filters and the row count.

    ``elsewhere`` is set when the file went to the user's DM instead of the conversation they typed in.
    """
    which = _which(request.time_filter, request.agent)
    text = f"Task log export for <@{escape(user_id)}>: *{_count(rows, 'task')}* {which}"
    if request.time_filter.window is not None and request.time_filter.window.span is not None:
        text += f" ({_span(since, until)})"
    text += ". One row per task, oldest first."
    if elsewhere is not None:
        text += f"\nYou asked in {elsewhere}, where I can't post, so it's here instead."
    return text


def empty_export_message(request: ExportRequest, since: datetime | None, until: datetime | None) -> Message:
    """Nothing matched: say so instead of uploading an empty file."""
    which = _which(request.time_filter, request.agent)
    if request.time_filter.window is not None and request.time_filter.window.span is not None:
        which += f" ({_span(since, until)})"
    return _ephemeral(f"No tasks {which}, so there is no file to upload.")


def dm_fallback_message(permalink: str | None, rows: int | None) -> Message:
    """The file went to the user's DM because the bot cannot post where the command was typed. ``rows`` is None
    for a chart."""
    what = "the chart" if rows is None else "the CSV"
    link = f"<{permalink}|{what}>" if permalink else what
    count = "" if rows is None else f" ({_count(rows, 'task')})"
    return _ephemeral(
        f"I can't post files in this conversation (I'm not a member, or can't see it), so I sent {link}{count} "
        "to you in a direct message."
    )


def chart_title(request: StatsRequest, *, for_slack: bool = True) -> str:
    """The chart's title: in Slack (escaped), or drawn in the picture (as typed)."""
    if for_slack:
        return f"Task log: {_scope(request.time_filter, request.agent)}"
    agent = "" if request.agent is None else f", agent {request.agent}"
    return f"Task log: {request.time_filter.describe()}{agent}"


def chart_filename(team_id: str, since: datetime | None, until: datetime | None) -> str:
    """``tasklog-T111-20240108-20240115.png``."""
    return export_filename(team_id, since, until).removesuffix(".csv") + ".png"


def chart_comment(request: StatsRequest, *, user_id: str, elsewhere: str | None = None) -> str:
    """The message posted with the chart."""
    text = f"Task log chart for <@{escape(user_id)}>: {_scope(request.time_filter, request.agent)}."
    if elsewhere is not None:
        text += f"\nYou asked in {elsewhere}, where I can't post, so it's here instead."
    return text


def charts_unavailable_message() -> Message:
    """The app was installed without the charts extra."""
    return _ephemeral(
        "Charts are not installed in this app (the `slack-tasklog[charts]` extra, matplotlib). "
        "The figures are in `stats` without `chart`."
    )


def failure_message(reason: str, *, retry_after: float | None = None) -> Message:
    """Slack refused or rate-limited the upload, after the retries: what happened and what to do."""
    if retry_after is not None:
        return _ephemeral(
            f"Slack is rate-limiting file uploads right now, so the export was not uploaded. "
            f"Please try again in {_count(max(1, round(retry_after)), 'second')}."
        )
    return _ephemeral(f"Sorry, Slack refused the upload ({escape(reason)}), so the export was not shared.")
