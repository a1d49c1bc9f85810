"""Reading a batch file: JSON lines or plain text, one item a line.

A file is JSON lines when its first non-blank line starts with ``{``;
otherwise every non-blank line is a prompt. Blank lines, and lines starting
with ``#`` in a plain-text file, are skipped. A JSON line is an object with a
``prompt`` (a non-empty string) and optionally ``id``, ``model``, ``size``,
``seconds``, ``image``; any other field is kept and sent with the request.

Each item gets a key, the name the journal knows it by: ``id:<id>`` when the
line has an ``id``, else ``prompt:<digest>`` of the prompt text (``/2``,
``/3`` ... for the second and third copy of the same prompt), so a rerun on
an edited file finds the same items again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from sora_core import LocalProtocolError

__all__ = ["BatchInputError", "BatchItem", "parse_lines", "read_items"]

# The fields that are not request extras.
_KNOWN = ("prompt", "id", "model", "size", "seconds", "image")
_MAX_PROMPT = 32_000


class BatchInputError(LocalProtocolError):
    """The batch file has a bad line; ``line`` is its number (1-based), ``path`` the file."""

    def __init__(self, message: str, *, line: int | None = None, path: str | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(where + message)
        self.line = line
        self.path = path


@attrs.frozen
class BatchItem:
    """One generation to run: the prompt and its parameters.

    ``key`` names the item in the journal; ``item_id`` is the ``id`` the input
    gave (``None`` for a plain prompt); ``params`` are ``model``, ``size``,
    ``seconds``, ``image`` and the extra fields, as given (JSON values);
    ``line`` is where it was read.
    """

    key: str
    prompt: str
    params: Mapping[str, Any] = attrs.field(factory=dict)
    item_id: str | None = None
    line: int = 0

    @property
    def model(self) -> str:
        """The model asked for (``sora-2`` when the line did not say)."""
        model = self.params.get("model")
        return model if isinstance(model, str) and model else "sora-2"

    @property
    def extra(self) -> dict[str, Any]:
        """The fields beyond ``model``, ``size``, ``seconds`` and ``image``."""
        return {k: v for k, v in self.params.items() if k not in _KNOWN}

    def params_json(self) -> str:
        """``params`` as canonical JSON (sorted keys): what the journal compares."""
        return json.dumps(dict(self.params), sort_keys=True, ensure_ascii=False)


def _digest(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def _check_prompt(prompt: object, line: int, path: str | None) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise BatchInputError(
            'each JSON line needs a "prompt" that is a non-empty string', line=line, path=path
        )
    if len(prompt) > _MAX_PROMPT:
        raise BatchInputError(
            f"the prompt is {len(prompt)} characters long; the limit is {_MAX_PROMPT}",
            line=line,
            path=path,
        )
    return prompt.strip()


def _json_item(text: str, line: int, path: str | None) -> tuple[str, str | None, dict[str, Any]]:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        msg = getattr(exc, "msg", str(exc))
        raise BatchInputError(f"not valid JSON ({msg})", line=line, path=path) from None
    if not isinstance(obj, dict):
        raise BatchInputError(
            f"expected a JSON object, got {type(obj).__name__}", line=line, path=path
        )
    prompt = _check_prompt(obj.get("prompt"), line, path)
    raw_id = obj.get("id")
    item_id: str | None
    if raw_id is None:
        item_id = None
    elif isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) and str(raw_id).strip():
        item_id = str(raw_id).strip()
    else:
        raise BatchInputError('"id" must be a non-empty string or an integer', line=line, path=path)
    for name in ("model", "size", "image"):
        value = obj.get(name)
        if value is not None and not isinstance(value, str):
            raise BatchInputError(f'"{name}" must be a string', line=line, path=path)
    seconds = obj.get("seconds")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, (int, str, float))
    ):
        raise BatchInputError('"seconds" must be a number or a string', line=line, path=path)
    params = {k: v for k, v in obj.items() if k not in ("prompt", "id") and v is not None}
    return prompt, item_id, params


def parse_lines(lines: Iterable[str], *, path: str | None = None) -> list[BatchItem]:
    """The items of a batch file given as lines (see the module docstring).

    Raises :class:`BatchInputError` naming the line for a bad JSON line, a
    missing prompt, a repeated ``id``, a JSON line in a plain-text file (or
    the reverse), or a file with no item at all.
    """
    items: list[BatchItem] = []
    mode: str | None = None
    seen_ids: dict[str, int] = {}
    copies: dict[str, int] = {}
    for number, raw in enumerate(lines, 1):
        text = raw.rstrip("\r\n")
        if number == 1:
            text = text.removeprefix("\ufeff")
        stripped = text.strip()
        if not stripped:
            continue
        if mode is None:
            mode = "json" if stripped.startswith("{") else "text"
        if mode == "text":
            if stripped.startswith("#"):
                continue
            if stripped.startswith("{"):
                raise BatchInputError(
                    "a JSON line in a plain-text batch (the first item was plain text; "
                    "write every line as JSON, or none)",
                    line=number,
                    path=path,
                )
            prompt, item_id, params = _check_prompt(stripped, number, path), None, dict[str, Any]()
        else:
            if not stripped.startswith("{"):
                raise BatchInputError(
                    "not a JSON object (the first item was JSON, so every line must be)",
                    line=number,
                    path=path,
                )
            prompt, item_id, params = _json_item(stripped, number, path)
        if item_id is not None:
            if item_id in seen_ids:
                raise BatchInputError(
                    f"id {item_id!r} is used twice (first on line {seen_ids[item_id]})",
                    line=number,
                    path=path,
                )
            seen_ids[item_id] = number
            key = f"id:{item_id}"
        else:
            base = f"prompt:{_digest(prompt)}"
            copies[base] = copies.get(base, 0) + 1
            key = base if copies[base] == 1 else f"{base}/{copies[base]}"
        items.append(BatchItem(key, prompt, params, item_id, number))
    if not items:
        raise BatchInputError("no prompt in the batch file", path=path)
    return items


def read_items(path: str | os.PathLike[str]) -> list[BatchItem]:
    """The items of the batch file at ``path`` (UTF-8); see :func:`parse_lines`."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8", newline="") as f:
            return parse_lines(f, path=name)
    except UnicodeDecodeError as exc:
        raise BatchInputError(f"not UTF-8 text ({exc.reason})", path=name) from None
    except OSError as exc:
        raise BatchInputError(f"cannot read it ({exc.strerror or exc})", path=name) from None
