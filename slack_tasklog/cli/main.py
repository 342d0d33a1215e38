"""The ``slack-tasklog`` command: a ``click`` group of small commands.

Every command fails the same way: one line on stderr (``Error: ...``), never a traceback (it goes to the
``slack_tasklog`` logger at debug level). Exit status 2 for what was typed (an option, a URL, a path, no --yes where
nobody can be asked), 1 for what went wrong running it (the database, a file).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from slack_tasklog._version import __version__
from slack_tasklog.logs import logger, safe_url
from slack_tasklog.options import parse_database_url
from slack_tasklog.slack.grammar import export_params, stats_params
from slack_tasklog.storage.store import sqlite_file
from slack_tasklog.tasklog import DEFAULT_DATABASE_URL

if TYPE_CHECKING:
    from sqlalchemy import URL, Engine

__all__ = ["main"]

_MAX_ERROR = 300


class _Group(click.Group):
    """A group whose commands report any failure as one line and a non-zero exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            error.ctx = None  # one line, "Error: ...", without the usage block (-h shows it)
            raise
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own: already one line (or a deliberate exit)
        except Exception as error:
            logger.debug("slack-tasklog: command failed", exc_info=True)
            raise click.ClickException(_explain(error, ctx.meta.get(_URL))) from error


F = TypeVar("F", bound=Callable[..., Any])
# Where a command's --database-url is kept for the error messages (click shares ``meta`` with the parent contexts).
_URL = "slack_tasklog.database_url"


def database_url_option(func: F) -> F:
    """``--database-url``, shared by every command that opens the task log; a URL SQLAlchemy cannot use is a usage
    error with advice (exit status 2)."""
    return click.option(
        "--database-url",
        metavar="URL",
        envvar="TASKLOG_DATABASE_URL",
        default=DEFAULT_DATABASE_URL,
        show_default=True,
        callback=_check_url,
        help="The task log's database (SQLAlchemy URL); also read from $TASKLOG_DATABASE_URL.",
    )(func)


def _check_url(ctx: click.Context, _param: click.Parameter, value: str) -> str:
    ctx.meta[_URL] = _database_url(value)
    return value


def _check_optional_url(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        _database_url(value)  # refused now, in the option's words
    return value


def _database_url(value: str) -> URL:
    """``value`` as a URL SQLAlchemy has a dialect for; ``click.BadParameter`` saying what to write instead."""
    try:
        return parse_database_url(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _one_line(error: BaseException) -> str:
    """``str(error)``'s first line (database errors add the SQL and a link below it), or the type's name."""
    text = str(error).strip().split("\n", 1)[0][:_MAX_ERROR]
    return text or type(error).__name__


def _explain(error: Exception, url: URL | None) -> str:
    """One line for a failure: a SQLite file this process may not write is called read-only."""
    from sqlalchemy.exc import OperationalError

    path = sqlite_file(url, uri=True) if url is not None else None
    if path is not None and url is not None and isinstance(error, OperationalError):
        words = str(error).lower()
        writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
        if "readonly" in words or (path.exists() and not writable) or url.query.get("mode") == "ro":
            return (
                f"{safe_url(url)} is read-only here: SQLite must write to it, and to the -wal and -shm files next to "
                f"it even to read; check the permissions of the file and its folder"
            )
    return _one_line(error)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="slack-tasklog", message="%(prog)s %(version)s")
def main() -> None:
    """Task log and analytics for multi-agent Slack Bolt apps."""


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("tasklog-demo"),
    show_default=True,
    help="Where the demo writes its database (tasklog.db, recreated on each run) and tasks.csv.",
)
@click.option(
    "--database-url",
    metavar="URL",
    callback=_check_optional_url,
    help="Record into this database instead of DIR/tasklog.db; it is added to, never cleared. "
    "The demo does not read $TASKLOG_DATABASE_URL, so it never writes into your bot's task log by accident.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the CSV path.")
def demo(directory: Path, database_url: str | None, quiet: bool) -> None:
    """Run a scripted Slack conversation through a real Bolt app, offline, and export its task log as CSV.

    An orchestrator routes mentions to three agents (Grok, Writer, Builder); the script has follow-ups, a Slack
    retry, bots talking, a failing agent, a request nobody takes and a task routed again after a failure.
    """
    from slack_tasklog.cli.demo import format_summary, run_demo

    result = run_demo(directory, database_url=database_url)
    click.echo(result.csv_path if quiet else format_summary(result))


