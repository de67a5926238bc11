import { sharedOneDnn3 } from "../lib/bench/native_configs.ts";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  assertKernels,
  type BackendCandidate,
  describeBackend,
  explainKernelError,
  setupBackend,
} from "../lib/backend.ts";
import { tempDir } from "./temp.ts";

const failing = (label: string, why: string): BackendCandidate => ({
  name: "tensorflow",
  label,
  load: () => Promise.reject(new Error(why)),
});
const cpu: BackendCandidate = { name: "cpu", label: "cpu", load: () => Promise.resolve() };

Deno.test("backend choice falls through candidates that cannot load", async () => {
  const info = await setupBackend({
    candidates: [failing("native-gpu", "no binding\nstack"), failing("native", "missing .so"), cpu],
  });
  assert.equal(info.name, "cpu");
  assert.equal(tf.getBackend(), "cpu");
  assert.deepEqual(info.skipped, [
    { label: "native-gpu", reason: "no binding" },
    { label: "native", reason: "missing .so" },
  ]);
  assert.match(
    describeBackend(info),
    /^backend: cpu via cpu \(skipped native-gpu: no binding; native: missing \.so\)$/,
  );
});

Deno.test("an explicit --backend that cannot load is an error, not a silent fallback", async () => {
  await assert.rejects(
    () =>
      setupBackend({
        requested: "tensorflow",
        candidates: [failing("tfjs-node", "no binding"), cpu],
      }),
    /no backend could be loaded for --backend tensorflow:\n {2}tfjs-node: no binding/,
  );
  await assert.rejects(() => setupBackend({ requested: "gpu" as never }), /unknown backend 'gpu'/);
});

Deno.test("the default candidates reach WASM here (no native TensorFlow, no GPU adapter)", async () => {
  const info = await setupBackend();
  // On a machine with tfjs-node's binding this would be "tensorflow", with a GPU "webgpu".
  if (info.name === "tensorflow" || info.name === "webgpu") return;
  assert.equal(info.name, "wasm");
  assert.deepEqual(info.skipped.map((s) => s.label), [
    "@tensorflow/tfjs-node-gpu",
    "@tensorflow/tfjs-node",
    "@tensorflow/tfjs-backend-webgpu",
  ]);
  assert.match(
    describeBackend(info),
    /^backend: wasm( \+ oneDNN [\d.]+ \(avx\w*, \d+ threads?\))? via @tensorflow\/tfjs-backend-wasm/,
  );
  // The training kernels the toolkit adds are present.
  assertKernels(["Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"]);
  await tf.setBackend("cpu");
});

Deno.test("a missing kernel is named together with the backends that have it", async () => {
  await setupBackend({ requested: "cpu", candidates: [cpu] });
  assert.throws(
    () => assertKernels(["NoSuchKernel"]),
    /kernel 'NoSuchKernel' is not registered for backend 'cpu'/,
  );
  // A kernel only another backend has: register one for wasm alone.
  tf.registerKernel({
    kernelName: "GalaxyOnlyOnWasm",
    backendName: "wasm",
    kernelFunc: () => ({ dataId: {}, shape: [], dtype: "float32" }),
  });
  const e = explainKernelError(
    new Error("Kernel 'GalaxyOnlyOnWasm' not registered for backend 'cpu'"),
  );
  assert.match(String(e), /available on: wasm \(use --backend\)/);
  const other = new Error("unrelated");
  assert.equal(explainKernelError(other), other);
});

