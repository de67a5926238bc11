/**
 * The benchmarks of `deno task bench`, in table order. Each names what it
 * measures, prepares its inputs, and says which commands to run with how
 * many repetitions, full or `--quick`.
 *
 * To add one: write its workload under bench/workloads/ (ending with a
 * JSON result line), its peer under bench/ if there is a fair one, and an
 * entry here.
 *
 * @module
 */
import {
  exportSplitNpy,
  gz1Sample,
  labelsCsvSubset,
  preprocessedDataset,
  preprocessInput,
  realKaggleSample,
  sharedDataDir,
  syntheticInput,
  warmPageCache,
} from "./fixtures.ts";
import { browserBenchInputs, browserInferDeadline, buildSite } from "./browser_fixtures.ts";
import { nativeConfigs, torchConfigs } from "./native_configs.ts";
import { median } from "./stats.ts";
import { findChromium } from "../web/headless.ts";
import {
  type Benchmark,
  type BenchRow,
  type CompareOptions,
  compareRow,
  peakRssMiB,
  peerCommand,
  type Plan,
  resultValues,
  runValues,
  type SuiteContext,
  summaryOrNull,
  type Variant,
  type VariantRuns,
  workloadCommand,
} from "./suite.ts";
import { formatFigure } from "./table.ts";
import { DEFAULT_AUGMENT } from "../train/augment.ts";

/** ResNet-34's trainable scalars with 5 outputs: the gradient the all-reduce moves. */
export const RESNET34_GRADIENT_FLOATS = 21_287_237;

/** The all-reduce throughput the mirrored trainer aims for, 10^9 bytes per second. */
export const ALLREDUCE_TARGET_GB_PER_S = 1;

const ips = (vr: VariantRuns | undefined) => resultValues(vr, "images_per_sec");
const TORCH: Variant["requires"] = ["torch", "torchvision", "numpy"];
const PILLOW: Variant["requires"] = ["PIL", "numpy"];

/** The first successful run's value of a string field (e.g. the backend a workload used). */
function firstField(vr: VariantRuns | undefined, field: string): string | null {
  const r = vr?.runs.find((x) => x.ok && x.result?.[field] !== undefined);
  const v = r?.result?.[field];
  return v === undefined || v === null ? null : String(v);
}

/** A field of the first successful run's `options` object (the torch reference echoes its flags). */
function firstOptions(vr: VariantRuns | undefined, field: string): string | null {
  const r = vr?.runs.find((x) => x.ok && typeof x.result?.options === "object");
  const v = (r?.result?.options as Record<string, unknown> | undefined)?.[field];
  return v === undefined || v === null ? null : String(v);
}

/** Median of a variant's values, formatted, or "?" when it has none. */
function medianText(values: number[]): string {
  return values.length ? formatFigure(median(values)) : "?";
}

/** What a row helper takes: the options of compareRow but those it fixes. */
type RowOptions = Omit<CompareOptions, "unit" | "higherIsBetter" | "values">;

/** A row of images per second (more is better). */
function imagesPerSecondRow(o: RowOptions): BenchRow {
  return compareRow({ ...o, unit: "images/s", higherIsBetter: true, values: ips });
}

/** A row of peak resident memory, MiB (less is better). */
function peakRssRow(o: RowOptions): BenchRow {
  return compareRow({ ...o, unit: "MiB", higherIsBetter: false, values: peakRssMiB });
}

/**
 * Command-line flags from `{ size: 64, batch }`: `["--size", "64", "--batch",
 * "16"]`, in the object's order; `true` gives the bare flag.
 */
function flagArgs(flags: Record<string, string | number | true>): string[] {
  return Object.entries(flags).flatMap(([k, v]) => v === true ? [`--${k}`] : [`--${k}`, String(v)]);
}

/**
 * A workload's deadline, seconds: `startup` (process start, modules, model
 * or browser) plus `perItem` for each of `items` (images, steps). The rates
 * are several times the slowest seen on a loaded 2-core machine, so a run
 * meets its deadline only when it hangs, and then fails in minutes instead
 * of the half hour a fixed limit allowed.
 */
export function deadline(startup: number, items: number, perItem: number): number {
  return Math.ceil(startup + items * perItem);
}

/** A toolkit variant: the workload bench/workloads/`workload`.ts with `args`, killed after `timeoutSeconds`. */
function toolkitVariant(
  key: string,
  label: string,
  workload: string,
  args: string[],
  timeoutSeconds: number,
): Variant {
  return { key, label, role: "toolkit", argv: workloadCommand(workload, args), timeoutSeconds };
}

