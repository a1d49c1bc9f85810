"""Video task answers that are errors: each fed whole, byte by byte and at random splits."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from sora_core import (
    APIStatusError,
    BadRequestError,
    InternalServerError,
    LimitExceeded,
    Limits,
    LocalProtocolError,
    NotFoundError,
    RateLimitError,
    RemoteProtocolError,
)
from sora_core.tasks import TaskResponse, envelope_error
from tests.feeding import feed_three_ways


def fail(
    body: bytes,
    dialect: str = "generic",
    *,
    status: int = 200,
    headers: list[tuple[str, str]] | None = None,
    limits: Limits | None = None,
) -> Exception:
    def run(pieces: list[bytes]) -> tuple[str, str, Any]:
        response = TaskResponse(dialect, limits=limits)
        response.receive_headers(status, headers or [])
        try:
            for piece in pieces:
                response.receive_body(piece)
            response.receive_body(b"")
        except Exception as exc:
            caught.append(exc)
            return type(exc).__name__, str(exc), getattr(exc, "status_code", None)
        raise AssertionError("no error")

    caught: list[Exception] = []
    feed_three_ways(run, body)
    return caught[0]


def test_html_page_at_200_is_a_remote_protocol_error_with_its_title() -> None:
    page = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>x</body>"
    exc = fail(page, headers=[("content-type", "text/html; charset=utf-8")])
    assert type(exc) is RemoteProtocolError
    assert "'Just a moment...'" in str(exc) and "text/html" in str(exc)


def test_plain_text_and_empty_bodies() -> None:
    exc = fail(b"upstream connect error or disconnect/reset before headers")
    assert type(exc) is RemoteProtocolError and "upstream connect error" in str(exc)
    assert "an empty body" in str(fail(b""))


def test_truncated_json_is_refused() -> None:
    exc = fail(b'{"id":"video_1","status":"in_pro')
    assert type(exc) is RemoteProtocolError and "expected a JSON video task" in str(exc)


def test_new_api_error_envelope_at_200() -> None:
    exc = fail(b'{"code":"task_not_exist","message":"task_not_exist","data":null}', "new-api")
    assert type(exc) is APIStatusError
    assert exc.status_code == 200 and exc.code == "task_not_exist"
    assert str(exc) == "HTTP 200: task_not_exist"


def test_numeric_envelope_code_stands_in_for_the_status() -> None:
    exc = fail(b'{"code":404,"msg":"no such task","data":null}')
    assert isinstance(exc, NotFoundError) and exc.status_code == 404
    assert "no such task" in str(exc)


def test_success_false_and_bare_error_object() -> None:
    exc = fail(b'{"success":false,"message":"insufficient quota"}')
    assert isinstance(exc, APIStatusError) and "insufficient quota" in str(exc)
    exc = fail(b'{"error":{"message":"bad model","type":"invalid_request_error","code":"x"}}')
    assert isinstance(exc, APIStatusError) and exc.type == "invalid_request_error"


def test_non_2xx_statuses_map_to_the_status_errors() -> None:
    exc = fail(
        b'{"code":"task_not_exist","message":"task_not_exist","data":null}',
        "new-api",
        status=400,
    )
    assert isinstance(exc, BadRequestError) and exc.code == "task_not_exist"
    exc = fail(b'{"error":{"message":"slow down"}}', status=429, headers=[("retry-after", "3")])
    assert isinstance(exc, RateLimitError) and exc.headers["retry-after"] == "3"
    exc = fail(b"<html><title>502 Bad Gateway</title></html>", status=502)
    assert isinstance(exc, InternalServerError) and str(exc) == "HTTP 502: 502 Bad Gateway"


def test_a_failed_task_is_not_an_error_envelope() -> None:
    obj = {"id": "v", "status": "failed", "error": {"code": "c", "message": "m"}}
    assert envelope_error(obj, "openai") is None
    assert envelope_error({"code": "success", "data": {"id": 1}}) is None
    assert envelope_error({"code": 0, "data": None}) is None
    assert envelope_error({"code": "E1", "data": None}) is not None


def test_body_over_the_limit() -> None:
    body = b'{"id":"' + b"x" * 200 + b'"}'
    exc = fail(body, limits=Limits(max_body_size=100))
    assert isinstance(exc, LimitExceeded) and "max_body_size" in str(exc)


def test_gzip_bomb_and_corrupt_gzip() -> None:
    bomb = gzip.compress(b" " * 300_000)
    exc = fail(bomb, headers=[("content-encoding", "gzip")], limits=Limits(max_body_size=1000))
    assert isinstance(exc, LimitExceeded)
    exc = fail(b"\x1f\x8b\x09\x00garbage", headers=[("content-encoding", "gzip")])
    assert type(exc) is RemoteProtocolError and "corrupt" in str(exc)


def test_unknown_encoding_refused_at_the_head() -> None:
    response = TaskResponse()
    with pytest.raises(RemoteProtocolError, match="unsupported Content-Encoding 'br'"):
        response.receive_headers(200, [("Content-Encoding", "br")])
    with pytest.raises(LocalProtocolError, match="failed earlier"):
        response.receive_body(b"")


def test_misuse_is_a_local_error() -> None:
    response = TaskResponse()
    with pytest.raises(LocalProtocolError, match="receive_headers"):
        response.receive_body(b"{}")
    with pytest.raises(LocalProtocolError):
        response.receive_headers(101, [])
    response.receive_headers(200, [])
    with pytest.raises(LocalProtocolError, match="already called"):
        response.receive_headers(200, [])
    response.receive_body(b'{"id":"a"}')
    first = response.receive_body(b"")
    assert first is not None and response.receive_body(b"") is first
    with pytest.raises(LocalProtocolError, match="already ended"):
        response.receive_body(b"more")
    with pytest.raises(LocalProtocolError, match="unknown task dialect"):
        TaskResponse("nope")
