// The Node harness of tests/test_pyodide.py: Python inside Pyodide, offline.
//
//   node run.mjs CONFIG.json
//
// CONFIG: {"pyodide": dir of the npm package, "wheels": dir of *.whl,
//          "scripts": [python files to run in turn], "env": {os.environ additions},
//          "allow": ["http://127.0.0.1:PORT/", ...], "timeout_ms": N}
// Each script runs with top-level await allowed; one that defines
// "async def main()" has it awaited.
//
// Pyodide is loaded from the local npm package (indexURL), never from a CDN;
// the wheels are unpacked into its site-packages (no micropip, no download).
// globalThis.fetch is wrapped: only URLs under one of CONFIG.allow go through, any
// other is refused and logged as "blocked", so the test can check that
// nothing else was fetched. Every log line is one JSON object on stdout with
// "t", the milliseconds since the harness started (performance.now()).
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));

function log(record) {
  const t = Math.round(performance.now() * 10) / 10;
  process.stdout.write(JSON.stringify({ t, ...record }) + "\n");
}

setTimeout(() => {
  log({ scenario: "harness", kind: "timeout", ms: config.timeout_ms });
  process.exit(3);
}, config.timeout_ms).unref();

const realFetch = globalThis.fetch;
globalThis.fetch = (resource, options) => {
  const url = String(resource instanceof Request ? resource.url : resource);
  if (!config.allow.some((prefix) => url.startsWith(prefix))) {
    log({ scenario: "harness", kind: "blocked", url });
    return Promise.reject(new TypeError(`the harness allows no fetch of ${url}`));
  }
  log({ scenario: "harness", kind: "fetch", url });
  return realFetch(resource, options);
};

const started = performance.now();
const { loadPyodide } = await import(pathToFileURL(path.join(config.pyodide, "pyodide.mjs")).href);
const pyodide = await loadPyodide({
  indexURL: config.pyodide + path.sep,
  env: { HOME: "/home/pyodide", ...config.env },
  stdout: (line) => log({ scenario: "harness", kind: "stdout", line }),
  stderr: (line) => log({ scenario: "harness", kind: "stderr", line }),
});
log({ scenario: "harness", kind: "loaded", ms: Math.round(performance.now() - started) });

// Python calls harness.log(scenario, kind, json_text) for each event.
pyodide.registerJsModule("harness", {
  log: (scenario, kind, detail) => log({ scenario, kind, ...JSON.parse(detail || "{}") }),
});

pyodide.FS.mkdirTree("/wheels");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: config.wheels }, "/wheels");

let failed = false;
for (const script of config.scripts) {
  const code = fs.readFileSync(script, "utf8");
  const globals = pyodide.toPy({ __name__: "__main__", __file__: script });
  try {
    await pyodide.runPythonAsync(code, { globals, filename: script });
    if (globals.has("main")) {
      // A script may define async def main(): the harness awaits it.
      await pyodide.runPythonAsync("await main()", { globals });
    }
    log({ scenario: "harness", kind: "script-ok", script });
  } catch (err) {
    failed = true;
    log({ scenario: "harness", kind: "script-failed", script, error: String(err) });
  } finally {
    globals.destroy();
  }
}
process.exit(failed ? 1 : 0);
