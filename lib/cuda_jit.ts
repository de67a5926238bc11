/**
 * The first start on a GPU newer than libtensorflow's machine code: the
 * NVIDIA driver compiles libtensorflow's PTX for it (TensorFlow warns this
 * "could take 30 minutes or longer", tensorflow/tensorflow#60739) and keeps
 * the result in its JIT cache, CUDA_CACHE_PATH (default ~/.nv/ComputeCache),
 * up to CUDA_CACHE_MAXSIZE bytes. In a container that cache dies with the
 * container unless a volume is mounted there (Dockerfile.gpu, docs/gpu.md).
 *
 * This module reads each GPU's compute capability from `nvidia-smi` and says
 * whether a start will compile, and whether the cache will keep the result.
 *
 * @module
 */
import { join } from "node:path";

/**
 * Highest compute capability libtensorflow 2.9.1 (tfjs-node-gpu 4.22.0)
 * carries machine code for; above it the driver JIT-compiles PTX.
 */
export const NATIVE_CODE_UP_TO = 8.0;

/** The driver's cache size when CUDA_CACHE_MAXSIZE is unset (older drivers), bytes. */
export const DEFAULT_CACHE_BYTES = 256 * 2 ** 20;

/**
 * Least cache this toolkit calls big enough: a floor, not a measurement. The
 * 256 MiB default is too small for TensorFlow's kernels (tensorflow/serving#1663);
 * the image sets the CUDA maximum, 4 GiB.
 */
export const MIN_CACHE_BYTES = 2 ** 30;

/** One GPU's compute capability, as `nvidia-smi --query-gpu=index,name,compute_cap` lists it. */
export interface GpuCapability {
  index: number;
  name: string;
  /** e.g. 8.6; NaN when the driver does not report it. */
  computeCapability: number;
}

/** A compute capability as printed: `8.0`, `8.9`; `unknown` where the driver gave none. */
export function formatCapability(cc: number): string {
  return Number.isNaN(cc) ? "unknown" : cc.toFixed(1);
}

/** Parses `nvidia-smi --query-gpu=index,name,compute_cap --format=csv,noheader`. */
export function parseComputeCaps(text: string): GpuCapability[] {
  return text.split("\n").map((l) => l.trim()).filter((l) => l !== "").map((l) => {
    // The name may hold commas: it is everything between the first and the last one.
    const first = l.indexOf(","), last = l.lastIndexOf(",");
    return {
      index: Number(l.slice(0, first)),
      name: l.slice(first + 1, last).trim(),
      computeCapability: Number(l.slice(last + 1).trim()),
    };
  });
}

/**
 * Each GPU's compute capability from `nvidia-smi` (10 s deadline), or the
 * reason there is none: no driver, or one too old for `compute_cap` (< 510).
 */
export async function computeCapabilities(): Promise<{ gpus: GpuCapability[]; reason?: string }> {
  try {
    const out = await new Deno.Command("nvidia-smi", {
      args: ["--query-gpu=index,name,compute_cap", "--format=csv,noheader"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(10_000),
    }).output();
    if (!out.success) {
      const err = new TextDecoder().decode(out.stderr).trim().split("\n")[0] ?? "";
      return {
        gpus: [],
        reason: `nvidia-smi cannot list compute_cap (driver older than 510?): ${err.slice(0, 120)}`,
      };
    }
    return { gpus: parseComputeCaps(new TextDecoder().decode(out.stdout)) };
  } catch (e) {
    return {
      gpus: [],
      reason: e instanceof Deno.errors.NotFound
        ? "nvidia-smi not found (no NVIDIA driver)"
        : `nvidia-smi failed: ${(e as Error).message.split("\n")[0]}`,
    };
  }
}

/** Where the JIT cache is and whether it keeps what the driver compiles. */
export interface JitCache {
  /** CUDA_CACHE_PATH, or the driver's default under $HOME. */
  path: string;
  /** CUDA_CACHE_MAXSIZE, or the default. */
  maxBytes: number;
  /** Whether `path` is on a mount of its own (a volume), so it outlives a container. */
  mounted: boolean;
  /** Bytes already in the cache (0 when it is empty or absent). */
  usedBytes: number;
}

/** Mount points listed in /proc/self/mountinfo (field 5), with octal escapes decoded. */
export function mountPoints(mountinfo: string): string[] {
  return mountinfo.split("\n").map((l) => l.split(" ")[4]).filter((p) => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))));
}

function bytesUnder(dir: string): number {
  let total = 0;
  try {
    for (const e of Deno.readDirSync(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) total += bytesUnder(p);
      else if (e.isFile) total += Deno.statSync(p).size;
    }
  } catch { /* absent or unreadable: nothing cached there */ }
  return total;
}

