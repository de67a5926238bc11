import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { adapterText, deadline, pairedEfficiency } from "../lib/bench/benchmarks.ts";
import { BROWSER_STAGE_SECONDS, browserInferDeadline } from "../lib/bench/browser_fixtures.ts";
import { isExecutable, type MonitorReport, parseGnuTimeOutput } from "../lib/bench/monitor.ts";
import { encodeNpy, npyHeader } from "../lib/bench/npy.ts";
import { errorLine, parseResultLine, runMeasured, type RunResult } from "../lib/bench/process.ts";
import { type RowRecord, writeResults } from "../lib/bench/report.ts";
import { descendants, parseStatParent, parseStatusMemory } from "../lib/bench/rss.ts";
import { betterRatio, median, summarize } from "../lib/bench/stats.ts";
import {
  compareRow,
  missingModules,
  type Plan,
  runPlan,
  shellQuote,
  type SuiteContext,
} from "../lib/bench/suite.ts";
import { formatFigure, formatRatio, renderTable, type Row, rowCells } from "../lib/bench/table.ts";
import type { PythonVersions } from "../lib/bench/machine.ts";

const MONITOR = fileURLToPath(new URL("../bench/rss_monitor.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));

Deno.test("median, min and max of samples", () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
  const s = summarize([3, 9, 1, 4]);
  assert.deepEqual(
    { median: s.median, min: s.min, max: s.max, n: s.n },
    { median: 3.5, min: 1, max: 9, n: 4 },
  );
  assert.deepEqual(s.samples, [3, 9, 1, 4], "samples keep their order");
  assert.throws(() => median([]), /no values/);
  assert.throws(() => median([1, NaN]), /non-finite/);
});

Deno.test("the ratio is oriented so that above 1 means the toolkit does better", () => {
  assert.equal(betterRatio(200, 100, true), 2); // throughput: toolkit / peer
  assert.equal(betterRatio(50, 100, false), 2); // memory: peer / toolkit
  assert.equal(betterRatio(null, 100, true), null);
  assert.equal(betterRatio(100, 0, true), null);
});

Deno.test("figures have three significant digits and grouped thousands", () => {
  assert.equal(formatFigure(1234.4), "1,234");
  assert.equal(formatFigure(1234567), "1,234,567");
  assert.equal(formatFigure(12.345), "12.3");
  assert.equal(formatFigure(0.012345), "0.0123");
  assert.equal(formatFigure(999.6), "1,000");
  assert.equal(formatFigure(0), "0");
  assert.equal(formatRatio(0.5234), "0.52x");
  assert.equal(formatRatio(null), "-");
});

function row(over: Partial<Row>): Row {
  return {
    id: "x",
    what: "thing",
    unit: "images/s",
    higherIsBetter: true,
    toolkit: summarize([100, 120, 110]),
    peer: summarize([50, 55, 60]),
    ...over,
  };
}

Deno.test("table rows: figures, peer status, direction of memory rows", () => {
  assert.deepEqual(rowCells(row({})), ["x", "thing", "110", "55.0", "2.00x", "images/s", "-"]);
  assert.equal(rowCells(row({ backend: "tensorflow" }))[6], "tensorflow");
  const mem = rowCells(row({ unit: "MiB", higherIsBetter: false }));
  assert.equal(mem[4], "0.50x", "toolkit uses twice the memory: ratio peer/toolkit = 0.5");
  assert.equal(mem[5], "MiB (lower is better)");
  const missing = rowCells(row({ peer: null, peerText: "peer not installed" }));
  assert.deepEqual(missing.slice(3, 5), ["peer not installed", "-"]);
  const target = rowCells(row({ peer: null, target: 1, toolkit: summarize([0.5]) }));
  assert.deepEqual(target.slice(2, 5), ["0.500", "1.00 (target)", "0.50x"]);
  const failed = rowCells(row({ toolkit: null, toolkitText: "failed" }));
  assert.deepEqual(failed.slice(2, 5), ["failed", "55.0", "-"]);
});

Deno.test("the table is an aligned Markdown table with numbered notes", () => {
  const text = renderTable([
    row({ id: "preprocess", note: "first note" }),
    row({ id: "allreduce", what: "a much longer description", unit: "ms", higherIsBetter: false }),
    row({ id: "train", note: "second note" }),
  ]);
  const lines = text.split("\n");
  const table = lines.slice(0, 5);
  assert.ok(table.every((l) => l.startsWith("|") && l.endsWith("|")));
  assert.equal(new Set(table.map((l) => l.length)).size, 1, "every table line has the same width");
  assert.match(lines[0], /\| id +\| measured +\| toolkit \|/);
  assert.match(lines[1], /^\|-+\|-+\|-+:\|/);
  assert.match(lines[2], /thing \[1\]/);
  assert.match(lines[4], /thing \[2\]/);
  assert.match(lines[3], /ms \(lower is better\)/);
  assert.deepEqual(lines.slice(5), ["", "[1] first note", "[2] second note"]);
});

Deno.test("a command's result is the JSON object on its last stdout line", () => {
  assert.deepEqual(parseResultLine('progress\n{"a":1}\n{"images_per_sec": 12.5}\n\n'), {
    images_per_sec: 12.5,
  });
  assert.throws(() => parseResultLine(""), /printed nothing/);
  assert.throws(() => parseResultLine('{"a":1}\ndone'), /not JSON: done/);
  assert.throws(() => parseResultLine("[1, 2]"), /not a JSON object/);
  assert.equal(
    errorLine(["warning", "error: Uncaught Error: boom", "    at main.ts:1"]),
    "error: Uncaught Error: boom",
  );
  assert.equal(
    errorLine(["Traceback (most recent call last):", "ModuleNotFoundError: No module named 'x'"]),
    "ModuleNotFoundError: No module named 'x'",
  );
  assert.equal(parseGnuTimeOutput("Command exited with non-zero status 1\n12345\n"), 12345);
  assert.equal(parseGnuTimeOutput(""), null);
});

Deno.test("/proc parsing: memory lines, parent pid, process tree", () => {
  const status = "Name:\tdeno\nVmPeak:\t 900 kB\nVmHWM:\t  81234 kB\nVmRSS:\t  70000 kB\n";
  assert.deepEqual(parseStatusMemory(status), { hwmKiB: 81234, rssKiB: 70000 });
  assert.equal(parseStatusMemory("Name:\tkthreadd\nState:\tS\n"), null, "kernel threads have none");
  // A command name holding spaces and parentheses.
  assert.equal(parseStatParent("4242 (my (odd) name) S 17 4242 4242 0 -1"), 17);
  const parents = new Map([[2, 1], [3, 2], [4, 2], [5, 3], [6, 1], [7, 99]]);
  assert.deepEqual(descendants(2, parents).sort(), [2, 3, 4, 5]);
  assert.deepEqual(descendants(7, parents), [7]);
});

Deno.test("npy files: header padded to 64 bytes, little-endian data after it", () => {
  const h = npyHeader("uint8", [3, 2, 2, 3]);
  assert.equal(h.length % 64, 0);
  assert.deepEqual([...h.subarray(0, 8)], [0x93, 78, 85, 77, 80, 89, 1, 0]);
  const len = h[8] | (h[9] << 8);
  assert.equal(10 + len, h.length);
  const dict = new TextDecoder().decode(h.subarray(10));
  assert.match(
    dict,
    /^\{'descr': '\|u1', 'fortran_order': False, 'shape': \(3, 2, 2, 3\), \} *\n$/,
  );
  assert.match(new TextDecoder().decode(npyHeader("float32", [5])), /'<f4'.*'shape': \(5,\)/);
  const data = new Float32Array([1.5, -2]);
  const bytes = encodeNpy({ dtype: "float32", data, shape: [2] });
  assert.deepEqual(
    new Float32Array(bytes.slice(bytes.length - 8).buffer),
    data,
  );
  assert.throws(
    () => encodeNpy({ dtype: "uint8", data: new Uint8Array(5), shape: [2, 2] }),
    /do not fill/,
  );
});

Deno.test({
  name: "npy files load in NumPy",
  ignore: !isExecutable("/usr/bin/python3"),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 7);
      const path = join(dir, "a.npy");
      await Deno.writeFile(path, encodeNpy({ dtype: "uint8", data, shape: [2, 3, 4] }));
      const out = await new Deno.Command("/usr/bin/python3", {
        signal: AbortSignal.timeout(120_000),
        args: [
          "-c",
          "import sys, numpy as np; a = np.load(sys.argv[1]); print(a.shape, a.sum())",
          path,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!out.success && new TextDecoder().decode(out.stderr).includes("No module named")) return;
      const sum = data.reduce((a, b) => a + b, 0);
      assert.equal(new TextDecoder().decode(out.stdout).trim(), `(2, 3, 4) ${sum}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Runs bench/rss_monitor.ts around `argv` and returns its exit code and report. */
async function monitor(argv: string[]): Promise<{ code: number; report: MonitorReport }> {
  const dir = await Deno.makeTempDir();
  try {
    const report = join(dir, "report.json");
    const out = await new Deno.Command(Deno.execPath(), {
      signal: AbortSignal.timeout(300_000),
      args: ["run", "--allow-all", "--config", CONFIG, MONITOR, "--report", report, "--", ...argv],
      stdout: "null",
      stderr: "piped",
    }).output();
    return { code: out.code, report: JSON.parse(await Deno.readTextFile(report)) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const MiB = 1024;

Deno.test("peak RSS of a child and its grandchild is sampled from /proc", async () => {
  // sh starts deno, which touches 96 MiB and holds it a moment.
  const script = "const a = new Uint8Array(96 * 2 ** 20).fill(1); " +
    "await new Promise((r) => setTimeout(r, 400)); console.log(a[12345]);";
  const { code, report } = await monitor([
    "/bin/sh",
    "-c",
    `'${Deno.execPath()}' eval '${script}'`,
  ]);
  assert.equal(code, 0);
  const perProcess = Object.values(report.perProcessKiB);
  assert.ok(perProcess.length >= 2, `sh and deno both seen: ${JSON.stringify(report)}`);
  const biggest = Math.max(...perProcess);
  assert.ok(biggest >= 96 * MiB, `the deno process peaked at ${biggest} KiB`);
  assert.ok(report.treePeakKiB >= biggest + Math.min(...perProcess));
  assert.ok(report.peakKiB >= report.treePeakKiB);
  assert.ok(report.concurrentPeakKiB >= 96 * MiB);
  if (isExecutable("/usr/bin/time")) {
    assert.ok(report.gnuTimeMaxKiB! >= 96 * MiB, `GNU time saw ${report.gnuTimeMaxKiB} KiB`);
  }
});

Deno.test("the monitor passes on the exit status", async () => {
  const { code, report } = await monitor(["/bin/sh", "-c", "exit 3"]);
  assert.equal(code, 3);
  assert.equal(report.exitCode, 3);
  assert.equal(report.timedOut, false);
});

Deno.test("runMeasured returns the command's result line and its memory", async () => {
  const ok = await runMeasured({
    argv: [Deno.execPath(), "eval", 'console.log("noise"); console.log(JSON.stringify({ v: 5 }))'],
  });
  assert.equal(ok.ok, true, ok.error ?? "");
  assert.deepEqual(ok.result, { v: 5 });
  assert.ok(ok.monitor!.peakKiB > 1000);
  const bad = await runMeasured({ argv: [Deno.execPath(), "eval", 'throw new Error("boom")'] });
  assert.equal(bad.ok, false);
  assert.match(bad.error!, /exited with status 1: error: Uncaught.*boom/);
});

Deno.test("a command that outlasts its deadline is killed and fails saying so", async () => {
  const t0 = performance.now();
  const hung = await runMeasured({
    argv: [Deno.execPath(), "eval", "await new Promise(() => setInterval(() => {}, 1000))"],
    timeoutSeconds: 2,
  });
  assert.equal(hung.ok, false);
  assert.match(hung.error!, /timed out after 2 s/);
  assert.ok((performance.now() - t0) / 1000 < 30, "killed near its deadline");
});

Deno.test("deadlines are sized to the work; the browser run's covers its stages", () => {
  assert.equal(deadline(120, 500, 0.05), 145);
  assert.ok(deadline(180, 48, 2) > deadline(180, 12, 2));
  for (const n of [12, 48]) {
    const s = BROWSER_STAGE_SECONDS;
    const stages = s.launch + s.ready + (s.batch + 2 * s.perImage) + (s.batch + n * s.perImage);
    assert.ok(browserInferDeadline(n) > stages, `${n} images`);
    assert.ok(browserInferDeadline(n) < 1800, "well under the old fixed half hour");
  }
});

const python: PythonVersions = {
  python: "3.11",
  executable: "/usr/bin/python3",
  numpy: "1.24",
  PIL: null,
  torch: "1.13",
  torchvision: "0.14",
  torch_default_threads: 1,
};

Deno.test("runPlan interleaves toolkit and peer after warm-up and skips what cannot run", async () => {
  const calls: string[] = [];
  const fake = (value: number, fail = false) => (): Promise<RunResult> =>
    Promise.resolve({
      ok: !fail,
      result: fail ? null : { images_per_sec: value, backend: "tensorflow" },
      monitor: null,
      stderrTail: [],
      error: fail ? "boom" : null,
    });
  const behaviour: Record<string, () => Promise<RunResult>> = {
    t: fake(10),
    p: fake(20),
    bad: fake(0, true),
  };
  const plan: Plan = {
    variants: [
      { key: "t", label: "toolkit", role: "toolkit", argv: ["t"], timeoutSeconds: 60 },
      {
        key: "p",
        label: "peer",
        role: "peer",
        argv: ["p"],
        requires: ["torch"],
        timeoutSeconds: 60,
      },
      {
        key: "pil",
        label: "pillow",
        role: "peer",
        argv: ["pil"],
        requires: ["PIL"],
        timeoutSeconds: 60,
      },
      { key: "bad", label: "broken", role: "toolkit", argv: ["bad"], timeoutSeconds: 60 },
    ],
    warmupReps: 1,
    reps: 2,
    settings: {},
    rows: () => [],
  };
  const ctx: SuiteContext = { quick: true, log: () => {}, python };
  const results = await runPlan("demo", plan, ctx, (argv) => {
    calls.push(argv[0]);
    return behaviour[argv[0]]();
  });
  assert.deepEqual(calls, ["t", "p", "bad", "t", "p", "t", "p"]);
  assert.equal(results.get("t")!.warmups.length, 1);
  assert.equal(results.get("t")!.runs.length, 2);
  assert.match(results.get("pil")!.skipped!, /^peer not installed .*PIL/);
  assert.equal(results.get("bad")!.failed, "boom");

  const r = compareRow({
    id: "demo",
    what: "thing",
    unit: "images/s",
    higherIsBetter: true,
    toolkit: results.get("t"),
    peer: results.get("pil"),
    values: (vr) => vr?.runs.map((x) => x.result!.images_per_sec as number) ?? [],
  });
  assert.equal(r.toolkit!.median, 10);
  assert.equal(r.backend, "tensorflow", "the row is labelled with the backend its runs reported");
  assert.equal(r.peer, null);
  assert.match(r.peerText!, /peer not installed/);
  const broken = compareRow({
    id: "demo",
    what: "thing",
    unit: "images/s",
    higherIsBetter: true,
    toolkit: results.get("bad"),
    peer: results.get("p"),
    values: () => [],
  });
  assert.equal(broken.toolkitText, "failed");
  assert.equal(broken.backend, undefined, "no successful run: no backend to name");
  assert.match(broken.note!, /broken failed: boom/);
});

Deno.test("peers report missing Python modules; no Python means nothing is installed", () => {
  assert.deepEqual(missingModules(["torch", "PIL"], python), ["PIL"]);
  assert.deepEqual(missingModules(["numpy"], null), ["numpy"]);
});

Deno.test("scaling efficiency pairs the runs of each repetition", () => {
  assert.deepEqual(pairedEfficiency([10, 20], [18, 30, 99]), [0.9, 0.75]);
});

Deno.test("command lines are shell-quoted for the results file", () => {
  assert.equal(shellQuote(["deno", "run", "a b.ts", "it's"]), `deno run 'a b.ts' 'it'\\''s'`);
});

Deno.test("results.json keeps the rows of benchmarks not run again, in table order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "results.json");
    const rec = (id: string, what: string) => ({ id, what } as unknown as RowRecord);
    await writeResults(path, [rec("a", "a1"), rec("b", "b1"), rec("b", "b2")], ["a", "b", "c"]);
    await writeResults(path, [rec("c", "c1"), rec("a", "a2")], ["a", "b", "c"]);
    const rows = JSON.parse(await Deno.readTextFile(path)) as RowRecord[];
    assert.deepEqual(rows.map((r) => r.what), ["a2", "b1", "b2", "c1"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a webgpu row names its adapter and marks a software renderer's figure", () => {
  const runs = (result: Record<string, unknown>) =>
    ({ runs: [{ ok: true, result }] }) as unknown as Parameters<typeof adapterText>[0];
  assert.equal(
    adapterText(runs({ adapter: "llvmpipe (LLVM 15.0.6, 256 bits)", adapter_software: true })),
    "webgpu on llvmpipe (LLVM 15.0.6, 256 bits), i.e. on the CPU: not a GPU figure",
  );
  assert.equal(
    adapterText(runs({ adapter: "NVIDIA GeForce RTX 3080, GPU", adapter_software: false })),
    "webgpu on NVIDIA GeForce RTX 3080, GPU",
  );
  assert.equal(adapterText(undefined), "webgpu, adapter unknown");
});