/** The torch peer (bench/peer_torch_resnet.py) in `mode` with `args`, killed after `timeoutSeconds`. */
function torchVariant(
  mode: "train" | "infer" | "predict",
  args: string[],
  timeoutSeconds: number,
  key = "torch",
  label = "torch",
): Variant {
  return {
    key,
    label,
    role: "peer",
    argv: peerCommand("peer_torch_resnet", [mode, ...args]),
    requires: TORCH,
    timeoutSeconds,
  };
}

function backendText(vr: VariantRuns | undefined): string {
  const name = firstField(vr, "backend") ?? "?";
  const kernels = firstField(vr, "kernels");
  if (name === "wasm" && kernels !== null && !kernels.startsWith("off")) return `wasm + ${kernels}`;
  const threads = firstField(vr, "wasm_multithread");
  return name === "wasm" && threads === "false" ? "wasm, one thread per process" : name;
}

function torchThreadsText(vr: VariantRuns | undefined): string {
  const t = firstField(vr, "threads");
  const capped = vr?.variant.env?.ATEN_CPU_CAPABILITY ? ", capped at AVX2" : "";
  return t ? `torch ${t} threads${capped}` : `torch${capped}`;
}

const preprocess: Benchmark = {
  id: "preprocess",
  description: "deno task preprocess (lib/preprocess.ts) images/s and peak RSS vs the Pillow " +
    "plain one-process script and a careful Pillow pipeline (draft mode, all cores)",
  async prepare(ctx: SuiteContext): Promise<Plan> {
    const input = await preprocessInput(ctx.quick ? 500 : Infinity, ctx.log);
    await warmPageCache(input.dir);
    const args = ["--in", input.dir];
    const seconds = deadline(120, input.count, 0.05);
    const variants: Variant[] = [
      toolkitVariant("toolkit", "toolkit preprocess", "preprocess", [
        ...args,
        "--scheme",
        input.scheme,
      ], seconds),
      {
        key: "plain",
        label: "Pillow plain script (1 process, no draft)",
        role: "peer",
        argv: peerCommand("peer_pillow_preprocess", [...args, "--plain"]),
        requires: PILLOW,
        timeoutSeconds: seconds,
      },
      {
        key: "careful",
        label: `Pillow careful (draft mode, ${navigator.hardwareConcurrency} processes)`,
        role: "peer",
        argv: peerCommand("peer_pillow_preprocess", args),
        requires: PILLOW,
        timeoutSeconds: seconds,
      },
    ];
    return {
      variants,
      warmupReps: ctx.quick ? 0 : 1,
      reps: ctx.quick ? 1 : 5,
      settings: { input: input.dir, images: input.count, real: input.real, size: 64, crop: 0.5 },
      rows(r): BenchRow[] {
        const t = r.get("toolkit");
        const what = (peer: string) => `preprocess ${input.description} to 64 px, vs ${peer}`;
        return [
          imagesPerSecondRow({
            id: "preprocess",
            what: what(r.get("plain")!.variant.label),
            toolkit: t,
            peer: r.get("plain"),
          }),
          imagesPerSecondRow({
            id: "preprocess",
            what: what(r.get("careful")!.variant.label),
            toolkit: t,
            peer: r.get("careful"),
          }),
          peakRssRow({
            id: "preprocess",
            what: `peak RSS of the same, vs ${r.get("plain")!.variant.label}`,
            toolkit: t,
            peer: r.get("plain"),
            note: "Peak RSS of a process tree is the sum of its processes' peaks (the toolkit's " +
              "main process and its decoder processes, one per core; the careful pipeline's " +
              "parent and workers).",
          }),
          peakRssRow({
            id: "preprocess",
            what: `peak RSS of the same, vs ${r.get("careful")!.variant.label}`,
            toolkit: t,
            peer: r.get("careful"),
          }),
        ];
      },
    };
  },
};

