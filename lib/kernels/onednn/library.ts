/**
 * The oneDNN library (Debian's `libdnnl2`, Ubuntu 24.04's `libdnnl3`) opened
 * through `Deno.dlopen`: its version checked, the calls common to its C API
 * versions bound, the version layer (abi_v2.ts / abi_v3.ts) for the rest,
 * one CPU engine and stream.
 *
 * 2.3-2.x and 3.1-3.x are supported; any other version is refused with a
 * reason and the caller falls back to plain wasm. OpenMP reads its settings when the
 * library loads, so unless the user set them they are set before opening:
 * `OMP_NUM_THREADS`, one thread per core; `OMP_WAIT_POLICY=passive`, so a
 * thread waiting at a barrier sleeps instead of spinning (on a shared,
 * busy machine a spinning thread steals the core its partner needs: a
 * ResNet-34 step measured 2-4x slower at load 7 on 2 cores).
 *
 * @module
 */
import { availableParallelism } from "node:os";
import {
  ATTR_SYMBOLS,
  check,
  type DnnlAbi,
  handleOf,
  handleOut,
  OneDnnUnavailable,
} from "./abi.ts";
import { abiV2, V2_SYMBOLS } from "./abi_v2.ts";
import { abiV3, V3_SYMBOLS } from "./abi_v3.ts";

export { check, handleOf, OneDnnUnavailable };