/**
 * The JIT cache as the environment sets it. `mounted` is true when the
 * cache folder or one of its parents below `/` is a mount point: on the
 * host, where the cache is an ordinary home folder, that is false and says
 * only that no volume holds it.
 */
export function jitCache(
  env: { get(name: string): string | undefined } = Deno.env,
  mountinfo?: string,
): JitCache {
  const path = env.get("CUDA_CACHE_PATH") ||
    join(env.get("HOME") ?? "/root", ".nv", "ComputeCache");
  const raw = env.get("CUDA_CACHE_MAXSIZE");
  const maxBytes = raw !== undefined && /^\d+$/.test(raw.trim())
    ? Number(raw)
    : DEFAULT_CACHE_BYTES;
  let info = mountinfo;
  if (info === undefined) {
    try {
      info = Deno.readTextFileSync("/proc/self/mountinfo");
    } catch {
      info = "";
    }
  }
  const mounts = new Set(mountPoints(info).filter((m) => m !== "/"));
  const parts = path.split("/").filter((p) => p !== "");
  const mounted = parts.some((_, i) => mounts.has("/" + parts.slice(0, i + 1).join("/")));
  return { path, maxBytes, mounted, usedBytes: bytesUnder(path) };
}

/** GPUs among `gpus` whose start compiles PTX (compute capability above {@linkcode NATIVE_CODE_UP_TO}). */
export function jitGpus(gpus: readonly GpuCapability[]): GpuCapability[] {
  return gpus.filter((g) => g.computeCapability > NATIVE_CODE_UP_TO);
}

const mib = (b: number) => `${Math.round(b / 2 ** 20)} MiB`;

/**
 * What the doctor says about the JIT: one line per fact, and problems worth
 * a warning (a cache that forgets, or one too small). Empty when no GPU
 * compiles PTX.
 */
export function jitReport(
  gpus: readonly GpuCapability[],
  cache: JitCache,
): { lines: string[]; warnings: string[] } {
  const jit = jitGpus(gpus);
  if (jit.length === 0) return { lines: [], warnings: [] };
  const names = jit.map((g) => `${g.index}: ${g.name} (${formatCapability(g.computeCapability)})`)
    .join("; ");
  const lines = [
    `${names}: above ${NATIVE_CODE_UP_TO.toFixed(1)}, so the first start compiles ` +
    `libtensorflow's PTX (can take 30 minutes or longer)`,
    `${cache.path}, max ${mib(cache.maxBytes)}, ${mib(cache.usedBytes)} used, ` +
    (cache.mounted ? "on a mounted volume (kept)" : "not on a mounted volume"),
  ];
  const warnings: string[] = [];
  if (!cache.mounted) {
    warnings.push(
      `the CUDA JIT cache ${cache.path} is not on a volume: every new container compiles ` +
        `again (docker run -v galaxy-cuda-cache:/cuda-cache, docs/gpu.md)`,
    );
  }
  if (cache.maxBytes < MIN_CACHE_BYTES) {
    warnings.push(
      `CUDA_CACHE_MAXSIZE is ${mib(cache.maxBytes)}: compiled kernels that do not fit are ` +
        `compiled again at every start (set it to 4294967296)`,
    );
  }
  return { lines, warnings };
}

/**
 * The one line train and predict print before a start that will compile:
 * null when no GPU needs PTX compiled, or the cache already holds compiled
 * code and is big enough to have kept it.
 */
export function firstStartNote(gpus: readonly GpuCapability[], cache: JitCache): string | null {
  const jit = jitGpus(gpus);
  if (jit.length === 0 || (cache.usedBytes > 0 && cache.maxBytes >= MIN_CACHE_BYTES)) return null;
  const cc = [...new Set(jit.map((g) => formatCapability(g.computeCapability)))].join(", ");
  return `first start on compute capability ${cc}: the NVIDIA driver is compiling ` +
    `libtensorflow's PTX, which can take 30 minutes or longer; it is cached in ${cache.path}` +
    (cache.mounted
      ? " for later starts"
      : " (not a mounted volume: the next container compiles again)");
}

/**
 * The first-start line for a script that just chose `backend` (null when
 * there is nothing to wait for): only the native backend with a GPU
 * compiles PTX. Asks `nvidia-smi` for the compute capabilities.
 */
export async function jitStartNote(
  backend: { name: string; gpus: readonly string[] },
  caps: () => Promise<{ gpus: GpuCapability[] }> = computeCapabilities,
  cache: () => JitCache = jitCache,
): Promise<string | null> {
  if (backend.name !== "tensorflow" || backend.gpus.length === 0) return null;
  return firstStartNote((await caps()).gpus, cache());
}
