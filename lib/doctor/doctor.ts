/**
 * `deno task doctor`: one screen that answers "will this machine train, and
 * on what?" (versions, the backend and why others were passed over, the
 * native stack down to CUDA, cuDNN and the GPUs, /dev/shm, memory, disk and
 * native CPU kernels), and a verdict with its reasons.
 *
 * @module
 */
import {
  describeOneDnnCandidates,
  oneDnnCandidates,
  openedOneDnn,
} from "../kernels/onednn/library.ts";
import * as tf from "@tensorflow/tfjs";
import {
  type BackendCandidate,
  type BackendInfo,
  type BackendName,
  setupBackend,
} from "../backend.ts";
import { formatBytes } from "../cli.ts";
import { countTrainableParams, resnet34 } from "../model/resnet.ts";
import { NUM_VOTES } from "../data/schema.ts";
import { SUPPLIED } from "../node_compat.ts";
import { TOOLKIT_VERSION } from "../version.ts";
import { missingBuiltins, scanPackage } from "./builtins.ts";
import {
  activeBackendUsesGpu,
  activeTensorFlowVersion,
  findLibraries,
  NATIVE_PACKAGES,
  nativeInstall,
  nvidiaGpus,
  tensorFlowDevices,
  TF_GPU_LIBRARIES,
} from "./native.ts";
import { diskSpace, memory, sharedMemoryRoom } from "./resources.ts";
import { adapterLabel } from "../webgpu.ts";
import { computeCapabilities, formatCapability, jitCache, jitReport } from "../cuda_jit.ts";
import type { SmokeCheck } from "./smoke.ts";

/**
 * Least available memory the doctor accepts. A floor, not a measured need:
 * a full ResNet-34's weights, gradients and Adam state alone take ~340 MB
 * (4 x 21 M float32), before activations and data.
 */
export const MIN_AVAILABLE_MEMORY = 2 ** 30;
/** Least free disk in the data folder: a floor for checkpoints and models (~85 MB of weights each). */
export const MIN_FREE_DISK = 2 ** 30;

/** Options of {@linkcode examine}. */
export interface DoctorOptions {
  /** Only this backend (as `--backend`); without, the first that loads. */
  backend?: BackendName;
  /** The data folder whose free disk counts. Default: the working folder. */
  data?: string;
  /** Backend candidates (tests); default lib/backend.ts' own. */
  candidates?: BackendCandidate[];
  /** Start a child process to read TensorFlow's device log (native backend only). Default true. */
  probeDevices?: boolean;
}

/** One line of the screen: a label and what was found. */
export interface Finding {
  /** What was looked at, e.g. `backend`, `/dev/shm`. */
  label: string;
  /** What was found. */
  text: string;
}

/** The whole examination. */
export interface DoctorReport {
  /** The lines of the screen, in order. */
  findings: Finding[];
  /** Why the machine cannot train; empty when it can. */
  problems: string[];
  /** What works but is worth knowing (slower path, missing GPU libraries, ...). */
  warnings: string[];
  /** The backend chosen, or null when none loaded. */
  backend: BackendInfo | null;
}

/** Trainable weights of the widest model the toolkit trains (full ResNet-34, tree-consistent votes head). */
function fullModelParams(): number {
  const model = resnet34({ inputSize: 32, head: "tree", outputs: NUM_VOTES, dropout: 0 });
  const n = countTrainableParams(model);
  model.dispose();
  return n;
}