/** The C calls that are the same in oneDNN 2.x and 3.x (oneapi/dnnl/dnnl.h). */
const SYMBOLS = {
  dnnl_version: { parameters: [], result: "pointer" },
  dnnl_get_effective_cpu_isa: { parameters: [], result: "i32" },
  dnnl_engine_create: { parameters: ["buffer", "i32", "usize"], result: "i32" },
  dnnl_stream_create: { parameters: ["buffer", "pointer", "u32"], result: "i32" },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_desc_equal: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_memory_desc_get_size: { parameters: ["pointer"], result: "usize" },
  dnnl_memory_create: { parameters: ["buffer", "pointer", "pointer", "pointer"], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_memory_destroy: { parameters: ["pointer"], result: "i32" },
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
  ...ATTR_SYMBOLS,
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound symbols. */
export type DnnlSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** A library version, from `dnnl_version()`. */
export interface DnnlVersion {
  major: number;
  minor: number;
  patch: number;
}

/**
 * The instruction set oneDNN's kernels use here (`dnnl_get_effective_cpu_isa`,
 * lowered by `ONEDNN_MAX_CPU_ISA` / `DNNL_MAX_CPU_ISA`).
 */
export interface CpuIsa {
  /** The family: `avx512_core`, `avx2`, `avx`, `sse41`, or `isa 0x..` when none of these. */
  readonly family: "avx512_core" | "avx2" | "avx" | "sse41" | `isa 0x${string}`;
  /** The raw `dnnl_cpu_isa_t` value (its meaning of the high bits differs between 2.x and 3.x). */
  readonly value: number;
}

/**
 * The family of a `dnnl_cpu_isa_t` value. The low bits mean the same in
 * 2.x and 3.x (sse41 0x1, avx 0x3, avx2 0x7, avx512_core 0x27: each
 * includes the one before); extensions (vnni, bf16, amx) add higher bits.
 */
export function cpuIsaFamily(value: number): CpuIsa["family"] {
  if ((value & 0x27) === 0x27) return "avx512_core";
  if ((value & 0x7) === 0x7) return "avx2";
  if ((value & 0x3) === 0x3) return "avx";
  if ((value & 0x1) === 0x1) return "sse41";
  return `isa 0x${value.toString(16)}`;
}

/** An opened oneDNN: its symbols, version, CPU engine and stream, and OpenMP threads. */
export interface OneDnn {
  /** The C functions that are the same in every supported version. */
  readonly api: DnnlSymbols;
  /** How this version makes memory and primitive descriptors. */
  readonly abi: DnnlAbi;
  /** The instruction set its kernels use. */
  readonly isa: CpuIsa;
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

/**
 * Null when `version` has a C API these kernels bind: 2.x from 2.3 on
 * (which has `dnnl_pooling_v2`), or 3.x from 3.1 on; else the reason it is
 * refused.
 */
export function unsupportedVersionReason(version: DnnlVersion): string | null {
  const v = `${version.major}.${version.minor}.${version.patch}`;
  if (version.major === 2 && version.minor >= 3) return null;
  if (version.major === 3 && version.minor >= 1) return null;
  if (version.major >= 4) {
    return `oneDNN ${v} is newer than this toolkit knows (2.3-2.x and 3.1-3.x are supported)`;
  }
  return `oneDNN ${v} is too old; 2.3 or later 2.x, or 3.1 or later 3.x, is needed`;
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

/**
 * The instruction-set families the kernels run on. Below AVX, oneDNN's
 * SSE4.1 kernels load and store with 16-byte alignment, which TF.js' wasm
 * heap does not give: its average pooling crashed the process (SIGSEGV) on
 * data 8 bytes off a 16-byte boundary, in 2.6 and 3.1 alike
 * (`DNNL_MAX_CPU_ISA=SSE41`), while AVX's took any alignment.
 */
export const SUPPORTED_ISA_FAMILIES: readonly CpuIsa["family"][] = ["avx512_core", "avx2", "avx"];

/** The packages that carry a supported oneDNN, by distribution (for messages and the README). */
export const DNNL_PACKAGES =
  "apt-get install libdnnl2 (Debian 12, Ubuntu 22.04) or libdnnl3 (Ubuntu 24.04)";

/** What is known of one candidate library without binding it. */
export interface OneDnnCandidate {
  /** Path or soname tried. */
  path: string;
  /** Its version, or null where it did not load. */
  version: DnnlVersion | null;
  /** Why it cannot be used, or null where it can. */
  refusal: string | null;
}

/** Reads the version of each candidate (`GALAXY_DNNL_LIBRARY`, else {@linkcode DNNL_SONAMES}) without binding any. */
export function oneDnnCandidates(options: { path?: string } = {}): OneDnnCandidate[] {
  const explicit = options.path ?? Deno.env.get("GALAXY_DNNL_LIBRARY");
  return (explicit ? [explicit] : [...DNNL_SONAMES]).map((path) => {
    let version: DnnlVersion;
    try {
      version = readVersion(path);
    } catch (e) {
      if (e instanceof OneDnnUnavailable) return { path, version: null, refusal: e.message };
      return { path, version: null, refusal: "not found" };
    }
    return { path, version, refusal: unsupportedVersionReason(version) };
  });
}

/**
 * The instruction set the library at `path` would run here (with this
 * process's `ONEDNN_MAX_CPU_ISA` / `DNNL_MAX_CPU_ISA`), asked without
 * binding it; null where it does not load.
 */
export function probeCpuIsa(path: string): CpuIsa | null {
  let lib;
  try {
    lib = Deno.dlopen(path, { dnnl_get_effective_cpu_isa: SYMBOLS.dnnl_get_effective_cpu_isa });
  } catch {
    return null;
  }
  try {
    const value = lib.symbols.dnnl_get_effective_cpu_isa();
    return { family: cpuIsaFamily(value), value };
  } finally {
    lib.close();
  }
}

/**
 * One line on each candidate library for `deno task doctor`: its version,
 * whether it is the one in use (`inUse`, a path or soname), and why each
 * other one was passed over.
 */
export function describeOneDnnCandidates(
  candidates: readonly OneDnnCandidate[],
  inUse: string | null,
): string {
  const chosen = candidates.find((c) => c.path === inUse);
  return candidates.map((c) => {
    if (c.version === null) return `${c.path}: ${c.refusal ?? "not found"}`;
    const v = `${c.version.major}.${c.version.minor}.${c.version.patch}`;
    if (c.path === inUse) return `${c.path}: ${v}, in use`;
    if (c.refusal !== null) return `${c.path}: ${v}, refused (${c.refusal})`;
    return `${c.path}: ${v}, passed over (${
      chosen ? `${chosen.path} comes first in the order tried` : "native kernels not in use"
    })`;
  }).join("; ");
}

/** The library the kernels use in this process, or null where none was opened. */
export function openedOneDnn(): OneDnn | null {
  return opened;
}

let opened: OneDnn | null = null;

/**
 * Opens oneDNN once per process (later calls return the same one): `path`,
 * else `GALAXY_DNNL_LIBRARY`, else the first of {@linkcode DNNL_SONAMES}
 * with a supported version. Throws {@linkcode OneDnnUnavailable} with a
 * one-line reason when none loads, or when its kernels would run below AVX
 * ({@linkcode SUPPORTED_ISA_FAMILIES}).
 */
export function openOneDnn(options: { path?: string } = {}): OneDnn {
  if (opened) return opened;
  if (Deno.env.get("OMP_NUM_THREADS") === undefined) {
    Deno.env.set("OMP_NUM_THREADS", String(availableParallelism()));
  }
  if (Deno.env.get("OMP_WAIT_POLICY") === undefined) {
    Deno.env.set("OMP_WAIT_POLICY", "passive");
  }
  const candidates = oneDnnCandidates(options);
  const usable = candidates.find((c) => c.version !== null && c.refusal === null);
  if (usable) {
    opened = bind(usable.path, usable.version!);
    return opened;
  }
  throw new OneDnnUnavailable(
    candidates.every((c) => c.version === null)
      ? `oneDNN not found (${
        candidates.map((c) => c.path).join(", ")
      }); install it with: ${DNNL_PACKAGES}`
      : candidates.filter((c) => c.version !== null).map((c) => c.refusal).join("; "),
  );
}

function bind(path: string, version: DnnlVersion): OneDnn {
  const api = Deno.dlopen(path, SYMBOLS).symbols;
  const value = api.dnnl_get_effective_cpu_isa();
  const isa = { family: cpuIsaFamily(value), value };
  if (!SUPPORTED_ISA_FAMILIES.includes(isa.family)) {
    throw new OneDnnUnavailable(
      `oneDNN ${version.major}.${version.minor} would run ${isa.family} kernels here, which need ` +
        `16-byte-aligned data the wasm heap does not give; the native kernels need AVX or later`,
    );
  }
  const out = handleOut();
  check(api.dnnl_engine_create(out, 1, /* dnnl_cpu */ 0n), "dnnl_engine_create");
  const engine = handleOf(out, "dnnl_engine_create");
  check(api.dnnl_stream_create(out, engine, 1 /* in-order */), "dnnl_stream_create");
  const stream = handleOf(out, "dnnl_stream_create");
  const env = Number(Deno.env.get("OMP_NUM_THREADS"));
  const threads = openMpThreads(Number.isFinite(env) && env > 0 ? env : availableParallelism());
  const abi = version.major === 2
    ? abiV2(Deno.dlopen(path, V2_SYMBOLS).symbols, api, engine)
    : abiV3(Deno.dlopen(path, V3_SYMBOLS).symbols, api, engine);
  return { api, abi, isa, version, path, threads, engine, stream };
}

/** `oneDNN 2.6 (avx2, 2 threads)`: how the backend line names the library. */
export function describeOneDnn(dnnl: OneDnn): string {
  const t = dnnl.threads;
  return `oneDNN ${dnnl.version.major}.${dnnl.version.minor} ` +
    `(${dnnl.isa.family}, ${t} thread${t === 1 ? "" : "s"})`;
}
