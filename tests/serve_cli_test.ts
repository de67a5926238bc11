/**
 * The CLIs as `deno task serve` and `deno task export-web` run them, with
 * the permissions their tasks grant (read from deno.json), in processes of
 * their own.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { textLines } from "../lib/io/lines.ts";
import { encodeImage } from "./fixtures_images.ts";
import { toyRun } from "./fixtures_run.ts";
import { buildWeb } from "./fixtures_web.ts";
import { tempDir } from "./temp.ts";
import { requestAdapter } from "../lib/webgpu.ts";

/** `deno run` with the permissions of deno task `name` (read from deno.json), on `script`. */
function taskCommand(name: string, script: string, args: string[]): Deno.Command {
  const root = new URL("..", import.meta.url);
  const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", root)));
  const run = (config.tasks[name] as string).split("&&").find((part) => part.includes("deno run"))!;
  const permissions = run.trim().split(/\s+/).filter((w) => w.startsWith("--allow"));
  assert.ok(!permissions.includes("--allow-all") && !run.includes(" -A "), run);
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, script, ...args],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Serves a toy run with `args` added, asks for one prediction, stops it; returns its stdout up to "serving on". */
async function serveOnce(args: string[]): Promise<string[]> {
  await buildWeb();
  const runDir = await toyRun({ size: 16 });
  const img = await encodeImage(40, 40, 2);
  const proc = taskCommand("serve", "scripts/serve.ts", [
    "--model",
    runDir,
    "--port",
    "0",
    "--quiet",
    ...args,
  ]).spawn();
  const stderr = new Response(proc.stderr).text();
  // A server that has not started, answered and stopped within 180 s is killed.
  const killer = setTimeout(() => proc.kill("SIGKILL"), 180_000);
  try {
    let url = "";
    const seen: string[] = [];
    for await (const line of textLines(proc.stdout)) {
      seen.push(line);
      const m = /serving on (http:\/\/127\.0\.0\.1:\d+)\//.exec(line);
      if (m) {
        url = m[1];
        break;
      }
    }
    assert.ok(url, "deno task serve did not say where it listens");
    const config = await fetch(`${url}/page-config.json`, { signal: AbortSignal.timeout(60_000) });
    assert.equal((await config.json()).dataset.size, 16);
    const res = await fetch(`${url}/api/predict`, {
      method: "POST",
      body: img as BodyInit,
      signal: AbortSignal.timeout(60_000),
    });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).values.length, 5);
    proc.kill("SIGTERM");
    const status = await proc.status;
    assert.equal(status.signal, null, "deno task serve did not stop on SIGTERM");
    assert.equal(status.code, 0);
    return seen;
  } finally {
    clearTimeout(killer);
    try {
      proc.kill("SIGKILL");
    } catch { /* already gone */ }
    await proc.status;
    await stderr;
  }
}

Deno.test("deno task serve runs with its own permissions, answers, and stops on SIGTERM", async () => {
  await serveOnce([]);
});

Deno.test({
  name: "deno task serve --backend webgpu answers on the WebGPU adapter",
  ignore: await requestAdapter().catch(() => null) === null,
  async fn() {
    const lines = await serveOnce(["--backend", "webgpu"]);
    assert.ok(lines.some((l) => /^backend: webgpu via .*, adapter: /.test(l)), lines.join("\n"));
  },
});

Deno.test("deno task export-web writes the site with its own permissions", async () => {
  await buildWeb();
  const runDir = await toyRun({ size: 16 });
  const out = await tempDir("galaxy-site-cli-");
  const proc = taskCommand("export-web", "scripts/export_web.ts", [
    "--model",
    runDir,
    "--out",
    out,
  ]).spawn();
  const killer = setTimeout(() => proc.kill("SIGKILL"), 120_000);
  try {
    const [stdout, stderr, status] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.status,
    ]);
    assert.ok(status.success, stderr);
    assert.match(stdout, /wrote \d+ files/);
    assert.ok((await Deno.stat(join(out, "app", "classify_page.js"))).size > 100_000);
  } finally {
    clearTimeout(killer);
  }
});
