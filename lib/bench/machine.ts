/**
 * The facts every benchmark result is recorded with: the machine (CPU
 * model, cores, memory, OS) and the versions of the toolkit's runtime and
 * libraries and of the peers' (Python, torch, Pillow), as
 * `bench/versions.py` reports them.
 *
 * @module
 */
import { createRequire } from "node:module";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import sharp from "sharp";

/** The machine a benchmark ran on. */
export interface MachineFacts {
  cpuModel: string;
  /** Logical CPUs this process may use. */
  cores: number;
  memoryMiB: number;
  os: string;
  kernel: string;
}

/** Versions of everything measured; null for what is not installed. */
export interface Versions {
  deno: string;
  v8: string;
  tfjs: string | null;
  tfjsBackendWasm: string | null;
  sharp: string | null;
  libvips: string | null;
  python: string | null;
  pythonExecutable: string | null;
  numpy: string | null;
  torch: string | null;
  torchvision: string | null;
  Pillow: string | null;
}

/** The Python interpreter the peers run with: Debian's, which has python3-torch and python3-pil. */
export const PEER_PYTHON = "/usr/bin/python3";

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/** `PRETTY_NAME` of the text of /etc/os-release, or null. */
export function parseOsRelease(text: string): string | null {
  return /^PRETTY_NAME="?([^"\n]+?)"?$/m.exec(text)?.[1] ?? null;
}

/**
 * Reads the machine facts through node:os and /etc/os-release (Deno lets
 * only a process holding every permission read /proc directly).
 */
export function machineFacts(): MachineFacts {
  const release = parseOsRelease(readText("/etc/os-release"));
  return {
    cpuModel: cpus()[0]?.model?.trim() || "unknown",
    cores: navigator.hardwareConcurrency,
    memoryMiB: Math.round(totalmem() / 2 ** 20),
    os: release ? `${release} (${Deno.build.os})` : Deno.build.os,
    kernel: Deno.osRelease(),
  };
}

/** Version of an npm package as installed for this project, or null. */
export function npmVersion(pkg: string): string | null {
  try {
    const require = createRequire(import.meta.url);
    const manifest = require.resolve(`${pkg}/package.json`);
    const json = JSON.parse(Deno.readTextFileSync(manifest)) as { version?: string };
    return json.version ?? null;
  } catch {
    return null;
  }
}

/** What bench/versions.py prints. */
export interface PythonVersions {
  python: string;
  executable: string;
  numpy: string | null;
  PIL: string | null;
  torch: string | null;
  torchvision: string | null;
  torch_default_threads: number | null;
}

/**
 * Runs bench/versions.py with the peers' Python; null when that Python is
 * missing, fails, or has not answered within `seconds` (120: importing torch
 * the first time on a slow disk), which is said on stderr.
 */
export async function pythonVersions(
  python = PEER_PYTHON,
  seconds = 120,
): Promise<PythonVersions | null> {
  const script = fileURLToPath(new URL("../../bench/versions.py", import.meta.url));
  const deadline = AbortSignal.timeout(seconds * 1000);
  try {
    const out = await new Deno.Command(python, {
      args: [script],
      stdout: "piped",
      stderr: "null",
      stdin: "null",
      signal: deadline,
    }).output();
    if (deadline.aborted) {
      console.error(`${script} did not answer within ${seconds} s: the peers count as missing`);
    }
    if (!out.success) return null;
    const last = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
    return JSON.parse(last) as PythonVersions;
  } catch {
    return null;
  }
}

/** All versions, the Python side from {@linkcode pythonVersions}. */
export function collectVersions(py: PythonVersions | null): Versions {
  return {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    tfjs: npmVersion("@tensorflow/tfjs"),
    tfjsBackendWasm: npmVersion("@tensorflow/tfjs-backend-wasm"),
    sharp: sharp.versions.sharp ?? npmVersion("sharp"),
    libvips: sharp.versions.vips ?? null,
    python: py?.python ?? null,
    pythonExecutable: py?.executable ?? null,
    numpy: py?.numpy ?? null,
    torch: py?.torch ?? null,
    torchvision: py?.torchvision ?? null,
    Pillow: py?.PIL ?? null,
  };
}