const preprocessRss: Benchmark = {
  id: "preprocess-rss",
  description: "peak RSS of deno task preprocess at two generated-data sizes (it should stay " +
    "flat) vs the Pillow plain script",
  async prepare(ctx: SuiteContext): Promise<Plan> {
    const sizes = ctx.quick ? [200, 800] : [1000, 4000];
    // Largest first: the smaller folder then links to its images instead of rendering them.
    const big = await syntheticInput(sizes[1], ctx.log);
    const small = await syntheticInput(sizes[0], ctx.log);
    const variants: Variant[] = [];
    for (const input of [small, big]) {
      await warmPageCache(input.dir);
      variants.push(
        toolkitVariant(
          `toolkit-${input.count}`,
          `toolkit preprocess, ${input.count} images`,
          "preprocess",
          ["--in", input.dir, "--scheme", "votes"],
          deadline(120, input.count, 0.05),
        ),
        {
          key: `plain-${input.count}`,
          label: `Pillow plain script, ${input.count} images`,
          role: "peer",
          argv: peerCommand("peer_pillow_preprocess", ["--in", input.dir, "--plain"]),
          requires: PILLOW,
          timeoutSeconds: deadline(120, input.count, 0.05),
        },
      );
    }
    return {
      variants,
      warmupReps: 0,
      reps: ctx.quick ? 1 : 3,
      settings: { sizes, inputs: [small.dir, big.dir] },
      rows(r): BenchRow[] {
        const growth = (key: string) => {
          const a = peakRssMiB(r.get(`${key}-${sizes[0]}`));
          const b = peakRssMiB(r.get(`${key}-${sizes[1]}`));
          return a.length && b.length ? (median(b) / median(a)).toFixed(2) : "?";
        };
        return sizes.map((n, i) =>
          peakRssRow({
            id: "preprocess-rss",
            what: `peak RSS, preprocess of ${n.toLocaleString("en")} generated 424 px JPEGs, ` +
              "vs Pillow plain script",
            toolkit: r.get(`toolkit-${n}`),
            peer: r.get(`plain-${n}`),
            note: i === 1
              ? `Peak RSS at ${sizes[1].toLocaleString("en")} / at ${
                sizes[0].toLocaleString("en")
              } images: toolkit ${growth("toolkit")}, Pillow plain ${growth("plain")} ` +
                "(the plain script keeps every image in a list until it saves them)."
              : undefined,
          })
        );
      },
    };
  },
};

const reader: Benchmark = {
  id: "reader",
  description: "training input pipeline: dataset reader (openDataset().batches, shuffled) + " +
    "augmentBatch, images/s, vs the same in a NumPy loop",
  async prepare(ctx: SuiteContext): Promise<Plan> {
    const input = await preprocessInput(ctx.quick ? 500 : Infinity, ctx.log);
    const dataset = await preprocessedDataset(input, ctx.log);
    const npy = await exportSplitNpy(dataset, "train");
    await warmPageCache(dataset);
    const epochs = ctx.quick ? 1 : 5;
    const warmupBatches = ctx.quick ? 2 : 5;
    const common = flagArgs({ batch: 32, epochs, "warmup-batches": warmupBatches });
    const seconds = deadline(120, input.count * epochs + 32 * warmupBatches, 0.02);
    return {
      variants: [
        toolkitVariant("toolkit", "toolkit reader + augment", "reader", [
          "--data",
          dataset,
          ...common,
        ], seconds),
        {
          key: "numpy",
          label: "NumPy loop (memory-mapped .npy, per-image augmentation)",
          role: "peer",
          argv: peerCommand("peer_numpy_reader", ["--npy", npy, ...common]),
          requires: ["numpy"],
          timeoutSeconds: seconds,
        },
      ],
      warmupReps: ctx.quick ? 0 : 1,
      reps: ctx.quick ? 1 : 5,
      settings: { dataset, npy, epochs, batch: 32, source: input.dir },
      rows: (r) => [imagesPerSecondRow({
        id: "reader",
        what: `read + augment batches of 32 (64 px, ${input.real ? "real" : "generated"} images, ` +
          "shuffled, dihedral + shift + brightness/contrast), vs NumPy loop",
        toolkit: r.get("toolkit"),
        peer: r.get("numpy"),
        note: "Peer: no DataLoader; the same augmentation written with NumPy per image " +
          "(np.rot90, mirror, np.pad edge + slice, contrast/brightness, clip) on a memory-mapped " +
          ".npy of the same images.",
      })],
    };
  },
};

