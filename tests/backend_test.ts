import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  assertKernels,
  type BackendCandidate,
  describeBackend,
  explainKernelError,
  setupBackend,
} from "../lib/backend.ts";

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

Deno.test("the default candidates reach WASM here (native TensorFlow is not installed)", async () => {
  const info = await setupBackend();
  // On a machine with tfjs-node's binding this would be "tensorflow"; this one has none.
  if (info.name === "tensorflow") return;
  assert.equal(info.name, "wasm");
  assert.equal(info.skipped.length, 2);
  assert.match(describeBackend(info), /^backend: wasm via @tensorflow\/tfjs-backend-wasm/);
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
