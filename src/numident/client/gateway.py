"""The client of one operator gateway's identification API (``numident.operator.api``).

Every call returns a value, never raises for the network's or the gateway's failures:

- ``Answer``: the gateway's view of an identification request (pending or answered);
- ``TryLater``: worth repeating (network error, timeout, 5xx, 429 with its ``Retry-After``,
  a token refused: the operator may not have registered our key yet);
- ``Refused``: the gateway will never accept this request (another 4xx); ``reason`` is its code.

Access tokens come from the operator's token endpoint by client credentials with
``private_key_jwt`` and are cached per gateway until shortly before they expire. A 401 on an API
call drops the cached token and repeats the call once with a fresh one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import httpx2

from numident.client.assertions import make_client_assertion, token_request_form
from numident.client.keys import PrivateKey
from numident.client.retry_after import parse_retry_after
from numident.core.clock import Clock, SystemClock
from numident.core.follow_up import Answer, Refused, Reply, TryLater
from numident.core.identification import RequestStatus
from numident.wire.answer import read_answer

__all__ = ["SCOPE", "Answer", "GatewayClient", "Refused", "Reply", "TryLater", "Withdrawn"]
# The replies are the values the follow-up rules of numident.core judge; they are this
# client's too, and stay importable from here.

SCOPE = "identification"


@dataclass(frozen=True)
class Withdrawn:
    existed: bool


@dataclass
class _Token:
    value: str
    refresh_at: datetime


class GatewayClient:
    """Talks to the gateway at ``gateway_url`` as organizer ``client_id``, signing with ``key``.

    ``token_url`` defaults to the gateway's ``/oauth2/token``. ``http`` is the connection pool
    to use (its transport decides where requests go: loopback, ASGI in process, a mock); without
    one the client opens its own, closed by :meth:`aclose` or ``async with``. One client serves
    many concurrent calls; the cached token is shared by them.
    """

    def __init__(self, gateway_url: str, client_id: str, key: PrivateKey, *,
                 http: httpx2.AsyncClient | None = None, clock: Clock | None = None,
                 token_url: str | None = None, timeout: float = 30.0) -> None:
        self.client_id = client_id
        self.token_url = token_url or gateway_url.rstrip("/") + "/oauth2/token"
        self._base = gateway_url.rstrip("/")
        self._key = key
        self._owns_http = http is None
        self._http = (httpx2.AsyncClient(timeout=timeout, follow_redirects=False)
                      if http is None else http)
        self._clock: Clock = clock or SystemClock()
        self._token: _Token | None = None

    async def aclose(self) -> None:
        """Close the connection pool if this client opened it (a given ``http`` stays open)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.aclose()

    async def submit(self, phone_number: str, identification_code: str) -> Reply:
        """``POST /identification/v1/requests``: answered at once (200) or accepted (202)."""
        response = await self._call("POST", "/identification/v1/requests",
                                    {"phoneNumber": phone_number,
                                     "identificationCode": identification_code})
        return response if not isinstance(response, httpx2.Response) else _answer(response)

    async def submit_batch(self, items: Sequence[tuple[str, str]]
                           ) -> list[Answer | Refused] | TryLater | Refused:
        """``POST /identification/v1/requests/batch`` of ``(phone number, code)`` pairs.

        Returns one ``Answer`` or ``Refused`` per item, in order; or, for the whole batch, a
        ``TryLater`` (429 with its ``Retry-After``, 5xx, network) or a ``Refused`` (another 4xx).
        """
        response = await self._call("POST", "/identification/v1/requests/batch",
                                    {"requests": [{"phoneNumber": number,
                                                   "identificationCode": code}
                                                  for number, code in items]})
        if not isinstance(response, httpx2.Response):
            return response
        try:
            results = response.json()["results"]
            if not isinstance(results, list) or len(results) != len(items):
                raise ValueError("one result per request expected")
        except (ValueError, KeyError, TypeError):
            return TryLater("MALFORMED_ANSWER")
        replies: list[Answer | Refused] = []
        for result in results:
            if isinstance(result, dict) and isinstance(result.get("error"), dict):
                replies.append(Refused(str(result["error"].get("code") or "INVALID_ITEM")))
                continue
            reply = _parse_answer(result)
            replies.append(reply if isinstance(reply, Answer) else Refused(reply.reason))
        return replies

    async def fetch(self, request_id: str) -> Reply:
        """``GET /identification/v1/requests/{id}``: the request as the gateway sees it now."""
        response = await self._call("GET", f"/identification/v1/requests/{request_id}")
        return response if not isinstance(response, httpx2.Response) else _answer(response)

    async def withdraw(self, identification_code: str) -> Withdrawn | TryLater | Refused:
        """``DELETE /identification/v1/usages/{code}``; a usage already gone counts as done."""
        response = await self._call("DELETE", f"/identification/v1/usages/{identification_code}",
                                    missing_ok=True)
        if not isinstance(response, httpx2.Response):
            return response
        return Withdrawn(existed=response.status_code != 404)

    async def _call(self, method: str, path: str, body: object | None = None, *,
                    missing_ok: bool = False) -> httpx2.Response | TryLater | Refused:
        for fresh in (False, True):
            token = await self._access_token(refresh=fresh)
            if not isinstance(token, str):
                return token
            try:
                response = await self._http.request(
                    method, self._base + path, json=body,
                    headers={"Authorization": f"Bearer {token}"})
            except httpx2.HTTPError as exc:
                return TryLater(f"NETWORK: {type(exc).__name__}")
            if response.status_code == 401 and not fresh:
                self._token = None
                continue
            return self._judge(response, missing_ok)
        raise AssertionError("unreachable")  # pragma: no cover

    def _judge(self, response: httpx2.Response, missing_ok: bool
               ) -> httpx2.Response | TryLater | Refused:
        status = response.status_code
        if response.is_success or (missing_ok and status == 404):
            return response
        code = _error_code(response)
        if status in (401, 408, 425, 429) or status >= 500:
            return TryLater(code, parse_retry_after(response.headers, self._clock.now()))
        return Refused(code)

    async def _access_token(self, *, refresh: bool) -> str | TryLater:
        now = self._clock.now()
        if not refresh and self._token is not None and now < self._token.refresh_at:
            return self._token.value
        assertion = make_client_assertion(self._key, self.client_id, self.token_url, self._clock)
        try:
            response = await self._http.post(self.token_url,
                                             data=token_request_form(assertion, SCOPE))
        except httpx2.HTTPError as exc:
            return TryLater(f"NETWORK: {type(exc).__name__}")
        if not response.is_success:
            # A refused token is a configuration matter (key not registered yet) that the
            # operator's staff can fix within the 20 minutes: keep trying until the deadline.
            return TryLater(f"TOKEN_{_error_code(response)}",
                            parse_retry_after(response.headers, now))
        try:
            document = response.json()
            value = str(document["access_token"])
            lifetime = float(document.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            return TryLater("TOKEN_MALFORMED")
        # Refreshed early so that a token never expires between our check and the call.
        margin = min(30.0, lifetime / 2)
        self._token = _Token(value, now + timedelta(seconds=lifetime - margin))
        return value


def _answer(response: httpx2.Response) -> Reply:
    try:
        document = response.json()
    except ValueError:
        return TryLater("MALFORMED_ANSWER")
    return _parse_answer(document)


def _parse_answer(document: Any) -> Reply:
    try:
        read = read_answer(document)
    except (ValueError, KeyError, TypeError):
        return TryLater("MALFORMED_ANSWER")
    if read.status is RequestStatus.EXPIRED:  # the gateway gave up; a new attempt may be made
        return Refused("NOT_ANSWERED_IN_TIME")
    return Answer(read.request_id, read.result, read.received_at, read.answer_due)


def _error_code(response: httpx2.Response) -> str:
    # The API's error body has "code"; the token endpoint's (RFC 6749 section 5.2) "error".
    try:
        document = response.json()
        code = document.get("code") or document.get("error")
    except (ValueError, AttributeError):
        code = None
    return str(code) if code else f"HTTP_{response.status_code}"
