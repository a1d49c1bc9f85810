"""Issue 14 item 14: a password in the base URL is sent as Basic auth and never shown.

Before, ``http://user:pw@host/v1`` showed the password in ``repr(client.config)``
and in ``sora chat -v``, and silently did not send it.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from sora_core import LocalProtocolError
from tests.hostile_server import COMPLETION, HostileServer, Peer, head
from tests.test_security import MODULES, SYNC, TRANSPORTS, chat, run

PASSWORD = "pw-Very-Secret-123"


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _record(seen: list[bytes]) -> Any:
    def behaviour(peer: Peer) -> None:
        seen.append(peer.read_request())
        body = json.dumps(COMPLETION).encode()
        peer.send(head("200 OK", "application/json", length=len(body)) + body)
        peer.wait_for_close(5)

    return behaviour


def test_userinfo_is_sent_as_basic_auth_and_never_shown(transport: str) -> None:
    seen: list[bytes] = []
    with HostileServer(_record(seen), lifetime=30) as server:
        url = server.base_url.replace("http://", f"http://alice:{PASSWORD}@")
        client = MODULES[transport].Client(url, None)
        assert PASSWORD not in repr(client.config) and PASSWORD not in repr(client)
        assert "alice" not in client.config.base_url

        async def go(c: Any) -> str:
            return str((await c.chat(chat(stream=False))).text)

        text = run(
            transport,
            url,
            (lambda c: c.chat(chat(stream=False)).text) if transport in SYNC else go,
            api_key=None,
        )
    assert text
    auth = re.search(rb"(?im)^authorization: *basic +(\S+)", seen[0])
    assert auth is not None, seen[0][:300]
    assert base64.b64decode(auth.group(1)) == f"alice:{PASSWORD}".encode()


def test_userinfo_and_a_token_together_are_refused() -> None:
    with pytest.raises(LocalProtocolError, match="use one"):
        MODULES["requests"].Client(f"http://alice:{PASSWORD}@relay.test/v1", "sk-other")


def test_the_command_line_never_prints_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    from sora_transports import cli

    url = f"http://alice:{PASSWORD}@127.0.0.1:9/v1"
    code = cli.main(["chat", "hi", "-v", "--base-url", url, "--max-retries", "0"])
    out, err = capsys.readouterr()
    assert code != 0
    assert PASSWORD not in out and PASSWORD not in err
