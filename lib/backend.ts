/**
 * The one place that decides which TensorFlow.js backend runs the math.
 *
 * Order of preference: native TensorFlow (`@tensorflow/tfjs-node-gpu`, then
 * `@tensorflow/tfjs-node`) where its binding loads, else WebGPU on Deno's
 * built-in `navigator.gpu` where the adapter is a real GPU (a software
 * renderer such as lavapipe only when asked for by name, lib/webgpu.ts),
 * else WebAssembly (its `.wasm` files read from the local package, never the
 * network), else the pure-JS CPU backend. On wasm, native CPU kernels (oneDNN, lib/kernels/)
 * replace the heavy ones where the library loads, unless turned off, and
 * the optimizers update weights with WebAssembly SIMD loops.
 * Everything else in the toolkit is written against the backend-neutral
 * `@tensorflow/tfjs` API.
 *
 * @module
 */
// First: Node built-ins tfjs-node calls and Deno lacks, in place before any op can run.
import "./node_compat.ts";
import * as tf from "@tensorflow/tfjs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { registerWasmTrainingKernels } from "./kernels/wasm.ts";
import { enableNativeKernels } from "./kernels/native.ts";
import { compileOptimizerKernels } from "./kernels/optimizer_simd.ts";
import { adapterLabel, loadWebGpu, type WebGpuAdapter } from "./webgpu.ts";

/** A backend the toolkit can run on, by its TensorFlow.js registry name. */
export type BackendName = "tensorflow" | "webgpu" | "wasm" | "cpu";

/** The backend names `--backend` accepts. */
export const BACKEND_NAMES: readonly BackendName[] = ["tensorflow", "webgpu", "wasm", "cpu"];

/** One way to bring up a backend: loading it registers it with TensorFlow.js. */
export interface BackendCandidate {
  /** Registry name the backend registers under. */
  name: BackendName;
  /** What a person calls it, e.g. the npm package. */
  label: string;
  /**
   * Imports and registers the backend; throws when it cannot load here.
   * `requested`: the backend was asked for by name (`--backend`), which lets
   * WebGPU take a software adapter. WebGPU returns the adapter it runs on.
   */
  load(context: { requested: boolean }): Promise<void | { adapter?: WebGpuAdapter }>;
}

/** What {@linkcode setupBackend} chose, and why the ones before it were passed over. */
export interface BackendInfo {
  /** Registry name of the chosen backend. */
  name: BackendName;
  /** What a person calls the chosen backend, e.g. the npm package. */
  label: string;
  /** GPUs the process can see (native backend only; empty elsewhere). */
  gpus: string[];
  /** The WebGPU adapter (webgpu backend only). */
  adapter?: WebGpuAdapter;
  /** Candidates tried before the chosen one, with the reason each failed. */
  skipped: { label: string; reason: string }[];
  /**
   * Native CPU kernels in use, in one line (e.g. "oneDNN 2.6 (avx2, 2 threads)"),
   * or the reason they are off; absent where none are provided.
   */
  kernels?: string;
}

/**
 * Where a native package's binding would be. The package installs without
 * it unless its install script ran (tensorflow/tfjs#8581), and importing it
 * then half-registers its kernels before failing, so look first.
 */
export function nativeBindingPath(pkg: string): string | null {
  try {
    const manifest = createRequire(import.meta.url).resolve(`${pkg}/package.json`);
    return join(dirname(manifest), "lib", "napi-v8", "tfjs_binding.node");
  } catch {
    return null;
  }
}

async function loadNative(pkg: string): Promise<void> {
  const binding = nativeBindingPath(pkg);
  if (binding === null) throw new Error("not installed");
  try {
    Deno.statSync(binding);
  } catch {
    throw new Error(
      `installed without its native binding (install it with: deno install --allow-scripts=npm:${pkg})`,
    );
  }
  await import(pkg);
  if (!tf.findBackend("tensorflow")) throw new Error(`${pkg} loaded but registered no backend`);
}

/** The built-in candidates, in order of preference. */
export function defaultCandidates(): BackendCandidate[] {
  return [
    {
      name: "tensorflow",
      label: "@tensorflow/tfjs-node-gpu",
      load: () => loadNative("@tensorflow/tfjs-node-gpu"),
    },
    {
      name: "tensorflow",
      label: "@tensorflow/tfjs-node",
      load: () => loadNative("@tensorflow/tfjs-node"),
    },
    {
      name: "webgpu",
      label: "@tensorflow/tfjs-backend-webgpu",
      load: async ({ requested }) => ({ adapter: await loadWebGpu({ allowSoftware: requested }) }),
    },
    {
      name: "wasm",
      label: "@tensorflow/tfjs-backend-wasm",
      load: async () => {
        // In a Node-like runtime emscripten reads the .wasm beside the package
        // with `fs`: nothing is fetched over the network.
        await import("@tensorflow/tfjs-backend-wasm");
        registerWasmTrainingKernels();
      },
    },
    { name: "cpu", label: "@tensorflow/tfjs-backend-cpu (pure JS)", load: () => Promise.resolve() },
  ];
}

function firstLine(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return s.split("\n")[0].slice(0, 200);
}

/**
 * Chooses and activates a backend. With `requested`, only candidates of that
 * name are tried and failing to load is an error; without, the first that
 * loads wins.
 */
