"""The task APIs: OpenAI's ``/v1/videos``, new-api's ``/v1/video/generations``
and the ``/v1/video/create`` + ``/v1/video/query`` relays, over one store.

Every handler is ``(emulator, exchange, request, path_argument)``. A task
created through one API (or by a chat stream) can be read through all of
them. Submissions go through the fault gate (429 / 500 / policy), reads
through the poll gate (429 / 500, ``poll_429``), downloads through the
download faults (``short-body``, ``expired``).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from ._faults import gate, pick_fault
from ._http import Exchange, Request, error, form_fields, send_file
from ._tasks import Task

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = ["ROUTES"]

VARIANTS = {
    "video": ("sample.mp4", "video/mp4"),
    "thumbnail": ("sample.webp", "image/webp"),
    "spritesheet": ("sample.webp", "image/webp"),
}
URL_FIELDS = ("url", "output", "metadata.url")


def _not_found(task_id: str) -> Any:
    return error(
        f"Video with id '{task_id}' not found.", "invalid_request_error", "id", "not_found"
    )


def _envelope(data: Any, code: str = "success", message: str = "") -> Any:
    return {"code": code, "message": message, "data": data}


def _submission(req: Request) -> dict[str, Any] | str:
    """The fields of a task submission (JSON or multipart/form-data), or
    what is wrong with it."""
    ctype = req.header("content-type") or ""
    if ctype.lower().startswith("multipart/form-data"):
        try:
            return form_fields(ctype, req.body)
        except (ValueError, LookupError):
            return "The multipart/form-data body could not be parsed."
    try:
        body = json.loads(req.body or b"{}")
    except (ValueError, RecursionError):
        return "We could not parse the JSON body of your request. (HINT: send valid JSON.)"
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    return body


def _prompt(fields: dict[str, Any]) -> str | None:
    prompt = fields.get("prompt")
    return prompt if isinstance(prompt, str) and prompt.strip() else None


def _reference(fields: dict[str, Any], *names: str) -> tuple[str, str, int] | None:
    for name in names:
        value = fields.get(name)
        if isinstance(value, tuple):
            return value[0], value[1], len(value[2])
        if isinstance(value, str) and value:
            return value[:200], "text/uri-list", 0
        if isinstance(value, (dict, list)) and value:
            return json.dumps(value)[:200], "application/json", 0
    return None


async def _poll(emu: Emulator, ex: Exchange, req: Request, api: str) -> bool:
    emu._counters.add("poll:" + api)
    admitted, _ = await gate(emu, ex, req, "poll")
    return admitted


def _poll_headers(emu: Emulator) -> list[tuple[str, str]]:
    return [("openai-poll-after-ms", str(emu.poll_after_ms()))]


async def _create(
    emu: Emulator, ex: Exchange, req: Request, api: str, fields: dict[str, Any]
) -> Task | None:
    """Past the gate, a new task; ``None`` when the gate answered."""
    admitted, fault = await gate(emu, ex, req, "submit")
    if not admitted:
        return None
    prompt = _prompt(fields) or ""
    model = fields.get("model")
    task = emu.new_task(
        api,
        model if isinstance(model, str) and model else "sora-2",
        prompt,
        req.base,
        emu.scaled(emu.task_seconds),
        policy=fault == "policy",
        body=fields,
        reference=_reference(fields, "input_reference", "image", "images"),
        remixed_from=fields.get("_remix"),
    )
    emu._counters.submitted(prompt, "create:" + api)
    return task


# -- /v1/videos -----------------------------------------------------------------


async def videos_create(emu: Emulator, ex: Exchange, req: Request, _arg: str) -> None:
    fields = _submission(req)
    if isinstance(fields, str):
        return await ex.json(400, error(fields, "invalid_request_error"))
    if _prompt(fields) is None:
        msg = "Missing required parameter: 'prompt'."
        return await ex.json(400, error(msg, "invalid_request_error", "prompt", "missing"))
    task = await _create(emu, ex, req, "videos", fields)
    if task is not None:
        await ex.json(200, task.openai())


async def videos_list(emu: Emulator, ex: Exchange, req: Request, _arg: str) -> None:
    order = req.query.get("order", "desc")
    try:
        limit = int(req.query.get("limit", "20"))
    except ValueError:
        limit = -1
    if order not in ("asc", "desc") or not 1 <= limit <= 100:
        msg = "order must be asc or desc, limit 1 to 100."
        return await ex.json(400, error(msg, "invalid_request_error", "limit"))
    tasks = emu.tasks.all()
    if order == "desc":
        tasks.reverse()
    after = req.query.get("after")
    if after:
        ids = [t.id for t in tasks]
        key = after.rsplit(":", 1)[-1]
        tasks = tasks[ids.index(key) + 1 :] if key in ids else []
    page = tasks[:limit]
    data = [t.openai() for t in page]
    body = {
        "object": "list",
        "data": data,
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
        "has_more": len(tasks) > limit,
    }
    await ex.json(200, body, _poll_headers(emu))


async def videos_get(emu: Emulator, ex: Exchange, req: Request, task_id: str) -> None:
    if not await _poll(emu, ex, req, "videos"):
        return None
    task = emu.tasks.get(task_id)
    if task is None:
        return await ex.json(404, _not_found(task_id))
    await ex.json(200, task.openai(), _poll_headers(emu))


async def videos_delete(emu: Emulator, ex: Exchange, req: Request, task_id: str) -> None:
    task = emu.tasks.delete(task_id)
    if task is None:
        return await ex.json(404, _not_found(task_id))
    await ex.json(200, {"id": task.id, "object": "video.deleted", "deleted": True})


async def videos_remix(emu: Emulator, ex: Exchange, req: Request, task_id: str) -> None:
    source = emu.tasks.get(task_id)
    if source is None:
        return await ex.json(404, _not_found(task_id))
    fields = _submission(req)
    if isinstance(fields, str):
        return await ex.json(400, error(fields, "invalid_request_error"))
    if _prompt(fields) is None:
        msg = "Missing required parameter: 'prompt'."
        return await ex.json(400, error(msg, "invalid_request_error", "prompt", "missing"))
    if source.state()[0] != "completed":
        msg = f"Video '{source.id}' is not completed; only a completed video can be remixed."
        return await ex.json(400, error(msg, "invalid_request_error", "video_id", "not_ready"))
    fields = {
        "model": source.model,
        "seconds": source.seconds,
        "size": source.size,
        **fields,
        "_remix": source.id,
    }
    task = await _create(emu, ex, req, "remix", fields)
    if task is not None:
        await ex.json(200, task.openai())


async def videos_content(emu: Emulator, ex: Exchange, req: Request, task_id: str) -> None:
    emu._counters.add("download")
    task = emu.tasks.get(task_id)
    if task is None:
        return await ex.json(404, _not_found(task_id))
    variant = req.query.get("variant", "video")
    if variant not in VARIANTS:
        msg = "variant must be one of video, thumbnail, spritesheet."
        return await ex.json(400, error(msg, "invalid_request_error", "variant"))
    status, progress = task.state()
    if status != "completed":
        msg = f"Video '{task.id}' is not ready: {status}, {progress}%."
        return await ex.json(409, error(msg, "invalid_request_error", None, "video_not_ready"))
    name, ctype = VARIANTS[variant]
    await file_answer(emu, ex, req, name, ctype, task.expires_at())


async def file_answer(
    emu: Emulator, ex: Exchange, req: Request, name: str, ctype: str, expires: int | None
) -> None:
    """A download, with the download faults and link expiry."""
    fault = pick_fault(req, "download", emu.fault, emu.fault_count, emu._counters)
    if fault == "expired" or (expires is not None and time.time() > expires):
        msg = "This link has expired. Retrieve the task again for a fresh one."
        return await ex.json(410, error(msg, "invalid_request_error", None, "link_expired"))
    data = emu.file_bytes(name)
    extra = [("Cache-Control", "private, max-age=3600")]
    await send_file(ex, data, ctype, req.header("range"), short=fault == "short-body", extra=extra)


# -- new-api: /v1/video/generations ------------------------------------------------


async def generations_create(emu: Emulator, ex: Exchange, req: Request, _arg: str) -> None:
    fields = _submission(req)
    if isinstance(fields, str):
        return await ex.json(400, _envelope(None, "invalid_request", fields))
    if _prompt(fields) is None:
        return await ex.json(400, _envelope(None, "invalid_request", "prompt is required"))
    if "duration" in fields and "seconds" not in fields:
        fields["seconds"] = fields["duration"]
    if "width" in fields and "height" in fields and "size" not in fields:
        fields["size"] = f"{fields['width']}x{fields['height']}"
    task = await _create(emu, ex, req, "generations", fields)
    if task is not None:
        await ex.json(200, _envelope(task.new_api(_url_field(emu, req))))


def _url_field(emu: Emulator, req: Request) -> str:
    asked = req.header("x-emulator-url-field")
    return asked if asked in URL_FIELDS else emu.url_field


async def generations_get(emu: Emulator, ex: Exchange, req: Request, task_id: str) -> None:
    if not await _poll(emu, ex, req, "generations"):
        return None
    task = emu.tasks.get(task_id)
    if task is None:
        return await ex.json(400, _envelope(None, "task_not_exist", "task_not_exist"))
    body = _envelope(task.new_api(_url_field(emu, req)))
    await ex.json(200, body, _poll_headers(emu))


# -- /v1/video/create + /v1/video/query --------------------------------------------


async def query_create(emu: Emulator, ex: Exchange, req: Request, _arg: str) -> None:
    fields = _submission(req)
    if isinstance(fields, str):
        return await ex.json(400, error(fields, "invalid_request_error"))
    if _prompt(fields) is None:
        return await ex.json(400, error("prompt is required", "invalid_request_error", "prompt"))
    if "duration" in fields and "seconds" not in fields:
        fields["seconds"] = fields["duration"]
    orientation = fields.get("orientation")
    if orientation in ("portrait", "landscape") and "size" not in fields:
        fields["size"] = "720x1280" if orientation == "portrait" else "1280x720"
    task = await _create(emu, ex, req, "create", fields)
    if task is not None:
        await ex.json(200, task.query())


async def query_get(emu: Emulator, ex: Exchange, req: Request, _arg: str) -> None:
    task_id = req.query.get("id", "")
    if not task_id:
        return await ex.json(400, error("id is required", "invalid_request_error", "id"))
    if not await _poll(emu, ex, req, "query"):
        return None
    task = emu.tasks.get(task_id)
    if task is None:
        return await ex.json(404, _not_found(task_id))
    await ex.json(200, task.query(), _poll_headers(emu))


# (path pattern, method -> handler, api name); {id} is one path segment.
ROUTES: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/videos", {"POST": videos_create, "GET": videos_list}, "videos"),
    ("/v1/videos/{id}", {"GET": videos_get, "DELETE": videos_delete}, "videos"),
    ("/v1/videos/{id}/content", {"GET": videos_content, "HEAD": videos_content}, "content"),
    ("/v1/videos/{id}/remix", {"POST": videos_remix}, "videos"),
    ("/v1/video/generations", {"POST": generations_create}, "generations"),
    ("/v1/video/generations/{id}", {"GET": generations_get}, "generations"),
    ("/v1/video/create", {"POST": query_create}, "create"),
    ("/v1/video/query", {"GET": query_get}, "query"),
]
