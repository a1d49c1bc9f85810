"""A local sora-2 relay emulator: an OpenAI-compatible HTTP/1.1 server on h11.

It speaks ``POST /v1/chat/completions`` (streamed or not), the three video
task APIs (OpenAI's ``/v1/videos``, new-api's ``/v1/video/generations`` and
``/v1/video/create`` + ``/v1/video/query``), ``GET /v1/models``, and serves a
bundled tiny video and thumbnail under ``/files/``, so a client can run a
whole generation, download included, over loopback::

    import openai

    from sora_transports.emulator import Emulator

    with Emulator(speed=0) as emu:
        client = openai.OpenAI(base_url=emu.base_url, api_key="k")
        answer = client.chat.completions.create(
            model="sora-2", messages=[{"role": "user", "content": "a cat surfing"}]
        )
        print(answer.choices[0].message.content)

A sora model (any name starting with ``sora``) streams a generation in one of
the house styles of :data:`STYLES`; any other model streams a short chat
reply word by word. Every generation is a task that each task API can read,
the chat stream's included. Faults (:data:`FAULTS`) are switched on for the
whole emulator or per request with the ``X-Emulator-Fault`` header; the
style per request with ``X-Emulator-Style``. :attr:`Emulator.stats` counts
what the server saw.

The package: ``_server`` (options, connections, threads, start/stop),
``_http`` (one h11 exchange, files with ``Range``, multipart), ``_routes``
(routing, CORS, auth, small routes, the request log), ``_playback`` (the
chat stream), ``_task_routes`` and ``_tasks`` (the task APIs and the task
timeline), ``_styles`` (the house styles), ``_faults`` (faults and counters).
"""

from ._faults import FAULTS, Stats
from ._routes import FILES, MODELS
from ._server import Emulator, serve_forever
from ._styles import POLICY_TEXT, STYLES

__all__ = [
    "FAULTS",
    "FILES",
    "MODELS",
    "POLICY_TEXT",
    "STYLES",
    "Emulator",
    "Stats",
    "serve_forever",
]
