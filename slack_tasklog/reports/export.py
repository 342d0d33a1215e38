"""The CSV export: one row per task, oldest first, streamed.

Rows are read a page at a time by keyset (``requested_at``, ``id``), so memory stays flat however many tasks there
are, no server-side cursor or long lock is held, and the same query runs on every backend. Each page's
evaluations come in one extra query.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import IO, Any, TypeVar

from sqlalchemy import Connection, Select, Table, case, func, or_, select

from slack_tasklog.storage.models import Assignment, Evaluation, Feedback, FollowUp, Outcome, Task
from slack_tasklog.storage.rounds import number_text, other_agents

__all__ = [
    "CSV_COLUMNS",
    "NEUTRALIZED_COLUMNS",
    "ExportFilter",
    "count_tasks",
    "filter_tasks",
    "iter_pages",
    "neutralize",
    "write_csv",
    "write_jsonl",
]

_tasks: Table = Task.__table__  # type: ignore[assignment]
_follow_ups: Table = FollowUp.__table__  # type: ignore[assignment]
_assignments: Table = Assignment.__table__  # type: ignore[assignment]
_evaluations: Table = Evaluation.__table__  # type: ignore[assignment]
_outcomes: Table = Outcome.__table__  # type: ignore[assignment]
_feedback: Table = Feedback.__table__  # type: ignore[assignment]

#: The design document's nine columns, then ours (``feedback_up``/``feedback_down``: people other than the
#: requester voting up/down; ``requester_feedback``: ``up``, ``down`` or empty).
CSV_COLUMNS = (
    "timestamp",
    "user_id",
    "request",
    "assigned_agent",
    "confidence",
    "other_agents_confidence",
    "success",
    "execution_time",
    "error_message",
    "follow_ups",
    "attempts",
    "team_id",
    "channel_id",
    "thread_ts",
    "feedback_up",
    "feedback_down",
    "requester_feedback",
    # Sums over the task's runs (empty when none reported any).
    "input_tokens",
    "output_tokens",
    "cost",
)

#: The columns :func:`neutralize` guards: every free-text and id column. The rest are numbers, booleans and the
#: timestamp the export writes itself, so a negative execution time stays a number.
NEUTRALIZED_COLUMNS = (
    "user_id",
    "request",
    "assigned_agent",
    "other_agents_confidence",
    "error_message",
    "team_id",
    "channel_id",
    "thread_ts",
)

_PAGE = 2_000
_IN_CHUNK = 500  # round ids per IN (...) list
SelectT = TypeVar("SelectT", bound=Select[Any])
# OWASP "CSV injection": a cell starting with = + - @, tab, CR or LF may run as a formula in a spreadsheet, and so
# may one where they follow blanks a spreadsheet or a reader's eye skips: whitespace, control characters and format
# characters (Unicode Cf: zero-width space, BOM, bidi marks...); or come in a form NFKC folds into them (full-width,
# small, super- and subscript). Tab, CR and LF are whitespace too: anywhere in the blanks, they count. The Cf ranges
# are Unicode 15.1's; a test checks both lists against the running Python's unicodedata.
_BLANKS = (
    r"\s\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    r"\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    r"\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
_TRIGGERS = r"=+\-@\t\r\n\u207a\u207c\u208a\u208c\u2a75\u2a76\ufb29\ufe62\ufe63\ufe66\ufe6b\uff0b\uff0d\uff1d\uff20"
_FORMULA = re.compile(f"[{_BLANKS}]*[{_TRIGGERS}]")


@dataclass(frozen=True)
class ExportFilter:
    """Which tasks: requested in [since, until), assigned (latest round) to ``agent``, in workspace ``team_id`` (of
    Enterprise Grid organisation ``enterprise_id``)."""

    since: datetime | date | str | None = None
    until: datetime | date | str | None = None
    agent: str | None = None
    team_id: str | None = None
    enterprise_id: str | None = None

    def __post_init__(self) -> None:
        utc_window(self.since, self.until)  # a bad time is refused here, not when the export runs


def utc_window(
    since: datetime | date | str | None, until: datetime | date | str | None
) -> tuple[datetime | None, datetime | None]:
    """``[since, until)`` in UTC (see :func:`as_utc`; None: unbounded). ValueError if ``since`` is after ``until``
    (a slip, which would silently select nothing); the same time twice is an empty window."""
    start, end = as_utc(since, "since"), as_utc(until, "until")
    if start is not None and end is not None and start > end:
        raise ValueError(f"since must come before until (since={start.isoformat()}, until={end.isoformat()})")
    return start, end


def as_utc(value: datetime | date | str | None, name: str = "time") -> datetime | None:
    """Accept a datetime (naive means UTC), a date (its midnight, UTC) or an ISO 8601 string; refuse anything else,
    saying what ``name`` takes."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{name}={value!r} is not a time: give a datetime, a date or an ISO 8601 text such as '2024-01-15' "
                "or '2024-01-15T10:30:00Z'"
            ) from None
    elif not isinstance(value, date):  # a datetime is a date too
        raise TypeError(f"{name} takes a datetime, a date or an ISO 8601 text, not {type(value).__name__}")
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def neutralize(cell: str) -> str:
    """Make a free-text cell inert in spreadsheets: ``=HYPERLINK(...)`` becomes ``'=HYPERLINK(...)``, and so do
    ``" =1"``, ``"\\u200b=1"``, ``"\\n@x"`` and ``"\\uff1d1"`` (full-width ``=``); ``"a=1"`` is left alone."""
    # A letter or digit first (most cells) is neither a blank nor a trigger: this check is cheaper than the match,
    # and the export runs it eight times a row (its floor is 100,000 rows/s).
    if cell[:1].isalnum() or not _FORMULA.match(cell):
        return cell
    return "'" + cell


