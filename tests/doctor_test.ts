import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { setupBackend } from "../lib/backend.ts";
import { allReduceBytes, diskSpace } from "../lib/doctor/resources.ts";
import {
  libraryVersion,
  parseLdconfig,
  parseNvidiaSmi,
  parseTensorFlowLog,
} from "../lib/doctor/native.ts";
import { compareArrays, formatCheck, smokeTest } from "../lib/doctor/smoke.ts";
import { mapShared, sharedMemoryAvailable, unlinkShared } from "../lib/train/shared_memory.ts";
import { tempDir } from "./temp.ts";
import { requestAdapter } from "../lib/webgpu.ts";

const root = new URL("..", import.meta.url).pathname;

/** `deno task doctor ARGS` as a user runs it (the task's own permissions), with a deadline. */
async function doctor(...args: string[]): Promise<{ code: number; out: string; last: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "doctor", ...args],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(240_000),
  }).output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  const lines = out.trim().split("\n");
  return { code: r.code, out, last: lines[lines.length - 1] };
}

const SMOKE_CHECKS = ["forward", "loss", "gradients", "update", "save/reload", "mirrored"];

// WebGPU where Deno finds an adapter (lavapipe, a software renderer, on CI with mesa-vulkan-drivers).
const webgpu = await requestAdapter().catch(() => null) !== null;
if (!webgpu) console.warn("doctor --smoke --backend webgpu not tested: no WebGPU adapter here");

for (const backend of webgpu ? ["webgpu", "wasm", "cpu"] : ["wasm", "cpu"]) {
  Deno.test(`doctor --smoke --backend ${backend}: every check passes and it exits 0`, async () => {
    const r = await doctor("--smoke", "--backend", backend);
    if (backend === "webgpu") assert.match(r.out, /^WebGPU adapter +\S/m);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`^backend +${backend} via `, "m"));
    for (
      const label of [
        "deno",
        "toolkit",
        "CUDA/cuDNN",
        "GPUs \\(nvidia-smi\\)",
        "/dev/shm",
        "memory",
      ]
    ) {
      assert.match(r.out, new RegExp(`^${label} `, "m"), `no '${label}' line:\n${r.out}`);
    }
    assert.match(r.out, /^native CPU kernels +\S/m);
    for (const check of SMOKE_CHECKS) {
      const status = check === "mirrored" && !sharedMemoryAvailable() ? "skip" : "ok";
      assert.match(r.out, new RegExp(`^  ${status} +${check}: `, "m"), `${check}:\n${r.out}`);
    }
    assert.equal(
      r.last,
      `can train on ${backend} via ${
        r.out.match(/^backend +\S+ via (.+)$/m)![1]
      } (smoke checks passed)`,
    );
  });
}

Deno.test("doctor exits 1 naming the reason when the requested backend cannot load", async () => {
  // tfjs-node is installed here without its binding (its install script never ran).
  const r = await doctor("--smoke", "--backend", "tensorflow");
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /^smoke: not run, no backend loaded$/m);
  assert.match(r.out, /skipped +@tensorflow\/tfjs-node-gpu: /);
  assert.match(r.out, /^backend +none loaded$/m);
  assert.equal(r.last, "cannot train: no backend could be loaded for --backend tensorflow");
});

Deno.test("doctor exits 1 naming a data folder that does not exist, 2 on a bad flag", async () => {
  const missing = `${await tempDir("galaxy-doctor-")}/nowhere`;
  const r = await doctor("--backend", "cpu", "--data", missing);
  assert.equal(r.code, 1, r.out);
  assert.match(r.last, new RegExp(`^cannot train: data folder ${missing} cannot be read`));
  const bad = await doctor("--backend", "gpu");
  assert.equal(bad.code, 2);
  assert.match(bad.out, /--backend must be one of tensorflow, webgpu, wasm, cpu/);
});

Deno.test("smoke: a wrong gradient kernel fails the gradient checks by name, forward still passes", async () => {
  await setupBackend({ requested: "wasm" });
  const original = tf.getKernel("Conv2DBackpropFilter", "wasm");
  assert.ok(original, "the toolkit registers Conv2DBackpropFilter for wasm");
  // A kernel off by 1 %: what a miscompiled or mis-wired native kernel would look like.
  const wrong: tf.KernelConfig = {
    ...original,
    kernelFunc: (args) => {
      const out = original.kernelFunc(args) as tf.TensorInfo;
      // The wasm backend's own way to make an output: a tensor on its heap, filled in place.
      const wasm = args.backend as unknown as {
        makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
        typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
        disposeData(id: unknown): void;
      };
      const scaled = wasm.makeOutput(out.shape, out.dtype);
      const src = wasm.typedArrayFromHeap(out);
      wasm.typedArrayFromHeap(scaled).set(src.map((v) => v * 1.01));
      wasm.disposeData(out.dataId);
      return scaled;
    },
  };
  tf.unregisterKernel("Conv2DBackpropFilter", "wasm");
  tf.registerKernel(wrong);
  const lines: string[] = [];
  try {
    const checks = await smokeTest({ mirrored: false, onCheck: (c) => lines.push(formatCheck(c)) });
    const status = Object.fromEntries(checks.map((c) => [c.name, c.status]));
    assert.deepEqual(status, {
      forward: "ok",
      loss: "ok",
      gradients: "FAIL",
      update: "FAIL",
      "save/reload": "ok",
    }, lines.join("\n"));
    assert.match(
      lines.find((l) => l.startsWith("FAIL gradients: "))!,
      /tensors differ from the cpu backend .*worst \w+_conv\/kernel/,
    );
  } finally {
    tf.unregisterKernel("Conv2DBackpropFilter", "wasm");
    tf.registerKernel(original);
  }
  assert.equal(tf.getBackend(), "wasm", "the smoke leaves the active backend as it was");
});

