/**
 * The WebGPU backend on Deno's built-in `navigator.gpu`: which adapter it
 * runs on, whether that adapter is a real GPU or a software renderer, and
 * the workaround that lets `@tensorflow/tfjs-backend-webgpu` 4.22 create its
 * device under Deno.
 *
 * 4.22's factory (`src/base.ts`) passes `requiredFeatures` as
 * `['timestamp-query', ['bgra8unorm-storage']]`: a nested array, which
 * browsers coerce to a string and Deno rejects ("can not be converted to a
 * enum", denoland/webgpu-examples#22). {@linkcode loadWebGpu} runs the
 * package's own factory on the adapter chosen here, wrapped so that
 * `requestDevice` gets the list flattened; node_modules stays untouched.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** The adapter a WebGPU backend runs on, as `GPUAdapter.info` describes it. */
export interface WebGpuAdapter {
  /** `info.vendor`: a name, or a PCI/Khronos id in decimal (lavapipe: 65541 = 0x10005, Mesa). */
  vendor: string;
  /** `info.architecture`, e.g. `ampere`, `gen-12lp`; often empty. */
  architecture: string;
  /** `info.description`, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`; often the device name. */
  description: string;
  /** Whether it renders on the CPU (lavapipe/llvmpipe, SwiftShader, WARP, or a fallback adapter). */
  software: boolean;
}

/** Software renderers by name: Mesa's lavapipe (llvmpipe), Google's SwiftShader, Microsoft's WARP. */
const SOFTWARE_NAMES = /lavapipe|llvmpipe|softpipe|swiftshader|microsoft basic render|\bwarp\b/i;

/** Khronos vendor id of Mesa (VK_VENDOR_ID_MESA), which lavapipe reports. */
const MESA_VENDOR_ID = 0x10005;

/** Reads an adapter's `info` into {@linkcode WebGpuAdapter}, deciding whether it is software. */
export function describeAdapterInfo(info: {
  vendor?: string;
  architecture?: string;
  description?: string;
  device?: string;
  isFallbackAdapter?: boolean;
}): WebGpuAdapter {
  const vendor = info.vendor ?? "";
  const architecture = info.architecture ?? "";
  const description = info.description || info.device || "";
  const software = info.isFallbackAdapter === true || Number(vendor) === MESA_VENDOR_ID ||
    SOFTWARE_NAMES.test(`${vendor} ${architecture} ${description}`);
  return { vendor, architecture, description, software };
}

/** The adapter in one phrase, e.g. `llvmpipe (LLVM 15.0.6, 256 bits), vendor 0x10005, software`. */
export function adapterLabel(a: WebGpuAdapter): string {
  const vendor = /^\d+$/.test(a.vendor) ? `0x${Number(a.vendor).toString(16)}` : a.vendor;
  return [
    a.description || "unnamed adapter",
    vendor ? `vendor ${vendor}` : "",
    a.architecture ? `architecture ${a.architecture}` : "",
    a.software ? "software renderer" : "GPU",
  ].filter((s) => s !== "").join(", ");
}

/**
 * Runs `f` with XDG_RUNTIME_DIR set when it is unset: adapter discovery in
 * Vulkan's Wayland code otherwise prints "error: XDG_RUNTIME_DIR is invalid
 * or not set" to stderr (libwayland's check for an absolute path), in
 * containers and cron jobs, where no Wayland session exists anyway. The
 * stand-in, /dev/null, can hold no Wayland socket, so the connection fails
 * quietly as it would have; the variable is removed again afterwards.
 */
async function withoutWaylandNoise<T>(f: () => Promise<T>): Promise<T> {
  const own = !(Deno.env.get("XDG_RUNTIME_DIR") ?? "").startsWith("/");
  if (own) Deno.env.set("XDG_RUNTIME_DIR", "/dev/null");
  try {
    return await f();
  } finally {
    if (own) Deno.env.delete("XDG_RUNTIME_DIR");
  }
}

/** The high-performance adapter of `gpu` (default navigator.gpu), or null; without Wayland noise. */
export function requestAdapter(gpu?: GPU): Promise<GPUAdapter | null> {
  const g = gpu ?? (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!g) return Promise.resolve(null);
  return withoutWaylandNoise(() => g.requestAdapter({ powerPreference: "high-performance" }));
}

/**
 * The flattened feature list: 4.22 nests `'bgra8unorm-storage'` in an
 * array of its own, which Deno refuses.
 */
export function flatFeatures(features: Iterable<unknown> | undefined): GPUFeatureName[] {
  return [...(features ?? [])].flat(Infinity as 1) as GPUFeatureName[];
}

/** `adapter`, with `requestDevice` given a flat `requiredFeatures` list. */
function flattening(adapter: GPUAdapter): GPUAdapter {
  return new Proxy(adapter, {
    get(target, prop) {
      if (prop === "requestDevice") {
        return (d: GPUDeviceDescriptor = {}) =>
          target.requestDevice({ ...d, requiredFeatures: flatFeatures(d.requiredFeatures) });
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

let packageFactory: (() => tf.KernelBackend | Promise<tf.KernelBackend>) | null = null;

/**
 * Brings up the `webgpu` backend on the high-performance adapter and
 * returns that adapter. A software adapter is refused unless
 * `allowSoftware` (the backend was asked for by name). Throws, with the
 * reason, when Deno has no WebGPU or no adapter is found; a device that
 * cannot be created fails `tf.setBackend("webgpu")`. `gpu` (tests) stands
 * in for `navigator.gpu`.
 */
export async function loadWebGpu(
  options: { allowSoftware: boolean; gpu?: GPU },
): Promise<WebGpuAdapter> {
  // The package reads navigator.gpu itself; the adapter may come from a stand-in.
  const global = (globalThis.navigator as Navigator | undefined)?.gpu;
  const gpu = options.gpu ?? global;
  if (!gpu || !global) throw new Error("this Deno has no navigator.gpu (WebGPU)");
  const adapter = await requestAdapter(gpu);
  if (adapter === null) {
    throw new Error("no WebGPU adapter (no Vulkan, Metal or Direct3D 12 driver found)");
  }
  const described = describeAdapterInfo(adapter.info);
  if (described.software && !options.allowSoftware) {
    throw new Error(
      `only a software adapter (${adapterLabel(described)}); ask for it with --backend webgpu`,
    );
  }
  await import("@tensorflow/tfjs-backend-webgpu");
  // The package's own factory, kept from its first registration: later calls replace ours.
  packageFactory ??= tf.findBackendFactory("webgpu");
  const packaged = packageFactory;
  if (!packaged) throw new Error("@tensorflow/tfjs-backend-webgpu registered no backend");
  // The package's factory asks navigator.gpu for its adapter: for the length of
  // that call it gets the one examined above, wrapped.
  tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", async () => {
    const own = Object.getOwnPropertyDescriptor(global, "requestAdapter");
    Object.defineProperty(global, "requestAdapter", {
      configurable: true,
      value: () => Promise.resolve(flattening(adapter)),
    });
    try {
      return await packaged();
    } finally {
      if (own) Object.defineProperty(global, "requestAdapter", own);
      else delete (global as unknown as Record<string, unknown>).requestAdapter;
    }
  });
  return described;
}