const train: Benchmark = {
  id: "train",
  description: "ResNet-34 training images/s at 64 px, batch 16, Adam, focal loss, one process, " +
    "with the native kernels (oneDNN 2.x and 3.x where found, native and capped at AVX2) and " +
    "on plain wasm, vs torchvision resnet34 under the same cap",
  prepare(ctx: SuiteContext): Promise<Plan> {
    const size = 64;
    const batch = ctx.quick ? 8 : 16;
    const warmup = ctx.quick ? 1 : 2;
    const steps = ctx.quick ? 1 : 8;
    const common = flagArgs({ size, batch, warmup, steps });
    const seconds = deadline(180, (warmup + steps) * batch, 2);
    const { configs, absent } = nativeConfigs();
    for (const why of absent) ctx.log(`[train] not measured: ${why}`);
    return Promise.resolve({
      variants: [
        ...configs.map((c) => ({
          ...toolkitVariant(
            `toolkit${c.key}`,
            `toolkit, ${c.label}`,
            "train_step",
            common,
            seconds,
          ),
          env: c.toolkitEnv,
        })),
        toolkitVariant("toolkit-plain", "toolkit, plain wasm", "train_step", [
          ...common,
          "--no-native-kernels",
        ], seconds),
        ...torchConfigs(configs).map((c) => ({
          ...torchVariant("train", common, seconds, `torch${c.torchKey}`, `torch, ${c.label}`),
          env: c.torchEnv,
        })),
      ],
      warmupReps: 0,
      reps: ctx.quick ? 1 : 3,
      settings: { size, batch, warmup, steps, configs: configs.map((c) => c.label), absent },
      rows(r): BenchRow[] {
        const what = (key: string, torchKey: string) =>
          `train ResNet-34, ${size} px, batch ${batch}, Adam, 1 process (${
            backendText(r.get(key))
          }), vs ${torchThreadsText(r.get(torchKey))}`;
        return [
          ...configs.map((c, i) =>
            imagesPerSecondRow({
              id: "train",
              what: what(`toolkit${c.key}`, `torch${c.torchKey}`),
              toolkit: r.get(`toolkit${c.key}`),
              peer: r.get(`torch${c.torchKey}`),
              note: i > 0 ? undefined : "Native kernels: convolutions and both their gradients, " +
                "batch norm (one call forward, one backward), the ReLU gradient and pooling on " +
                "oneDNN through Deno FFI, on the wasm heap; Adam updates each variable in one " +
                "WebAssembly SIMD pass. Rows capped at AVX2 set ONEDNN_MAX_CPU_ISA / " +
                "DNNL_MAX_CPU_ISA for both sides and ATEN_CPU_CAPABILITY=avx2 for torch.",
            })
          ),
          imagesPerSecondRow({
            id: "train",
            what: what("toolkit-plain", "torch"),
            toolkit: r.get("toolkit-plain"),
            peer: r.get("torch"),
          }),
        ];
      },
    });
  },
};

/**
 * Wall clock of a whole training run, 8 epochs on gz1-sample at 32 px,
 * batch 32, as `deno task train` against bench/torch_train_reference.py.
 */
const trainRun: Benchmark = {
  id: "train-run",
  description: "wall clock of a whole training run (8 epochs on gz1-sample at 32 px, batch 32, " +
    "Adam, focal loss, validation each epoch) vs bench/torch_train_reference.py on the same shards",
  async prepare(ctx: SuiteContext): Promise<Plan> {
    // The real sample where present; else another labels.csv set (the torch reference reads classes).
    const source = gz1Sample() ?? realKaggleSample();
    if (source === null) {
      ctx.log(`no gz1-sample under ${sharedDataDir()}: train-run uses generated images`);
    }
    const input = source === null
      ? await syntheticInput(ctx.quick ? 300 : 2000, ctx.log)
      : ctx.quick
      ? await labelsCsvSubset(source, 400)
      : source;
    const dataset = await preprocessedDataset(input, ctx.log, 32);
    await warmPageCache(dataset);
    const epochs = ctx.quick ? 1 : 8;
    const common = flagArgs({ data: dataset, epochs, batch: 32 });
    const { configs, absent } = nativeConfigs();
    for (const why of absent) ctx.log(`[train-run] not measured: ${why}`);
    return {
      variants: [
        ...configs.map((c) => ({
          ...toolkitVariant(
            `toolkit${c.key}`,
            `toolkit train(), ${c.label}`,
            "train_run",
            common,
            3600,
          ),
          env: c.toolkitEnv,
        })),
        ...torchConfigs(configs).map((c): Variant => ({
          key: `torch${c.torchKey}`,
          label: `bench/torch_train_reference.py, ${c.label}`,
          role: "peer",
          // The toolkit's default augmentation: no shifts (the reference's own default is 3 px).
          argv: peerCommand("torch_train_reference", [
            ...common,
            ...["--loss", "focal", "--shift", String(DEFAULT_AUGMENT.maxShift)],
          ]),
          requires: TORCH,
          timeoutSeconds: 3600,
          env: c.torchEnv,
        })),
      ],
      warmupReps: 0,
      reps: ctx.quick ? 1 : 2,
      settings: {
        dataset,
        epochs,
        batch: 32,
        size: 32,
        source: input.dir,
        configs: configs.map((c) => c.label),
        absent,
      },
      rows: (r) =>
        configs.map((c, i) =>
          compareRow({
            id: "train-run",
            what: `${epochs} epoch${
              epochs === 1 ? "" : "s"
            } on ${input.description} at 32 px, batch 32, focal loss, wall clock (${
              backendText(r.get(`toolkit${c.key}`))
            }), vs bench/torch_train_reference.py (torch, ${
              firstOptions(r.get(`torch${c.torchKey}`), "threads") ?? "?"
            } threads${c.torchKey ? ", capped at AVX2" : ""})`,
            unit: "s",
            higherIsBetter: false,
            toolkit: r.get(`toolkit${c.key}`),
            peer: r.get(`torch${c.torchKey}`),
            values: (vr) => resultValues(vr, "seconds"),
            note: i > 0 ? undefined : "Both read the same shards and split, train " +
              "torchvision-shaped ResNet-34 (ImageNet stem) with Adam, warm-up then cosine " +
              "decay, the same augmentation family, and validate each epoch; seconds from the " +
              "start of training to its end (the toolkit also checkpoints each epoch and " +
              "evaluates on the test split).",
          })
        ),
    };
  },
};

