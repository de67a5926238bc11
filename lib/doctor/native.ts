/**
 * What the native TensorFlow backend stands on: tfjs-node's binding and
 * libtensorflow, the CUDA and cuDNN libraries libtensorflow opens, the GPUs
 * the NVIDIA driver lists and the devices TensorFlow itself creates.
 *
 * Every probe has a deadline and reports "not found" with the reason rather
 * than throwing: the doctor prints them all, whatever is missing.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { nativeBindingPath } from "../backend.ts";

/** The native packages, GPU build first (the order lib/backend.ts tries them). */
export const NATIVE_PACKAGES: readonly string[] = [
  "@tensorflow/tfjs-node-gpu",
  "@tensorflow/tfjs-node",
];

/** One native package as installed here. */
export interface NativeInstall {
  /** npm name. */
  pkg: string;
  /** Whether npm installed the package at all. */
  installed: boolean;
  /** Where its binding is (or would be); null when the package is absent. */
  bindingPath: string | null;
  /** Whether the binding file exists (its install script ran). */
  bindingPresent: boolean;
  /** libtensorflow's version from the file its install script downloaded (`deps/lib`), or null. */
  libtensorflow: string | null;
}

/** A shared library found on the loader's path. */
export interface SharedLibrary {
  /** The soname asked for, e.g. `libcudnn.so.8`. */
  soname: string;
  /** Where it resolves to. */
  path: string;
  /** Version from the resolved file name (`libcudnn.so.8.1.1` gives 8.1.1), or the soname's. */
  version: string;
}

/**
 * The sonames libtensorflow 2.9.1 (tfjs-node-gpu 4.22.0; built for CUDA 11.2
 * and cuDNN 8.1) opens at start; a missing one makes TensorFlow log "Could
 * not load dynamic library" and run on the CPU alone.
 */
export const TF_GPU_LIBRARIES: readonly string[] = [
  // The driver's own library, which the NVIDIA container runtime mounts at `docker run --gpus`.
  "libcuda.so.1",
  "libcudart.so.11.0",
  "libcublas.so.11",
  "libcublasLt.so.11",
  "libcufft.so.10",
  "libcurand.so.10",
  "libcusolver.so.11",
  "libcusparse.so.11",
  "libcudnn.so.8",
];

/** Describes one native package's files, without loading it. */
export function nativeInstall(pkg: string): NativeInstall {
  const bindingPath = nativeBindingPath(pkg);
  if (bindingPath === null) {
    return { pkg, installed: false, bindingPath, bindingPresent: false, libtensorflow: null };
  }
  const exists = (p: string) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  };
  let libtensorflow: string | null = null;
  try {
    const root = dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
    for (const e of Deno.readDirSync(join(root, "deps", "lib"))) {
      const m = /^libtensorflow\.so\.(\d+\.\d+\.\d+)$/.exec(e.name);
      if (m) libtensorflow = m[1];
    }
  } catch { /* no deps/: the install script did not run */ }
  return { pkg, installed: true, bindingPath, bindingPresent: exists(bindingPath), libtensorflow };
}

/**
 * The TensorFlow version the active native backend reports (`TF_Version()`
 * of its binding), or null when the active backend is not native.
 */
export function activeTensorFlowVersion(): string | null {
  if (tf.getBackend() !== "tensorflow") return null;
  const backend = tf.backend() as unknown as { binding?: { TF_Version?: string } };
  return backend.binding?.TF_Version ?? null;
}

/**
 * Whether the active native backend runs its ops on a GPU (tfjs-node picks
 * the last GPU TensorFlow lists, else the CPU); null off the native backend.
 */
export function activeBackendUsesGpu(): boolean | null {
  if (tf.getBackend() !== "tensorflow") return null;
  return (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice ?? null;
}

/** Runs a command with a deadline; null when it is missing, fails or times out. */
async function run(cmd: string, args: string[], timeoutMs: number): Promise<string | null> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : null;
  } catch {
    return null;
  }
}

/** Version in a library file name: `libcudart.so.11.2.152` gives `11.2.152`. */
export function libraryVersion(fileName: string): string | null {
  return /\.so\.(\d+(?:\.\d+)*)$/.exec(fileName)?.[1] ?? null;
}

/** Soname to path, from `ldconfig -p` output. */
export function parseLdconfig(text: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of text.matchAll(/^\s*(\S+) \(([^)]*)\) => (\S+)$/gm)) {
    // One architecture: the 64-bit x86 or ARM entry, whichever this is.
    if (!found.has(m[1]) && /x86-64|AArch64/.test(m[2])) found.set(m[1], m[3]);
  }
  return found;
}

/**
 * Finds each soname in LD_LIBRARY_PATH, then in the loader's cache (`ldconfig
 * -p`), the order the dynamic loader searches; resolves links for the version.
 */
