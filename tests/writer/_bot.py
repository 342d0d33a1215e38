"""A bot process with the defaults, ``TaskLog(url)``, for the kill -9 tests: ``python -m tests.writer._bot URL``.

It records lifecycles and prints the number of each one whose record calls have all returned, until killed.
"""

from __future__ import annotations

import sys

from slack_tasklog import TaskLog

from tests._workers import lifecycles

if __name__ == "__main__":
    tasklog = TaskLog(sys.argv[1])
    lifecycles(3, 1_000_000, tasklog, progress=True)
    tasklog.close()
