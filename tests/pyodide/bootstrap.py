"""Run first inside Pyodide by the Node harness: install the wheels, offline.

The wheels in ``/wheels`` (this project's and its dependencies', mounted from
the host) are unpacked into site-packages, as an installer would: no
micropip, no download. Then it checks that ``sora_transports.fetch`` imports.

Pyodide leaves ``ssl`` out of its standard library (a separate package,
loaded from its CDN), and ``sora_transports`` imports ``ssl`` at module level
(``_client_core`` and ``_async_client``, for the ``verify`` argument of the
socket clients). The import is tried without ``ssl`` first and the outcome
logged ("import-without-ssl"); if it fails on ``ssl`` alone, a stand-in
``ssl`` module whose ``SSLContext`` cannot be made is installed, and
"ssl-stub" is logged, so the fetch transport can be tested until
``sora_transports`` imports ``ssl`` only where it uses it.
"""

import importlib
import json
import pathlib
import site
import sys
import types
import zipfile

import harness

target = pathlib.Path(site.getsitepackages()[0])
names = []
for wheel in sorted(pathlib.Path("/wheels").glob("*.whl")):
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    names.append(wheel.name)
importlib.invalidate_caches()
harness.log("bootstrap", "installed", json.dumps({"wheels": names, "python": sys.version}))


def _try_import() -> str | None:
    try:
        import sora_transports.fetch  # noqa: F401
    except ModuleNotFoundError as exc:
        for name in [m for m in sys.modules if m.startswith(("sora_core", "sora_transports"))]:
            del sys.modules[name]
        return str(exc.name)
    return None


stubbed = False
missing = _try_import()
harness.log("bootstrap", "import-without-ssl", json.dumps({"missing": missing}))
if missing == "ssl":

    class SSLContext:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("ssl is not part of Pyodide's standard library")

    def create_default_context(*args: object, **kwargs: object) -> SSLContext:
        return SSLContext()

    stub = types.ModuleType("ssl", "A stand-in: Pyodide has no ssl module (see bootstrap.py).")
    stub.SSLContext = SSLContext  # type: ignore[attr-defined]
    stub.create_default_context = create_default_context  # type: ignore[attr-defined]
    stub.CERT_NONE, stub.CERT_REQUIRED = 0, 2  # type: ignore[attr-defined]
    sys.modules["ssl"] = stub
    harness.log("bootstrap", "ssl-stub", "{}")
    stubbed = True
    missing = _try_import()
if missing is not None:
    raise ModuleNotFoundError(f"sora_transports.fetch needs {missing!r}, which Pyodide lacks")
harness.log("bootstrap", "ready", json.dumps({"ssl_stub": "ssl" in sys.modules and stubbed}))
