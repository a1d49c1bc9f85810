"""The multipart/form-data encoder, checked by the standard library's MIME parser."""

from __future__ import annotations

import email
import email.policy

import pytest

from sora_core import LocalProtocolError
from sora_core.tasks import FilePart, encode_multipart

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def parse(body: bytes, content_type: str) -> list[tuple[str | None, str | None, bytes]]:
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
    assert message.is_multipart()
    out = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        assert name is None or isinstance(name, str)
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out.append((name, part.get_filename(), payload))
    return out


def test_fields_and_file_round_trip() -> None:
    body, ctype = encode_multipart(
        {"prompt": "a cat, 猫", "seconds": "8"},
        [FilePart("input_reference", "ref.png", PNG, "image/png")],
    )
    assert ctype.startswith("multipart/form-data; boundary=")
    assert parse(body, ctype) == [
        ("prompt", None, "a cat, 猫".encode()),
        ("seconds", None, b"8"),
        ("input_reference", "ref.png", PNG),
    ]


def test_boundary_is_derived_from_the_content_and_stable() -> None:
    one = encode_multipart({"a": "1"})
    assert one == encode_multipart({"a": "1"})
    assert one[1] != encode_multipart({"a": "2"})[1]


def test_given_boundary_is_used() -> None:
    body, ctype = encode_multipart({"a": "1"}, boundary="xyz")
    assert ctype == "multipart/form-data; boundary=xyz"
    assert body == b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--xyz--\r\n'


def test_boundary_needing_quotes_is_quoted() -> None:
    _, ctype = encode_multipart({"a": "1"}, boundary="a:b")
    assert ctype == 'multipart/form-data; boundary="a:b"'


@pytest.mark.parametrize("bad", ["", "x" * 71, "ends ", "a\r\nb", "é"])
def test_invalid_boundary_refused(bad: str) -> None:
    with pytest.raises(LocalProtocolError, match="boundary"):
        encode_multipart({"a": "1"}, boundary=bad)


def test_boundary_inside_content_refused_and_derived_one_avoids_it() -> None:
    with pytest.raises(LocalProtocolError, match="occurs in the content"):
        encode_multipart({"a": "x--abc y"}, boundary="abc")
    body, ctype = encode_multipart({"a": "x--abc y"})
    assert parse(body, ctype) == [("a", None, b"x--abc y")]


def test_quotes_and_newlines_in_names_are_escaped() -> None:
    body, _ = encode_multipart([], [FilePart('f"\r\n', 'evil"\r\nX-Injected: 1.png', b"1")])
    assert b"X-Injected: 1" not in body.replace(b"%0D%0AX-Injected", b"")
    assert b'name="f%22%0D%0A"; filename="evil%22%0D%0AX-Injected: 1.png"' in body


def test_bad_parts_refused() -> None:
    with pytest.raises(LocalProtocolError):
        FilePart("f", "a.png", "text")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        encode_multipart({"a": 1})  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="CR, LF"):
        encode_multipart([], [FilePart("f", "a", b"", "image/png\r\nX: y")])