@main.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@database_url_option
@click.option("--team", "team_id", default="", help="The workspace (T…) the tasks of an Approach 1 log belong to.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def import_(files: tuple[Path, ...], database_url: str, team_id: str, quiet: bool) -> None:
    """Import JSON-lines task logs: the design document's task_logs.jsonl, or this package's journal files.

    Events are linked by thread; importing the same file twice changes nothing. Lines that cannot be read are
    listed with their numbers (exit status 2 if there were any).
    """
    from slack_tasklog.cli.importer import ImportParserError, fewer_collections, import_file, import_journal, is_journal
    from slack_tasklog.storage.store import Store, create_tasklog_engine

    engine = create_tasklog_engine(database_url)
    store = Store(engine, cache_size=10_000)
    store.ensure_schema()
    problems = 0
    try:
        for path in files:
            if is_journal(path):
                report = import_journal(path, store)
                click.echo(f"{path}: journal segment, {report.events} events imported, {report.skipped} skipped")
                problems += report.skipped
                continue
            bar = click.progressbar(length=path.stat().st_size, label=path.name, hidden=quiet, show_eta=True)
            with bar, fewer_collections():  # this is our own process (see fewer_collections)
                try:
                    report = import_file(path, store, team_id=team_id, progress=bar.update)
                except ImportParserError as error:
                    raise click.ClickException(f"{path}: {error}") from None
            click.echo(f"{path}: {report.lines} lines, {report.events} events imported, {report.skipped} skipped")
            for number, reason in report.problems:  # the first thousand
                click.echo(f"  line {number}: {reason}", err=True)
            if report.skipped > len(report.problems):
                click.echo(f"  ... and {report.skipped - len(report.problems):,} more", err=True)
            problems += report.skipped
    finally:
        engine.dispose()
    if problems:
        raise SystemExit(2)


def _confirm_options(func: F) -> F:
    func = click.option("--dry-run", is_flag=True, help="Only say what it would change, and change nothing.")(func)
    return click.option(
        "--yes", "-y", is_flag=True, help="Do not ask first (for scripts: needed when stdin is not a terminal)."
    )(func)


def _interactive() -> bool:
    """Whether someone can answer a question (tests replace this: CliRunner's stdin is not a terminal)."""
    return sys.stdin.isatty()


def _may_ask(yes: bool, dry_run: bool, doing: str) -> None:
    """Refuse early (exit status 2) when the command would have to ask and nobody can answer."""
    if not (yes or dry_run or _interactive()):
        raise click.UsageError(
            f"stdin is not a terminal, so nobody can confirm {doing}: add --yes to go ahead, or --dry-run to only count"
        )


def _ask(question: str, *, yes: bool, dry_run: bool) -> bool:
    """False for a dry run (said so); True once confirmed; ``click.Abort`` (exit status 1) on no."""
    if dry_run:
        click.echo("Dry run: nothing changed.")
        return False
    if not yes:
        click.confirm(question, abort=True)
    return True


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


@main.command()
@database_url_option
@click.option(
    "--older-than",
    required=True,
    metavar="AGE",
    help="e.g. 90d, 12w, 6mo (30 days each), 1y (365 days); minutes are min (a bare m is refused).",
)
@_confirm_options
def purge(database_url: str, older_than: str, yes: bool, dry_run: bool) -> None:
    """Delete tasks requested more than AGE ago, with their follow-ups, rounds, evaluations and outcomes.

    Says how many and asks first (--yes: do not ask; --dry-run: only count). Less than a day (AGE in h or min)
    gets a warning: tasks still being worked on would go. Exit status 0, 1 if the task log cannot be changed (or
    the answer was no), 2 for a usage error or a non-interactive stdin without --yes.
    """
    from datetime import timezone

    from sqlalchemy import func, select

    from slack_tasklog.durations import ONE_DAY, describe_duration, parse_duration
    from slack_tasklog.storage.models import Task
    from slack_tasklog.storage.store import Store

    try:
        age = parse_duration(older_than)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--older-than'") from None
    older_than = older_than.strip()
    _may_ask(yes, dry_run, "deleting tasks")
    before = datetime.now(timezone.utc) - age
    with _reading(database_url) as engine:
        with engine.connect() as conn:
            tasks = conn.scalar(select(func.count()).select_from(Task).where(Task.requested_at < before)) or 0
        click.echo(
            f"This deletes {_plural(tasks, 'task')} requested before {before:%Y-%m-%d %H:%M} UTC, older than "
            f"{older_than} ({describe_duration(age)}), from {_shown(engine)}, with their follow-ups, rounds, "
            f"evaluations and outcomes."
        )
        if age < ONE_DAY:
            click.echo(f"Warning: {older_than} is under a day: tasks still being worked on may be deleted.", err=True)
        if not _ask("Delete them?", yes=yes, dry_run=dry_run):
            return
        deleted = Store(engine, migrate="check").purge(before)
    click.echo(f"Deleted {_plural(deleted, 'task')} older than {older_than}.")


@main.command()
@database_url_option
@click.option("--user", "user_id", required=True, metavar="USER_ID", help="The Slack user id (U…).")
@click.option("--team", "team_id", default=None, metavar="TEAM_ID", help="Only in this workspace.")
@click.option(
    "--journal",
    "journal_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="The bots' journal folder, if they were given one (default: where TaskLog(journal=True) puts it).",
)
@_confirm_options
def forget(
    *, database_url: str, user_id: str, team_id: str | None, journal_dir: Path | None, yes: bool, dry_run: bool
) -> None:
    """Erase every text a user wrote (a data-subject request), wherever it was copied: requests, follow-ups, the error
    messages that quote them (reduced to their exception type) and the failure rollup, SQLite's WAL, and journals
    that stopped bots left on this machine; and every vote they gave. Other numbers stay.

    Says how many texts and asks first (--yes: do not ask; --dry-run: only count). Exit status 0, 1 if the task
    log cannot be changed (or the answer was no), 2 for a usage error or a non-interactive stdin without --yes.
    """
    from sqlalchemy import func, select

    from slack_tasklog.storage.models import Feedback, FollowUp, Task
    from slack_tasklog.storage.store import Store
    from slack_tasklog.tasklog import default_journal_dir, forget_everywhere

    _may_ask(yes, dry_run, "erasing texts")
    with _reading(database_url) as engine:
        texts = 0
        with engine.connect() as conn:
            for table, column in ((Task, Task.request_text), (FollowUp, FollowUp.text)):
                query = select(func.count()).select_from(table).where(table.user_id == user_id, column.is_not(None))
                if team_id is not None:
                    query = query.where(table.team_id == team_id)
                texts += conn.scalar(query) or 0
            votes_query = select(func.count()).select_from(Feedback).where(Feedback.user_id == user_id)
            if team_id is not None:
                votes_query = votes_query.where(Feedback.team_id == team_id)
            votes = conn.scalar(votes_query) or 0
        workspace = f" in workspace {team_id}" if team_id is not None else ""
        click.echo(
            f"This erases {_plural(texts, 'text')} written by {user_id}{workspace} (requests and follow-ups, and the "
            f"error messages that quote them) and {_plural(votes, 'vote')} they gave in {_shown(engine)}; the tasks "
            "and their other figures stay."
        )
        if not _ask("Erase them?", yes=yes, dry_run=dry_run):
            return
        journal = journal_dir or default_journal_dir(engine.url)
        erased = forget_everywhere(Store(engine, migrate="check"), journal, user_id, team_id=team_id)
    click.echo(f"Erased {_plural(erased.texts, 'text')} written by {user_id}.")
    click.echo(f"Deleted {_plural(erased.votes, 'vote')} they gave.")
    click.echo(
        f"Reduced {_plural(erased.error_messages, 'error message')} to their exception type, removed "
        f"{_plural(erased.failure_rows, 'failure rollup row')}, and scrubbed "
        f"{_plural(erased.journal_records, 'record')} in journals of stopped bots"
        + (f" in {journal}." if journal is not None else ".")
    )
    if erased.checkpointed is False:
        click.echo(
            "Warning: a reader kept SQLite's WAL from being emptied; run forget again when it is idle.", err=True
        )
    click.echo(
        "Bots still running hold their own queues: what they recorded for this user before now is stored without "
        "its text when it arrives. To be sure nothing slipped through, run forget again once they are idle."
    )


# -- reading: stats and export ------------------------------------------------------------------------------------


def _with_grammar(
    params: list[click.Parameter], *, skip: tuple[str, ...] = ()
) -> Callable[[click.Command], click.Command]:
    """Give a command the slash command's own parameters (``_grammar``), so both parse the same words the same way."""

    def decorate(command: click.Command) -> click.Command:
        command.params[:0] = [param for param in params if param.name not in skip]
        return command

    return decorate


def _who_options(func: F) -> F:
    func = click.option("--user", "user_id", metavar="USER_ID", help="Only tasks this person asked (U…).")(func)
    return click.option("--channel", "channel_id", metavar="CHANNEL_ID", help="Only tasks asked in this channel.")(func)


def _workspace_options(func: F) -> F:
    func = click.option(
        "--enterprise", "enterprise_id", metavar="ENTERPRISE_ID", help="Only this Enterprise Grid organisation (E…)."
    )(func)
    return click.option("--team", "team_id", metavar="TEAM_ID", help="Only this workspace (T…).")(func)


@contextmanager
def _reading(database_url: str) -> Iterator[Engine]:
    """An engine on the task log at ``database_url``, to read it or erase from it: the schema must be there and
    current. Nothing is created or upgraded, and no SQLite file or folder appears where there was none."""
    from slack_tasklog.storage.migrate import prepare_schema
    from slack_tasklog.storage.store import create_tasklog_engine

    url = _database_url(database_url)
    path = sqlite_file(url, uri=True)
    if path is not None and not path.exists():
        raise click.ClickException(f"no task log at {safe_url(url)}")
    engine = create_tasklog_engine(database_url)
    try:
        with _no_writer_warnings():
            prepare_schema(engine, "check")
        yield engine
    finally:
        engine.dispose()


class _DropSchemaWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and record.module == "migrate")