export async function findLibraries(sonames: readonly string[]): Promise<{
  found: SharedLibrary[];
  missing: string[];
}> {
  const dirs = (Deno.env.get("LD_LIBRARY_PATH") ?? "").split(":").filter((d) => d !== "");
  let cache: Map<string, string> | null = null;
  const found: SharedLibrary[] = [];
  const missing: string[] = [];
  for (const soname of sonames) {
    let path: string | null = null;
    for (const d of dirs) {
      try {
        Deno.statSync(join(d, soname));
        path = join(d, soname);
        break;
      } catch { /* not in this folder */ }
    }
    if (path === null) {
      cache ??= parseLdconfig(
        (await run("ldconfig", ["-p"], 10_000)) ?? (await run("/sbin/ldconfig", ["-p"], 10_000)) ??
          "",
      );
      path = cache.get(soname) ?? null;
    }
    if (path === null) {
      missing.push(soname);
      continue;
    }
    let real = path;
    try {
      real = Deno.realPathSync(path);
    } catch { /* a dangling link: keep the name */ }
    const version = libraryVersion(real.split("/").pop()!) ?? libraryVersion(soname) ?? "?";
    found.push({ soname, path: real, version });
  }
  return { found, missing };
}

/** A GPU as `nvidia-smi` lists it. */
export interface NvidiaGpu {
  index: number;
  name: string;
  /** Total memory, MiB. */
  memoryMiB: number;
  driver: string;
}

/** Parses `nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(text: string): NvidiaGpu[] {
  return text.split("\n").map((l) => l.trim()).filter((l) => l !== "").map((l) => {
    const [index, name, memory, driver] = l.split(",").map((s) => s.trim());
    return { index: Number(index), name, memoryMiB: Number(memory), driver };
  });
}

/** The GPUs the NVIDIA driver lists, or the reason there are none (10 s deadline). */
export async function nvidiaGpus(): Promise<{ gpus: NvidiaGpu[]; reason?: string }> {
  const out = await run("nvidia-smi", [
    "--query-gpu=index,name,memory.total,driver_version",
    "--format=csv,noheader,nounits",
  ], 10_000);
  if (out === null) {
    return { gpus: [], reason: "nvidia-smi not found or failed (no NVIDIA driver)" };
  }
  return { gpus: parseNvidiaSmi(out) };
}

/** What TensorFlow's own log says about its devices. */
export interface TensorFlowDevices {
  /** One line per device TensorFlow created, e.g. `GPU:0 Tesla V100-SXM2-16GB, 14.6 GiB, compute capability 7.0`. */
  gpus: string[];
  /** Libraries TensorFlow could not open ("Could not load dynamic library"). */
  failedLibraries: string[];
  /** TensorFlow's own reason for skipping GPUs, when it gave one. */
  skipped: string | null;
}

/**
 * Reads TensorFlow's start-up log (C++ logging on stderr, TF_CPP_MIN_LOG_LEVEL=0),
 * e.g. `Created device /job:localhost/replica:0/task:0/device:GPU:0 with
 * 14626 MB memory:  -> device: 0, name: Tesla V100-SXM2-16GB, pci bus id:
 * 0000:00:04.0, compute capability: 7.0`.
 */
export function parseTensorFlowLog(text: string): TensorFlowDevices {
  const gpus: string[] = [];
  for (
    const m of text.matchAll(
      /Created device \S*device:(GPU:\d+) with (\d+) MB memory:.*?name: ([^,]+),.*?compute capability: ([\d.]+)/g,
    )
  ) {
    gpus.push(
      `${m[1]} ${m[3].trim()}, ${(Number(m[2]) / 1024).toFixed(1)} GiB, compute capability ${m[4]}`,
    );
  }
  const failedLibraries = [
    ...new Set([...text.matchAll(/Could not load dynamic library '([^']+)'/g)].map((m) => m[1])),
  ];
  const skipped = /(Skipping registering GPU devices[^\n]*)/.exec(text)?.[1]?.trim() ??
    /(failed call to cuInit: [^\n]*)/.exec(text)?.[1]?.trim() ?? null;
  return { gpus, failedLibraries, skipped };
}

/**
 * Starts a child process that loads `pkg`'s native backend and runs one op,
 * and reads TensorFlow's device log from its stderr: TensorFlow logs from
 * C++ straight to file descriptor 2, which this process cannot read of its
 * own. `null` with a reason when the child fails or misses its deadline.
 */
export async function tensorFlowDevices(
  pkg: string,
  timeoutMs = 120_000,
): Promise<{ devices: TensorFlowDevices | null; reason?: string }> {
  const probe = new URL("./tf_devices_probe.ts", import.meta.url).pathname;
  const config = new URL("../../deno.json", import.meta.url).pathname;
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        config,
        "--allow-read",
        "--allow-env",
        "--allow-ffi",
        "--allow-sys",
        probe,
        pkg,
      ],
      env: { TF_CPP_MIN_LOG_LEVEL: "0", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
    const log = new TextDecoder().decode(out.stderr);
    if (!out.success) {
      const last = log.trim().split("\n").filter((l) => l.startsWith("error:")).pop() ??
        log.trim().split("\n").pop() ?? "";
      return { devices: null, reason: `the probe process failed: ${last.slice(0, 200)}` };
    }
    return { devices: parseTensorFlowLog(log) };
  } catch (e) {
    const why = (e as Error).name === "AbortError" || (e as Error).name === "TimeoutError"
      ? `no answer within ${timeoutMs / 1000} s`
      : (e as Error).message;
    return { devices: null, reason: `the probe process failed: ${why}` };
  }
}
