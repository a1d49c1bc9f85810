"""``client.videos``: the video task API on every client, sync and async.

openai-python's names and arguments (``create``, ``retrieve``, ``list``,
``delete``, ``remix``, ``download_content``, ``poll``, ``create_and_poll``)
plus the project's own: ``generate_video`` (chat stream or task API, resumed
by task id after a break, never submitted twice), ``resume_video`` and
``download`` (a file, with the core's download rules and
:mod:`sora_transports._files`' file rules). The logic lives in the core's
flows (:mod:`sora_core._flows`); :class:`Videos` and :class:`AsyncVideos`
only run them.

``dialect`` (a resource attribute, or per call): ``"openai"`` (``/videos``,
the default for submissions), ``"new-api"`` or ``"video-query"``
(:data:`sora_core.tasks.DIALECTS`). Resuming a task of unknown dialect
probes the three and remembers, per client, which one answered.
"""

from __future__ import annotations

import mimetypes
import os
import weakref
from collections.abc import Callable, Generator, Mapping
from typing import Any

import attrs

from sora_core import (
    Event,
    LocalProtocolError,
    VideoGenerationFailed,
    VideoResult,
)
from sora_core._flows import (
    create_and_poll,
    download_flow,
    find_task,
    generate_flow,
    poll_task,
    task_to_video,
)
from sora_core._task_exchange import BytesSink, TaskExchange
from sora_core.tasks import DIALECTS as _DIALECTS
from sora_core.tasks import (
    OPENAI_VIDEOS,
    FilePart,
    PollPolicy,
    ResumeProbe,
    TaskDeleted,
    TaskDialect,
    TaskPage,
    VideoTask,
    download_request,
    resume_probes,
    safe_filename,
    task_create_request,
    task_retrieve_request,
    videos_content_request,
    videos_delete_request,
    videos_list_request,
    videos_remix_request,
)

from ._client_core import ClientConfig, _sniff, video_request
from ._files import PartFile, counting_sink

__all__ = ["AsyncVideos", "DownloadedFile", "VideoContent", "Videos", "videos_of"]

Flow = Generator[Any, Any, Any]
InputReference = FilePart | Mapping[str, Any] | bytes | str | os.PathLike[str] | None


def _dialect(value: TaskDialect | str | None) -> TaskDialect | None:
    if value is None or isinstance(value, TaskDialect):
        return value
    found = _DIALECTS.get(value)
    if found is None:
        raise LocalProtocolError(f"unknown task dialect {value!r}; use one of {sorted(_DIALECTS)}")
    return found


def _input_reference(value: InputReference) -> FilePart | Mapping[str, Any] | None:
    if value is None or isinstance(value, (FilePart, Mapping)):
        return value
    if isinstance(value, bytes):
        ctype = _sniff(value) or "application/octet-stream"
        ext = (mimetypes.guess_extension(ctype) or ".bin").lstrip(".")
        return FilePart("input_reference", f"input_reference.{ext}", value, ctype)
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        with open(path, "rb") as f:
            content = f.read()
        ctype = _sniff(content) or mimetypes.guess_type(path)[0] or "application/octet-stream"
        return FilePart("input_reference", os.path.basename(path), content, ctype)
    raise LocalProtocolError(
        "input_reference is a file path, bytes, a FilePart or {'image_url': ...}, "
        f"not {type(value).__name__}"
    )


@attrs.frozen
class VideoContent:
    """A downloaded file in memory (openai-python's binary response shape)."""

    content: bytes
    media_type: str | None = None

    def read(self) -> bytes:
        return self.content

    def write_to_file(self, path: str | os.PathLike[str]) -> None:
        with open(path, "wb") as f:
            f.write(self.content)


@attrs.frozen
class DownloadedFile:
    """A file saved by :meth:`Videos.download`."""

    path: str
    size: int
    media_type: str | None = None


