"""The ``slack-tasklog`` command: a ``click`` group of small commands.

Every command fails the same way: one line on stderr (``Error: ...``) and exit status 1, never a traceback; the
traceback goes to the ``slack_tasklog`` logger at debug level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._internal import logger
from ._version import __version__

__all__ = ["main"]

_MAX_ERROR = 300


class _Group(click.Group):
    """A group whose commands report any failure as one line and a non-zero exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own: already one line (or a deliberate exit)
        except Exception as error:
            logger.debug("slack-tasklog: command failed", exc_info=True)
            raise click.ClickException(_one_line(error)) from error


def _one_line(error: BaseException) -> str:
    """``str(error)``'s first line (database errors add the SQL and a link below it), or the type's name."""
    text = str(error).strip().split("\n", 1)[0][:_MAX_ERROR]
    return text or type(error).__name__


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
    help="Record into this database instead of DIR/tasklog.db; it is added to, never cleared. "
    "The demo does not read $TASKLOG_DATABASE_URL, so it never writes into your bot's task log by accident.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the CSV path.")
def demo(directory: Path, database_url: str | None, quiet: bool) -> None:
    """Run a scripted Slack conversation through a real Bolt app, offline, and export its task log as CSV.

    An orchestrator routes mentions to three agents (Grok, Writer, Builder); the script has follow-ups, a Slack
    retry, bots talking, a failing agent, a request nobody takes and a task routed again after a failure.
    """
    from ._demo import format_summary, run_demo

    result = run_demo(directory, database_url=database_url)
    click.echo(result.csv_path if quiet else format_summary(result))