@contextmanager
def _no_writer_warnings() -> Iterator[None]:
    """Without the warning a bot's writer logs when the schema is behind ("events are kept and retried"): the
    command's own one-line error says what to do."""
    drop = _DropSchemaWarnings()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _not_the_database(output: Path, database_url: str) -> None:
    """Refuse (exit status 2) an output file that is the SQLite database being read, or its -wal, -shm or -journal
    file, however it is spelled (relative, through a link)."""
    path = sqlite_file(_database_url(database_url), uri=True)
    if path is None or str(output) == "-":
        return
    target = output.expanduser().resolve()
    database = path.resolve()
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = database.with_name(database.name + suffix)
        same = target == candidate or (target.exists() and candidate.exists() and os.path.samefile(target, candidate))
        if same:
            which = f"'s {suffix[1:]} file" if suffix else ""
            raise click.BadParameter(
                f"{output} is the task log's database{which}: write somewhere else", param_hint="'-o' / '--output'"
            )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _columns(rows: list[list[str]]) -> str:
    """Rows of cells as aligned columns, numbers to the right (everything but the first column)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in rows
    )


@_with_grammar(stats_params(), skip=("public",))
@main.command()
@database_url_option
@_workspace_options
@_who_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout, for scripts.")
def stats(
    *,
    database_url: str,
    team_id: str | None,
    enterprise_id: str | None,
    channel_id: str | None,
    user_id: str | None,
    as_json: bool,
    **params: Any,
) -> None:
    """Tasks, success rate, unassigned tasks, per-agent figures, calibration and the daily series.

    WINDOW is how far back from now: 24h, 7d (the default), 30d, 2w, 3mo (30-day months), all. Percentiles are
    within 1%. Exit status 0, 1 if the task log cannot be read (missing, unreachable, read-only, or its schema
    needs `slack-tasklog db upgrade`), 2 for a usage error.
    """
    from datetime import datetime, timezone

    from slack_tasklog.slack.grammar import StatsRequest

    request = StatsRequest.from_params(params)
    since, until = request.time_filter.bounds(datetime.now(timezone.utc))
    found = _compute(database_url, since, until, agent=request.agent, team_id=team_id, enterprise_id=enterprise_id,
                     channel_id=channel_id, user_id=user_id)  # fmt: skip
    if as_json:
        click.echo(_stats_json(found, request.time_filter.describe()))
        return
    click.echo(_stats_text(found, request.time_filter.describe()))


def _compute(
    database_url: str,
    since: Any,
    until: Any,
    *,
    agent: str | None,
    team_id: str | None,
    enterprise_id: str | None,
    channel_id: str | None,
    user_id: str | None,
) -> Any:
    """``compute_stats`` over the task log at ``database_url`` (read only)."""
    from slack_tasklog.reports.stats import compute_stats

    with _reading(database_url) as engine, engine.connect() as conn:
        return compute_stats(
            conn,
            since=since,
            until=until,
            agent=agent,
            team_id=team_id,
            enterprise_id=enterprise_id,
            channel_id=channel_id,
            user_id=user_id,
        )


def _stats_json(found: Any, window: str) -> str:
    import dataclasses
    import json

    data = dataclasses.asdict(found)
    data["window"] = window
    data["success_rate"] = found.success_rate
    data["unassigned_rate"] = found.unassigned_rate
    data["approval_rate"] = found.approval_rate
    for agent, source in zip(data["agents"], found.agents, strict=True):
        agent["success_rate"] = source.success_rate
        agent["approval_rate"] = source.approval_rate
    # Each usage (the totals', each agent's, each day's) with its costs per task, which are properties.
    pairs = [
        (data, found),
        *zip(data["agents"], found.agents, strict=True),
        *zip(data["days"], found.days, strict=True),
    ]
    for entry, source in pairs:
        entry["usage"]["cost_per_task"] = source.usage.cost_per_task
        entry["usage"]["cost_per_success"] = source.usage.cost_per_success
    return json.dumps(data, default=lambda value: value.isoformat() if hasattr(value, "isoformat") else str(value),
                      indent=2)  # fmt: skip


def _stats_text(found: Any, window: str) -> str:
    lines = [
        f"Task log, {window}: {found.tasks:,} {'task' if found.tasks == 1 else 'tasks'}, "
        f"{_percent(found.success_rate)} success "
        f"({found.succeeded:,} of {found.finished:,} finished), {found.unassigned:,} with no agent confident enough, "
        f"{found.in_progress:,} in progress",
    ]
    if found.voted:
        lines.append(
            f"People's verdict: {_percent(found.approval_rate)} approved ({found.approved:,} of {found.voted:,} "
            f"voted), {found.disagreed:,} reported successful but voted down"
        )
    from slack_tasklog.slack.blocks import usage_text

    if usage_text(found.usage):
        lines.append(usage_text(found.usage))
    if found.agents:
        rows = [["agent", "tasks", "success", "approval", "disagreed", "median", "p95", "p99", "mean confidence"]]
        rows += [
            [
                a.agent,
                f"{a.tasks:,}",
                _percent(a.success_rate),
                "-" if not a.voted else f"{_percent(a.approval_rate)} of {a.voted:,}",
                f"{a.disagreed:,}",
                _seconds(a.median_execution_time),
                _seconds(a.p95_execution_time),
                _seconds(a.p99_execution_time),
                "n/a" if a.mean_confidence is None else f"{a.mean_confidence:.1f}",
            ]
            for a in found.agents
        ]
        if usage_text(found.usage):
            rows[0] += ["tokens in", "tokens out", "cost", "a task", "a success"]
            for row, a in zip(rows[1:], found.agents, strict=True):
                row += [
                    f"{a.usage.input_tokens:,}",
                    f"{a.usage.output_tokens:,}",
                    *map(_cost, (a.usage.cost, a.usage.cost_per_task, a.usage.cost_per_success)),
                ]
        lines += ["", _columns(rows)]
        bands = next(iter(found.calibration.values()))
        rows = [["success by confidence"] + [f"{band.low}-{band.high}" for band in bands]]
        rows += [[agent] + [_band(band) for band in found.calibration[agent]] for agent in found.calibration]
        lines += ["", _columns(rows)]
    if found.failures:
        lines += ["", "most frequent failures:"]
        lines += [f"  {failure.tasks:>8,}  {failure.message}" for failure in found.failures]
    return "\n".join(lines)


def _band(band: Any) -> str:
    return "-" if not band.finished else f"{_percent(band.success_rate)} of {band.finished:,}"


def _cost(value: float | None) -> str:
    from slack_tasklog.slack.blocks import format_cost

    return format_cost(value)


def _seconds(value: float | None) -> str:
    from slack_tasklog.slack.blocks import format_seconds

    return format_seconds(value)


@_with_grammar(export_params())
@main.command()
@database_url_option
@_workspace_options
@click.option(
    "--format", "format_", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True,
    help="csv: the design document's columns and ours; jsonl: a task per line with its follow-ups, rounds and runs.",
)  # fmt: skip
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=Path("-"),
              help="Write here (default: stdout).")  # fmt: skip
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def export(
    *,
    database_url: str,
    team_id: str | None,
    enterprise_id: str | None,
    format_: str,
    output: Path,
    quiet: bool,
    **params: Any,
) -> None:
    """Export tasks as CSV (spreadsheet formulas neutralised) or JSON lines, oldest first.

    Without WINDOW, --since or --until: every task (a Slack /tasklog export defaults to the last 7 days). Exit
    status 0, 1 if the task log cannot be read or the file written, 2 for a usage error.
    """
    import os
    import sys
    from datetime import datetime, timezone

    from slack_tasklog.reports.export import ExportFilter, count_tasks, write_csv, write_jsonl
    from slack_tasklog.slack.grammar import ExportRequest, Window

    if params.get("window") is None and params.get("since") is None and params.get("until") is None:
        params["window"] = Window.parse("all")
    request = ExportRequest.from_params(params)
    since, until = request.time_filter.bounds(datetime.now(timezone.utc))
    where = ExportFilter(since=since, until=until, agent=request.agent, team_id=team_id, enterprise_id=enterprise_id)
    to_stdout = str(output) == "-"
    _not_the_database(output, database_url)
    with _reading(database_url) as engine, engine.connect() as conn:
        total = None if quiet or to_stdout else count_tasks(conn, where)
        out = sys.stdout if to_stdout else output.open("w", encoding="utf-8", newline="")
        try:
            with click.progressbar(length=total or 0, label=output.name, hidden=total is None, file=sys.stderr) as bar:
                if format_ == "jsonl":
                    written = write_jsonl(conn, out, where, progress=bar.update)
                else:
                    written = write_csv(conn, out, where, progress=bar.update)
        except BrokenPipeError:
            # `slack-tasklog export | head`: the reader has what it wanted. Python would complain again at exit
            # about flushing the pipe; point stdout at nothing first.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(0) from None
        finally:
            if not to_stdout:
                out.close()
    if not to_stdout:
        click.echo(f"Exported {written:,} tasks ({request.time_filter.describe()}) to {output}.", err=True)


@_with_grammar(stats_params(), skip=("public",))
@main.command()
@database_url_option
@_workspace_options
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("tasklog-chart.png"),
    show_default=True, help="The PNG to write.",
)  # fmt: skip
@_who_options
def chart(
    *,
    database_url: str,
    team_id: str | None,
    enterprise_id: str | None,
    channel_id: str | None,
    user_id: str | None,
    output: Path,
    **params: Any,
) -> None:
    """Draw the stats as a PNG: tasks and success rate per day and agent, and each agent's calibration.

    WINDOW defaults to 30d here. Needs the charts extra: pip install 'slack-tasklog[charts]'. Exit status 0, 1 if
    the task log cannot be read or matplotlib is missing, 2 for a usage error.
    """
    from datetime import datetime, timezone

    from slack_tasklog.reports.chart import ChartsUnavailableError, render_png
    from slack_tasklog.slack.blocks import chart_title
    from slack_tasklog.slack.grammar import StatsRequest, Window

    if params.get("window") is None:
        params["window"] = Window.parse("30d")
    _not_the_database(output, database_url)
    request = StatsRequest.from_params(params)
    since, until = request.time_filter.bounds(datetime.now(timezone.utc))
    found = _compute(database_url, since, until, agent=request.agent, team_id=team_id, enterprise_id=enterprise_id,
                     channel_id=channel_id, user_id=user_id)  # fmt: skip
    try:
        png = render_png(found, chart_title(request, for_slack=False))
    except ChartsUnavailableError as error:
        raise click.ClickException(str(error)) from None
    output.write_bytes(png)
    click.echo(f"Wrote {output} ({found.tasks:,} tasks, {request.time_filter.describe()}).")


# -- db: the schema ----------------------------------------------------------------------------------------------------


@main.group(cls=_Group)
def db() -> None:
    """The task log's schema: upgrade it, show or check its revision, take it back.

    A TaskLog upgrades a SQLite database itself when it starts; on PostgreSQL and MySQL/MariaDB it only checks and,
    when the schema is behind, keeps its events and waits for `slack-tasklog db upgrade`.
    """


@contextmanager
def _schema_engine(database_url: str, *, must_exist: bool) -> Iterator[Engine]:
    """An engine on ``database_url``, disposed afterwards. ``must_exist``: refuse to create a missing SQLite file
    (only ``db upgrade`` may, and never a missing folder)."""
    from slack_tasklog.storage.store import create_tasklog_engine

    path = sqlite_file(_database_url(database_url), uri=True)
    if path is not None and not path.exists():
        if must_exist:
            raise click.ClickException(f"no SQLite database at {path}")
        if not path.parent.is_dir():
            raise click.ClickException(
                f"no folder {path.parent} for the SQLite database: create it first, or fix the path"
            )
    engine = create_tasklog_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _shown(engine: Engine) -> str:
    return safe_url(engine.url)


@db.command("upgrade")
@click.argument("revision", default="head")
@database_url_option
def db_upgrade(revision: str, database_url: str) -> None:
    """Upgrade the schema to REVISION (default: head).

    Creates the tables in an empty database, and adopts the tables an earlier slack-tasklog created before it had
    migrations (checked, then upgraded; no row is lost). Bots may keep running: their writes wait for it or are
    retried, and several upgrades started at once run one after the other.
    """
    from slack_tasklog.storage.migrate import upgrade

    with _schema_engine(database_url, must_exist=False) as engine:
        result = upgrade(engine, revision)
        if result.created:
            click.echo(f"Created the task log tables in {_shown(engine)} at revision {result.after}.")
        elif result.adopted:
            click.echo(f"Adopted the unversioned task log tables in {_shown(engine)}, upgraded to {result.after}.")
        elif result.before == result.after:
            click.echo(f"{_shown(engine)} is already at revision {result.after}.")
        else:
            click.echo(f"Upgraded {_shown(engine)} from {result.before or 'nothing'} to {result.after}.")


@db.command("current")
@database_url_option
def db_current(database_url: str) -> None:
    """Show the schema's revision, and whether it is this version's (head)."""
    from slack_tasklog.storage.migrate import current, head
    from slack_tasklog.storage.models import Base

    with _schema_engine(database_url, must_exist=True) as engine:
        revision = current(engine)
        wanted = head()
        if revision == wanted:
            click.echo(f"{revision} (head)")
        elif revision is not None:
            click.echo(f"{revision} (this slack-tasklog needs {wanted}: run `slack-tasklog db upgrade`)")
        else:
            from sqlalchemy import inspect

            if set(inspect(engine).get_table_names()) & set(Base.metadata.tables):
                click.echo("none: tables made before migrations, not versioned yet (`slack-tasklog db upgrade`)")
            else:
                click.echo("none: no task log tables (`slack-tasklog db upgrade` creates them)")


@db.command("check")
@database_url_option
def db_check(database_url: str) -> None:
    """Exit 0 if the schema is at head and matches this version's models (Alembic's comparison), else say why and
    exit 1."""
    from slack_tasklog.storage.migrate import check

    with _schema_engine(database_url, must_exist=True) as engine:
        revision = check(engine)
        click.echo(f"{_shown(engine)} is at revision {revision} (head) and matches the models.")


@db.command("downgrade")
@click.argument("revision")
@database_url_option
@click.option("--yes", is_flag=True, help="Do not ask before a downgrade to base, which drops every task log table.")
def db_downgrade(revision: str, database_url: str, yes: bool) -> None:
    """Take the schema back to REVISION, to run an older slack-tasklog.

    REVISION is one of this version's (0001), or base: no task log tables at all (it asks first).
    """
    from slack_tasklog.storage.migrate import downgrade

    with _schema_engine(database_url, must_exist=True) as engine:
        if revision == "base" and not yes:
            question = f"This drops every task log table in {_shown(engine)}, with all their rows. Go on?"
            click.confirm(question, abort=True)
        before, after = downgrade(engine, revision)
        click.echo(f"Downgraded {_shown(engine)} from {before} to {after or 'base (no task log tables)'}.")


if __name__ == "__main__":  # python -m slack_tasklog.cli.main
    main()
