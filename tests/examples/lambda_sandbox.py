"""A Lambda sandbox in a process of its own, for the FaaS tests: ``python -m tests.examples.lambda_sandbox``.

It builds ``examples/aws_lambda.py``'s handler (cold start), then for each API Gateway event read from stdin (one
JSON line) calls it with a Lambda context, prints the response as one JSON line and freezes itself (SIGSTOP), as
Lambda freezes the sandbox once the handler returns: nothing, not even a background thread, runs until the parent
thaws it (SIGCONT) for the next invocation, or kills it. ``$TASKLOG_DATABASE_URL`` names the database;
``--api-url`` the fake Slack Web API; ``--no-write-through`` makes the negative control.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from slack_sdk import WebClient
from slack_tasklog import TaskLog

from tests.examples.slack_side import LambdaContext, ensure_boto3_importable


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--no-write-through", action="store_true")
    args = parser.parse_args()
    assert "AWS_LAMBDA_FUNCTION_NAME" in os.environ, "not a Lambda sandbox"
    ensure_boto3_importable()
    from examples import aws_lambda

    tasklog = TaskLog(journal=False, write_through=False) if args.no_write_through else None
    handler = aws_lambda.build_handler(tasklog, client=WebClient(token="xoxb-test", base_url=args.api_url))
    for line in sys.stdin:
        response = handler.handle(json.loads(line), LambdaContext())
        print(json.dumps(response), flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)


if __name__ == "__main__":
    main()
