"""The one grammar of ``/tasklog`` (and, later, of the CLI's matching subcommands).

A command line is split like a shell would (:mod:`shlex`, so ``--agent "Research Bot"`` works), then parsed by
:mod:`click`: the parameters below are plain click parameters, so a CLI command can take the very same ones
(:func:`stats_params`, :func:`export_params`) and build the same request objects (:meth:`StatsRequest.from_params`,
:meth:`ExportRequest.from_params`). Parsing is pure: it never reads the clock or the database. Windows are turned
into dates only when a command runs (:meth:`TimeFilter.bounds`).

Grammar::

    stats  [chart] [WINDOW] [--agent NAME] [--public]
    export [WINDOW] [--since DATE] [--until DATE] [--agent NAME]
    help

    WINDOW  24h | 7d | 30d | 2w | 3mo | all   (whole hours, days, weeks or 30-day months, "7 days" too; at most
                                              ten years; a bare "m" is refused: minutes or months?)
    DATE    2024-01-15 | 2024-01-15T10:30 | 2024-01-15T10:30:00Z   (UTC unless an offset is given)

Example::

    >>> parse_command("stats 30d --agent Grok")
    StatsRequest(window=Window(text='30d', span=datetime.timedelta(days=30)), agent='Grok', public=False)
"""

from __future__ import annotations

import html
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import click

__all__ = [
    "DEFAULT_WINDOW",
    "MAX_WINDOW",
    "CommandSyntaxError",
    "DateParam",
    "ExportRequest",
    "HelpRequest",
    "ParsedCommand",
    "StatsRequest",
    "TimeFilter",
    "Window",
    "WindowParam",
    "export_params",
    "parse_command",
    "split_words",
    "stats_params",
]

#: Longer than any task log will be: anything beyond is a typo (``99999d``), not a question.
MAX_WINDOW = timedelta(days=3660)
# A month is 30 days, as in slack_tasklog.durations; a bare "m" (minutes or months?) is refused there and here.
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1), "mo": timedelta(days=30)}
_NOUNS = {"h": "hour", "d": "day", "w": "week", "mo": "month"}
_UNIT_WORDS = "h|hrs?|hours?|d|days?|w|wks?|weeks?|mos?|months?"
_WINDOW = re.compile(rf"([0-9]{{1,7}})\s*({_UNIT_WORDS})")
_AMBIGUOUS = re.compile(r"([0-9]{1,7})\s*m")
# Joined to the number before them ("7 days" -> "7days"), so that the window's message names both words.
_UNIT_WORD = re.compile(_UNIT_WORDS + "|m|mins?|minutes?", re.IGNORECASE)
# Slack's clients "smarten" what people type: quotes become curly, and "--" an en or em dash.
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'"})
_DASHED_OPTION = re.compile(r"(?:(?<=\s)|^)[\u2013\u2014](?=[a-z])")
_NEGATIVE_WINDOW = re.compile(r"-[0-9]+\s*[a-z]*", re.IGNORECASE)
_MAX_AGENT = 191  # the agent column's length


class CommandSyntaxError(ValueError):
    """The text is not a command this grammar knows; ``str(error)`` says why, in words for the person who typed it."""


@dataclass(frozen=True)
class Window:
    """A span of time ending now: ``7d``; ``span`` is None for ``all``."""

    text: str
    span: timedelta | None

    @classmethod
    def parse(cls, text: str) -> Window:
        """``"24h"``, ``"7d"``, ``"2w"``, ``"3mo"``, ``"all"`` (any case). Raises ``ValueError`` with a readable
        reason."""
        cleaned = text.strip().lower()
        if cleaned == "all":
            return cls("all", None)
        match = _WINDOW.fullmatch(cleaned)
        if match is None:
            ambiguous = _AMBIGUOUS.fullmatch(cleaned)
            if ambiguous is not None:
                count = ambiguous.group(1)
                raise ValueError(f"'{count}m' is ambiguous: write {count}mo for months, or use hours, days or weeks")
            raise ValueError(
                f"{text!r} is not a window: use a number of hours, days, weeks or months (24h, 7d, 2w, 3mo) or all"
            )
        count, unit = int(match.group(1)), _unit(match.group(2))
        if count == 0:
            raise ValueError(f"{text!r} is an empty window: use at least 1{unit}")
        span = count * _UNITS[unit]
        if span > MAX_WINDOW:
            raise ValueError(f"{text!r} is longer than ten years: use all for everything")
        return cls(f"{count}{unit}", span)

    def describe(self) -> str:
        """``"the last 7 days"``, ``"all time"``."""
        if self.span is None:
            return "all time"
        digits = self.text.rstrip("hdwmo")
        count, noun = int(digits), _NOUNS[self.text[len(digits) :]]
        return f"the last {noun}" if count == 1 else f"the last {count} {noun}s"