/** Examines this machine; never throws for what it finds, only reports it. */
export async function examine(options: DoctorOptions = {}): Promise<DoctorReport> {
  const findings: Finding[] = [];
  const problems: string[] = [];
  const warnings: string[] = [];
  const add = (label: string, text: string) => findings.push({ label, text });

  add("deno", `${Deno.version.deno} (V8 ${Deno.version.v8}, ${Deno.build.os} ${Deno.build.arch})`);
  add("toolkit", `galaxy ${TOOLKIT_VERSION}, TensorFlow.js ${tf.version.tfjs}`);

  // The backend, chosen as every script chooses it.
  let info: BackendInfo | null = null;
  try {
    info = await setupBackend({ requested: options.backend, candidates: options.candidates });
  } catch (e) {
    problems.push((e as Error).message.split("\n")[0].replace(/:$/, ""));
    add("backend", "none loaded");
    for (const line of (e as Error).message.split("\n").slice(1)) {
      add("  skipped", line.trim());
    }
  }
  if (info) {
    add("backend", `${info.name} via ${info.label}`);
    if (info.adapter) add("WebGPU adapter", adapterLabel(info.adapter));
    for (const s of info.skipped) add("  skipped", `${s.label}: ${s.reason}`);
  }

  // The native stack, whichever backend won: it says what a native run would stand on.
  for (const pkg of NATIVE_PACKAGES) {
    const n = nativeInstall(pkg);
    const text = !n.installed
      ? "not installed"
      : n.bindingPresent
      ? `${n.bindingPath}${n.libtensorflow ? `, libtensorflow ${n.libtensorflow}` : ""}`
      : `no binding at ${n.bindingPath} (deno install --allow-scripts=npm:${pkg})`;
    add(`${pkg.replace("@tensorflow/", "")}`, text);
    if (n.installed) {
      try {
        const missing = missingBuiltins(await scanPackage(pkg, import.meta.url), import.meta.url);
        if (missing.length > 0) {
          const names = missing.map((u) => `${u.module}.${u.member}`).join(", ");
          const msg = `${pkg} calls Node built-ins this Deno lacks: ${names}`;
          (info?.label === pkg ? problems : warnings).push(msg);
        }
      } catch { /* no dist/ to read: nothing it could call */ }
    }
  }
  add(
    "Node built-ins",
    SUPPLIED.length ? `supplied for tfjs-node: ${SUPPLIED.join(", ")}` : "none needed supplying",
  );
  const native = info?.name === "tensorflow";
  const tfVersion = native ? activeTensorFlowVersion() : null;
  add(
    "TensorFlow",
    native
      ? `${tfVersion ?? "unknown version"}, ops on ${activeBackendUsesGpu() ? "GPU" : "CPU"}`
      : "native backend not in use",
  );

  const libs = await findLibraries(TF_GPU_LIBRARIES);
  add(
    "CUDA/cuDNN",
    libs.found.length
      ? libs.found.map((l) => `${l.soname.replace(/\.so.*$/, "")} ${l.version}`).join(", ") +
        (libs.missing.length ? `; missing ${libs.missing.join(", ")}` : "")
      : "none found",
  );
  const smi = await nvidiaGpus();
  add(
    "GPUs (nvidia-smi)",
    smi.gpus.length
      ? smi.gpus.map((g) => `${g.index}: ${g.name} ${(g.memoryMiB / 1024).toFixed(0)} GiB`).join(
        "; ",
      ) + `, driver ${smi.gpus[0].driver}`
      : `none (${smi.reason ?? "no GPU listed"})`,
  );
  // Compute capability, and whether a start compiles PTX into a cache that keeps it.
  const caps = await computeCapabilities();
  add(
    "compute capability",
    caps.gpus.length
      ? caps.gpus.map((g) => `${g.index}: ${formatCapability(g.computeCapability)}`).join("; ")
      : `unknown (${caps.reason ?? "no GPU listed"})`,
  );
  const jit = jitReport(caps.gpus, jitCache());
  if (jit.lines.length > 0) {
    add("PTX JIT", jit.lines[0]);
    add("CUDA JIT cache", jit.lines[1]);
    warnings.push(...jit.warnings);
  }
  const gpuBuild = info?.label === "@tensorflow/tfjs-node-gpu";
  if (native && (options.probeDevices ?? true)) {
    const probe = await tensorFlowDevices(info!.label);
    if (probe.devices === null) {
      add("GPUs (TensorFlow)", `unknown: ${probe.reason}`);
    } else {
      const d = probe.devices;
      add(
        "GPUs (TensorFlow)",
        d.gpus.length ? d.gpus.join("; ") : `none${d.skipped ? ` (${d.skipped})` : ""}`,
      );
      if (d.failedLibraries.length) {
        add("  not loaded", d.failedLibraries.join(", "));
      }
      if (gpuBuild && smi.gpus.length > 0 && d.gpus.length === 0) {
        problems.push(
          `nvidia-smi lists ${smi.gpus.length} GPU(s) but TensorFlow sees none` +
            (d.failedLibraries.length
              ? `: it could not load ${d.failedLibraries.join(", ")}`
              : libs.missing.length
              ? `: missing ${libs.missing.join(", ")}`
              : ""),
        );
      }
    }
  } else {
    add("GPUs (TensorFlow)", native ? "not probed" : "native backend not in use");
  }
  if (smi.gpus.length > 0 && !gpuBuild) {
    warnings.push(
      `this machine has ${smi.gpus.length} GPU(s) but trains on ${
        info ? `${info.name} via ${info.label}` : "no backend"
      }`,
    );
  }

  // The mirrored all-reduce: one replica per GPU, and at least the 2 of `--replicas 2`.
  const replicas = Math.max(2, smi.gpus.length);
  const shm = sharedMemoryRoom(fullModelParams(), replicas);
  const need = `${replicas} replicas of ResNet-34 need ${formatBytes(shm.neededBytes)}`;
  if (!shm.available) {
    add("/dev/shm", `unavailable; the all-reduce goes over loopback TCP instead (${need})`);
    warnings.push("/dev/shm cannot be mapped: mirrored training uses the slower TCP ring");
  } else if (shm.fits) {
    add("/dev/shm", `can carry the mirrored all-reduce (${need})`);
  } else {
    add("/dev/shm", `too small: ${need} (docker run --shm-size=1g)`);
    const msg = `/dev/shm cannot hold the mirrored all-reduce (${need}); ` +
      "give it more room, e.g. docker run --shm-size=1g";
    (smi.gpus.length >= 2 ? problems : warnings).push(msg);
  }

  const mem = memory();
  add("memory", `${formatBytes(mem.availableBytes)} available of ${formatBytes(mem.totalBytes)}`);
  if (mem.availableBytes < MIN_AVAILABLE_MEMORY) {
    problems.push(
      `only ${formatBytes(mem.availableBytes)} of memory available (at least ` +
        `${formatBytes(MIN_AVAILABLE_MEMORY)} needed)`,
    );
  }
  try {
    const disk = diskSpace(options.data ?? ".");
    add("disk", `${formatBytes(disk.freeBytes)} free in ${disk.path}`);
    if (disk.freeBytes < MIN_FREE_DISK) {
      problems.push(
        `only ${formatBytes(disk.freeBytes)} free in ${disk.path} (at least ` +
          `${formatBytes(MIN_FREE_DISK)} needed)`,
      );
    }
  } catch (e) {
    add("disk", (e as Error).message);
    problems.push((e as Error).message);
  }
  add("native CPU kernels", info?.kernels ?? "none");
  add(
    "oneDNN libraries",
    describeOneDnnCandidates(oneDnnCandidates(), openedOneDnn()?.path ?? null),
  );
  return { findings, problems, warnings, backend: info };
}

/**
 * Why the machine cannot train: the report's problems, then each failed
 * smoke check by name. Empty when it can.
 */
export function reasons(report: DoctorReport, smoke: readonly SmokeCheck[] = []): string[] {
  return [
    ...report.problems,
    ...smoke.filter((c) => c.status === "FAIL").map((c) => `smoke check '${c.name}' failed`),
  ];
}

/** The verdict line: what the machine trains on, or why it cannot. */
export function verdict(report: DoctorReport, smoke: readonly SmokeCheck[] = []): string {
  const why = reasons(report, smoke);
  if (why.length > 0) return `cannot train: ${why.join("; ")}`;
  const b = report.backend!;
  return `can train on ${b.name} via ${b.label}` + (smoke.length ? " (smoke checks passed)" : "");
}

/** The findings as aligned label/value lines, then any warnings. */
export function renderFindings(report: DoctorReport): string {
  const width = Math.max(...report.findings.map((f) => f.label.length)) + 2;
  const lines = report.findings.map((f) => `${f.label.padEnd(width)}${f.text}`);
  for (const w of report.warnings) lines.push(`warning: ${w}`);
  return lines.join("\n");
}
