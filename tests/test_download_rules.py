"""The download rules: resume, length, size cap, type sniffing, encodings, names, tokens.

Every body is fed whole, byte by byte and at random splits.
"""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from sora_core import (
    AuthenticationError,
    LimitExceeded,
    LocalProtocolError,
    RemoteProtocolError,
    redirect_request,
)
from sora_core.tasks import (
    DEFAULT_MAX_DOWNLOAD,
    Download,
    DownloadStart,
    IncompleteDownload,
    check_url,
    download_request,
    resume_headers,
    safe_filename,
    sniff_media_type,
)
from tests.feeding import feed_three_ways

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 4
BASE = "https://relay.test/v1"
KEY = "sk-secret"


def run_download(
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    **kw: Any,
) -> tuple[DownloadStart, Any, bool]:
    """Feed three ways; the file bytes written (or the error) must agree."""
    starts: list[DownloadStart] = []

    def run(pieces: list[bytes]) -> tuple[bytes | tuple[str, str], bool]:
        download = Download(**kw)
        starts.append(download.receive_headers(status, headers))
        out = bytearray()
        try:
            for piece in pieces:
                out += download.receive_body(piece)
            out += download.receive_body(b"")
        except Exception as exc:
            return (type(exc).__name__, str(exc)), download.complete
        return bytes(out), download.complete

    written, complete = feed_three_ways(run, body)
    return starts[0], written, complete


def test_whole_file() -> None:
    start, written, complete = run_download(
        200, [("Content-Type", "video/mp4"), ("Content-Length", str(len(MP4)))], MP4
    )
    assert start == DownloadStart("replace", 0, len(MP4), "video/mp4")
    assert written == MP4 and complete


def test_unknown_length_is_trusted_to_the_end() -> None:
    start, written, complete = run_download(200, [], MP4)
    assert start.total is None and written == MP4 and complete


def test_short_body_is_an_error_never_a_complete_file() -> None:
    _, written, complete = run_download(200, [("Content-Length", "5000")], MP4)
    assert written == (
        "IncompleteDownload",
        f"the video file was cut short: the body ended after {len(MP4)} of 5000 bytes",
    )
    assert not complete


def test_short_body_error_says_how_much_was_handed_out() -> None:
    download = Download()
    download.receive_headers(200, [("Content-Length", "5000")])
    got = download.receive_body(MP4)
    with pytest.raises(IncompleteDownload) as info:
        download.receive_body(b"")
    assert info.value.received == len(got) == len(MP4)


def test_resume_honoured_appends() -> None:
    have = 100
    rest = MP4[have:]
    headers = [
        ("Content-Range", f"bytes {have}-{len(MP4) - 1}/{len(MP4)}"),
        ("Content-Length", str(len(rest))),
        ("Content-Type", "video/mp4"),
    ]
    start, written, complete = run_download(206, headers, rest, have=have)
    assert start == DownloadStart("append", have, len(MP4), "video/mp4")
    assert written == rest and complete


def test_resume_ignored_replaces_the_partial_file() -> None:
    start, written, complete = run_download(200, [("Content-Length", str(len(MP4)))], MP4, have=100)
    assert (start.action, start.offset) == ("replace", 0)
    assert written == MP4 and complete


def test_resume_at_the_wrong_offset_restarts() -> None:
    headers = [("Content-Range", f"bytes 50-{len(MP4) - 1}/{len(MP4)}")]
    start, written, complete = run_download(206, headers, MP4[50:], have=100)
    assert start.action == "restart" and written == b"" and not complete


def test_416_confirms_a_complete_partial_or_restarts() -> None:
    start, written, complete = run_download(
        416, [("Content-Range", "bytes */1000")], b"", have=1000
    )
    assert start.action == "complete" and complete and written == b""
    start, _, complete = run_download(416, [("Content-Range", "bytes */2000")], b"x", have=1000)
    assert start.action == "restart" and not complete


def test_bad_content_range_and_lengths() -> None:
    with pytest.raises(RemoteProtocolError, match="bad Content-Range"):
        Download(have=10).receive_headers(206, [("Content-Range", "bytes 10-5/20")])
    with pytest.raises(RemoteProtocolError, match="disagrees"):
        Download(have=10).receive_headers(
            206, [("Content-Range", "bytes 10-19/20"), ("Content-Length", "9")]
        )
    with pytest.raises(RemoteProtocolError, match="invalid Content-Length"):
        Download().receive_headers(200, [("Content-Length", "-1")])
    _, written, _ = run_download(200, [("Content-Length", "3")], b"\x00\x00\x00\x00ftyp")
    assert written[0] == "RemoteProtocolError" and "more than the 3 bytes" in written[1]


