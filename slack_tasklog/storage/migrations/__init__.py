"""slack_tasklog's Alembic environment: ``env.py``, ``script.py.mako`` and ``versions/``.

Run through ``slack-tasklog db ...`` or :mod:`slack_tasklog.storage.migrate`, which find this folder as a package
resource
and keep the version in a table of our own, ``tasklog_alembic_version``.
"""