class _Core:
    """What the sync and async resources share: the exchanges and flows."""

    def __init__(
        self,
        client: Any,
        dialect: TaskDialect | str | None = None,
        policy: PollPolicy | None = None,
    ) -> None:
        self._client = client
        self.dialect: TaskDialect | None = _dialect(dialect)
        """The task API to use (``None``: ``/videos`` to submit, probing to resume)."""
        self.poll_policy = policy or PollPolicy()
        self.resume_dialect: TaskDialect | None = None
        """The dialect the relay answered a resume probe in (remembered)."""

    @property
    def _config(self) -> ClientConfig:
        config: ClientConfig = self._client.config
        return config

    def _auth(self) -> dict[str, Any]:
        c = self._config
        return {"base_url": c.base_url, "api_key": c.api_key, "headers": c.headers}

    def _pick(self, dialect: TaskDialect | str | None) -> TaskDialect:
        return _dialect(dialect) or self.dialect or OPENAI_VIDEOS

    def _create(
        self,
        prompt: str,
        model: str | None,
        seconds: str | int | None,
        size: str | None,
        input_reference: InputReference,
        extra_body: Mapping[str, Any] | None,
        dialect: TaskDialect,
    ) -> TaskExchange:
        request = task_create_request(
            dialect,
            prompt=prompt,
            model=model,
            seconds=seconds,
            size=size,
            input_reference=_input_reference(input_reference),
            extra_body=extra_body,
            **self._auth(),
        )
        return TaskExchange(request, dialect)

    def _retrieve(self, video_id: str, dialect: TaskDialect) -> TaskExchange:
        return TaskExchange(task_retrieve_request(dialect, video_id, **self._auth()), dialect)

    def _probes(self, task_id: str, dialect: TaskDialect | str | None) -> tuple[ResumeProbe, ...]:
        chosen = _dialect(dialect) or self.dialect
        if chosen is not None:
            return (ResumeProbe(chosen, task_retrieve_request(chosen, task_id, **self._auth())),)
        return resume_probes(task_id, prefer=self.resume_dialect, **self._auth())

    def _remember(self, dialect: TaskDialect) -> None:
        self.resume_dialect = dialect

    def _content_url(self, task_id: str) -> str:
        return videos_content_request(task_id, **self._auth()).url

    def _lookup_flow(self, task_id: str, dialect: TaskDialect | str | None) -> Flow:
        return find_task(self._probes(task_id, dialect), on_dialect=self._remember)

    def _poll_flow(
        self,
        video_id: str,
        dialect: TaskDialect | str | None,
        policy: PollPolicy | None,
        on_task: Callable[[VideoTask], None] | None,
    ) -> Flow:
        return poll_task(
            self._probes(video_id, dialect),
            policy=policy or self.poll_policy,
            on_dialect=self._remember,
            on_task=on_task,
        )

    def _create_and_poll_flow(
        self,
        prompt: str,
        model: str | None,
        seconds: str | int | None,
        size: str | None,
        input_reference: InputReference,
        extra_body: Mapping[str, Any] | None,
        dialect: TaskDialect | str | None,
        policy: PollPolicy | None,
        on_task: Callable[[VideoTask], None] | None,
    ) -> Flow:
        d = self._pick(dialect)
        create = self._create(prompt, model, seconds, size, input_reference, extra_body, d)
        auth = self._auth()
        return create_and_poll(
            create.request,
            d,
            lambda task_id: task_retrieve_request(d, task_id, **auth),
            policy=policy or self.poll_policy,
            on_task=on_task,
        )

    def _generate_flow(
        self,
        prompt: str,
        *,
        model: str,
        image: str | bytes | os.PathLike[str] | None,
        size: str | None,
        seconds: int | str | None,
        endpoint: str,
        extra: Mapping[str, Any] | None,
        dialect: TaskDialect | str | None,
        policy: PollPolicy | None,
        on_task: Callable[[VideoTask], None] | None,
        stream: bool = True,
    ) -> Flow:
        if endpoint == "videos":
            reference: FilePart | Mapping[str, Any] | None = None
            if image is not None:
                if isinstance(image, str) and image.startswith(("http://", "https://", "data:")):
                    reference = {"image_url": image}
                else:
                    reference = _input_reference(image)
            flow = self._create_and_poll_flow(
                prompt, model, seconds, size, reference, extra, dialect, policy, on_task
            )
            return self._finish_task(flow)
        if endpoint != "chat":
            raise LocalProtocolError(f"endpoint is 'chat' or 'videos', not {endpoint!r}")
        request = video_request(
            prompt, model=model, image=image, size=size, seconds=seconds, extra=extra, stream=stream
        )
        chat = self._config.chat_exchange(request, "video", video=True)
        return generate_flow(
            chat,
            lambda task_id: self._probes(task_id, dialect),
            content_url=self._content_url,
            policy=policy or self.poll_policy,
            on_dialect=self._remember,
            on_task=on_task,
        )

    def as_video(self, task: VideoTask) -> VideoResult:
        """``task`` as a :class:`~sora_core.VideoResult` (status ``succeeded``
        with its link once completed; an OpenAI task's link is its ``/content``)."""
        url = self._content_url(task.id) if task.id and task.dialect == "openai" else None
        return task_to_video(task, content_url=url)

    def _finish_task(self, flow: Flow) -> Flow:
        task: VideoTask = yield from flow
        video = self.as_video(task)
        if video.status != "succeeded":
            raise VideoGenerationFailed(video.error or "the task produced no video", video=video)
        return video

    def _download_flow(
        self,
        source: str,
        sink: Any,
        variant: Any,
        retries: int,
        from_peer: bool,
        max_size: int | None,
    ) -> Flow:
        auth = self._auth()
        if source.startswith(("http://", "https://")):

            def request(have: int) -> Any:
                return download_request(source, have=have, from_peer=from_peer, **auth)

        else:

            def request(have: int) -> Any:
                return videos_content_request(source, variant=variant, have=have, **auth)

        return download_flow(request, sink, variant=variant, retries=retries, max_size=max_size)

    @staticmethod
    def _target(source: str, path: str | os.PathLike[str] | None, variant: Any) -> str:
        if path is not None and not os.path.isdir(path):
            return os.fspath(path)
        url = source if source.startswith(("http://", "https://")) else None
        default = source if url is None else "video"
        name = safe_filename(url, variant=variant, default=default)
        return os.path.join(os.fspath(path or "."), name)


