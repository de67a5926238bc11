/**
 * The native-kernel configurations the `train`, `infer` and `train-run`
 * benchmarks measure, so that each ratio to PyTorch is taken where users
 * are: the oneDNN the toolkit finds by itself, a oneDNN 3.x (Ubuntu 24.04's
 * `libdnnl3`, or the 3.1.1 build beside the repository), and each capped at
 * AVX2 where this CPU has more (most laptops have AVX2 and no AVX-512).
 *
 * The cap is oneDNN's own (`ONEDNN_MAX_CPU_ISA`, `DNNL_MAX_CPU_ISA` before
 * 3.x); the torch peer gets the same cap through the oneDNN it convolves
 * with and `ATEN_CPU_CAPABILITY=avx2` for its other kernels, so each ratio
 * compares like with like.
 *
 * @module
 */
import { join } from "node:path";
import { PROJECT_ROOT } from "./fixtures.ts";
import { oneDnnCandidates, probeCpuIsa } from "../kernels/onednn/library.ts";

/** One configuration: a oneDNN library and an instruction-set cap. */
export interface NativeConfig {
  /** Suffix of the variant keys (`""` for the default one). */
  key: string;
  /** What the row says of it, e.g. "oneDNN 3.x, capped at AVX2". */
  label: string;
  /** Environment of the toolkit's runs. */
  toolkitEnv: Record<string, string>;
  /** Environment of the torch peer's runs (the same cap). */
  torchEnv: Record<string, string>;
  /** Key suffix of the torch variant it is compared with (one per cap). */
  torchKey: string;
}

/** The oneDNN 3.1.1 built from upstream source beside the repository (`../shared/onednn`). */
export function sharedOneDnn3(): string {
  return join(PROJECT_ROOT, "..", "shared", "onednn", "3.1.1", "lib", "libdnnl.so.3");
}

/** Whether `lib` (a path or soname) loads as a supported oneDNN 3.x. */
function isOneDnn3(lib: string): boolean {
  const [c] = oneDnnCandidates({ path: lib });
  return c.version?.major === 3 && c.refusal === null;
}

/**
 * Whether the oneDNN found by default runs AVX-512 kernels here (so that an
 * AVX2 cap changes what runs), as oneDNN itself says.
 */
export function runsAvx512(): boolean {
  const usable = oneDnnCandidates().find((c) => c.refusal === null && c.version !== null);
  return usable !== undefined && probeCpuIsa(usable.path)?.family === "avx512_core";
}

const AVX2_CAP = { ONEDNN_MAX_CPU_ISA: "AVX2", DNNL_MAX_CPU_ISA: "AVX2" };

/**
 * The configurations to measure here, the toolkit's own choice first:
 * the default library, then a 3.x one (`GALAXY_BENCH_DNNL3`, else
 * `libdnnl.so.3` where the loader finds it, else {@linkcode sharedOneDnn3})
 * unless the default already is 3.x, each also capped at AVX2 where the
 * CPU has AVX-512. Also returns why a configuration is absent.
 */
export function nativeConfigs(
  options: { avx512?: boolean; dnnl3?: string | null; explicit?: string } = {},
): { configs: NativeConfig[]; absent: string[] } {
  const avx512 = options.avx512 ?? runsAvx512();
  const explicit = options.explicit ?? Deno.env.get("GALAXY_DNNL_LIBRARY") ?? "";
  const dnnl3 = options.dnnl3 !== undefined ? options.dnnl3 : findOneDnn3();
  const libraries: { key: string; label: string; env: Record<string, string> }[] = [
    { key: "", label: "the oneDNN found by default", env: {} },
  ];
  const absent: string[] = [];
  if (/\.so\.3$/.test(explicit)) {
    // The user's own pick is already a 3.x library: nothing else to add.
  } else if (dnnl3 === null) {
    absent.push(
      `oneDNN 3.x: no libdnnl.so.3 found (apt-get install libdnnl3, or GALAXY_BENCH_DNNL3=PATH)`,
    );
  } else {
    libraries.push({ key: "-dnnl3", label: "oneDNN 3.x", env: { GALAXY_DNNL_LIBRARY: dnnl3 } });
  }
  if (!avx512) {
    absent.push("AVX2 cap: oneDNN runs no AVX-512 kernels here, so it runs AVX2 (or less) already");
  }
  const configs: NativeConfig[] = [];
  for (const lib of libraries) {
    configs.push({
      key: lib.key,
      label: lib.label,
      toolkitEnv: lib.env,
      torchEnv: {},
      torchKey: "",
    });
    if (avx512) {
      configs.push({
        key: `${lib.key}-avx2`,
        label: `${lib.label}, capped at AVX2`,
        toolkitEnv: { ...lib.env, ...AVX2_CAP },
        torchEnv: { ...AVX2_CAP, ATEN_CPU_CAPABILITY: "avx2" },
        torchKey: "-avx2",
      });
    }
  }
  return { configs, absent };
}

/** A oneDNN 3.x library to measure, or null. */
function findOneDnn3(): string | null {
  const given = Deno.env.get("GALAXY_BENCH_DNNL3");
  if (given) return given;
  if (isOneDnn3("libdnnl.so.3")) return "libdnnl.so.3";
  const shared = sharedOneDnn3();
  return isOneDnn3(shared) ? shared : null;
}

/** The distinct torch configurations of `configs` (one per cap), by key suffix. */
export function torchConfigs(configs: readonly NativeConfig[]): NativeConfig[] {
  const seen = new Map<string, NativeConfig>();
  for (const c of configs) if (!seen.has(c.torchKey)) seen.set(c.torchKey, c);
  return [...seen.values()];
}