/** The backend line of a fresh process with `env` added, asking for wasm. */
async function backendLine(env: Record<string, string>, args: string[] = []): Promise<string> {
  const worker = new URL("./workers/backend_line.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "--allow-ffi", "--allow-sys", worker, ...args],
    // The caller's own settings (a run with GALAXY_NATIVE_KERNELS=0) must not leak into each case.
    env: { GALAXY_NATIVE_KERNELS: "1", GALAXY_DNNL_LIBRARY: "", ...env },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.ok(out.success, `backend worker failed: ${new TextDecoder().decode(out.stderr)}`);
  return text.split("\n").at(-1)!;
}

Deno.test("native kernels: on by default where libdnnl2 loads; off by flag or environment, saying why", async () => {
  const line = await backendLine({});
  if (/\+ oneDNN/.test(line)) {
    assert.match(line, /^backend: wasm \+ oneDNN [23]\.\d+ \(avx\w*, \d+ threads?\) via /);
  } else {
    assert.match(
      line,
      /native kernels off \(oneDNN not found .*apt-get install libdnnl2 .*libdnnl3/,
    );
  }
  assert.match(
    await backendLine({ GALAXY_NATIVE_KERNELS: "0" }),
    /^backend: wasm via @tensorflow\/tfjs-backend-wasm; native kernels off \(GALAXY_NATIVE_KERNELS=0\)$/,
  );
  assert.match(
    await backendLine({}, ["--no-native-kernels"]),
    /; native kernels off \(--no-native-kernels\)$/,
  );
  assert.match(
    await backendLine({ GALAXY_DNNL_LIBRARY: "/nonexistent/libdnnl.so.2" }),
    /^backend: wasm via .*; native kernels off \(oneDNN not found \(\/nonexistent\/libdnnl\.so\.2\)/,
  );
});

Deno.test("native kernels: a oneDNN of an unsupported version falls back to plain wasm, saying why", async () => {
  // Stand-in libraries whose dnnl_version() says 4.0.0 and 3.0.0, built with the C compiler where there is one.
  const dir = await tempDir("galaxy-fake-dnnl-");
  const build = async (major: number, minor: number): Promise<string | null> => {
    const source = `${dir}/fake${major}${minor}.c`;
    const lib = `${dir}/libdnnl-${major}.${minor}.so`;
    await Deno.writeTextFile(
      source,
      "typedef struct { int major, minor, patch; const char *hash; unsigned cpu, gpu; } v_t;\n" +
        `static const v_t v = {${major}, ${minor}, 0, "fake", 0, 0};\n` +
        "const v_t *dnnl_version(void) { return &v; }\n",
    );
    try {
      const out = await new Deno.Command("cc", {
        args: ["-shared", "-fPIC", "-o", lib, source],
        stdout: "null",
        stderr: "null",
        signal: AbortSignal.timeout(60_000),
      }).output();
      return out.success ? lib : null;
    } catch {
      return null;
    }
  };
  const [newer, older] = [await build(4, 0), await build(3, 0)];
  if (newer === null || older === null) {
    console.warn(
      "skipping the wrong-version check: no C compiler (cc) to build a stand-in library",
    );
    return;
  }
  assert.match(
    await backendLine({ GALAXY_DNNL_LIBRARY: newer }),
    /^backend: wasm via .*; native kernels off \(oneDNN 4\.0\.0 is newer than this toolkit knows/,
  );
  assert.match(
    await backendLine({ GALAXY_DNNL_LIBRARY: older }),
    /^backend: wasm via .*; native kernels off \(oneDNN 3\.0\.0 is too old; 2\.3 or later/,
  );
});

/** oneDNN 3.1.1 built from upstream, beside this repository, where present. */
const ONEDNN_3 = sharedOneDnn3();

Deno.test("native kernels: oneDNN 3.1 loads through the same kernels and names itself", async () => {
  try {
    await Deno.stat(ONEDNN_3);
  } catch {
    console.warn(`skipping: no oneDNN 3.x library at ${ONEDNN_3}`);
    return;
  }
  assert.match(
    await backendLine({ GALAXY_DNNL_LIBRARY: ONEDNN_3 }),
    /^backend: wasm \+ oneDNN 3\.1 \(avx\w*, \d+ threads?\) via /,
  );
});

Deno.test("native kernels: refused below AVX (SSE4.1 kernels need aligned data), saying why", async () => {
  const line = await backendLine({});
  if (!/\+ oneDNN/.test(line)) {
    console.warn(`skipping: no oneDNN loads here (${line})`);
    return;
  }
  // oneDNN's own cap makes this CPU behave as an SSE4.1-only one.
  const capped = await backendLine({ DNNL_MAX_CPU_ISA: "SSE41", ONEDNN_MAX_CPU_ISA: "SSE41" });
  assert.match(
    capped,
    /^backend: wasm via .*; native kernels off \(oneDNN [23]\.\d+ would run sse41 kernels here, .*AVX or later\)$/,
  );
  assert.match(
    await backendLine({ DNNL_MAX_CPU_ISA: "AVX2", ONEDNN_MAX_CPU_ISA: "AVX2" }),
    /^backend: wasm \+ oneDNN [23]\.\d+ \(avx2, /,
  );
});
