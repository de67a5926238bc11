/**
 * The oneDNN library (Debian's `libdnnl2`) opened through `Deno.dlopen`: its
 * version checked, its C API's symbols bound, one CPU engine and stream.
 *
 * Only the 2.x C API is bound (op descriptors, `dnnl_*_desc_init`); oneDNN
 * 3.x removed those, so a 3.x library is refused with a reason and the
 * caller falls back to plain wasm. OpenMP reads its settings when the
 * library loads, so unless the user set them they are set before opening:
 * `OMP_NUM_THREADS`, one thread per core; `OMP_WAIT_POLICY=passive`, so a
 * thread waiting at a barrier sleeps instead of spinning (on a shared,
 * busy machine a spinning thread steals the core its partner needs: a
 * ResNet-34 step measured 2-4x slower at load 7 on 2 cores).
 *
 * @module
 */
import { availableParallelism } from "node:os";

/** The C API of oneDNN 2.x that the kernels use (see oneapi/dnnl/dnnl.h). */
const SYMBOLS = {
  dnnl_version: { parameters: [], result: "pointer" },
  dnnl_engine_create: { parameters: ["buffer", "i32", "usize"], result: "i32" },
  dnnl_stream_create: { parameters: ["buffer", "pointer", "u32"], result: "i32" },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_desc_init_by_tag: {
    parameters: ["buffer", "i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  dnnl_memory_desc_equal: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_memory_desc_get_size: { parameters: ["pointer"], result: "usize" },
  dnnl_memory_create: { parameters: ["buffer", "pointer", "pointer", "pointer"], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_memory_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_convolution_forward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_convolution_backward_data_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_convolution_backward_weights_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_pooling_v2_forward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_pooling_v2_backward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_batch_normalization_forward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "f32", "u32"],
    result: "i32",
  },
  dnnl_batch_normalization_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "u32"],
    result: "i32",
  },
  dnnl_eltwise_forward_desc_init: {
    parameters: ["buffer", "i32", "i32", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_eltwise_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_primitive_attr_create: { parameters: ["buffer"], result: "i32" },
  dnnl_primitive_attr_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_attr_set_post_ops: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_post_ops_create: { parameters: ["buffer"], result: "i32" },
  dnnl_post_ops_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_post_ops_append_eltwise: {
    parameters: ["pointer", "f32", "i32", "f32", "f32"],
    result: "i32",
  },
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_reorder_primitive_desc_create: {
    parameters: ["buffer", "pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_desc_query: {
    parameters: ["pointer", "i32", "i32", "buffer"],
    result: "i32",
  },
  dnnl_primitive_desc_query_md: { parameters: ["pointer", "i32", "i32"], result: "pointer" },
  dnnl_primitive_desc_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_create: { parameters: ["buffer", "pointer"], result: "i32" },
  dnnl_primitive_execute: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
  dnnl_primitive_destroy: { parameters: ["pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound symbols. */
export type DnnlSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** A library version, from `dnnl_version()`. */
export interface DnnlVersion {
  major: number;
  minor: number;
  patch: number;
}

/** An opened oneDNN: its symbols, version, CPU engine and stream, and OpenMP threads. */
export interface OneDnn {
  /** The C functions. */
  readonly api: DnnlSymbols;
  /** The library's version. */
  readonly version: DnnlVersion;
  /** Path or soname it was opened by. */
  readonly path: string;
  /** OpenMP threads per primitive (one per core unless `OMP_NUM_THREADS` says otherwise). */
  readonly threads: number;
  /** The CPU engine (`dnnl_engine_t`). */
  readonly engine: Deno.PointerObject;
  /** An in-order stream on it (`dnnl_stream_t`). */
  readonly stream: Deno.PointerObject;
}

/** The library sonames tried, newest supported first. */
export const DNNL_SONAMES = ["libdnnl.so.2", "libdnnl.so.3", "libdnnl.so"] as const;

/** Why oneDNN cannot be used here; the message is the one line a script prints. */
export class OneDnnUnavailable extends Error {
  override name = "OneDnnUnavailable";
}

/**
 * Null when `version` has the C API these kernels bind (2.x, from 2.3 on,
 * which has `dnnl_pooling_v2`), else the reason it is refused.
 */
export function unsupportedVersionReason(version: DnnlVersion): string | null {
  const v = `${version.major}.${version.minor}.${version.patch}`;
  if (version.major === 2 && version.minor >= 3) return null;
  if (version.major >= 3) {
    return `oneDNN ${v} has the 3.x C API (no op descriptors); only 2.3-2.x is supported`;
  }
  return `oneDNN ${v} is too old; 2.3 or later 2.x is needed`;
}

/** Throws {@linkcode OneDnnUnavailable} naming the call when a oneDNN status is not success. */
export function check(status: number, what: string): void {
  if (status !== 0) {
    throw new OneDnnUnavailable(`oneDNN ${what} failed with status ${status}`);
  }
}

/** Reads the version of the library at `path` without binding anything else. */
function readVersion(path: string): DnnlVersion {
  const probe = Deno.dlopen(path, { dnnl_version: SYMBOLS.dnnl_version });
  try {
    const p = probe.symbols.dnnl_version();
    if (p === null) throw new OneDnnUnavailable(`${path}: dnnl_version() returned null`);
    const view = new Deno.UnsafePointerView(p);
    return { major: view.getInt32(0), minor: view.getInt32(4), patch: view.getInt32(8) };
  } finally {
    probe.close();
  }
}

/** Out-parameter for a handle (`dnnl_*_t *`). */
function handleOut(): BigUint64Array {
  return new BigUint64Array(1);
}

/** The handle written to an out-parameter. */
export function handleOf(out: BigUint64Array, what: string): Deno.PointerObject {
  const p = Deno.UnsafePointer.create(out[0]);
  if (p === null) throw new OneDnnUnavailable(`oneDNN ${what} returned a null handle`);
  return p;
}

const GOMP_SYMBOLS = {
  omp_get_max_threads: { parameters: [], result: "i32" },
  omp_set_num_threads: { parameters: ["i32"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

let gomp: Deno.DynamicLibrary<typeof GOMP_SYMBOLS>["symbols"] | null | undefined;

/** The OpenMP runtime oneDNN was built with (libgomp), or null where it is not that one. */
function openMp(): typeof gomp {
  if (gomp === undefined) {
    try {
      gomp = Deno.dlopen("libgomp.so.1", GOMP_SYMBOLS).symbols;
    } catch {
      gomp = null;
    }
  }
  return gomp;
}

/** OpenMP threads of this process: `omp_get_max_threads()` from the library's libgomp. */
function openMpThreads(fallback: number): number {
  return openMp()?.omp_get_max_threads() ?? fallback;
}

/**
 * Runs `f` with OpenMP limited to one thread (primitives made inside keep
 * that count). For memory-bound primitives with several barriers per call
 * (batch norm): on a busy machine each barrier can wait a scheduler slice
 * for a descheduled partner thread, which measured 30x slower than one
 * thread at load 5 on 2 cores, while one thread loses little when idle.
 */
export function singleThreaded<T>(f: () => T): T {
  const omp = openMp();
  if (!omp) return f();
  const before = omp.omp_get_max_threads();
  omp.omp_set_num_threads(1);
  try {
    return f();
  } finally {
    omp.omp_set_num_threads(before);
  }
}

let opened: OneDnn | null = null;

/**
 * Opens oneDNN once per process (later calls return the same one). Tries
 * `path`, else `GALAXY_DNNL_LIBRARY`, else {@linkcode DNNL_SONAMES}.
 * Throws {@linkcode OneDnnUnavailable} with a one-line reason when no
 * supported library loads.
 */
export function openOneDnn(options: { path?: string } = {}): OneDnn {
  if (opened) return opened;
  const explicit = options.path ?? Deno.env.get("GALAXY_DNNL_LIBRARY");
  const paths = explicit ? [explicit] : [...DNNL_SONAMES];
  const reasons: string[] = [];
  for (const path of paths) {
    let version: DnnlVersion;
    try {
      if (Deno.env.get("OMP_NUM_THREADS") === undefined) {
        Deno.env.set("OMP_NUM_THREADS", String(availableParallelism()));
      }
      if (Deno.env.get("OMP_WAIT_POLICY") === undefined) {
        Deno.env.set("OMP_WAIT_POLICY", "passive");
      }
      version = readVersion(path);
    } catch (e) {
      if (e instanceof OneDnnUnavailable) throw e;
      reasons.push(`${path} not found`);
      continue;
    }
    const bad = unsupportedVersionReason(version);
    if (bad) {
      reasons.push(bad);
      continue;
    }
    opened = bind(path, version);
    return opened;
  }
  throw new OneDnnUnavailable(
    reasons.every((r) => r.endsWith("not found"))
      ? `oneDNN not found (${paths.join(", ")}); install it with: apt-get install libdnnl2`
      : reasons.filter((r) => !r.endsWith("not found")).join("; "),
  );
}

function bind(path: string, version: DnnlVersion): OneDnn {
  const lib = Deno.dlopen(path, SYMBOLS);
  const api = lib.symbols;
  const out = handleOut();
  check(api.dnnl_engine_create(out, 1, /* dnnl_cpu */ 0n), "dnnl_engine_create");
  const engine = handleOf(out, "dnnl_engine_create");
  check(api.dnnl_stream_create(out, engine, 1 /* in-order */), "dnnl_stream_create");
  const stream = handleOf(out, "dnnl_stream_create");
  const env = Number(Deno.env.get("OMP_NUM_THREADS"));
  const threads = openMpThreads(Number.isFinite(env) && env > 0 ? env : availableParallelism());
  return { api, version, path, threads, engine, stream };
}

/** `oneDNN 2.6 (2 threads)`: how the backend line names the library. */
export function describeOneDnn(dnnl: OneDnn): string {
  const t = dnnl.threads;
  return `oneDNN ${dnnl.version.major}.${dnnl.version.minor} (${t} thread${t === 1 ? "" : "s"})`;
}
