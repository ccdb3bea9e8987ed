"""The usage record's rule: one active usage per (organizer, identification code).

SPEC rules 4 and 6: on ``confirmed`` the operator records that the organizer's messenger uses
the number under the identification code. A code identifies one user of one organizer, so it
has at most one active usage: confirmed on the number it is already used on, the usage is
refreshed (it keeps its ``since``); confirmed on another number, the user has moved and the
usage on the old number is withdrawn (``number_changed``) as the new one is recorded.

:func:`after_confirmation` is the decision over values; the operator's SQL carries it out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ACTIVE = "active"
WITHDRAWN = "withdrawn"
"""The status of a usage that the organizer or a move to another number ended."""
NUMBER_CHANGED = "number_changed"
"""The end reason of a usage whose code was confirmed on another number."""
WITHDRAWN_BY_ORGANIZER = "withdrawn_by_organizer"


@dataclass(frozen=True)
class ActiveUsage:
    id: int
    identification_code: str
    phone_number: str


@dataclass(frozen=True)
class UsageDecision:
    """What confirmations do to the usages: ``withdraw`` these (``number_changed``), and
    record or refresh ``record`` (identification code -> number)."""

    withdraw: tuple[ActiveUsage, ...]
    record: Mapping[str, str]


def after_confirmation(active: Iterable[ActiveUsage],
                       confirmed: Mapping[str, str]) -> UsageDecision:
    """Decide the usages of one organizer after ``confirmed`` (code -> number, each code once).

    ``active`` are the organizer's active usages of those codes. A usage on the confirmed
    number is refreshed; a usage of the code on any other number is withdrawn.
    """
    stale = tuple(u for u in active if u.identification_code in confirmed
                  and confirmed[u.identification_code] != u.phone_number)
    return UsageDecision(stale, dict(confirmed))
