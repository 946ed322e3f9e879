"""The general outbox's rules (domain/outbox.py): backoff, ordered acknowledgement, inputs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import outbox
from domain.errors import DomainError

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
BACKOFF = outbox.Backoff(timedelta(seconds=5), timedelta(minutes=15))


def test_backoff_doubles_from_the_first_wait_and_stops_at_the_cap():
    assert [BACKOFF.delay(n).total_seconds() for n in range(1, 10)] == [5, 10, 20, 40, 80, 160, 320, 640, 900]
    assert BACKOFF.delay(10_000) == timedelta(minutes=15)  # a week-long outage: no overflow, still the cap
    assert BACKOFF.delay(0) == timedelta(0)


@given(st.integers(min_value=1, max_value=500))
def test_backoff_never_shrinks_and_never_passes_the_cap(n):
    assert BACKOFF.delay(n) <= BACKOFF.delay(n + 1) <= BACKOFF.cap


def test_a_failed_batch_keeps_the_position_and_waits_longer_each_time():
    state = outbox.Delivery(position=40)
    assert state.due(NOW)
    once = state.failed("HTTP 500: boom", NOW, BACKOFF)
    assert (once.position, once.attempts, once.next_attempt_at, once.last_error) == (
        40, 1, NOW + timedelta(seconds=5), "HTTP 500: boom")
    assert not once.due(NOW) and once.due(NOW + timedelta(seconds=5))
    twice = once.failed("ConnectError", NOW + timedelta(seconds=5), BACKOFF)
    assert (twice.position, twice.attempts, twice.next_attempt_at) == (40, 2, NOW + timedelta(seconds=15))


def test_an_acknowledged_batch_moves_the_position_and_clears_the_retries():
    failing = outbox.Delivery(position=40, delivered=7).failed("HTTP 503", NOW, BACKOFF)
    done = failing.acknowledged(57, 3)
    assert (done.position, done.attempts, done.next_attempt_at, done.last_error, done.delivered) == (
        57, 0, None, None, 10)
    assert done.due(NOW)
    with pytest.raises(ValueError, match="never goes back"):
        done.acknowledged(56, 1)


def test_a_paused_subscriber_is_never_due():
    assert not outbox.Delivery(position=0, paused=True).due(NOW + timedelta(days=365))


@given(st.lists(st.booleans(), max_size=40))
def test_whatever_the_answers_the_position_only_moves_forward_to_acknowledged_batches(answers):
    """A run of attempts on batches of 3 events: the position is always the end of the last
    acknowledged batch, so the next batch starts right after it (ordered, nothing skipped)."""
    state, now, acked_ends = outbox.Delivery(position=0), NOW, [0]
    for ok in answers:
        if ok:
            state = state.acknowledged(state.position + 3, 3)
            acked_ends.append(state.position)
        else:
            state = state.failed("HTTP 500", now, BACKOFF)
            now = state.next_attempt_at
        assert state.position == acked_ends[-1]
    assert state.delivered == 3 * (len(acked_ends) - 1)


@pytest.mark.parametrize("name", ["erp", "dwh.events", "a-b_c", "x" * 100])
def test_names_that_are_accepted(name):
    assert outbox.check_name(name) == name


@pytest.mark.parametrize("name", ["", "ERP", "-erp", "erp hooks", "x" * 101, "ërp", None])
def test_names_that_are_refused(name):
    with pytest.raises(DomainError) as error:
        outbox.check_name(name)
    assert error.value.field == "name"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hooks", "https://erp.example.com/collections?x=1"])
def test_webhooks_that_are_accepted(url):
    assert outbox.check_url(url) == url


@pytest.mark.parametrize("url", ["", "ftp://erp.example.com/", "erp.example.com", "http://", "https://:80/x",
                                 "http://host:99999/", "http://ho st/", "javascript:alert(1)"])
def test_webhooks_that_are_refused(url):
    with pytest.raises(DomainError) as error:
        outbox.check_url(url)
    assert error.value.field == "url"


def test_types_are_known_types_in_the_order_given_without_repeats():
    known = {"CaseOpened", "CaseClosed", "CustomerPutOnHold"}
    assert outbox.check_types("CaseClosed, CaseOpened,CaseClosed", known) == ("CaseClosed", "CaseOpened")
    assert outbox.check_types(["CustomerPutOnHold"], known) == ("CustomerPutOnHold",)
    for bad in ("", " , ", "CaseOpened,Nope", []):
        with pytest.raises(DomainError) as error:
            outbox.check_types(bad, known)
        assert error.value.field == "types"


@pytest.mark.parametrize("position", [-1, 2**53, True, "3"])
def test_from_position_is_a_position(position):
    with pytest.raises(DomainError) as error:
        outbox.check_position(position)
    assert error.value.field == "from_position"