def _unit(word: str) -> str:
    """``"months"`` -> ``"mo"``, ``"days"`` -> ``"d"``: the unit as a window's text writes it."""
    return "mo" if word.startswith("mo") else word[0]


#: What ``stats`` and ``export`` cover when no window or date is given.
DEFAULT_WINDOW = Window("7d", timedelta(days=7))


@dataclass(frozen=True)
class TimeFilter:
    """Which requests a command covers: a window ending now, or explicit ``--since``/``--until`` bounds."""

    window: Window | None = DEFAULT_WINDOW
    since: datetime | None = None
    until: datetime | None = None

    def bounds(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """``(since, until)`` in UTC, ``until`` exclusive; None is unbounded."""
        if self.window is not None:
            if self.window.span is None:
                return None, None
            return now - self.window.span, now
        return self.since, self.until

    def describe(self) -> str:
        """Words for a message: ``"the last 7 days"``, ``"2024-01-01 00:00 to 2024-02-01 00:00 UTC"``."""
        if self.window is not None:
            return self.window.describe()
        if self.since is not None and self.until is not None:
            return f"{_minute(self.since)} to {_minute(self.until)} UTC"
        if self.since is not None:
            return f"since {_minute(self.since)} UTC"
        if self.until is not None:
            return f"before {_minute(self.until)} UTC"
        return "all time"


@dataclass(frozen=True)
class StatsRequest:
    """``stats [chart] [WINDOW] [--agent NAME] [--public]``; ``chart``: the figures as a picture."""

    window: Window = DEFAULT_WINDOW
    agent: str | None = None
    public: bool = False
    chart: bool = False

    @property
    def time_filter(self) -> TimeFilter:
        """The window as a :class:`TimeFilter`."""
        return TimeFilter(window=self.window)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> StatsRequest:
        """Build from the values of :func:`stats_params` (what click hands a command's callback)."""
        window = params.get("window")
        return cls(
            window=window if isinstance(window, Window) else DEFAULT_WINDOW,
            agent=_agent(params.get("agent")),
            public=bool(params.get("public")),
        )


@dataclass(frozen=True)
class ExportRequest:
    """``export [WINDOW] [--since DATE] [--until DATE] [--agent NAME]``."""

    time_filter: TimeFilter = TimeFilter()
    agent: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ExportRequest:
        """Build from the values of :func:`export_params`; a window and dates together are refused."""
        window, since, until = params.get("window"), params.get("since"), params.get("until")
        if window is not None and (since is not None or until is not None):
            raise click.UsageError(f"give either a window ({window.text}) or --since/--until, not both")
        if since is not None and until is not None and since >= until:
            raise click.UsageError("--since must come before --until")
        if since is None and until is None:
            time_filter = TimeFilter(window=window if window is not None else DEFAULT_WINDOW)
        else:
            time_filter = TimeFilter(window=None, since=since, until=until)
        return cls(time_filter=time_filter, agent=_agent(params.get("agent")))


@dataclass(frozen=True)
class HelpRequest:
    """``help`` (also an empty line, ``-h``, ``--help``)."""


ParsedCommand = StatsRequest | ExportRequest | HelpRequest


def _agent(value: object) -> str | None:
    if value is None:
        return None
    name = str(value).strip()
    if not name:
        raise click.BadParameter("the agent name is empty", param_hint="'--agent'")
    if len(name) > _MAX_AGENT:
        raise click.BadParameter(f"agent names are at most {_MAX_AGENT} characters", param_hint="'--agent'")
    return name


def _minute(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


# -- click parameter types ------------------------------------------------------------------------------------


# click >= 8.2 types ParamType as a generic; subscripting it would break click 8.1 at import time.
class WindowParam(click.ParamType):  # type: ignore[type-arg]
    """A click type for ``WINDOW``: ``24h``, ``7d``, ``2w``, ``3mo``, ``all``."""

    name = "window"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Window:
        if isinstance(value, Window):
            return value
        try:
            return Window.parse(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


class DateParam(click.ParamType):  # type: ignore[type-arg]  # see WindowParam
    """A click type for ``DATE``: ``YYYY-MM-DD`` or an ISO 8601 time, UTC unless it has an offset.

    With ``end_of_day=True`` (``--until``) a bare date means the end of that day, so ``--until 2024-01-31``
    includes the 31st.
    """

    name = "date"

    def __init__(self, *, end_of_day: bool = False) -> None:
        self.end_of_day = end_of_day

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            if len(text) == 10:
                day = date.fromisoformat(text)
                moment = datetime.combine(day, time.min, tzinfo=timezone.utc)
                return moment + timedelta(days=1) if self.end_of_day else moment
            # Python 3.10's fromisoformat does not read "Z".
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except (ValueError, OverflowError):
            self.fail(f"{text!r} is not a date: use YYYY-MM-DD, or YYYY-MM-DDTHH:MM in UTC", param, ctx)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)


def stats_params() -> list[click.Parameter]:
    """Fresh click parameters of ``stats``: ``[WINDOW] [--agent NAME] [--public]``."""
    return [
        click.Argument(["window"], required=False, type=WindowParam(), metavar="WINDOW"),
        click.Option(["--agent"], metavar="NAME", help="Only tasks whose latest round went to this agent."),
        click.Option(["--public"], is_flag=True, help="Post the stats in the channel instead of only to you."),
    ]


def export_params() -> list[click.Parameter]:
    """Fresh click parameters of ``export``: ``[WINDOW] [--since DATE] [--until DATE] [--agent NAME]``."""
    return [
        click.Argument(["window"], required=False, type=WindowParam(), metavar="WINDOW"),
        click.Option(["--since"], type=DateParam(), metavar="DATE", help="Requests from this time on (UTC)."),
        click.Option(
            ["--until"],
            type=DateParam(end_of_day=True),
            metavar="DATE",
            help="Requests before this time (UTC); a bare date includes that whole day.",
        ),
        click.Option(["--agent"], metavar="NAME", help="Only tasks whose latest round went to this agent."),
    ]


def _command(name: str, params: list[click.Parameter], build: Any) -> click.Command:
    return click.Command(name, params=params, callback=lambda **values: build(values), add_help_option=False)


_SUBCOMMANDS: dict[str, click.Command] = {
    "stats": _command("stats", stats_params(), StatsRequest.from_params),
    "export": _command("export", export_params(), ExportRequest.from_params),
}
_HELP_WORDS = frozenset({"help", "-h", "--help", "?", "usage"})


def split_words(text: str) -> list[str]:
    """Split a command line like a shell, after undoing what Slack does to it.

    Slack escapes ``&``, ``<`` and ``>`` as HTML entities, and its clients turn quotes curly and ``--`` into a
    dash; all of that is undone first. Raises :class:`CommandSyntaxError` for an unbalanced quote.
    """
    cleaned = html.unescape(text).translate(_SMART_QUOTES)
    cleaned = _DASHED_OPTION.sub("--", cleaned)
    try:
        return shlex.split(cleaned)
    except ValueError as error:
        # shlex says "No closing quotation" or "No escaped character".
        raise CommandSyntaxError(f"{error}: close the quote, or leave quotes out") from error


def _join_windows(words: list[str]) -> list[str]:
    """``["7", "days"]`` -> ``["7days"]``: people write windows as words too."""
    joined: list[str] = []
    for word in words:
        if joined and joined[-1].isdigit() and joined[-1].isascii() and _UNIT_WORD.fullmatch(word):
            joined[-1] += word
        else:
            joined.append(word)
    return joined


def parse_command(text: str) -> ParsedCommand:
    """Parse the text after ``/tasklog``. Raises :class:`CommandSyntaxError`; never anything else."""
    words = split_words(text)
    if not words or words[0].lower() in _HELP_WORDS:
        return HelpRequest()
    name, args = words[0].lower(), _join_windows(words[1:])
    chart = name == "stats" and bool(args) and args[0].lower() == "chart"
    if chart:
        args = args[1:]
    command = _SUBCOMMANDS.get(name)
    if command is None:
        raise CommandSyntaxError(f"I don't know the command {words[0]!r}")
    for word in args:
        if _NEGATIVE_WINDOW.fullmatch(word):
            raise CommandSyntaxError(f"{word!r} is not a window: windows count back from now, like 7d")
    try:
        with command.make_context(name, args) as ctx:
            parsed = command.invoke(ctx)
    except click.ClickException as error:
        raise CommandSyntaxError(error.format_message().rstrip(".")) from error
    if not isinstance(parsed, StatsRequest | ExportRequest):  # pragma: no cover - the callbacks above
        raise CommandSyntaxError(f"{name} gave nothing to do")
    if chart and isinstance(parsed, StatsRequest):
        return replace(parsed, chart=True)
    return parsed