def test_size_cap_from_the_head_and_from_the_body() -> None:
    assert DEFAULT_MAX_DOWNLOAD == 4 * 1024**3
    with pytest.raises(LimitExceeded, match="over the download cap"):
        Download(max_size=100).receive_headers(200, [("Content-Length", "101")])
    with pytest.raises(LimitExceeded):
        Download(have=50, max_size=100).receive_headers(206, [("Content-Range", "bytes 50-59/200")])
    _, written, complete = run_download(200, [], MP4, max_size=500)
    assert written[0] == "LimitExceeded" and not complete


def test_html_where_a_video_was_expected_is_refused_with_its_title() -> None:
    page = b"\n<!DOCTYPE html><html><head><title>403 Forbidden</title></head></html>" * 3
    for ctype in ("video/mp4", "text/html", "application/octet-stream"):
        _, written, complete = run_download(200, [("Content-Type", ctype)], page)
        assert written[0] == "UnexpectedContent", ctype
        assert written[1].endswith(": 403 Forbidden") and not complete


def test_json_error_where_a_video_was_expected_is_refused_with_its_message() -> None:
    body = b'{"error":{"message":"Video is still processing","type":"invalid_request_error"}}'
    _, written, _ = run_download(200, [("Content-Type", "application/json")], body)
    assert written == (
        "UnexpectedContent",
        "expected a video file, got Content-Type 'application/json' (HTTP 200): "
        "Video is still processing",
    )


def test_refused_bytes_are_never_handed_out() -> None:
    download = Download()
    download.receive_headers(200, [("Content-Type", "video/mp4")])
    assert download.receive_body(b"<html><title>x</title>" + b" " * 5000) == b""
    assert download.written == 0


def test_text_type_with_a_file_signature_is_accepted() -> None:
    playlist = b"#EXTM3U\n#EXT-X-VERSION:3\nseg0.ts\n"
    _, written, complete = run_download(200, [("Content-Type", "text/plain")], playlist)
    assert written == playlist and complete
    _, written, _ = run_download(200, [("Content-Type", "text/plain")], b"just some words here!")
    assert written[0] == "UnexpectedContent"


def test_resumed_part_with_a_text_type_is_refused() -> None:
    body = b"<html><title>Gateway Timeout</title></html>"
    start, written, _ = run_download(
        206,
        [("Content-Range", f"bytes 10-{9 + len(body)}/9999"), ("Content-Type", "text/html")],
        body,
        have=10,
    )
    assert start.action == "append" and written[0] == "UnexpectedContent"


def test_non_2xx_raises_the_status_error() -> None:
    start, written, _ = run_download(
        401, [("Content-Type", "application/json")], b'{"error":{"message":"bad key"}}'
    )
    assert start.action == "error"
    assert written == ("AuthenticationError", "HTTP 401: bad key")
    download = Download()
    download.receive_headers(403, [])
    download.receive_body(
        b"<?xml version='1.0'?><Error><Code>AccessDenied</Code>Request has expired</Error>"
    )
    with pytest.raises(Exception) as info:
        download.receive_body(b"")
    assert info.value.status_code == 403  # type: ignore[attr-defined]
    assert not isinstance(info.value, AuthenticationError)


def test_gzip_is_undone_and_unknown_encodings_refused() -> None:
    body = gzip.compress(MP4)
    _, written, complete = run_download(
        200, [("Content-Encoding", "gzip"), ("Content-Length", str(len(body)))], body
    )
    assert written == MP4 and complete
    with pytest.raises(RemoteProtocolError, match="unsupported Content-Encoding 'br'"):
        Download().receive_headers(200, [("Content-Encoding", "br")])
    start = Download(have=5).receive_headers(
        206, [("Content-Encoding", "gzip"), ("Content-Range", "bytes 5-9/10")]
    )
    assert start.action == "restart"


def test_content_disposition_name_is_reported() -> None:
    start = Download().receive_headers(
        200, [("Content-Disposition", 'attachment; filename="../../a b.mp4"')]
    )
    assert start.filename == "../../a b.mp4"
    assert safe_filename(content_disposition=f"attachment; filename={start.filename}") == "a.mp4"


