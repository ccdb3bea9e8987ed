"""An organizer's backend with the base install only: run as a script by test_slim_client.

It first makes every server dependency unimportable, then imports ``numident.client`` and,
against the gateway named on the command line, gets a token, identifies a number (single and
batch), withdraws the usage and verifies a notice signed by the gateway. It prints one JSON
document of what it saw; the test judges it.

Arguments: a JSON file with ``url``, ``client_id``, ``key_path``, ``line`` and ``notice``
(``url``, ``headers``, ``body`` of a signed notice request).
"""

from __future__ import annotations

import asyncio
import importlib.abc
import json
import sys
from pathlib import Path

SERVER_MODULES = frozenset({
    "fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "psycopg_binary",
    "nats", "numpy", "rapidfuzz", "prometheus_client", "typer", "rich", "click", "pydantic",
    "pydantic_settings", "phonenumbers", "structlog", "jinja2",
    "httpx",  # the unmaintained predecessor of httpx2: the client must not need it either
})


class BlockServerModules(importlib.abc.MetaPathFinder):
    """Refuses every server dependency as if it were not installed."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname.split(".")[0] in SERVER_MODULES:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)


def block_server_modules() -> None:
    sys.meta_path.insert(0, BlockServerModules())


async def organizer(settings: dict[str, object]) -> dict[str, object]:
    import httpx2

    from numident.client import (
        Answer,
        GatewayClient,
        NoticeVerifier,
        SystemClock,
        Withdrawn,
        load_private_key,
        load_public_key,
        read_notice,
    )

    url, line = str(settings["url"]), str(settings["line"])
    key = load_private_key(Path(str(settings["key_path"])))
    seen: dict[str, object] = {}
    async with GatewayClient(url, str(settings["client_id"]), key) as gateway:
        single = await gateway.submit(line, "slim-1")
        assert isinstance(single, Answer), single
        seen["single"] = single.result.value if single.result else None
        batch = await gateway.submit_batch([(line, "slim-2"), ("+79160000000", "slim-3")])
        assert isinstance(batch, list), batch
        seen["batch"] = [reply.result.value if isinstance(reply, Answer) and reply.result
                         else type(reply).__name__ for reply in batch]
        withdrawn = await gateway.withdraw("slim-1")
        again = await gateway.withdraw("slim-1")
        assert isinstance(withdrawn, Withdrawn)
        assert isinstance(again, Withdrawn)
        seen["withdrawn"] = [withdrawn.existed, again.existed]
    # The gateway publishes the key it signs notices with in its JWKS.
    jwks = httpx2.get(f"{url}/.well-known/jwks.json", timeout=30).json()
    keys = {jwk["kid"]: load_public_key(json.dumps(jwk)) for jwk in jwks["keys"]}
    notice = settings["notice"]
    assert isinstance(notice, dict)
    verifier = NoticeVerifier(keys.get, SystemClock())
    keyid, parsed = read_notice(verifier, "POST", notice["url"], notice["headers"],
                                notice["body"].encode())
    seen["notice"] = {"keyid": keyid, "type": parsed.type.value,
                      "identification_code": parsed.identification_code}
    seen["server_modules_loaded"] = sorted(
        name for name in sys.modules if name.split(".")[0] in SERVER_MODULES)
    return seen


def main() -> None:
    block_server_modules()
    settings = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    print(json.dumps(asyncio.run(organizer(settings))))


if __name__ == "__main__":
    main()