export async function setupBackend(
  options: {
    requested?: BackendName;
    candidates?: BackendCandidate[];
    /** `false` (`--no-native-kernels`) keeps the wasm backend plain; see lib/kernels/native.ts. */
    nativeKernels?: boolean;
  } = {},
): Promise<BackendInfo> {
  const { requested } = options;
  if (requested !== undefined && !BACKEND_NAMES.includes(requested)) {
    throw new Error(`unknown backend '${requested}': use one of ${BACKEND_NAMES.join(", ")}`);
  }
  const candidates = (options.candidates ?? defaultCandidates())
    .filter((c) => requested === undefined || c.name === requested);
  const skipped: BackendInfo["skipped"] = [];
  // Production mode: no debug checks, and no "install tfjs-node" banner on the CPU backend.
  tf.enableProdMode();
  for (const c of candidates) {
    try {
      const loaded = await c.load({ requested: requested !== undefined });
      if (!(await tf.setBackend(c.name))) throw new Error(`tf.setBackend('${c.name}') failed`);
      await tf.ready();
      const gpus = c.name === "tensorflow" ? visibleGpus() : [];
      const info: BackendInfo = { name: c.name, label: c.label, gpus, skipped };
      if (loaded?.adapter) info.adapter = loaded.adapter;
      if (c.name === "wasm") {
        info.kernels = enableNativeKernels({ enabled: options.nativeKernels }).description;
        try {
          await compileOptimizerKernels();
        } catch (e) {
          // Not a reason to give up wasm: the optimizers then update in JavaScript, slower.
          info.kernels += `; optimizer in JavaScript (no WebAssembly SIMD: ${firstLine(e)})`;
        }
      }
      return info;
    } catch (e) {
      skipped.push({ label: c.label, reason: firstLine(e) });
    }
  }
  const why = skipped.map((s) => `  ${s.label}: ${s.reason}`).join("\n");
  throw new Error(
    `no backend could be loaded${requested ? ` for --backend ${requested}` : ""}:\n${why}`,
  );
}

/** The one line every script prints at start, naming the backend in use. */
export function describeBackend(info: BackendInfo): string {
  const gpus = info.name === "tensorflow"
    ? `, GPUs: ${info.gpus.length ? info.gpus.join("; ") : "none (CPU)"}`
    : info.adapter
    ? `, adapter: ${adapterLabel(info.adapter)}`
    : "";
  const skipped = info.skipped.length
    ? ` (skipped ${info.skipped.map((s) => `${s.label}: ${s.reason}`).join("; ")})`
    : "";
  const native = info.kernels === undefined || info.kernels.startsWith("off")
    ? ""
    : ` + ${info.kernels}`;
  const off = info.kernels?.startsWith("off") ? `; native kernels ${info.kernels}` : "";
  return `backend: ${info.name}${native} via ${info.label}${gpus}${skipped}${off}`;
}

/**
 * GPUs the NVIDIA driver exposes to this process, read from /proc (no
 * subprocess), filtered by CUDA_VISIBLE_DEVICES when it lists indices.
 */
export function visibleGpus(): string[] {
  const root = "/proc/driver/nvidia/gpus";
  let models: string[] = [];
  try {
    const dirs = [...Deno.readDirSync(root)].map((d) => d.name).sort();
    models = dirs.map((d) => {
      const text = Deno.readTextFileSync(`${root}/${d}/information`);
      return /^Model:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? d;
    });
  } catch {
    return [];
  }
  const visible = Deno.env.get("CUDA_VISIBLE_DEVICES");
  if (visible === undefined || visible.trim() === "") return models.map((m, i) => `${i}: ${m}`);
  return visible.split(",").map((s) => Number(s.trim())).filter((i) => models[i] !== undefined)
    .map((i) => `${i}: ${models[i]}`);
}

/**
 * Throws a clear error when the active backend lacks a kernel a step needs,
 * naming the kernel and the backends that do have it.
 */
export function assertKernels(kernelNames: readonly string[]): void {
  const backend = tf.getBackend();
  const missing = kernelNames.filter((k) => !tf.getKernel(k, backend));
  if (missing.length === 0) return;
  const others = ["tensorflow", "webgpu", "wasm", "cpu", "webgl"].filter((b) => b !== backend);
  const lines = missing.map((k) => {
    const has = others.filter((b) => tf.getKernel(k, b));
    return `kernel '${k}' is not registered for backend '${backend}'` +
      (has.length ? `; it is available on: ${has.join(", ")} (use --backend)` : "");
  });
  throw new Error(lines.join("\n"));
}

/**
 * Rewrites TensorFlow.js' "Kernel 'X' not registered for backend 'Y'" error
 * into one that also names the backends that have X.
 */
export function explainKernelError(e: unknown): unknown {
  const m = e instanceof Error &&
    /Kernel '(\w+)' not registered for backend '(\w+)'/.exec(e.message);
  if (!m) return e;
  try {
    assertKernels([m[1]]);
  } catch (better) {
    return better;
  }
  return e;
}

/**
 * Makes `tensors` readable with `dataSync()`. The webgpu backend keeps
 * tensors on the GPU and, under Deno, cannot download them synchronously
 * (its fallback draws through an OffscreenCanvas Deno lacks), so there
 * they are downloaded first, asynchronously, and stay cached; on the other
 * backends this does nothing.
 */
export async function readable(tensors: readonly unknown[]): Promise<void> {
  if (tf.getBackend() !== "webgpu") return;
  await Promise.all(tensors.filter((t) => t instanceof tf.Tensor).map((t) => t.data()));
}
