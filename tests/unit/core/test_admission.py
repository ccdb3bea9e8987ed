"""Admission of deferred requests from the measured drain rate, on a fake clock."""

from __future__ import annotations

from datetime import timedelta

from numident.core.admission import DrainMeter, admit
from numident.core.clock import FakeClock

TWENTY_MINUTES = timedelta(minutes=20)


def run_batch(meter: DrainMeter, clock: FakeClock, seconds: float, answered: int) -> None:
    started = clock.now()
    clock.advance(seconds)
    meter.record(started, clock.now(), answered)


def test_meter_starts_from_the_configured_check_time() -> None:
    """Before any answer is measured, the rate is workers over the configured seconds."""
    meter = DrainMeter(workers=4, prior_seconds=2.0)
    assert not meter.measured
    assert meter.answers_per_second == 2.0


def test_meter_reports_what_the_gateway_really_answers() -> None:
    """A gateway configured for instant checks that answers 156/s is rated at 156/s."""
    clock = FakeClock()
    meter = DrainMeter(workers=4, prior_seconds=0.001)
    for _ in range(10):
        run_batch(meter, clock, 16 / 156, 16)
    assert meter.measured
    assert abs(meter.answers_per_second - 156) < 0.01  # datetimes hold microseconds


def test_meter_scales_a_lightly_loaded_batch_to_all_workers() -> None:
    """One request answered in 0.5 s by one of four workers means 8 answers/s of capacity."""
    clock = FakeClock()
    meter = DrainMeter(workers=4, prior_seconds=10)
    run_batch(meter, clock, 0.5, 1)
    assert meter.answers_per_second == 8.0


def test_meter_window_forgets_old_batches() -> None:
    """Only the last ``window`` batches count: a gateway that slowed down is rated slower."""
    clock = FakeClock()
    meter = DrainMeter(workers=1, prior_seconds=1, window=3)
    for _ in range(5):
        run_batch(meter, clock, 0.1, 1)
    for _ in range(3):
        run_batch(meter, clock, 1.0, 1)
    assert meter.answers_per_second == 1.0


def test_admission_accepts_what_the_measured_rate_answers_in_time() -> None:
    """At 10 answers/s, 8,999 requests ahead still fit in 15 of the 20 minutes."""
    decision = admit(ahead=8_999, items=1, answers_per_second=10, deadline=TWENTY_MINUTES,
                     pending=8_999, max_pending=100_000)
    assert decision.accepted
    assert decision.expected_wait == 900.0


def test_admission_refuses_at_once_what_could_not_be_answered_in_time() -> None:
    """One more than fits is refused, with Retry-After the time until it would fit."""
    refused = admit(ahead=9_000, items=1, answers_per_second=10, deadline=TWENTY_MINUTES,
                    pending=9_000, max_pending=100_000)
    assert not refused.accepted
    assert refused.retry_after == 1
    # The queue of ten minutes beyond the budget: Retry-After says ten minutes, not 2 s.
    far = admit(ahead=15_000, items=1, answers_per_second=10, deadline=TWENTY_MINUTES,
                pending=15_000, max_pending=100_000)
    assert far.retry_after == 601
    assert far.expected_wait == 1500.1


def test_admission_of_a_batch_needs_room_for_all_of_it() -> None:
    """A batch is accepted or refused whole, by the time its last item would be answered."""
    decision = admit(ahead=8_100, items=1000, answers_per_second=10, deadline=TWENTY_MINUTES,
                     pending=8_100, max_pending=100_000)
    assert not decision.accepted
    assert decision.retry_after == 10


def test_admission_respects_the_queue_bound() -> None:
    """A full queue refuses even when answers are instant, until enough of it has drained."""
    refused = admit(ahead=10, items=1, answers_per_second=1000, deadline=TWENTY_MINUTES,
                    pending=10, max_pending=10)
    assert not refused.accepted
    assert refused.retry_after == 1
    assert admit(ahead=9, items=1, answers_per_second=1000, deadline=TWENTY_MINUTES,
                 pending=9, max_pending=10).accepted


def test_a_measured_slowdown_turns_acceptance_into_refusal() -> None:
    """A queue that fits at the configured 4,000/s is refused at the measured 156/s."""
    clock = FakeClock()
    meter = DrainMeter(workers=4, prior_seconds=0.001)
    before = admit(ahead=200_000, items=1, answers_per_second=meter.answers_per_second,
                   deadline=TWENTY_MINUTES, pending=200_000, max_pending=1_000_000)
    for _ in range(5):
        run_batch(meter, clock, 16 / 156, 16)
    after = admit(ahead=200_000, items=1, answers_per_second=meter.answers_per_second,
                  deadline=TWENTY_MINUTES, pending=200_000, max_pending=1_000_000)
    assert before.accepted
    assert not after.accepted
    assert after.retry_after == 383  # 200,001 / 156 = 1282.1 s, 382.1 s over the budget
