"""A bot that starts on a SQLite database made read-only by a permission, then has it fixed:
``python -m tests.writer._read_only_bot DB_PATH file|folder SECONDS``.

Run without the capabilities that let root ignore file modes (``setpriv --bounding-set -dac_override,...``), as the
owner of the files, so a mode denies it what it denies any bot and the bot can put the mode back itself. Prints one
JSON line: what happened while read-only, and after.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from slack_tasklog import TaskLog
from slack_tasklog.testing import app_mention, event_body, signed_request
from sqlalchemy import text

from tests._workers import build

EVENTS = 20


class Attempts(logging.Handler):
    """Counts the writer's failed attempts, as its log reports them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("slack_tasklog: write attempt failed"):
            self.count += 1


def main(db: Path, what: str, seconds: float) -> dict[str, object]:
    target, read_only, writable = (db, 0o400, 0o600) if what == "file" else (db.parent, 0o500, 0o700)
    target.chmod(read_only)
    attempts = Attempts()
    logger = logging.getLogger("slack_tasklog")
    logger.addHandler(attempts)
    logger.setLevel(logging.DEBUG)
    tasklog = TaskLog(f"sqlite:///{db}")
    app, _, _ = build(tasklog)
    for i in range(EVENTS):
        body = event_body(app_mention("while read-only", ts=f"1700000000.{i:06d}"))
        assert app.dispatch(signed_request(body)).status == 200
    time.sleep(seconds)
    written_while_read_only = tasklog.flush(0)
    attempts_while_read_only = attempts.count
    target.chmod(writable)
    landed = tasklog.flush(20)
    with tasklog.engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM tasklog_tasks")).scalar_one()
    closed = tasklog.close()
    return {
        "written_while_read_only": written_while_read_only,
        "attempts": attempts_while_read_only,
        "landed": landed,
        "rows": rows,
        "closed": closed,
        "dropped": tasklog.health().dropped,
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]))))
