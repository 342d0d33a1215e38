"""``slack-tasklog demo`` end to end, through click, and the Slack app manifest shipped with the project."""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from slack_tasklog import CSV_COLUMNS, DEFAULT_UNASSIGNED_ERROR, __version__
from slack_tasklog.cli.main import main

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"
SCOPES = {
    "app_mentions:read",
    "channels:history",
    "groups:history",
    "im:history",
    "mpim:history",
    "chat:write",
    "commands",
    "files:write",
    "users:read",
    "im:write",
    "reactions:read",
}
# What the orchestrator and the GitHub bot said, and the channel chatter: never in the log.
NOT_TASKS = ("is on it", "could not finish", "no agent is confident", "Draft ready", "PR #482", "Deploy of", "lunch")
BOT_EVENTS = {
    "app_mention",
    "app_home_opened",
    "message.channels",
    "message.groups",
    "message.im",
    "message.mpim",
    "reaction_added",
    "reaction_removed",
}
# Commented out in the manifest, for the user who adds a Bolt Assistant to uncomment.
ASSISTANT_SCOPES = {"assistant:write"}
ASSISTANT_EVENTS = {"assistant_thread_started", "assistant_thread_context_changed"}

# The script's requests, by their first words: (user, assigned agent, success, follow-ups, attempts).
EXPECTED = {
    "can you research": ("U01ALICE", "Grok", "true", 2, 1),
    "please draft": ("U02BOB", "Writer", "true", 1, 1),
    "build a script": ("U03CAROL", "Writer", "true", 2, 2),
    "what's the weather": ("U04DAVE", "", "false", 1, 1),
    "the login test": ("U05ERIN", "Builder", "true", 1, 1),
}


def run_demo(directory: Path) -> list[dict[str, str]]:
    result = CliRunner().invoke(main, ["demo", "--dir", str(directory), "--quiet"])
    assert result.exit_code == 0, result.output
    csv_path = directory / "tasks.csv"
    assert result.output.strip() == str(csv_path)
    assert csv_path.exists()
    text = csv_path.read_text(encoding="utf-8")
    assert text.startswith(
        "timestamp,user_id,request,assigned_agent,confidence,other_agents_confidence,success,execution_time,"
        "error_message,follow_ups"
    )
    for said in NOT_TASKS:
        assert said not in text
    with csv_path.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        return list(reader)


def by_request(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    found = {}
    for row in rows:
        (start,) = [start for start in EXPECTED if row["request"].startswith(start)]
        found[start] = row
    return found


def test_demo_exports_one_row_per_task(tmp_path: Path) -> None:
    rows = run_demo(tmp_path / "demo")

    assert len(rows) == len(EXPECTED)
    tasks = by_request(rows)
    assert tasks.keys() == EXPECTED.keys()
    for start, (user, agent, success, follow_ups, attempts) in EXPECTED.items():
        row = tasks[start]
        assert (row["user_id"], row["assigned_agent"], row["success"]) == (user, agent, success), row
        assert (int(row["follow_ups"]), int(row["attempts"])) == (follow_ups, attempts), row
        assert row["team_id"] == "T0DEMO"
        assert not row["request"].startswith("<@")  # the bot's own mention is stripped
    for row in rows:
        if row["success"] == "true":
            assert row["error_message"] == ""
            assert float(row["execution_time"]) > 0
            assert int(row["confidence"]) >= 50

    unassigned = tasks["what's the weather"]
    assert unassigned["error_message"] == DEFAULT_UNASSIGNED_ERROR == "No agent confident enough"
    assert unassigned["confidence"] == ""
    assert {pair.split(":")[0] for pair in unassigned["other_agents_confidence"].split(";")} == {
        "Grok",
        "Writer",
        "Builder",
    }

    # The Builder failed, the user asked again in the thread, and the Writer took it: the row shows that round.
    rerouted = tasks["build a script"]
    assert {pair.split(":")[0] for pair in rerouted["other_agents_confidence"].split(";")} == {"Grok", "Builder"}

    assert [row["timestamp"] for row in rows] == sorted(row["timestamp"] for row in rows)


def test_demo_is_reproducible(tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    second = run_demo(tmp_path)

    assert len(second) == len(first) == len(EXPECTED)
    assert {row["request"] for row in second} == {row["request"] for row in first}


def test_demo_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert "Recorded 5 tasks with 7 follow-ups; the other 21 events were ignored: 7 redeliveries," in result.output
    assert "Grok 1, Writer 2, Builder 1; 1 unassigned" in result.output
    assert str(tmp_path / "tasks.csv") in result.output


def test_demo_leaves_a_database_it_did_not_make_alone(tmp_path: Path) -> None:
    precious = tmp_path / "tasklog.db"
    precious.write_bytes(b"not the demo's")

    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path)])

    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert precious.read_bytes() == b"not the demo's"