def _query(where: ExportFilter) -> tuple[Select[Any], Any, Any]:
    t, a, o = _tasks, _assignments, _outcomes
    # The latest round and its outcome as the writer keeps them on the task (storage.summary applies the
    # latest-round rule when they are written); the outcome's error message by its id.
    # Counted by the writer; counted here only for tasks written before it kept the counts.
    follow_up_count = func.coalesce(
        t.c.follow_ups,
        select(func.count()).select_from(_follow_ups).where(_follow_ups.c.task_id == t.c.id).scalar_subquery(),
    )
    attempts = func.coalesce(
        t.c.rounds, select(func.count()).select_from(a).where(a.c.task_id == t.c.id).scalar_subquery()
    )
    # Only a failure has a message worth the lookup.
    error_message = case(
        (
            t.c.latest_success.is_(False),
            select(o.c.error_message).where(o.c.id == t.c.latest_outcome_id).scalar_subquery(),
        ),
        else_=None,
    )
    query = (
        select(
            t.c.id,
            t.c.requested_at,
            t.c.user_id,
            t.c.request_text,
            t.c.team_id,
            t.c.channel_id,
            t.c.thread_ts,
            t.c.latest_round_id.label("round_id"),
            t.c.latest_agent.label("agent"),
            t.c.latest_confidence.label("confidence"),
            t.c.latest_success.label("success"),
            t.c.latest_execution_time.label("execution_time"),
            error_message.label("error_message"),
            follow_up_count.label("follow_ups"),
            attempts.label("attempts"),
            t.c.latest_others.label("others"),
            func.coalesce(t.c.feedback_up, 0).label("feedback_up"),
            func.coalesce(t.c.feedback_down, 0).label("feedback_down"),
            t.c.requester_feedback,
            t.c.input_tokens,
            t.c.output_tokens,
            t.c.cost,
        )
        .order_by(t.c.requested_at, t.c.id)
        .limit(_PAGE)
    )
    since, until = utc_window(where.since, where.until)
    query = filter_tasks(
        query,
        since=since,
        until=until,
        team_id=where.team_id,
        enterprise_id=where.enterprise_id,
        agent=where.agent,
    )
    return query, t.c.requested_at, t.c.id