class Videos(_Core):
    """``client.videos`` of a synchronous client."""

    def with_options(
        self, *, dialect: TaskDialect | str | None = None, poll_policy: PollPolicy | None = None
    ) -> Videos:
        """A copy with another ``dialect`` or poll policy (same client)."""
        return Videos(self._client, dialect or self.dialect, poll_policy or self.poll_policy)

    def create(
        self,
        *,
        prompt: str,
        model: str | None = "sora-2",
        seconds: str | int | None = None,
        size: str | None = None,
        input_reference: InputReference = None,
        extra_body: Mapping[str, Any] | None = None,
        dialect: TaskDialect | str | None = None,
    ) -> VideoTask:
        """Submit a generation (a paid request): the new task."""
        exchange = self._create(
            prompt, model, seconds, size, input_reference, extra_body, self._pick(dialect)
        )
        task: VideoTask = self._client._call(exchange)
        return task

    def retrieve(self, video_id: str, *, dialect: TaskDialect | str | None = None) -> VideoTask:
        """The task ``video_id`` now."""
        task: VideoTask = self._client._call(self._retrieve(video_id, self._pick(dialect)))
        return task

    def lookup(self, task_id: str, *, dialect: TaskDialect | str | None = None) -> VideoTask:
        """The task ``task_id`` now, in whichever dialect the relay knows it
        (probing, then remembering, when no dialect is set)."""
        task: VideoTask = self._client.run_flow(self._lookup_flow(task_id, dialect))
        return task

    def list(
        self, *, after: str | None = None, limit: int | None = None, order: str | None = None
    ) -> TaskPage:
        """One page of tasks (``GET /videos``)."""
        request = videos_list_request(after=after, limit=limit, order=order, **self._auth())
        page: TaskPage = self._client._call(TaskExchange(request, OPENAI_VIDEOS, "list"))
        return page

    def delete(self, video_id: str) -> TaskDeleted:
        """Delete the task ``video_id`` (``DELETE /videos/{id}``)."""
        request = videos_delete_request(video_id, **self._auth())
        done: TaskDeleted = self._client._call(TaskExchange(request, OPENAI_VIDEOS, "delete"))
        return done

    def remix(
        self, video_id: str, *, prompt: str, extra_body: Mapping[str, Any] | None = None
    ) -> VideoTask:
        """A new task remixing ``video_id`` with ``prompt`` (a paid request)."""
        request = videos_remix_request(
            video_id, prompt=prompt, extra_body=extra_body, **self._auth()
        )
        task: VideoTask = self._client._call(TaskExchange(request, OPENAI_VIDEOS))
        return task

    def poll(
        self,
        video_id: str,
        *,
        dialect: TaskDialect | str | None = None,
        poll_policy: PollPolicy | None = None,
        on_task: Callable[[VideoTask], None] | None = None,
    ) -> VideoTask:
        """Poll until the task ends (``completed`` or ``failed``); any task
        id, also one a broken chat stream showed."""
        task: VideoTask = self._client.run_flow(
            self._poll_flow(video_id, dialect, poll_policy, on_task)
        )
        return task

    def create_and_poll(
        self,
        *,
        prompt: str,
        model: str | None = "sora-2",
        seconds: str | int | None = None,
        size: str | None = None,
        input_reference: InputReference = None,
        extra_body: Mapping[str, Any] | None = None,
        dialect: TaskDialect | str | None = None,
        poll_policy: PollPolicy | None = None,
        on_task: Callable[[VideoTask], None] | None = None,
    ) -> VideoTask:
        """Submit once, then poll to the end: the finished task."""
        flow = self._create_and_poll_flow(
            prompt, model, seconds, size, input_reference, extra_body, dialect, poll_policy, on_task
        )
        task: VideoTask = self._client.run_flow(flow)
        return task

    def generate_video(
        self,
        prompt: str,
        *,
        model: str = "sora-2",
        image: str | bytes | os.PathLike[str] | None = None,
        size: str | None = None,
        seconds: int | str | None = None,
        endpoint: str = "chat",
        extra: Mapping[str, Any] | None = None,
        dialect: TaskDialect | str | None = None,
        poll_policy: PollPolicy | None = None,
        on_event: Callable[[Event], None] | None = None,
        on_task: Callable[[VideoTask], None] | None = None,
        stream: bool = True,
    ) -> VideoResult:
        """A generation to its :class:`~sora_core.VideoResult`, through the chat
        stream (``endpoint="chat"``) or the task API (``"videos"``). A chat
        stream that breaks after the task id is followed by polling the task:
        one submission, whatever happens."""
        flow = self._generate_flow(
            prompt,
            model=model,
            image=image,
            size=size,
            seconds=seconds,
            endpoint=endpoint,
            extra=extra,
            dialect=dialect,
            policy=poll_policy,
            on_task=on_task,
            stream=stream,
        )
        video: VideoResult = self._client.run_flow(flow, on_event)
        return video

    def resume_video(
        self,
        task_id: str,
        *,
        dialect: TaskDialect | str | None = None,
        poll_policy: PollPolicy | None = None,
        on_task: Callable[[VideoTask], None] | None = None,
    ) -> VideoResult:
        """Follow ``task_id`` to its video (a succeeded ``VideoResult``, else
        :class:`~sora_core.VideoGenerationFailed`)."""
        flow = self._finish_task(self._poll_flow(task_id, dialect, poll_policy, on_task))
        video: VideoResult = self._client.run_flow(flow)
        return video

    def download_content(self, video_id: str, *, variant: Any = "video") -> VideoContent:
        """The file of a finished task (``GET /videos/{id}/content``), in memory."""
        sink = BytesSink()
        download = self._client.run_flow(
            self._download_flow(video_id, sink, variant, 2, False, None)
        )
        return VideoContent(bytes(sink.data), download.media_type)

    def download(
        self,
        source: str,
        path: str | os.PathLike[str] | None = None,
        *,
        variant: Any = "video",
        force: bool = False,
        retries: int = 2,
        from_peer: bool = False,
        max_size: int | None = None,
        on_bytes: Callable[[int], None] | None = None,
        on_start: Callable[[int | None], None] | None = None,
    ) -> DownloadedFile:
        """Save a task's file (``source``: a task id, via ``/content``) or a URL
        to ``path`` (a file or a directory); resumes ``PATH.part``; never
        overwrites ``path`` unless ``force``."""
        target = self._target(source, path, variant)
        with PartFile(target, force=force) as sink:
            writer = counting_sink(sink, on_bytes, on_start)
            download = self._client.run_flow(
                self._download_flow(source, writer, variant, retries, from_peer, max_size)
            )
            sink.commit()
            return DownloadedFile(target, download.position, download.media_type)


