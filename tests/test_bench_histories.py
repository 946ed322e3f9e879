"""The benchmarks' generated histories come from the engine's own rules (bench/lifecycles.py):
a rule change that breaks them breaks the read-side benchmark's dataset, so it is caught here,
not at the next `make bench` (flat fees per currency did so once)."""

from __future__ import annotations

from bench.lifecycles import default_policy, history


def test_generated_histories_follow_the_current_rules():
    policy = default_policy()
    types: set[str] = set()
    for i in range(200):
        facts, appends = history(i, policy)
        events = [e for batch in appends for e in batch]
        assert events and type(events[0]).__name__ == "CaseOpened", i
        for event in events:
            fee = getattr(event, "fee", None)
            if fee is not None and hasattr(fee, "currency"):
                assert fee.currency == facts.amount.currency, (i, event)
        types.update(type(e).__name__ for e in events)
    assert {"CaseOpened", "ReminderSent", "PaymentReceived"} <= types, types