@pytest.mark.parametrize(
    ("data", "media"),
    [
        (MP4, "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  ", "video/quicktime"),
        (b"\x00\x00\x00\x08wide....", "video/quicktime"),
        (b"\x1a\x45\xdf\xa3\x01\x00", "video/webm"),
        (b"#EXTM3U\n", "application/vnd.apple.mpegurl"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xef\xbb\xbf  <!doctype html>", "text/html"),
        (b'\n {"error":1}', "application/json"),
        (b"\x00\x01\x02\x03", None),
        (b"", None),
    ],
)
def test_sniff(data: bytes, media: str | None) -> None:
    assert sniff_media_type(data) == media


@pytest.mark.parametrize(
    ("url", "disposition", "kw", "name"),
    [
        ("https://cdn.test/v/abc.mp4?sig=1", None, {}, "abc.mp4"),
        ("https://cdn.test/a/..%2F..%2Fetc%2Fpasswd", None, {}, "passwd.mp4"),
        ("https://cdn.test/..%5C..%5Cwin.ini", None, {}, "win.ini.mp4"),
        ("https://cdn.test/.bashrc", None, {}, "bashrc.mp4"),
        ("https://cdn.test/a%00b%0A%1Bc.webm", None, {}, "abc.webm"),
        ("https://cdn.test/x%E2%80%AEpm4.exe", None, {}, "xpm4.exe.mp4"),
        (
            "https://relay.test/v1/videos/video_1/content",
            None,
            {"default": "video_1"},
            "video_1.mp4",
        ),
        ("https://cdn.test/", None, {"default": "task_9"}, "task_9.mp4"),
        ("https://cdn.test/NUL.mp4", None, {}, "_NUL.mp4"),
        ("https://cdn.test/a:b|c%3F.mov", None, {}, "a_b_c_.mov"),
        ("https://cdn.test/t", None, {"variant": "thumbnail"}, "t.webp"),
        ("https://cdn.test/s.png", None, {"variant": "spritesheet"}, "s.png"),
        ("https://cdn.test/x", None, {"media_type": "video/webm"}, "x.webm"),
        (None, "attachment; filename*=UTF-8''%E8%A7%86%E9%A2%91.mp4", {}, "视频.mp4"),
        (None, 'inline; filename="say \\"hi\\".mov"', {}, "say _hi_.mov"),
        (None, None, {}, "video.mp4"),
    ],
)
def test_safe_filename(url: str | None, disposition: str | None, kw: Any, name: str) -> None:
    assert safe_filename(url, disposition, **kw) == name


def test_safe_filename_length_cap_keeps_the_extension() -> None:
    name = safe_filename("https://cdn.test/" + "é" * 300 + ".mp4")
    assert name.endswith(".mp4") and len(name.encode()) <= 120
    assert not safe_filename("https://cdn.test/" + "a" * 300).startswith(".")


def test_token_only_to_the_base_origin() -> None:
    cdn = download_request("https://cdn.test/v.mp4", base_url=BASE, api_key=KEY)
    assert cdn.header("Authorization") is None
    own = download_request(
        "https://relay.test/v1/videos/v/content", base_url=BASE, api_key=KEY, have=7
    )
    assert own.header("Authorization") == f"Bearer {KEY}"
    assert own.header("Range") == "bytes=7-"
    other_port = download_request("https://relay.test:8443/v.mp4", base_url=BASE, api_key=KEY)
    assert other_port.header("Authorization") is None
    plain = download_request("http://relay.test/v.mp4", base_url=BASE, api_key=KEY)
    assert plain.header("Authorization") is None
    # A redirect off the origin drops it (the rule that lives in redirect_request).
    moved = redirect_request(own, "https://cdn.test/v.mp4")
    assert moved.header("Authorization") is None and moved.header("Range") == "bytes=7-"


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.test/vidéo.mp4",
        "https://cdn.test/a b.mp4",
        "https://cdn.test/a\r\nX: y",
        "https://[::1/v.mp4",
        "https://cdn.test:99999/v.mp4",
        "ftp://cdn.test/v.mp4",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "//cdn.test/v.mp4",
        "https:///v.mp4",
    ],
)
def test_odd_urls_are_the_projects_own_errors(url: str) -> None:
    with pytest.raises(RemoteProtocolError):
        check_url(url)
    with pytest.raises(LocalProtocolError):
        check_url(url, from_peer=False)
    with pytest.raises(RemoteProtocolError):
        download_request(url, base_url=BASE)


def test_resume_headers_and_misuse() -> None:
    assert resume_headers(0) == [] and resume_headers(9) == [("Range", "bytes=9-")]
    for bad in (-1, 1.5, True):
        with pytest.raises(LocalProtocolError):
            resume_headers(bad)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        Download(max_size=0)
    download = Download()
    with pytest.raises(LocalProtocolError, match="receive_headers"):
        download.receive_body(b"x")