class AsyncVideos(_Core):
    """``client.videos`` of an async client (trio, asyncio): the same methods, awaited."""

    def with_options(
        self, *, dialect: TaskDialect | str | None = None, poll_policy: PollPolicy | None = None
    ) -> AsyncVideos:
        return AsyncVideos(self._client, dialect or self.dialect, poll_policy or self.poll_policy)

    async def create(
        self,
        *,
        prompt: str,
        model: str | None = "sora-2",
        seconds: str | int | None = None,
        size: str | None = None,
        input_reference: InputReference = None,
        extra_body: Mapping[str, Any] | None = None,
        dialect: TaskDialect | str | None = None,
    ) -> VideoTask:
        exchange = self._create(
            prompt, model, seconds, size, input_reference, extra_body, self._pick(dialect)
        )
        task: VideoTask = await self._client._call(exchange)
        return task

    async def retrieve(
        self, video_id: str, *, dialect: TaskDialect | str | None = None
    ) -> VideoTask:
        task: VideoTask = await self._client._call(self._retrieve(video_id, self._pick(dialect)))
        return task

    async def lookup(self, task_id: str, *, dialect: TaskDialect | str | None = None) -> VideoTask:
        task: VideoTask = await self._client.run_flow(self._lookup_flow(task_id, dialect))
        return task

    async def list(
        self, *, after: str | None = None, limit: int | None = None, order: str | None = None
    ) -> TaskPage:
        request = videos_list_request(after=after, limit=limit, order=order, **self._auth())
        page: TaskPage = await self._client._call(TaskExchange(request, OPENAI_VIDEOS, "list"))
        return page

    async def delete(self, video_id: str) -> TaskDeleted:
        request = videos_delete_request(video_id, **self._auth())
        done: TaskDeleted = await self._client._call(TaskExchange(request, OPENAI_VIDEOS, "delete"))
        return done

    async def remix(
        self, video_id: str, *, prompt: str, extra_body: Mapping[str, Any] | None = None
    ) -> VideoTask:
        request = videos_remix_request(
            video_id, prompt=prompt, extra_body=extra_body, **self._auth()
        )
        task: VideoTask = await self._client._call(TaskExchange(request, OPENAI_VIDEOS))
        return task

    async def poll(
        self,
        video_id: str,
        *,
        dialect: TaskDialect | str | None = None,
        poll_policy: PollPolicy | None = None,
        on_task: Callable[[VideoTask], None] | None = None,
    ) -> VideoTask:
        task: VideoTask = await self._client.run_flow(
            self._poll_flow(video_id, dialect, poll_policy, on_task)
        )
        return task

    async def create_and_poll(
        self,
        *,
        prompt: str,
        model: str | None = "sora-2",
        seconds: str | int | None = None,
        size: str | None = None,
        input_reference: InputReference = None,
        extra_body: Mapping[str, Any] | None = None,
        dialect: TaskDialect | str | None = None,
        poll_policy: PollPolicy | None = None,
        on_task: Callable[[VideoTask], None] | None = None,
    ) -> VideoTask:
        flow = self._create_and_poll_flow(
            prompt, model, seconds, size, input_reference, extra_body, dialect, poll_policy, on_task
        )
        task: VideoTask = await self._client.run_flow(flow)
        return task

    async def generate_video(
        self,
        prompt: str,
        *,
        model: str = "sora-2",
        image: str | bytes | os.PathLike[str] | None = None,
        size: str | None = None,
        seconds: int | str | None = None,
        endpoint: str = "chat",
        extra: Mapping[str, Any] | None = None,
        dialect: TaskDialect | str | None = None,
        poll_policy: PollPolicy | None = None,
        on_event: Callable[[Event], None] | None = None,
        on_task: Callable[[VideoTask], None] | None = None,
        stream: bool = True,
    ) -> VideoResult:
        flow = self._generate_flow(
            prompt,
            model=model,
            image=image,
            size=size,
            seconds=seconds,
            endpoint=endpoint,
            extra=extra,
            dialect=dialect,
            policy=poll_policy,
            on_task=on_task,
            stream=stream,
        )
        video: VideoResult = await self._client.run_flow(flow, on_event)
        return video

    async def resume_video(
        self,
        task_id: str,
        *,
        dialect: TaskDialect | str | None = None,
        poll_policy: PollPolicy | None = None,
        on_task: Callable[[VideoTask], None] | None = None,
    ) -> VideoResult:
        flow = self._finish_task(self._poll_flow(task_id, dialect, poll_policy, on_task))
        video: VideoResult = await self._client.run_flow(flow)
        return video

    async def download_content(self, video_id: str, *, variant: Any = "video") -> VideoContent:
        sink = BytesSink()
        download = await self._client.run_flow(
            self._download_flow(video_id, sink, variant, 2, False, None)
        )
        return VideoContent(bytes(sink.data), download.media_type)

    async def download(
        self,
        source: str,
        path: str | os.PathLike[str] | None = None,
        *,
        variant: Any = "video",
        force: bool = False,
        retries: int = 2,
        from_peer: bool = False,
        max_size: int | None = None,
        on_bytes: Callable[[int], None] | None = None,
        on_start: Callable[[int | None], None] | None = None,
    ) -> DownloadedFile:
        target = self._target(source, path, variant)
        with PartFile(target, force=force) as sink:
            writer = counting_sink(sink, on_bytes, on_start)
            download = await self._client.run_flow(
                self._download_flow(source, writer, variant, retries, from_peer, max_size)
            )
            sink.commit()
            return DownloadedFile(target, download.position, download.media_type)


_RESOURCES: weakref.WeakKeyDictionary[Any, _Core] = weakref.WeakKeyDictionary()


def videos_of(client: Any) -> Any:
    """The ``videos`` resource of ``client`` (one per client: it remembers
    which task dialect the relay answered)."""
    found = _RESOURCES.get(client)
    if found is None:
        is_async = hasattr(client, "aclose")
        found = _RESOURCES[client] = (AsyncVideos if is_async else Videos)(client)
    return found