const trainCpu: Benchmark = {
  id: "train-cpu",
  description: "reference: ResNet-34 training on the pure-JS cpu backend at 32 px, batch 4, " +
    "vs torch at the same size",
  prepare(ctx: SuiteContext): Promise<Plan> {
    // Batch 2 at least: torch's batch norm refuses one value per channel in training.
    const batch = ctx.quick ? 2 : 4;
    const steps = ctx.quick ? 1 : 2;
    const common = flagArgs({ size: 32, batch, steps });
    const cpuArgs = ["--backend", "cpu", ...common, "--warmup", "0"];
    return Promise.resolve({
      variants: [
        {
          // Each step takes minutes: JIT warm-up is a negligible share of it.
          ...toolkitVariant("toolkit", "toolkit, cpu backend", "train_step", cpuArgs, 3600),
        },
        torchVariant("train", [...common, "--warmup", "1"], deadline(180, (steps + 1) * batch, 5)),
      ],
      warmupReps: 0,
      reps: ctx.quick ? 1 : 3,
      settings: { size: 32, batch, steps, backend: "cpu" },
      rows: (r) => [imagesPerSecondRow({
        id: "train-cpu",
        what: `train ResNet-34, 32 px, batch ${batch}, pure-JS cpu backend (reference), vs ` +
          torchThreadsText(r.get("torch")),
        toolkit: r.get("toolkit"),
        peer: r.get("torch"),
        note: "The cpu backend is the fallback where neither native TensorFlow nor WASM loads; " +
          "its steps are timed without a warm-up step, torch's after one.",
      })],
    });
  },
};

/**
 * The adapter a webgpu run named, e.g. "llvmpipe (...), vendor 0x10005,
 * software renderer"; a software renderer's figures are a CPU's, said so.
 */
export function adapterText(vr: VariantRuns | undefined): string {
  const adapter = firstField(vr, "adapter");
  if (adapter === null) return "webgpu, adapter unknown";
  return firstField(vr, "adapter_software") === "true"
    ? `webgpu on ${adapter}, i.e. on the CPU: not a GPU figure`
    : `webgpu on ${adapter}`;
}

/**
 * ResNet-34 on the webgpu backend (Deno's navigator.gpu) against the CPU
 * backend the toolkit otherwise picks (wasm), training steps and inference.
 */
const webgpu: Benchmark = {
  id: "webgpu",
  description: "ResNet-34 train-step and inference images/s on the webgpu backend (the adapter " +
    "named; a software renderer such as lavapipe is labelled so), vs the toolkit on wasm",
  prepare(ctx: SuiteContext): Promise<Plan> {
    // A software adapter (lavapipe) takes minutes per 64 px step: --quick is a smoke of the row.
    const size = ctx.quick ? 32 : 64;
    const batch = ctx.quick ? 2 : 16;
    const train = flagArgs({ size, batch, warmup: 1, steps: ctx.quick ? 1 : 5 });
    const infer = flagArgs({ size, batch, warmup: 1, batches: ctx.quick ? 1 : 5 });
    const on = (backend: string, args: string[]) => ["--backend", backend, ...args];
    // A software adapter (lavapipe) takes seconds per image; wasm a fraction of one.
    const slow = deadline(300, 2 * batch * 6, 60);
    const fast = deadline(180, 2 * batch * 6, 2);
    return Promise.resolve({
      variants: [
        toolkitVariant(
          "train-webgpu",
          "toolkit on webgpu",
          "train_step",
          on("webgpu", train),
          slow,
        ),
        {
          ...toolkitVariant("train-wasm", "toolkit on wasm", "train_step", on("wasm", train), fast),
          role: "peer",
        },
        toolkitVariant("infer-webgpu", "toolkit on webgpu", "infer", [
          "--mode",
          "model",
          ...on("webgpu", infer),
        ], slow),
        {
          ...toolkitVariant("infer-wasm", "toolkit on wasm", "infer", [
            "--mode",
            "model",
            ...on("wasm", infer),
          ], fast),
          role: "peer",
        },
      ],
      warmupReps: 0,
      reps: ctx.quick ? 1 : 3,
      settings: { size, batch },
      rows: (r) => [
        imagesPerSecondRow({
          id: "webgpu",
          what: `train ResNet-34, ${size} px, batch ${batch}, Adam (${
            adapterText(r.get("train-webgpu"))
          }), vs the toolkit on ${backendText(r.get("train-wasm"))}`,
          toolkit: r.get("train-webgpu"),
          peer: r.get("train-wasm"),
          note: "Both are this toolkit: the peer column is its CPU backend on the same machine.",
        }),
        imagesPerSecondRow({
          id: "webgpu",
          what: `ResNet-34 inference, ${size} px, batch ${batch} (${
            adapterText(r.get("infer-webgpu"))
          }), vs the toolkit on ${backendText(r.get("infer-wasm"))}`,
          toolkit: r.get("infer-webgpu"),
          peer: r.get("infer-wasm"),
        }),
      ],
    });
  },
};

