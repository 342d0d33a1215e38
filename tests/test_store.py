"""The store's own fast paths agree with SQLAlchemy's."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from sqlalchemy.dialects import sqlite

from slack_tasklog._bulk import sqlite_utc
from slack_tasklog._models import Task


def test_sqlite_datetimes_are_stored_exactly_as_sqlalchemy_stores_them() -> None:
    dialect = sqlite.dialect()
    reference = Task.__table__.c.requested_at.type.dialect_impl(dialect).bind_processor(dialect)
    generator = random.Random(7)
    plus_two = timezone(timedelta(hours=2))
    values = [datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=plus_two)]
    for _ in range(2_000):
        seconds = generator.uniform(0, 4_000_000_000)
        values.append(datetime.fromtimestamp(seconds, timezone.utc))
        values.append(datetime.fromtimestamp(round(seconds), plus_two))
    for value in values:
        assert sqlite_utc(value) == reference(value), value
    assert sqlite_utc(None) is None
