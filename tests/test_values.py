"""Values as the task log stores them: one check, whichever layer the value comes from."""

from __future__ import annotations

from slack_tasklog.values import amount, confidence, exception_type, token_count, ts_seconds


def test_a_slack_ts_that_is_no_time_falls_back() -> None:
    # A task's request time comes from its ts; one a datetime cannot hold must not sink the writer's batch.
    assert ts_seconds("1700000000.000100", 5.0) == 1700000000.0001
    assert ts_seconds("-86400", 5.0) == -86400.0
    for garbage in ("nan", "inf", "-inf", "1e400", "1e20", "-1e20", "abc", ""):
        assert ts_seconds(garbage, 5.0) == 5.0, garbage


def test_a_token_count_is_a_whole_number_within_a_bigint() -> None:
    assert [token_count(v) for v in (0, 12, 2**63 - 1)] == [0, 12, 2**63 - 1]
    for refused in (-1, 2**63, 12.0, True, "12", None):
        assert token_count(refused) is None, refused


def test_an_amount_is_a_finite_number_from_zero() -> None:
    assert [amount(v) for v in (0, 3, 0.5)] == [0.0, 3.0, 0.5]
    for refused in (-0.01, float("nan"), float("inf"), 10**400, True, "1", None):
        assert amount(refused) is None, refused


def test_a_confidence_is_a_percent() -> None:
    # One rule for the decorators (after reading a bot's text or Decimal as a number), a journal and an import.
    assert [confidence(v) for v in (0, 80, 92.5, 100)] == [0.0, 80.0, 92.5, 100.0]
    for refused in (-1, 100.5, float("nan"), float("inf"), 10**400, True, "80", None):
        assert confidence(refused) is None, refused


def test_an_exception_type_is_the_python_name_an_error_message_starts_with() -> None:
    # What a deleted request's runs, and every run under store_text=False, keep of their errors.
    assert exception_type("ValueError: cannot parse 'pay Bob'") == "ValueError"
    assert exception_type("requests.exceptions.HTTPError: 500") == "requests.exceptions.HTTPError"
    assert exception_type("FehlerÄ: Zahlung an Bob") == "FehlerÄ"  # any identifier Python allows
    assert exception_type("TimeoutError") == "TimeoutError"
    for no_name in ("could not pay Bob: declined", "my-error: x", "a..b: x", "", "x" * 101, "a." * 10 + "b: x"):
        assert exception_type(no_name) is None, no_name
