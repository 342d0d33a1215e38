"""Runnable example bots wired to ``slack_tasklog``; each module's docstring says how to run it.

They are a package so that the tests (``tests/examples/``) can import them and run each one against a fake Slack.
"""