def filter_tasks(
    query: SelectT,
    *,
    since: datetime | None,
    until: datetime | None,
    team_id: str | None,
    enterprise_id: str | None,
    agent: str | None,
) -> SelectT:
    """``query`` on ``tasklog_tasks`` kept to tasks requested in ``[since, until)`` (None: unbounded), in one
    workspace, whose latest round went to ``agent``: the filters that exports and stats share."""
    t = _tasks
    if since is not None:
        query = query.where(t.c.requested_at >= since)
    if until is not None:
        query = query.where(t.c.requested_at < until)
    if team_id is not None:
        query = query.where(t.c.team_id == team_id)
    if enterprise_id is not None:
        query = query.where(t.c.enterprise_id == enterprise_id)
    if agent is not None:
        query = query.where(t.c.latest_agent == agent)
    return query


def iter_pages(conn: Connection, where: ExportFilter, *, raw: bool = False) -> Iterator[Sequence[Any]]:
    """The tasks, oldest first, a page at a time (each row as ``_query`` selects it).

    ``raw``: each row as the driver returns it, without SQLAlchemy's result processing (a datetime is text on
    SQLite and naive UTC on MySQL, a boolean 0 or 1 outside PostgreSQL; see :func:`_stored_utc`). The CSV reads
    its rows so: processing every value of a million rows cost it two thirds of its rate.
    """
    base, requested_at, task_id = _query(where)
    after: tuple[datetime, int] | None = None
    while True:
        query = base
        if after is not None:
            # The leading ">=" lets every backend seek the requested_at index to the page's start; with the OR
            # alone SQLite scans from the first task again for every page (quadratic over a large log).
            query = query.where(requested_at >= after[0], or_(requested_at > after[0], task_id > after[1]))
        result = conn.execute(query)
        rows: Sequence[Any] = result.cursor.fetchall() if raw else result.all()
        result.close()
        if not rows:
            return
        yield rows
        if len(rows) < _PAGE:
            return
        last_id, last_requested_at = rows[-1][0], rows[-1][1]
        after = (_stored_utc(last_requested_at), last_id)


def _stored_utc(value: str | datetime) -> datetime:
    """An aware UTC datetime from a ``UTCDateTime`` as SQLAlchemy or the driver returns it: text on SQLite, naive
    UTC on MySQL, aware on PostgreSQL."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _evaluations_of(conn: Connection, round_ids: Sequence[str]) -> dict[str, list[tuple[str, Any]]]:
    """Each round's evaluations, ``(agent, confidence)``."""
    found: dict[str, list[tuple[str, Any]]] = {}
    e = _evaluations
    for start in range(0, len(round_ids), _IN_CHUNK):
        chunk = round_ids[start : start + _IN_CHUNK]
        for assignment_id, agent, confidence in conn.execute(
            select(e.c.assignment_id, e.c.agent, e.c.confidence).where(e.c.assignment_id.in_(chunk))
        ):
            found.setdefault(assignment_id, []).append((agent, confidence))
    return found


def count_tasks(conn: Connection, where: ExportFilter) -> int:
    """How many tasks an export with ``where`` writes (for a progress bar)."""
    query, _, _ = _query(where)
    return int(conn.execute(select(func.count()).select_from(query.limit(None).order_by(None).subquery())).scalar_one())


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _timestamp(value: str | datetime) -> str:
    """The CSV's ``timestamp``, ``2024-01-15T10:30:00Z``: UTC, to the second, from a ``UTCDateTime`` as the driver
    returns it (naive ones are UTC already)."""
    if isinstance(value, str):  # SQLite: "YYYY-MM-DD HH:MM:SS.ffffff", UTC
        return f"{value[:10]}T{value[11:19]}Z"
    if value.tzinfo is not None:  # PostgreSQL (in UTC already on the task log's own engines)
        value = value.astimezone(timezone.utc)
    return value.isoformat("T", "seconds")[:19] + "Z"