const infer: Benchmark = {
  id: "infer",
  description: "ResNet-34 inference images/s at 64 px, batch 32 (model.predict) vs torch " +
    "eval + no_grad",
  prepare(ctx: SuiteContext): Promise<Plan> {
    const batch = ctx.quick ? 16 : 32;
    const batches = ctx.quick ? 1 : 5;
    const common = flagArgs({ size: 64, batch, warmup: 1, batches });
    const seconds = deadline(180, (1 + batches) * batch, 1);
    const { configs, absent } = nativeConfigs();
    for (const why of absent) ctx.log(`[infer] not measured: ${why}`);
    return Promise.resolve({
      variants: [
        ...configs.map((c) => ({
          ...toolkitVariant(`toolkit${c.key}`, `toolkit model.predict, ${c.label}`, "infer", [
            "--mode",
            "model",
            ...common,
          ], seconds),
          env: c.toolkitEnv,
        })),
        ...torchConfigs(configs).map((c) => ({
          ...torchVariant("infer", common, seconds, `torch${c.torchKey}`, `torch, ${c.label}`),
          env: c.torchEnv,
        })),
      ],
      warmupReps: 0,
      reps: ctx.quick ? 1 : 3,
      settings: { size: 64, batch, batches, configs: configs.map((c) => c.label), absent },
      rows: (r) =>
        configs.map((c) =>
          imagesPerSecondRow({
            id: "infer",
            what: `ResNet-34 inference, 64 px, batch ${batch} (${
              backendText(r.get(`toolkit${c.key}`))
            }), vs ${torchThreadsText(r.get(`torch${c.torchKey}`))}`,
            toolkit: r.get(`toolkit${c.key}`),
            peer: r.get(`torch${c.torchKey}`),
          })
        ),
    });
  },
};

const predict: Benchmark = {
  id: "predict",
  description: "predictBatch (lib/inference.ts) from uint8 pixels with and without 8-view " +
    "test-time augmentation, images/s, vs the same in torch",
  prepare(ctx: SuiteContext): Promise<Plan> {
    const plainBatch = ctx.quick ? 8 : 32;
    const ttaBatch = ctx.quick ? 4 : 32;
    const plainBatches = ctx.quick ? 1 : 3, ttaBatches = ctx.quick ? 1 : 2;
    const plain = flagArgs({ size: 64, batch: plainBatch, warmup: 1, batches: plainBatches });
    const tta = flagArgs({ size: 64, batch: ttaBatch, warmup: 1, batches: ttaBatches, tta: true });
    // One image with TTA is 8 model views.
    const plainSeconds = deadline(180, (1 + plainBatches) * plainBatch, 1);
    const ttaSeconds = deadline(180, (1 + ttaBatches) * ttaBatch, 8);
    return Promise.resolve({
      variants: [
        toolkitVariant("toolkit", "toolkit predictBatch", "infer", [
          "--mode",
          "predict",
          ...plain,
        ], plainSeconds),
        torchVariant("predict", plain, plainSeconds),
        toolkitVariant("toolkit-tta", "toolkit predictBatch with TTA", "infer", [
          "--mode",
          "predict",
          ...tta,
        ], ttaSeconds),
        torchVariant("predict", tta, ttaSeconds, "torch-tta", "torch with TTA"),
      ],
      warmupReps: 0,
      reps: ctx.quick ? 1 : 3,
      settings: { size: 64, plainBatch, ttaBatch },
      rows(r): BenchRow[] {
        const backend = backendText(r.get("toolkit"));
        const cost = (a: string, b: string) => {
          const x = ips(r.get(a)), y = ips(r.get(b));
          return x.length && y.length ? (median(x) / median(y)).toFixed(1) : "?";
        };
        return [
          imagesPerSecondRow({
            id: "predict",
            what: `predict, no TTA, 64 px, batch ${plainBatch} (${backend}), vs ${
              torchThreadsText(r.get("torch"))
            }`,
            toolkit: r.get("toolkit"),
            peer: r.get("torch"),
          }),
          imagesPerSecondRow({
            id: "predict",
            what: `predict with TTA (8 rotations/flips), batch ${ttaBatch} (${backend}), vs ${
              torchThreadsText(r.get("torch-tta"))
            }`,
            toolkit: r.get("toolkit-tta"),
            peer: r.get("torch-tta"),
            note: `TTA costs a factor ${cost("toolkit", "toolkit-tta")} in throughput in the ` +
              `toolkit, ${cost("torch", "torch-tta")} in torch (8 forward passes per image).`,
          }),
        ];
      },
    });
  },
};

