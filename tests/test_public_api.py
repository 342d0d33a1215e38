"""The public names, pinned (as httpx does): adding or removing one is a decision, made here and in the CHANGELOG."""

from __future__ import annotations

import importlib
import inspect
import types

import pytest

PUBLIC = {
    "slack_tasklog": [
        "CSV_COLUMNS",
        "DEFAULT_DATABASE_URL",
        "DEFAULT_UNASSIGNED_ERROR",
        "ArgumentGetter",
        "Erasure",
        "Health",
        "MigrationRequiredError",
        "RunGetter",
        "SchemaNotReadyError",
        "TaskLog",
        "TaskLogMiddleware",
        "__version__",
        "capture_event",
        "get_default_tasklog",
        "strip_leading_mention",
        "tasklog_middleware",
        "track_assignment",
        "track_outcome",
    ],
    "slack_tasklog.reports": [
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
    ],
    "slack_tasklog.testing": [
        "SIGNING_SECRET",
        "FakeSlackAPI",
        "RecordedCall",
        "UploadedFile",
        "app_mention",
        "async_signed_request",
        "event_body",
        "message",
        "reaction",
        "signed_headers",
        "signed_request",
        "slash_command_body",
        "unique_ts",
    ],
    "slack_tasklog.integrations.prometheus": ["instrument"],
    "slack_tasklog.integrations.otel": ["instrument", "task_context", "task_ids"],
    "slack_tasklog.events": [
        "AssignmentRecorded",
        "Event",
        "FeedbackGiven",
        "MessageDeleted",
        "MessageInThread",
        "OutcomeRecorded",
        "TaskRequested",
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_names_are_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC[module_name])


@pytest.mark.parametrize(("module_name", "name"), [(m, n) for m, names in PUBLIC.items() for n in names])
def test_every_public_name_exists_and_functions_and_classes_say_what_they_do(module_name: str, name: str) -> None:
    value = getattr(importlib.import_module(module_name), name)
    # A type alias (Callable[...]) is documented by its #: comment; Python 3.10 takes it for a class.
    if (inspect.isclass(value) and not isinstance(value, types.GenericAlias)) or inspect.isfunction(value):
        assert inspect.getdoc(value), f"{module_name}.{name} has no docstring"


def test_the_sync_package_does_not_import_aiohttp() -> None:
    import subprocess
    import sys

    code = "import sys, slack_tasklog, slack_tasklog.reports; print('aiohttp' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
