"""Reading the task log: statistics and exports.

Both count a task by its latest round and that round's outcome (see :mod:`slack_tasklog.storage.rounds`), so the
stats and the CSV always agree. They take a SQLAlchemy ``Connection`` to the task log's database, such as
``tasklog.connect()``.

Example::

    from datetime import datetime, timedelta, timezone

    from slack_tasklog.reports import ExportFilter, compute_stats, write_csv

    with tasklog.connect() as conn:
        stats = compute_stats(conn, since=datetime.now(timezone.utc) - timedelta(days=7), team_id="T111")
        print(stats.tasks, stats.success_rate)
        for agent in stats.agents:
            print(agent.agent, agent.tasks, agent.success_rate, agent.median_execution_time)
        with open("tasks.csv", "w", newline="", encoding="utf-8") as out:
            write_csv(conn, out, ExportFilter(since="2024-01-01", agent="Grok"))
"""

from slack_tasklog.reports.export import CSV_COLUMNS, ExportFilter, write_csv, write_jsonl
from slack_tasklog.reports.stats import DEFAULT_BANDS, AgentStats, Band, Day, Failure, Stats, Usage, compute_stats
from slack_tasklog.storage.rounds import parse_other_agents

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_BANDS",
    "AgentStats",
    "Band",
    "Day",
    "ExportFilter",
    "Failure",
    "Stats",
    "Usage",
    "compute_stats",
    "parse_other_agents",
    "write_csv",
    "write_jsonl",
]