def write_csv(
    conn: Connection,
    out: IO[str],
    where: ExportFilter,
    *,
    neutralize_formulas: bool = True,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the export to ``out``; return the number of task rows. ``progress`` is called with the number of rows
    written since its last call (every page). ``neutralize_formulas``: the cells of :data:`NEUTRALIZED_COLUMNS` go
    through :func:`neutralize`."""
    safe = neutralize if neutralize_formulas else _same
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for rows in iter_pages(conn, where, raw=True):
        # Rounds written before the writer kept their ``others``: from their evaluations. By position (round_id,
        # others), as _csv_row unpacks the rows: a Row's attribute costs more than the rest of a CSV line.
        evaluations = _evaluations_of(conn, [row[7] for row in rows if row[7] is not None and row[15] is None])
        writer.writerows(_csv_row(row, evaluations, safe) for row in rows)
        count += len(rows)
        if progress is not None:
            progress(len(rows))
    return count


def _csv_row(row: Any, evaluations: Mapping[str, list[tuple[str, Any]]], safe: Callable[[str], str]) -> tuple[Any, ...]:
    """A task's cells, in the order of :data:`CSV_COLUMNS`, from a row as ``_query`` selects it."""
    (
        _, requested_at, user_id, request_text, team_id, channel_id, thread_ts, round_id, agent, confidence, success,
        execution_time, error_message, follow_ups, attempts, others, feedback_up, feedback_down, requester_feedback,
        input_tokens, output_tokens, cost,
    ) = row  # fmt: skip
    if round_id is None:
        others = ""
    elif others is None:  # a round written before the writer kept its others
        others = other_agents(evaluations.get(round_id, ()), agent)
    return (
        _timestamp(requested_at),
        safe(user_id),
        safe(request_text or ""),
        safe(agent or ""),
        number_text(confidence),
        safe(others),
        "" if success is None else ("true" if success else "false"),
        _seconds(execution_time),
        safe(error_message or ""),
        follow_ups,
        attempts,
        safe(team_id),
        safe(channel_id),
        safe(thread_ts),
        feedback_up,
        feedback_down,
        "" if requester_feedback is None else ("up" if requester_feedback else "down"),
        "" if input_tokens is None else input_tokens,
        "" if output_tokens is None else output_tokens,
        amount_text(cost),
    )


# Not slack.blocks.format_cost, on purpose: programs read a CSV and want the amount in full, not rounded for people.
def amount_text(value: float | None) -> str:
    """A cost as the CSV writes it: ``0.0123``, without the float's noise in the last digits; "" for None."""
    if value is None:
        return ""
    return repr(round(float(value), 10))


def _same(cell: str) -> str:
    return cell


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def write_jsonl(
    conn: Connection, out: IO[str], where: ExportFilter, *, progress: Callable[[int], None] | None = None
) -> int:
    """Write one JSON object per task (oldest first): the CSV's fields, then every follow-up, every round with its
    evaluations, every run (outcome) in full, and every vote event (a feedback reaction added or removed, or a
    ``record_feedback``) with its time, for pulls that want more than the latest round. Returns the number of tasks.
    ``progress`` is called with the number of tasks of each page written."""
    f, a, e, o = _follow_ups, _assignments, _evaluations, _outcomes
    count = 0
    r: Any  # a row of each query in turn
    for rows in iter_pages(conn, where):
        ids = [row.id for row in rows]
        follow_ups: dict[int, list[dict[str, Any]]] = {}
        for r in conn.execute(
            select(f.c.task_id, f.c.ts, f.c.user_id, f.c.text, f.c.posted_at)
            .where(f.c.task_id.in_(ids))
            .order_by(f.c.ts)
        ):
            follow_ups.setdefault(r.task_id, []).append(
                {"ts": r.ts, "user_id": r.user_id, "text": r.text, "posted_at": _iso(r.posted_at)}
            )
        rounds: dict[int, list[dict[str, Any]]] = {}
        by_id: dict[str, dict[str, Any]] = {}
        for r in conn.execute(
            select(a.c.task_id, a.c.id, a.c.agent, a.c.confidence, a.c.recorded_at)
            .where(a.c.task_id.in_(ids))
            .order_by(a.c.recorded_at, a.c.id)
        ):
            entry = {
                "id": r.id,
                "assigned_agent": r.agent,
                "confidence": r.confidence,
                "recorded_at": _iso(r.recorded_at),
                "evaluations": {},
            }
            rounds.setdefault(r.task_id, []).append(entry)
            by_id[r.id] = entry
        for start in range(0, len(by_id), 500):
            chunk = list(by_id)[start : start + 500]
            for r in conn.execute(
                select(e.c.assignment_id, e.c.agent, e.c.confidence).where(e.c.assignment_id.in_(chunk))
            ):
                by_id[r.assignment_id]["evaluations"][r.agent] = r.confidence
        runs: dict[int, list[dict[str, Any]]] = {}
        for r in conn.execute(
            select(o.c.task_id, o.c.id, o.c.agent, o.c.success, o.c.execution_time, o.c.error_message, o.c.started_at,
                   o.c.finished_at, o.c.input_tokens, o.c.output_tokens, o.c.cost)
            .where(o.c.task_id.in_(ids))
            .order_by(o.c.finished_at, o.c.id)
        ):  # fmt: skip
            runs.setdefault(r.task_id, []).append(
                {
                    "id": r.id,
                    "agent": r.agent,
                    "success": r.success,
                    "execution_time": r.execution_time,
                    "error_message": r.error_message,
                    "started_at": _iso(r.started_at),
                    "finished_at": _iso(r.finished_at),
                    "input_tokens": r.input_tokens,
                    "output_tokens": r.output_tokens,
                    "cost": r.cost,
                }
            )
        votes: dict[int, list[dict[str, Any]]] = {}
        v = _feedback.c
        for r in conn.execute(
            select(v.task_id, v.user_id, v.item_ts, v.reaction, v.positive, v.added, v.given_at)
            .where(v.task_id.in_(ids))
            .order_by(v.given_at, v.id)
        ):
            votes.setdefault(r.task_id, []).append(
                {
                    "user_id": r.user_id,
                    "item_ts": r.item_ts,
                    "reaction": r.reaction or None,
                    "positive": r.positive,
                    "removed": not r.added,
                    "at": _iso(r.given_at),
                }
            )
        for row in rows:
            record = {
                "timestamp": _iso(row.requested_at),
                "team_id": row.team_id,
                "channel_id": row.channel_id,
                "thread_ts": row.thread_ts,
                "user_id": row.user_id,
                "request": row.request_text,
                "assigned_agent": row.agent,
                "confidence": row.confidence,
                "success": row.success,
                "execution_time": row.execution_time,
                "error_message": row.error_message,
                "input_tokens": row.input_tokens,
                "output_tokens": row.output_tokens,
                "cost": row.cost,
                "follow_ups": follow_ups.get(row.id, []),
                "rounds": rounds.get(row.id, []),
                "runs": runs.get(row.id, []),
                "feedback_up": row.feedback_up,
                "feedback_down": row.feedback_down,
                "requester_feedback": row.requester_feedback,
                "votes": votes.get(row.id, []),
            }
            out.write(json.dumps(record, ensure_ascii=False))
            out.write("\n")
        count += len(rows)
        if progress is not None:
            progress(len(rows))
    return count