const allreduce: Benchmark = {
  id: "allreduce",
  description: "the mirrored trainer's all-reduce (mean) of ResNet-34's 21,287,237 float32 " +
    "gradients between 2 replica processes: GB/s and ms (no peer; target 1 GB/s)",
  prepare(ctx: SuiteContext): Promise<Plan> {
    const warmup = ctx.quick ? 1 : 3;
    const iterations = ctx.quick ? 3 : 20;
    const args = (transport: string) =>
      flagArgs({ floats: RESNET34_GRADIENT_FLOATS, replicas: 2, transport, warmup, iterations });
    return Promise.resolve({
      variants: [
        toolkitVariant(
          "shm",
          "all-reduce through shared memory",
          "allreduce",
          args("shm"),
          deadline(120, warmup + iterations, 10),
        ),
        toolkitVariant(
          "socket",
          "all-reduce over the socket ring",
          "allreduce",
          args("socket"),
          deadline(120, warmup + iterations, 10),
        ),
      ],
      warmupReps: 0,
      reps: ctx.quick ? 1 : 3,
      settings: { floats: RESNET34_GRADIENT_FLOATS, replicas: 2, warmup, iterations },
      rows(r): BenchRow[] {
        const grads = `ResNet-34's ${RESNET34_GRADIENT_FLOATS.toLocaleString("en")} float32 ` +
          "gradients, 2 replicas";
        return [
          compareRow({
            id: "allreduce",
            what: `all-reduce (mean) of ${grads}, shared memory (the trainer's first choice)`,
            unit: "GB/s",
            higherIsBetter: true,
            toolkit: r.get("shm"),
            values: (vr) => resultValues(vr, "gb_per_s"),
            target: ALLREDUCE_TARGET_GB_PER_S,
            note: "GB/s = gradient bytes (4 per float) / time of one all-reduce, 10^9 bytes; " +
              "no peer program: the ratio is against the 1 GB/s target.",
          }),
          compareRow({
            id: "allreduce",
            what: `time of one all-reduce of ${grads}, shared memory`,
            unit: "ms",
            higherIsBetter: false,
            toolkit: r.get("shm"),
            values: (vr) => resultValues(vr, "ms"),
          }),
          compareRow({
            id: "allreduce",
            what: `all-reduce of ${grads}, socket ring (the fallback without /dev/shm)`,
            unit: "GB/s",
            higherIsBetter: true,
            toolkit: r.get("socket"),
            values: (vr) => resultValues(vr, "gb_per_s"),
            target: ALLREDUCE_TARGET_GB_PER_S,
          }),
        ];
      },
    });
  },
};

/**
 * Scaling efficiency of each repetition: images/s of the 2-replica run
 * over twice that of the 1-replica run of the same repetition.
 */
export function pairedEfficiency(one: readonly number[], two: readonly number[]): number[] {
  const n = Math.min(one.length, two.length);
  return Array.from({ length: n }, (_, i) => two[i] / (2 * one[i]));
}

