"""Notices: what an operator tells an organizer when a recorded usage stops being valid.

A notice is identified by its event id (receivers deduplicate by it) and carries the time of
the event. Every kind but ``sim_swapped`` invalidates the usage; a SIM swap puts it at risk.
"""

from __future__ import annotations

from enum import StrEnum

CLOUDEVENT_TYPE_PREFIX = "org.numident.notice."


class NoticeType(StrEnum):
    CONTRACT_TERMINATED = "contract_terminated"
    NUMBER_PORTED_OUT = "number_ported_out"
    NUMBER_REASSIGNED = "number_reassigned"
    HOLDER_CHANGED = "holder_changed"
    SIM_SWAPPED = "sim_swapped"

    @property
    def invalidates_usage(self) -> bool:
        return self is not NoticeType.SIM_SWAPPED

    @property
    def cloudevent_type(self) -> str:
        return CLOUDEVENT_TYPE_PREFIX + self.value

    @classmethod
    def from_cloudevent_type(cls, value: str) -> NoticeType:
        if not value.startswith(CLOUDEVENT_TYPE_PREFIX):
            raise ValueError(f"not a numident notice type: {value!r}")
        return cls(value.removeprefix(CLOUDEVENT_TYPE_PREFIX))
