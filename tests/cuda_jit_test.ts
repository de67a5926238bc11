import assert from "node:assert/strict";
import {
  DEFAULT_CACHE_BYTES,
  firstStartNote,
  type GpuCapability,
  jitCache,
  jitReport,
  jitStartNote,
  mountPoints,
  parseComputeCaps,
} from "../lib/cuda_jit.ts";
import { tempDir } from "./temp.ts";

const root = new URL("..", import.meta.url).pathname;

const L4: GpuCapability = { index: 0, name: "NVIDIA L4", computeCapability: 8.9 };
const A100: GpuCapability = { index: 1, name: "NVIDIA A100-SXM4-40GB", computeCapability: 8.0 };
const env = (vars: Record<string, string>) => ({ get: (k: string) => vars[k] });

/** A line of /proc/self/mountinfo for a mount at `point`. */
const mountLine = (id: number, point: string) =>
  `${id} 1 8:1 / ${point} rw,relatime - ext4 /dev/sda1 rw`;

Deno.test("parseComputeCaps reads nvidia-smi's index, name, compute_cap lines", () => {
  assert.deepEqual(
    parseComputeCaps("0, NVIDIA L4, 8.9\n1, NVIDIA A100-SXM4-40GB, 8.0\n\n"),
    [L4, A100],
  );
  // A name with a comma keeps it.
  assert.equal(parseComputeCaps("2, Weird, Inc GPU, 9.0")[0].name, "Weird, Inc GPU");
  assert.ok(Number.isNaN(parseComputeCaps("0, Old GPU, [N/A]")[0].computeCapability));
});

Deno.test("jitCache: CUDA_CACHE_PATH/MAXSIZE, the default, mounted or not, bytes used", async () => {
  const dir = await tempDir("galaxy-jit-");
  await Deno.mkdir(`${dir}/cache/sub`, { recursive: true });
  await Deno.writeFile(`${dir}/cache/sub/blob`, new Uint8Array(1000));
  const mounted = jitCache(
    env({ CUDA_CACHE_PATH: `${dir}/cache`, CUDA_CACHE_MAXSIZE: "4294967296" }),
    [mountLine(1, "/"), mountLine(2, dir)].join("\n"),
  );
  assert.deepEqual(mounted, {
    path: `${dir}/cache`,
    maxBytes: 4294967296,
    mounted: true,
    usedBytes: 1000,
  });
  const plain = jitCache(env({ HOME: "/home/x", CUDA_CACHE_MAXSIZE: "lots" }), mountLine(1, "/"));
  assert.deepEqual(plain, {
    path: "/home/x/.nv/ComputeCache",
    maxBytes: DEFAULT_CACHE_BYTES,
    mounted: false,
    usedBytes: 0,
  });
  assert.deepEqual(mountPoints(mountLine(3, "/a\\040b")), ["/a b"]);
});

Deno.test("jitReport: only GPUs above 8.0 compile; warns of a cache that forgets or is small", () => {
  const kept = { path: "/cuda-cache", maxBytes: 2 ** 32, mounted: true, usedBytes: 0 };
  assert.deepEqual(jitReport([A100], kept), { lines: [], warnings: [] });
  const r = jitReport([L4, A100], kept);
  assert.match(r.lines[0], /^0: NVIDIA L4 \(8\.9\): above 8\.0, so the first start compiles/);
  assert.match(r.lines[1], /^\/cuda-cache, max 4096 MiB, 0 MiB used, on a mounted volume/);
  assert.deepEqual(r.warnings, []);
  const lost = jitReport([L4], { ...kept, mounted: false, maxBytes: DEFAULT_CACHE_BYTES });
  assert.equal(lost.warnings.length, 2);
  assert.match(lost.warnings[0], /not on a volume: .*-v galaxy-cuda-cache:\/cuda-cache/);
  assert.match(lost.warnings[1], /CUDA_CACHE_MAXSIZE is 256 MiB/);
});

