"""The latest-round rule's pure parts: how a round's other agents are written down."""

from __future__ import annotations

from slack_tasklog.storage.rounds import number_text, other_agents


def test_other_agents_are_the_most_confident_first_ties_by_name_none_last() -> None:
    evaluations = [("Grok", 8.0), ("Writer", None), ("Builder", 8.0), ("Zed", 40.5), ("Ace", 1e-7)]
    assert other_agents(evaluations, "Grok") == "Zed:40.5;Builder:8;Ace:1e-07;Writer:"
    assert other_agents(evaluations[:3], None) == "Builder:8;Grok:8;Writer:"
    assert other_agents([("Grok", 90.0)], "Grok") == ""


def test_whole_confidences_are_written_without_a_fraction() -> None:
    assert [number_text(value) for value in (None, 0.0, 8, 8.0, 40.5, 100.0)] == ["", "0", "8", "8", "40.5", "100"]
