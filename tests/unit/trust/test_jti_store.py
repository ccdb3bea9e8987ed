"""The in-memory jti store: one use per identifier until it expires, bounded memory."""

from __future__ import annotations

from datetime import timedelta

import pytest

from numident.core.clock import FakeClock
from numident.trust.replay import InMemoryJtiStore, JtiStore


def test_an_identifier_is_accepted_once_until_it_expires(clock: FakeClock) -> None:
    """A second use before expiry is a replay; after expiry the entry is forgotten."""
    store: JtiStore = InMemoryJtiStore(clock)
    expires = clock.now() + timedelta(seconds=90)
    assert store.remember("chat:1", expires) is True
    assert store.remember("chat:1", expires) is False
    clock.advance(89)
    assert store.remember("chat:1", expires) is False
    clock.advance(1)
    assert store.remember("chat:1", expires + timedelta(seconds=90)) is True


def test_expired_entries_are_purged(clock: FakeClock) -> None:
    """Entries past their expiry no longer take memory once the store is used again."""
    store = InMemoryJtiStore(clock)
    for number in range(50):
        store.remember(f"chat:{number}", clock.now() + timedelta(seconds=10))
    clock.advance(11)
    store.remember("chat:fresh", clock.now() + timedelta(seconds=10))
    assert store.count() == 1


def test_a_full_store_forgets_the_entry_closest_to_expiry(clock: FakeClock) -> None:
    """At capacity, the soonest-expiring entry goes first; the long-lived ones stay."""
    store = InMemoryJtiStore(clock, capacity=2)
    store.remember("late", clock.now() + timedelta(seconds=300))
    store.remember("soon", clock.now() + timedelta(seconds=10))
    store.remember("middle", clock.now() + timedelta(seconds=100))
    assert store.count() == 2
    assert store.remember("late", clock.now() + timedelta(seconds=300)) is False
    assert store.remember("middle", clock.now() + timedelta(seconds=100)) is False


def test_capacity_must_be_positive(clock: FakeClock) -> None:
    """A store that can hold nothing would accept every replay."""
    with pytest.raises(ValueError, match="capacity"):
        InMemoryJtiStore(clock, capacity=0)
