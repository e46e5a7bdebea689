"""The KPI definitions of docs/kpis.md, on hand-built call records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pbxlink.domain.calls import CallRecord, Transfer
from pbxlink.services.kpis import ALL_QUEUES, MISS_REASONS, Tally, Targets, kpis, queue_kpis, tally_calls

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TARGETS = Targets()


def call(
    n: int,
    queue: str | None = "support",
    *,
    wait: float | None = 10.0,
    talk: float | None = 60.0,
    reason: str | None = None,
    direction: str = "inbound",
    transfers: int = 0,
    ended: bool = True,
) -> CallRecord:
    """An answered call (reason None) or a missed one (`reason`), `wait` s in the queue."""
    rec = CallRecord("main", f"c{n}", direction, T0 + timedelta(minutes=n), queue=queue)  # type: ignore[arg-type]
    rec.wait_seconds = wait
    if reason is None:
        rec.answered_at = rec.started_at + timedelta(seconds=wait or 0)
        rec.talk_seconds, rec.agent, rec.agents = talk, "201", ["201"]
        rec.transfers = [Transfer("201", "202", "blind")] * transfers
    if ended:
        rec.ended_at = rec.started_at + timedelta(minutes=2)
        rec.disposition = "answered" if reason is None else "missed"
        rec.miss_reason = reason  # type: ignore[assignment]
    return rec


def figures(*records: CallRecord, targets: Targets = TARGETS, pending: dict[str, int] | None = None):
    return queue_kpis(tally_calls(records, targets), targets, pending or {})


def test_no_calls_gives_zero_counts_and_no_rates_and_no_verdicts() -> None:
    k = figures()[ALL_QUEUES]
    assert (k.offered, k.answered, k.missed, k.abandoned) == (0, 0, 0, 0)
    assert k.missed_by_reason == dict.fromkeys(MISS_REASONS, 0)
    assert (k.abandon_rate, k.asa, k.aht, k.service_level, k.transfer_rate) == (None,) * 5
    assert (k.service_level_met, k.abandon_rate_met) == (None, None)  # nothing to judge, not "missed"
    assert list(figures()) == [ALL_QUEUES]


def test_offered_answered_missed_by_reason_and_the_means() -> None:
    calls = [
        call(1, wait=4.0, talk=100.0),
        call(2, wait=16.0, talk=200.0, transfers=1),
        call(3, wait=30.0, reason="abandoned"),
        call(4, wait=60.0, reason="queue_timeout"),
        call(5, wait=20.0, reason="no_answer"),
    ]
    k = figures(*calls)["support"]
    assert (k.offered, k.answered, k.missed) == (5, 2, 3)
    assert {r: n for r, n in k.missed_by_reason.items() if n} == {
        "abandoned": 1,
        "queue_timeout": 1,
        "no_answer": 1,
    }
    assert k.asa == 10.0  # (4 + 16) / 2: answered calls only
    assert k.aht == 150.0  # (100 + 200) / 2
    assert k.transfer_rate == 0.5
    assert k.abandon_rate == pytest.approx(1 / 5)
    assert k.service_level == pytest.approx(2 / 5)


def test_short_abandons_are_left_out_of_both_rates() -> None:
    calls = [
        call(1, wait=3.0),
        call(2, wait=4.999, reason="abandoned"),
        call(3, wait=5.0, reason="abandoned"),
        call(4, wait=None, reason="abandoned"),
        call(5, wait=2.0, reason="queue_timeout"),
    ]
    k = figures(*calls)["support"]
    assert (k.offered, k.abandoned, k.short_abandons) == (
        5,
        3,
        1,
    )  # 5.0 s is not under 5 s; unknown is not short
    assert k.abandon_rate == pytest.approx(2 / 4)  # (3 - 1) / (5 - 1)
    assert k.service_level == pytest.approx(1 / 4)  # a short queue timeout is not a misdial: still offered
    short = figures(*calls, targets=Targets(min_wait=0))["support"]
    assert short.short_abandons == 0 and short.abandon_rate == pytest.approx(3 / 5)


def test_answered_exactly_at_the_threshold_is_within_it_and_a_rate_exactly_at_its_target_is_met() -> None:
    calls = [
        call(1, wait=20.0),
        call(2, wait=20.0),
        call(3, wait=1.0),
        call(4, wait=19.9),
        call(5, wait=20.001),
    ]
    k = figures(*calls)["support"]
    assert k.service_level == 0.8 and k.service_level_met is True  # 4 of 5 is the 80% target: met
    assert figures(*calls, targets=Targets(service_level=80.1))["support"].service_level_met is False
    assert figures(*calls, targets=Targets(service_seconds=19.95))["support"].service_level == 0.4
    unknown_wait = figures(call(1, wait=None))["support"]
    assert unknown_wait.service_level == 0 and unknown_wait.asa is None  # not within, not in the mean


def test_abandon_rate_target_is_under_and_judged_per_queue_and_in_total() -> None:
    answered = [call(n, queue="sales") for n in range(19)]
    k = figures(*answered, call(19, queue="sales", reason="abandoned"))["sales"]
    assert k.abandon_rate == 0.05 and k.abandon_rate_met is False  # 5% is not under 5%
    k = figures(*answered, call(19, queue="sales"), call(20, queue="sales", reason="abandoned"))["sales"]
    assert k.abandon_rate_met is True
    both = figures(call(1, queue="a", reason="abandoned"), call(2, queue="b"))
    assert (both["a"].abandon_rate_met, both["b"].abandon_rate_met, both[ALL_QUEUES].abandon_rate) == (
        False,
        True,
        0.5,
    )


def test_only_ended_inbound_calls_that_reached_a_queue_count() -> None:
    calls = [
        call(1),
        call(2, queue=None),  # straight to an extension: no queue
        call(3, queue=""),
        call(4, direction="outbound"),  # a callback's queue is not a customer offered to it
        call(5, direction="internal"),
        call(6, ended=False),  # still up: counted once it ends
    ]
    f = figures(*calls)
    assert list(f) == ["support", ALL_QUEUES] and f["support"].offered == 1


def test_a_call_counts_once_for_its_queue_however_often_it_was_transferred() -> None:
    """The record's queue is the one the call is counted for (docs/kpis.md: which one that is today)."""
    moved = call(1, queue="support", transfers=2)
    f = figures(moved, call(2, queue="sales"))
    assert (f["support"].offered, f["support"].transfer_rate, f["sales"].offered) == (1, 1.0, 1)
    assert f[ALL_QUEUES].offered == 2 and f[ALL_QUEUES].transfer_rate == 0.5


def test_the_total_sums_the_queues_and_every_pending_callback() -> None:
    f = figures(call(1, queue="a"), call(2, queue="b", wait=40.0), pending={"a": 2, "+15550100": 3, "": 1})
    assert (f["a"].callbacks_pending, f["b"].callbacks_pending, f[ALL_QUEUES].callbacks_pending) == (2, 0, 6)
    assert f[ALL_QUEUES].service_level == 0.5 and f[ALL_QUEUES].asa == 25.0
    assert "+15550100" not in f  # a DID's callbacks: in the total only


def test_tallies_add_up_to_the_tally_of_all_their_calls() -> None:
    calls = [call(1), call(2, reason="busy"), call(3, wait=2.0, reason="abandoned"), call(4, transfers=1)]
    parts = [tally_calls(calls[:2], TARGETS)["support"], tally_calls(calls[2:], TARGETS)["support"]]
    assert parts[0] + parts[1] == tally_calls(calls, TARGETS)["support"]
    assert Tally() + parts[0] == parts[0]
    assert kpis(parts[0] + parts[1], TARGETS).to_dict()["missed_by_reason"]["busy"] == 1