Deno.test("firstStartNote: a line while the cache is empty or too small, none once it holds code", async () => {
  const empty = { path: "/cuda-cache", maxBytes: 2 ** 32, mounted: true, usedBytes: 0 };
  assert.match(
    firstStartNote([L4], empty)!,
    /^first start on compute capability 8\.9: .*compiling .*PTX.* cached in \/cuda-cache for later starts$/,
  );
  assert.equal(firstStartNote([L4], { ...empty, usedBytes: 5e8 }), null);
  assert.match(
    firstStartNote([L4], { ...empty, usedBytes: 5e8, maxBytes: DEFAULT_CACHE_BYTES })!,
    /^first start/,
  );
  assert.equal(firstStartNote([A100], empty), null);
  // Only the native backend with a GPU compiles, and nvidia-smi is asked only then.
  let asked = 0;
  const caps = () => {
    asked++;
    return Promise.resolve({ gpus: [L4] });
  };
  const cache = () => empty;
  assert.equal(await jitStartNote({ name: "wasm", gpus: [] }, caps, cache), null);
  assert.equal(await jitStartNote({ name: "tensorflow", gpus: [] }, caps, cache), null);
  assert.equal(asked, 0);
  assert.match((await jitStartNote({ name: "tensorflow", gpus: ["0: L4"] }, caps, cache))!, /8\.9/);
});

/** A folder holding an `nvidia-smi` that answers as a driver with `gpus` would. */
async function fakeNvidiaSmi(lines: { query: string; compute: string | null }): Promise<string> {
  const dir = await tempDir("galaxy-fake-smi-");
  const compute = lines.compute === null
    ? `echo 'Field "compute_cap" is not a valid field to query.' >&2; exit 2`
    : `printf '${lines.compute}'`;
  await Deno.writeTextFile(
    `${dir}/nvidia-smi`,
    `#!/bin/sh\ncase "$*" in\n  *compute_cap*) ${compute} ;;\n  *) printf '${lines.query}' ;;\nesac\n`,
    { mode: 0o755 },
  );
  return dir;
}

async function doctorWith(env: Record<string, string>): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "doctor", "--backend", "cpu"],
    cwd: root,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, out);
  return out;
}

Deno.test("doctor reads compute capability from nvidia-smi and says the first start compiles PTX", async () => {
  const bin = await fakeNvidiaSmi({
    query: "0, NVIDIA L4, 23034, 535.104.05\\n1, NVIDIA A100-SXM4-40GB, 40960, 535.104.05\\n",
    compute: "0, NVIDIA L4, 8.9\\n1, NVIDIA A100-SXM4-40GB, 8.0\\n",
  });
  const cache = await tempDir("galaxy-cuda-cache-");
  const out = await doctorWith({
    PATH: `${bin}:${Deno.env.get("PATH")}`,
    CUDA_CACHE_PATH: cache,
    CUDA_CACHE_MAXSIZE: "268435456",
  });
  assert.match(out, /^GPUs \(nvidia-smi\) +0: NVIDIA L4 22 GiB; 1: NVIDIA A100-SXM4-40GB 40 GiB/m);
  assert.match(out, /^compute capability +0: 8\.9; 1: 8\.0$/m);
  assert.match(out, /^PTX JIT +0: NVIDIA L4 \(8\.9\): above 8\.0, so the first start compiles/m);
  assert.match(
    out,
    new RegExp(`^CUDA JIT cache +${cache}, max 256 MiB, 0 MiB used, not on a`, "m"),
  );
  assert.match(out, /^warning: the CUDA JIT cache .* is not on a volume/m);
  assert.match(out, /^warning: CUDA_CACHE_MAXSIZE is 256 MiB/m);

  // A driver too old for compute_cap: said, and no JIT lines.
  const old = await fakeNvidiaSmi({ query: "0, Tesla V100, 16160, 450.80.02\\n", compute: null });
  const out2 = await doctorWith({ PATH: `${old}:${Deno.env.get("PATH")}` });
  assert.match(out2, /^compute capability +unknown \(nvidia-smi cannot list compute_cap/m);
  assert.doesNotMatch(out2, /^PTX JIT/m);
});
