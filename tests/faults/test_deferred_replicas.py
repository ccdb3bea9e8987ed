"""Two deferred gateway replicas on one PostgreSQL database: each request answered once.

The replicas are real ``numident operator serve`` processes sharing the database (and the
installation's signing key, so a token of one is good at the other). Pending work is claimed
under a lease; a replica killed in the middle of its checks leaves its claims to the other.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest
from e2e_servers import Server, register_gateway, start_server, wait_for
from sqlalchemy import Engine, create_engine, text

from numident.client.assertions import make_client_assertion, token_request_form
from numident.client.keys import PrivateKey
from numident.core.clock import SystemClock

pytestmark = pytest.mark.postgres
PAIRS = 60
PUBLIC_URL = "http://127.0.0.1:8080"
"""Where the replicas' clients would reach them (a balancer): the issuer they all share."""
NUMBERS = [f"+7916777{n:04d}" for n in range(2 * PAIRS)]


@pytest.fixture
def installation(tmp_path: Path, postgres_url: str) -> Iterator[dict[str, object]]:
    """A deferred gateway installation on PostgreSQL with subscribers and organizer "chat"."""
    env = {"NUMIDENT_HOME": str(tmp_path / "home"), "NUMIDENT_DATABASE_URL": postgres_url,
           "NUMIDENT_OPERATOR__DEFERRED": "true", "NUMIDENT_OPERATOR__WORKERS": "4",
           "NUMIDENT_OPERATOR__CHECK_SECONDS": "0.02",
           "NUMIDENT_OPERATOR__LEASE_SECONDS": "3", "NUMIDENT_OPERATOR__PUBLIC_URL": PUBLIC_URL}
    key = register_gateway(tmp_path, env, NUMBERS, "http://127.0.0.1:9/notices")
    engine = create_engine(postgres_url)
    yield {"env": env, "key": key, "tmp": tmp_path, "engine": engine}
    engine.dispose()


def token(server: Server, key: PrivateKey) -> dict[str, str]:
    assertion = make_client_assertion(key, "chat", f"{PUBLIC_URL}/oauth2/token",
                                      SystemClock())
    response = httpx2.post(f"{server.url}/oauth2/token", data=token_request_form(assertion))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def replica(installation: dict[str, object], name: str, **settings: str) -> Server:
    env = dict(installation["env"])  # type: ignore[call-overload]
    env.update({f"NUMIDENT_OPERATOR__{k.upper()}": v for k, v in settings.items()})
    return start_server("operator", env, installation["tmp"] / f"{name}.log")  # type: ignore[operator]


def scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def all_answered(engine: Engine) -> Callable[[], bool]:
    return lambda: scalar(engine, "SELECT count(*) FROM identification_requests "
                                  "WHERE status = 'pending'") == 0


TWICE = ("SELECT count(*) FROM (SELECT request_id FROM audit WHERE action = '{action}' "
         "GROUP BY request_id HAVING count(*) > 1) AS twice")
DUPLICATE_USAGES = ("SELECT count(*) FROM (SELECT organizer_id, identification_code FROM usages "
                    "WHERE status = 'active' GROUP BY organizer_id, identification_code "
                    "HAVING count(*) > 1) AS duplicated")


def test_two_replicas_answer_each_request_once_and_keep_one_usage_per_code(
        installation: dict[str, object]) -> None:
    """A stream of requests over two replicas: none answered twice, one active usage a code.

    Each code is asked for on two numbers at once, one request at each replica: the later
    confirmation wins and the earlier usage is withdrawn, never both left active.
    """
    engine: Engine = installation["engine"]  # type: ignore[assignment]
    servers = [replica(installation, "a"), replica(installation, "b")]
    try:
        headers = token(servers[0], installation["key"])  # type: ignore[arg-type]

        def send(n: int) -> int:
            server = servers[n % 2]
            body = {"phoneNumber": NUMBERS[n], "identificationCode": f"user-{n // 2}"}
            return httpx2.post(f"{server.url}/identification/v1/requests", headers=headers,
                              json=body, timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(send, range(len(NUMBERS))))
        assert statuses == [202] * len(NUMBERS)
        assert wait_for(all_answered(engine), timeout=60)
    finally:
        for server in servers:
            server.stop()
    assert scalar(engine, "SELECT count(*) FROM identification_requests "
                          "WHERE status = 'answered'") == len(NUMBERS)
    assert scalar(engine, TWICE.format(action="answered")) == 0
    assert scalar(engine, TWICE.format(action="usage_recorded")) == 0
    assert scalar(engine, "SELECT count(*) FROM audit WHERE action = 'answered'") == len(NUMBERS)
    assert scalar(engine, DUPLICATE_USAGES) == 0
    assert scalar(engine, "SELECT count(*) FROM usages WHERE status = 'active'") == PAIRS


def test_one_request_sent_to_both_replicas_at_once_is_queued_once(
        installation: dict[str, object]) -> None:
    """A retry that reaches the other replica while the first is accepting gets the same id."""
    engine: Engine = installation["engine"]  # type: ignore[assignment]
    servers = [replica(installation, "a", check_seconds="5"),
               replica(installation, "b", check_seconds="5")]
    try:
        headers = token(servers[0], installation["key"])  # type: ignore[arg-type]

        def send(n: int) -> str:
            body = {"phoneNumber": NUMBERS[n // 2], "identificationCode": f"user-{n // 2}"}
            response = httpx2.post(f"{servers[n % 2].url}/identification/v1/requests",
                                  headers=headers, json=body, timeout=30)
            assert response.status_code == 202, response.text
            return str(response.json()["requestId"])

        with ThreadPoolExecutor(16) as pool:
            ids = list(pool.map(send, range(2 * PAIRS)))
    finally:
        for server in servers:
            server.stop()
    assert [ids[n] for n in range(0, len(ids), 2)] == [ids[n] for n in range(1, len(ids), 2)]
    assert scalar(engine, "SELECT count(*) FROM identification_requests") == PAIRS


def test_requests_claimed_by_a_killed_replica_are_answered_by_the_other(
        installation: dict[str, object]) -> None:
    """SIGKILL a replica in the middle of its checks: the other answers its claims, once."""
    engine: Engine = installation["engine"]  # type: ignore[assignment]
    slow = replica(installation, "slow", check_seconds="60")
    other: Server | None = None
    try:
        headers = token(slow, installation["key"])  # type: ignore[arg-type]
        # One batch is accepted in one transaction, so one claim takes all of it.
        response = httpx2.post(f"{slow.url}/identification/v1/requests/batch", headers=headers,
                              json={"requests": [{"phoneNumber": NUMBERS[n],
                                                  "identificationCode": f"user-{n}"}
                                                 for n in range(8)]}, timeout=30)
        assert response.status_code == 200, response.text
        ids = [item["requestId"] for item in response.json()["results"]]
        assert wait_for(lambda: scalar(engine, "SELECT count(*) FROM identification_requests "
                                               "WHERE lease_until IS NOT NULL") == len(ids),
                        timeout=30)
        slow.kill()
        other = replica(installation, "other")
        assert wait_for(all_answered(engine), timeout=60)
        answers = [httpx2.get(f"{other.url}/identification/v1/requests/{i}", headers=headers,
                             timeout=30).json() for i in ids]
    finally:
        slow.stop()
        if other is not None:
            other.stop()
    assert [a["result"] for a in answers] == ["confirmed"] * len(ids), json.dumps(answers)
    assert scalar(engine, TWICE.format(action="answered")) == 0
    assert scalar(engine, "SELECT count(*) FROM audit WHERE action = 'answered'") == len(ids)
