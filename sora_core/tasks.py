"""Video tasks: the task exchanges, the poll policy and the download rules.

A public submodule of :mod:`sora_core` (pure, like the rest of it):

- requests: :func:`task_create_request`, :func:`task_retrieve_request`,
  :func:`videos_list_request`, :func:`videos_delete_request`,
  :func:`videos_remix_request`, :func:`videos_content_request`,
  :func:`resume_probes`, :func:`download_request`, and the generic
  :func:`build_http_request`;
- answers: :class:`TaskResponse` (-> :class:`VideoTask`),
  :class:`TaskListResponse` (-> :class:`TaskPage`),
  :class:`TaskDeleteResponse` (-> :class:`TaskDeleted`), :class:`Download`;
- rules: the dialect table (:class:`TaskDialect`, :data:`OPENAI_VIDEOS`,
  :data:`NEW_API`, :data:`VIDEO_QUERY`, :data:`GENERIC`), the poll policy
  (:class:`PollPolicy`), file names (:func:`safe_filename`) and URLs
  (:func:`check_url`).
"""

from ._download import (
    DEFAULT_MAX_DOWNLOAD,
    Download,
    DownloadStart,
    check_url,
    download_request,
    resume_headers,
    safe_filename,
    sniff_media_type,
)
from ._errors import DownloadError, IncompleteDownload, UnexpectedContent
from ._multipart import FilePart, encode_multipart
from ._poll import PollDecision, PollPolicy, poll_after
from ._request import build_http_request, encode_query, path_segment
from ._task_rules import (
    DIALECTS,
    GENERIC,
    NEW_API,
    OPENAI_VIDEOS,
    STATUS_WORDS,
    VIDEO_QUERY,
    TaskDeleted,
    TaskDialect,
    TaskPage,
    VideoTask,
    normalise_status,
    progress_percent,
    structure_task,
)
from ._tasks import (
    ResumeProbe,
    TaskDeleteResponse,
    TaskListResponse,
    TaskResponse,
    envelope_error,
    parse_task,
    resume_probes,
    task_create_request,
    task_retrieve_request,
    videos_content_request,
    videos_delete_request,
    videos_list_request,
    videos_remix_request,
)

__all__ = [
    "DEFAULT_MAX_DOWNLOAD",
    "DIALECTS",
    "GENERIC",
    "NEW_API",
    "OPENAI_VIDEOS",
    "STATUS_WORDS",
    "VIDEO_QUERY",
    "Download",
    "DownloadError",
    "DownloadStart",
    "FilePart",
    "IncompleteDownload",
    "PollDecision",
    "PollPolicy",
    "ResumeProbe",
    "TaskDeleteResponse",
    "TaskDeleted",
    "TaskDialect",
    "TaskListResponse",
    "TaskPage",
    "TaskResponse",
    "UnexpectedContent",
    "VideoTask",
    "build_http_request",
    "check_url",
    "download_request",
    "encode_multipart",
    "encode_query",
    "envelope_error",
    "normalise_status",
    "parse_task",
    "path_segment",
    "poll_after",
    "progress_percent",
    "resume_headers",
    "resume_probes",
    "safe_filename",
    "sniff_media_type",
    "structure_task",
    "task_create_request",
    "task_retrieve_request",
    "videos_content_request",
    "videos_delete_request",
    "videos_list_request",
    "videos_remix_request",
]
