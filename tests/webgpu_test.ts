import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { defaultCandidates, describeBackend, setupBackend } from "../lib/backend.ts";
import {
  adapterLabel,
  describeAdapterInfo,
  flatFeatures,
  loadWebGpu,
  requestAdapter,
} from "../lib/webgpu.ts";

const LAVAPIPE = {
  vendor: "65541",
  architecture: "",
  device: "0",
  description: "llvmpipe (LLVM 15.0.6, 256 bits)",
  isFallbackAdapter: true,
};
const RTX = {
  vendor: "nvidia",
  architecture: "ampere",
  device: "0x2206",
  description: "NVIDIA GeForce RTX 3080",
  isFallbackAdapter: false,
};

/** The adapter Deno finds here, or null (no Vulkan driver, e.g. mesa-vulkan-drivers missing). */
const here = await requestAdapter().catch(() => null);
if (here === null) {
  console.warn(
    "skipping the device tests: no WebGPU adapter here (mesa-vulkan-drivers has lavapipe)",
  );
}

Deno.test("adapters: software renderers are told from GPUs by flag, vendor id or name", () => {
  const soft = describeAdapterInfo(LAVAPIPE);
  assert.equal(soft.software, true);
  assert.equal(
    adapterLabel(soft),
    "llvmpipe (LLVM 15.0.6, 256 bits), vendor 0x10005, software renderer",
  );
  const gpu = describeAdapterInfo(RTX);
  assert.equal(gpu.software, false);
  assert.equal(
    adapterLabel(gpu),
    "NVIDIA GeForce RTX 3080, vendor nvidia, architecture ampere, GPU",
  );
  for (const description of ["SwiftShader Device (Subzero)", "Microsoft Basic Render Driver"]) {
    assert.equal(describeAdapterInfo({ ...RTX, vendor: "google", description }).software, true);
  }
  // Mesa's own vendor id (lavapipe) without a telling name or flag is still software.
  assert.equal(describeAdapterInfo({ vendor: "65541", description: "x" }).software, true);
});

Deno.test("flatFeatures undoes 4.22's nested requiredFeatures", () => {
  assert.deepEqual(flatFeatures(["timestamp-query", ["bgra8unorm-storage"]]), [
    "timestamp-query",
    "bgra8unorm-storage",
  ]);
  assert.deepEqual(flatFeatures(undefined), []);
});

Deno.test("webgpu comes after native TensorFlow and before wasm in the automatic order", () => {
  assert.deepEqual(defaultCandidates().map((c) => c.name), [
    "tensorflow",
    "tensorflow",
    "webgpu",
    "wasm",
    "cpu",
  ]);
});

Deno.test({
  name: "a software adapter is passed over automatically and used when asked for by name",
  ignore: here === null,
  async fn() {
    const webgpu = defaultCandidates().find((c) => c.name === "webgpu")!;
    const cpu = defaultCandidates().find((c) => c.name === "cpu")!;
    if (describeAdapterInfo(here!.info).software) {
      const auto = await setupBackend({ candidates: [webgpu, cpu] });
      assert.equal(auto.name, "cpu");
      assert.match(
        auto.skipped[0].reason,
        /^only a software adapter \(.*software renderer\); ask for it with --backend webgpu$/,
      );
    }
    const asked = await setupBackend({ requested: "webgpu" });
    assert.equal(tf.getBackend(), "webgpu");
    assert.match(
      describeBackend(asked),
      /^backend: webgpu via @tensorflow\/tfjs-backend-webgpu, adapter: .+, (software renderer|GPU)$/,
    );
    // A real op, forward and backward, on the device 4.22's factory could not create unaided.
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
    const k = tf.tensor4d([1, 0, 0, -1], [2, 2, 1, 1]);
    const y = tf.conv2d(x, k, 1, "valid");
    assert.deepEqual(Array.from(await y.data()), [-4, -4, -4, -4]);
    const g = tf.grad((kk: tf.Tensor) => tf.conv2d(x, kk as tf.Tensor4D, 1, "valid").sum())(k);
    assert.deepEqual(Array.from(await g.data()), [12, 16, 24, 28]);
    tf.dispose([x, k, y, g]);
    await tf.setBackend("cpu");
  },
});

Deno.test({
  name: "a real GPU adapter is chosen automatically, and its device gets a flat feature list",
  ignore: here === null,
  async fn() {
    // A stand-in navigator.gpu whose adapter says it is an RTX 3080 and hands out this
    // machine's device: what the toolkit does with a real GPU, short of its speed.
    const descriptors: GPUDeviceDescriptor[] = [];
    const adapter = new Proxy(here!, {
      get(target, prop) {
        if (prop === "info") return { ...RTX };
        if (prop === "requestDevice") {
          return (d: GPUDeviceDescriptor) => {
            descriptors.push(d);
            return target.requestDevice(d);
          };
        }
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const gpu = { requestAdapter: () => Promise.resolve(adapter) } as unknown as GPU;
    const described = await loadWebGpu({ allowSoftware: false, gpu });
    assert.deepEqual(described.software, false);
    assert.ok(await tf.setBackend("webgpu"));
    assert.equal(descriptors.length, 1);
    const features = [...(descriptors[0].requiredFeatures ?? [])];
    assert.ok(features.every((f) => typeof f === "string"), JSON.stringify(features));
    if (here!.features.has("bgra8unorm-storage")) {
      assert.ok(features.includes("bgra8unorm-storage"));
    }
    assert.equal(
      navigator.gpu.requestAdapter,
      Object.getPrototypeOf(navigator.gpu).requestAdapter,
      "navigator.gpu is left as it was",
    );
    await tf.setBackend("cpu");
    tf.removeBackend("webgpu");
  },
});

Deno.test("no adapter: webgpu says so, and the choice moves on", async () => {
  const gpu = { requestAdapter: () => Promise.resolve(null) } as unknown as GPU;
  await assert.rejects(() => loadWebGpu({ allowSoftware: true, gpu }), /no WebGPU adapter/);
});