Deno.test("smoke: a check that crashes fails under its own name", async () => {
  await setupBackend({ requested: "wasm" });
  const dir = await tempDir("galaxy-smoke-");
  // A file where the model folder must go: saving fails.
  await Deno.writeTextFile(`${dir}/model`, "not a folder");
  const checks = await smokeTest({ workDir: dir, mirrored: false });
  const failed = checks.filter((c) => c.status === "FAIL");
  assert.deepEqual(failed.map((c) => c.name), ["save/reload"]);
  assert.match(formatCheck(failed[0]), /^FAIL save\/reload: /);
  await assert.rejects(() => smokeTest({ batch: 3 }), /even number/);
});

Deno.test("compareArrays: bound is atol + rtol * max|reference|, NaN and length never pass", () => {
  assert.equal(compareArrays([1, 2], [1, 2.001], { rtol: 1e-3, atol: 0 }).ok, true);
  assert.equal(compareArrays([1, 2], [1, 2.01], { rtol: 1e-3, atol: 0 }).ok, false);
  assert.equal(compareArrays([NaN], [1], { rtol: 1, atol: 1 }).ok, false);
  assert.equal(compareArrays([1], [NaN], { rtol: 1, atol: 1 }).ok, false);
  assert.equal(compareArrays([1], [1, 2], { rtol: 1, atol: 1 }).ok, false);
});

Deno.test("TensorFlow's device log: GPUs created, libraries it could not load", () => {
  const log = [
    "2026-11-29 I tensorflow/core/common_runtime/gpu/gpu_device.cc:1532] Created device " +
    "/job:localhost/replica:0/task:0/device:GPU:0 with 14626 MB memory:  -> device: 0, name: " +
    "Tesla V100-SXM2-16GB, pci bus id: 0000:00:04.0, compute capability: 7.0",
    "2026-11-29 I tensorflow/core/common_runtime/gpu/gpu_device.cc:1532] Created device " +
    "/job:localhost/replica:0/task:0/device:GPU:1 with 14626 MB memory:  -> device: 1, name: " +
    "Tesla V100-SXM2-16GB, pci bus id: 0000:00:05.0, compute capability: 7.0",
  ].join("\n");
  assert.deepEqual(parseTensorFlowLog(log), {
    gpus: [
      "GPU:0 Tesla V100-SXM2-16GB, 14.3 GiB, compute capability 7.0",
      "GPU:1 Tesla V100-SXM2-16GB, 14.3 GiB, compute capability 7.0",
    ],
    failedLibraries: [],
    skipped: null,
  });
  const broken = [
    "W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic " +
    "library 'libcudnn.so.8'; dlerror: libcudnn.so.8: cannot open shared object file",
    "W tensorflow/core/common_runtime/gpu/gpu_device.cc:1850] Cannot dlopen some GPU libraries. " +
    "Skipping registering GPU devices...",
  ].join("\n");
  assert.deepEqual(parseTensorFlowLog(broken), {
    gpus: [],
    failedLibraries: ["libcudnn.so.8"],
    skipped: "Skipping registering GPU devices...",
  });
});

Deno.test("nvidia-smi, ldconfig and library file names are read as the tools print them", () => {
  assert.deepEqual(
    parseNvidiaSmi(
      "0, Tesla V100-SXM2-16GB, 16384, 580.65.06\n1, Tesla V100-SXM2-16GB, 16384, 580.65.06\n",
    ),
    [
      { index: 0, name: "Tesla V100-SXM2-16GB", memoryMiB: 16384, driver: "580.65.06" },
      { index: 1, name: "Tesla V100-SXM2-16GB", memoryMiB: 16384, driver: "580.65.06" },
    ],
  );
  const cache = parseLdconfig([
    "919 libs found in cache `/etc/ld.so.cache'",
    "\tlibcudnn.so.8 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcudnn.so.8",
    "\tlibcudart.so.11.0 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.11.0",
    "\tlibcudart.so.11.0 (libc6) => /usr/lib32/libcudart.so.11.0",
  ].join("\n"));
  assert.deepEqual([...cache], [
    ["libcudnn.so.8", "/usr/lib/x86_64-linux-gnu/libcudnn.so.8"],
    ["libcudart.so.11.0", "/usr/local/cuda/lib64/libcudart.so.11.0"],
  ]);
  assert.equal(libraryVersion("libcudnn.so.8.1.1"), "8.1.1");
  assert.equal(libraryVersion("libcudart.so.11.2.152"), "11.2.152");
  assert.equal(libraryVersion("libfoo.so"), null);
});

Deno.test("resources: the all-reduce needs a float32 slot per weight and replica; disk of a folder", async () => {
  assert.equal(allReduceBytes(1000, 2), 8000);
  const dir = await tempDir("galaxy-doctor-");
  const d = diskSpace(dir);
  assert.ok(d.freeBytes > 0 && d.freeBytes <= d.totalBytes);
  await Deno.writeTextFile(`${dir}/f`, "x");
  assert.throws(() => diskSpace(`${dir}/f`), /is not a folder/);
});

Deno.test("shared memory larger than /dev/shm can hold is refused with a message, not SIGBUS", () => {
  if (!sharedMemoryAvailable()) return; // no /dev/shm here: nothing to refuse
  const path = `/dev/shm/galaxy-test-huge-${Deno.pid}`;
  try {
    // A petabyte: far beyond any tmpfs; without reserving, the first write past the room would
    // kill the process.
    assert.throws(() => mapShared(path, 2 ** 50), /cannot (reserve|size)/);
  } finally {
    unlinkShared(path);
  }
});
