"""Whose vote counts, and what a task's votes add up to: pure decisions, no I/O.

- A vote event is a feedback reaction added or removed (or a ``record_feedback`` call) by one person on one message
  of a task's thread. For each (person, message, emoji) the latest event says whether that reaction is in place.
- A person's vote on the task is their latest reaction still in place: reacting 👍 then 👎 is a vote down; removing
  the 👎 again leaves the 👍, a vote up; removing every one takes the vote back.
- The requester's vote is kept apart from the others' (``requester``; ``up`` and ``down`` count the others).
- The task's verdict: the requester's vote if they gave one, else the others' majority (None on a tie or no votes).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from slack_tasklog.values import ts_seconds

__all__ = ["Tally", "tally_votes", "verdict_of", "votes_of"]


class Tally(NamedTuple):
    """A task's votes as the task row keeps them."""

    up: int  #: people other than the requester voting up
    down: int  #: ... and down
    requester: bool | None  #: the requester's own vote, None if they gave none


def votes_of(events: Iterable[tuple[str, str, str, str, bool, bool]]) -> dict[str, bool]:
    """Each person's vote (True: up) from a task's vote events ``(user, item_ts, reaction, ts, added, positive)``.

    >>> votes_of([("U1", "1.0", "+1", "5.0", True, True), ("U1", "1.0", "-1", "6.0", True, False)])
    {'U1': False}
    """
    reactions: dict[tuple[str, str, str], tuple[float, bool, bool]] = {}
    for user, item_ts, reaction, ts, added, positive in events:
        key = (user, item_ts, reaction)
        at = ts_seconds(ts, 0.0)  # a ts that is not a time: before every other
        held = reactions.get(key)
        # On the same ts, a removal wins: Slack never sends both at once, a journal replay may repeat either.
        if held is None or (at, not added) > (held[0], not held[1]):
            reactions[key] = (at, bool(added), bool(positive))
    # Two reactions of one person at the same time (a journal, an import) are told apart by message and emoji, so
    # that the answer never depends on the order the events came in.
    latest: dict[str, tuple[float, str, str, bool]] = {}
    for (user, item_ts, reaction), (at, in_place, positive) in reactions.items():
        candidate = (at, item_ts, reaction, positive)
        if in_place and (user not in latest or candidate > latest[user]):
            latest[user] = candidate
    return {user: vote[3] for user, vote in latest.items()}


def tally_votes(votes: dict[str, bool], requester: str) -> Tally:
    """What the task row keeps of ``votes`` (see :class:`Tally`)."""
    others = [positive for user, positive in votes.items() if user != requester]
    return Tally(sum(others), len(others) - sum(others), votes.get(requester))


def verdict_of(up: int | None, down: int | None, requester: bool | None) -> bool | None:
    """The task's verdict: the requester's vote, else the others' majority; None if neither says.

    >>> verdict_of(0, 3, True), verdict_of(2, 1, None), verdict_of(1, 1, None)
    (True, True, None)
    """
    if requester is not None:
        return bool(requester)
    up, down = up or 0, down or 0
    return None if up == down else up > down
