"""The notice as a CloudEvent: what the gateway writes is what the messenger and the client read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from numident.core.notices import NoticeType
from numident.errors import InvalidInput
from numident.wire.notice import CONTENT_TYPE, Notice, from_cloudevent, to_cloudevent

WHEN = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
NOTICE = Notice("n-1", NoticeType.CONTRACT_TERMINATED, "user-42", "+79161234567", WHEN, "e-1")


def test_a_written_notice_reads_back_as_the_same_notice() -> None:
    """to_cloudevent and from_cloudevent are inverse in structured mode."""
    body = to_cloudevent(NOTICE, "https://gateway.alfa.example")
    assert from_cloudevent({"Content-Type": CONTENT_TYPE}, body) == NOTICE


def test_the_written_document_is_compact_structured_cloudevents_json_in_utc() -> None:
    """The document's attributes, in order, with times in UTC and a Z."""
    moscow = WHEN.astimezone(timezone(timedelta(hours=3)))
    body = to_cloudevent(Notice("n-1", NoticeType.SIM_SWAPPED, "user-42", "+79161234567",
                                moscow), "operator")
    assert body == (
        b'{"specversion":"1.0","id":"n-1","source":"operator",'
        b'"type":"org.numident.notice.sim_swapped","time":"2026-12-01T10:30:00Z",'
        b'"datacontenttype":"application/json","data":{"phoneNumber":"+79161234567",'
        b'"identificationCode":"user-42","occurredAt":"2026-12-01T10:30:00Z",'
        b'"reason":"sim_swapped"}}')


def test_a_binary_mode_notice_is_read_from_its_ce_headers() -> None:
    """Attributes in ce-* headers, the data as the JSON body; time from ce-time."""
    headers = {"content-type": "application/json", "ce-id": "n-2", "ce-source": "operator",
               "ce-specversion": "1.0", "ce-type": "org.numident.notice.number_ported_out",
               "ce-time": "2026-12-01T10:30:00Z"}
    notice = from_cloudevent(headers, json.dumps({"identificationCode": "user-42"}).encode())
    assert notice == Notice("n-2", NoticeType.NUMBER_PORTED_OUT, "user-42", None, WHEN)


@pytest.mark.parametrize("change", [
    {"specversion": "0.3"},
    {"type": "org.example.other"},
    {"id": ""},
    {"data": {"phoneNumber": "+79161234567"}},
    {"data": {"identificationCode": "user-42", "occurredAt": "2026-12-01T10:30:00"}},
])
def test_what_is_not_a_numident_notice_is_invalid_notice(change: dict[str, object]) -> None:
    """A wrong version, type, id, missing code or zone-less time is INVALID_NOTICE."""
    document = {**json.loads(to_cloudevent(NOTICE, "operator")), **change}
    with pytest.raises(InvalidInput) as refused:
        from_cloudevent({"Content-Type": CONTENT_TYPE}, json.dumps(document).encode())
    assert refused.value.code == "INVALID_NOTICE"
