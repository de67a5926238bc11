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
    /^backend: wasm( \+ oneDNN [\d.]+ \(\d+ threads?\))? via @tensorflow\/tfjs-backend-wasm/,
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
    assert.match(line, /^backend: wasm \+ oneDNN 2\.\d+ \(\d+ threads?\) via /);
  } else {
    assert.match(line, /native kernels off \(oneDNN not found .*apt-get install libdnnl2\)$/);
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

Deno.test("native kernels: a oneDNN of another major version falls back to plain wasm, saying why", async () => {
  // A stand-in library whose dnnl_version() says 3.1.0, built with the C compiler where there is one.
  const dir = await tempDir("galaxy-fake-dnnl-");
  const source = `${dir}/fake.c`;
  const lib = `${dir}/libdnnl.so.3`;
  await Deno.writeTextFile(
    source,
    "typedef struct { int major, minor, patch; const char *hash; unsigned cpu, gpu; } v_t;\n" +
      'static const v_t v = {3, 1, 0, "fake", 0, 0};\n' +
      "const v_t *dnnl_version(void) { return &v; }\n",
  );
  let built = false;
  try {
    built = (await new Deno.Command("cc", {
      args: ["-shared", "-fPIC", "-o", lib, source],
      stdout: "null",
      stderr: "null",
      signal: AbortSignal.timeout(60_000),
    }).output()).success;
  } catch {
    built = false;
  }
  if (!built) {
    console.warn(
      "skipping the wrong-version check: no C compiler (cc) to build a stand-in library",
    );
    return;
  }
  assert.match(
    await backendLine({ GALAXY_DNNL_LIBRARY: lib }),
    /^backend: wasm via .*; native kernels off \(oneDNN 3\.1\.0 has the 3\.x C API .*only 2\.3-2\.x is supported\)$/,
  );
});