def test_a_database_url_that_is_none_is_refused_as_the_other_commands_refuse_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path), "--database-url", "not a url"])

    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "Error: Invalid value for '--database-url': not a database URL: write sqlite:///PATH, "
        "postgresql+psycopg://USER@HOST/DB or mysql+pymysql://USER@HOST/DB"
    )
    assert "Traceback" not in result.output


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])

    assert result.exit_code == 0
    assert result.output.strip() == f"slack-tasklog {__version__}"


# -- the Slack app manifest -------------------------------------------------------------------------------------


def bot_scopes_from_text(text: str) -> set[str]:
    """The ``oauth_config.scopes.bot`` list, read without a YAML parser: the ``- item`` lines under ``bot:``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "bot:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    scopes = set()
    for line in lines[start + 1 :]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        item = line.split("#", 1)[0].strip()
        if item.startswith("- "):
            scopes.add(item[2:].strip())
    return scopes


def test_manifest_has_the_scopes_as_text() -> None:
    text = MANIFEST.read_text(encoding="utf-8")

    assert bot_scopes_from_text(text) == SCOPES
    for line in ("major_version: 1", "command: /tasklog", "socket_mode_enabled: true", "org_deploy_enabled: false"):
        assert line in text
    for event in BOT_EVENTS:
        assert f"- {event}\n" in text


@pytest.mark.skipif(importlib.util.find_spec("yaml") is None, reason="PyYAML is not installed")
def test_manifest_parses() -> None:
    import yaml

    manifest: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))

    assert manifest["_metadata"] == {"major_version": 1}
    assert manifest["display_information"]["name"]
    assert manifest["features"]["bot_user"]["display_name"]
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/tasklog"
    assert command["description"] == "Task log stats and CSV export"
    assert command["usage_hint"] == "stats [7d] | stats chart [30d] | export [30d] | help"
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == SCOPES
    assert len(manifest["oauth_config"]["scopes"]["bot"]) == len(SCOPES)
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == BOT_EVENTS
    assert settings["socket_mode_enabled"] is True
    assert "interactivity" not in settings  # nothing uses buttons or modals
    assert settings["org_deploy_enabled"] is False
    assert "assistant_view" not in manifest["features"]


def opted_in_to_the_assistant(text: str) -> str:
    """The manifest with its commented Assistant lines uncommented, as its comment tells the user to do."""
    return re.sub(r"^(\s*)# (?=- assistant|assistant_view:|  assistant_description:)", r"\1", text, flags=re.MULTILINE)


@pytest.mark.skipif(importlib.util.find_spec("yaml") is None, reason="PyYAML is not installed")
def test_the_manifest_opts_into_the_assistant_by_uncommenting_its_lines() -> None:
    import yaml

    manifest: dict[str, Any] = yaml.safe_load(opted_in_to_the_assistant(MANIFEST.read_text(encoding="utf-8")))

    assert manifest["features"]["assistant_view"]["assistant_description"]
    assert manifest["features"]["bot_user"]["display_name"]
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == SCOPES | ASSISTANT_SCOPES
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == BOT_EVENTS | ASSISTANT_EVENTS