const scaling: Benchmark = {
  id: "scaling",
  description: "2-replica scaling efficiency of mirrored training (images/s with 2 replicas / " +
    "(2 x images/s with 1)), ResNet-34 at 32 px, same batch per replica",
  prepare(ctx: SuiteContext): Promise<Plan> {
    const perReplica = ctx.quick ? 4 : 16;
    const warmup = ctx.quick ? 1 : 2;
    const steps = ctx.quick ? 2 : 8;
    const args = (replicas: number) =>
      flagArgs({ size: 32, batch: perReplica * replicas, replicas, warmup, steps });
    const seconds = (replicas: number) =>
      deadline(240, (warmup + steps) * perReplica * replicas, 2);
    return Promise.resolve({
      variants: [
        toolkitVariant("one", "1 replica", "train_step", args(1), seconds(1)),
        toolkitVariant("two", "2 mirrored replicas", "train_step", args(2), seconds(2)),
      ],
      warmupReps: 0,
      reps: ctx.quick ? 1 : 3,
      settings: { size: 32, perReplica, warmup, steps },
      rows(r): BenchRow[] {
        const one = r.get("one"), two = r.get("two");
        // A failed variant is not run again, so the successful runs pair up by repetition.
        const efficiency = pairedEfficiency(
          runValues(one, (x) => x.result?.images_per_sec as number),
          runValues(two, (x) => x.result?.images_per_sec as number),
        );
        const transport = firstField(two, "transport") ?? "?";
        const note = `images/s: 1 replica ${medianText(ips(one))}, ` +
          `2 replicas ${medianText(ips(two))}; all-reduce through ${transport}; ` +
          `${navigator.hardwareConcurrency} cores.` +
          (two?.failed ? ` 2 replicas failed: ${two.failed}` : "");
        const row = compareRow({
          id: "scaling",
          what: `2-replica scaling efficiency, ResNet-34 32 px, ${perReplica} images per replica ` +
            `per step (${backendText(one)})`,
          unit: "of linear (1 = perfect)",
          higherIsBetter: true,
          toolkit: one,
          values: () => efficiency,
          note,
        });
        return [{
          ...row,
          toolkit: summaryOrNull(efficiency),
          sources: { toolkit: one, others: two ? [two] : [] },
        }];
      },
    });
  },
};

const browser: Benchmark = {
  id: "browser",
  description: "the classify page of deno task serve in headless Chromium (TF.js WebGL or WASM, " +
    "as the browser offers) images/s vs deno task predict on the same JPEGs, ResNet-34 at 64 px",
  async prepare(ctx: SuiteContext): Promise<Plan> {
    const inputs = await browserBenchInputs(ctx.quick ? 12 : 48, ctx.log);
    const args = ["--run", inputs.run, "--in", inputs.images];
    const chromium = findChromium();
    const variants: Variant[] = [
      toolkitVariant(
        "predict",
        "deno task predict (lib/predict)",
        "predict_folder",
        args,
        deadline(180, inputs.count, 2),
      ),
    ];
    if (chromium.path !== null) {
      // The pages are the bundles of build-web: a checkout that has never built them gets them
      // here (without them the page stays at "Loading…" and the workload would wait).
      await buildSite(ctx.log);
      const seconds = browserInferDeadline(inputs.count);
      variants.unshift(
        toolkitVariant("browser", "classify page on TF.js WebGL", "browser_infer", [
          ...args,
          "--backend",
          "webgl",
        ], seconds),
        toolkitVariant("browser-wasm", "classify page on TF.js WASM", "browser_infer", [
          ...args,
          "--backend",
          "wasm",
        ], seconds),
      );
    }
    const what = `${inputs.count} ${inputs.real ? "real Kaggle" : "generated"} JPEGs`;
    return {
      variants,
      warmupReps: 0,
      reps: ctx.quick ? 1 : 3,
      settings: { images: inputs.count, real: inputs.real, size: 64, crop: 0.5 },
      rows: (r) =>
        (["browser", "browser-wasm"] as const).map((key) =>
          imagesPerSecondRow({
            id: key,
            what: `in-browser inference, ResNet-34 64 px, ${what}, one image per call ` +
              `(${firstField(r.get(key), "backend") ?? "no browser"}), vs deno task predict ` +
              `(${backendText(r.get("predict"))}, batch 32)`,
            toolkit: r.get(key),
            peer: r.get("predict"),
            note: chromium.path === null
              ? `In-browser rows skipped: ${chromium.reason}.`
              : "Both decode, crop and resize the JPEGs; the page also draws each result. " +
                "Headless Chromium here renders WebGL in software (SwiftShader): a GPU is faster.",
          })
        ),
    };
  },
};

/** Every benchmark, in table order. */
export const BENCHMARKS: readonly Benchmark[] = [
  preprocess,
  preprocessRss,
  reader,
  train,
  trainRun,
  trainCpu,
  infer,
  predict,
  webgpu,
  browser,
  allreduce,
  scaling,
];
