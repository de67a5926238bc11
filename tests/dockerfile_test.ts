/**
 * Static checks of Dockerfile.gpu and .dockerignore. No Docker engine runs in
 * CI, so the image is never built here: these tests read the files with a
 * small parser of their own and check what can be known without building.
 *
 * @module
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { TF_GPU_LIBRARIES } from "../lib/doctor/native.ts";

const ROOT = new URL("../", import.meta.url);
const read = (name: string) => Deno.readTextFileSync(new URL(name, ROOT));

/**
 * What each line of @tensorflow/tfjs-node-gpu needs from the CUDA image.
 * Sources: tfjs-node/README.md of tensorflow/tfjs ("Linux GPU ... Cuda 11.2
 * w/ CUDNN v8") and tfjs-node/scripts/deps-constants.js
 * (`LIBTENSORFLOW_VERSION = '2.9.1'` in 4.22.0). libtensorflow opens sonames
 * (lib/doctor/native.ts, TF_GPU_LIBRARIES), so any CUDA release of the same
 * major at or after the one it was built with serves (CUDA 11 minor-version
 * compatibility). A version no row covers fails the test: add a row, with
 * its source, before moving deno.json to it.
 */
const GPU_RUNTIMES = [
  { line: "4.x", major: 4, builtWithCuda: "11.2", cudnnMajor: 8, libtensorflow: "2.9.1" },
];

/**
 * The sonames each CUDA major release's runtime libraries carry (CUDA 11.0
 * to 11.8: cudart 11.0, cuBLAS 11, cuFFT 10, cuRAND 10, cuSOLVER 11,
 * cuSPARSE 11; CUDA 12: cudart 12, cuBLAS 12, cuFFT 11, cuRAND 10, cuSOLVER
 * 11, cuSPARSE 12; from the libraries' file names in NVIDIA's runtime images
 * and redistributables). `libcuda.so.1` is the driver's, mounted by the
 * NVIDIA container runtime; cuDNN N carries `libcudnn.so.N`.
 */
const CUDA_SONAMES: Record<number, readonly string[]> = {
  11: [
    "libcudart.so.11.0",
    "libcublas.so.11",
    "libcublasLt.so.11",
    "libcufft.so.10",
    "libcurand.so.10",
    "libcusolver.so.11",
    "libcusparse.so.11",
  ],
  12: [
    "libcudart.so.12",
    "libcublas.so.12",
    "libcublasLt.so.12",
    "libcufft.so.11",
    "libcurand.so.10",
    "libcusolver.so.11",
    "libcusparse.so.12",
  ],
};

/** Oldest Ubuntu the base may be on: 20.04 left standard support in 2025. */
const MIN_UBUNTU = 22.04;

/** The CUDA JIT cache: the image's CUDA_CACHE_PATH, and the named volume mounted there. */
const CUDA_CACHE_PATH = "/cuda-cache";
const CUDA_CACHE_VOLUME = "galaxy-cuda-cache";

/** Files whose `docker run` lines a user copies: each must mount the CUDA cache. */
const DOCUMENTED_RUNS = [
  "README.md",
  "docs/gpu.md",
  "docs/retrain.md",
  "tasks/crontab",
  "tasks/galaxy-retrain.service",
];

/** Least CUDA_CACHE_MAXSIZE the image may set: above the driver's 256 MiB default. */
const MIN_CUDA_CACHE_BYTES = 2 ** 30;

/** The one package allowed to run its npm install script in the image. */
const NATIVE_PACKAGE = "@tensorflow/tfjs-node-gpu";

/** ARG/ENV names that would bake a secret into the image or its history. */
const SECRET_NAME =
  /KAGGLE_(KEY|USERNAME)|PASS(WORD|WD)?\b|TOKEN|SECRET|CREDENTIAL|API_?KEY|PRIVATE_?KEY/i;

// ---------------------------------------------------------------- the parser

/** One Dockerfile instruction, its continuation lines joined. */
interface Instruction {
  keyword: string;
  args: string;
  /** 1-based line the instruction starts on. */
  line: number;
}

/**
 * Splits a Dockerfile into instructions: `\` at the end of a line continues
 * it, comment lines (also inside a continuation) and blank lines are dropped.
 */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { parts: string[]; line: number } | null = null;
  text.split(/\r?\n/).forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith("#") || (trimmed === "" && pending === null)) return;
    const continues = /\\\s*$/.test(raw);
    const body = continues ? raw.replace(/\\\s*$/, "") : raw;
    pending ??= { parts: [], line: i + 1 };
    pending.parts.push(body.trim());
    if (continues) return;
    const joined = pending.parts.filter((p) => p !== "").join(" ");
    const m = /^(\S+)\s*(.*)$/.exec(joined);
    if (m) out.push({ keyword: m[1].toUpperCase(), args: m[2], line: pending.line });
    pending = null;
  });
  if (pending !== null) throw new Error("Dockerfile ends inside a line continuation");
  return out;
}

/** Splits on blanks, keeping quoted runs together and dropping the quotes. */
function words(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quote = "";
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = "";
      else if (c === "\\" && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unclosed quote in: ${s}`);
  if (inWord) out.push(cur);
  return out;
}

/** The name/value pairs of an ENV or ARG instruction (`ENV K V` legacy form too). */
function pairs(ins: Instruction): [string, string | undefined][] {
  const ws = words(ins.args);
  if (ins.keyword === "ENV" && ws.length > 0 && !ws[0].includes("=")) {
    const t = ins.args.trim();
    const gap = t.search(/\s/);
    return [[ws[0], gap < 0 ? "" : t.slice(gap).trim()]];
  }
  return ws.map((w) => {
    const eq = w.indexOf("=");
    return eq < 0 ? [w, undefined] : [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/** Replaces `${NAME}` and `$NAME` with known values. */
function expand(s: string, vars: Map<string, string>): string {
  return s.replace(/\$\{(\w+)\}|\$(\w+)/g, (all, a, b) => vars.get(a ?? b) ?? all);
}

/** A build stage: its base image (ARGs expanded), alias and instructions. */
interface Stage {
  image: string;
  alias?: string;
  instructions: Instruction[];
}

/** The global ARG defaults (those before the first FROM) and the stages. */
function stagesOf(text: string): { globals: Map<string, string>; stages: Stage[] } {
  const globals = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of parseDockerfile(text)) {
    if (ins.keyword === "FROM") {
      const ws = words(ins.args).filter((w) => !w.startsWith("--"));
      const as = ws.findIndex((w) => w.toUpperCase() === "AS");
      stages.push({
        image: expand(ws[0], globals),
        alias: as > 0 ? ws[as + 1] : undefined,
        instructions: [],
      });
    } else if (stages.length === 0) {
      if (ins.keyword !== "ARG") throw new Error(`line ${ins.line}: ${ins.keyword} before FROM`);
      for (const [k, v] of pairs(ins)) if (v !== undefined) globals.set(k, v);
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return { globals, stages };
}

// ------------------------------------------------------------------ the checks

/** What Dockerfile.gpu is checked against. */
interface Inputs {
  /** Contents of .dvmrc. */
  dvmrc: string;
  /** The exact tfjs-node-gpu version deno.json pins. */
  tfjsNodeGpu: string;
}

/** Every way Dockerfile.gpu breaks the rules; empty when it keeps them all. */
function checkDockerfile(text: string, inputs: Inputs): string[] {
  const problems: string[] = [];
  const { globals, stages } = stagesOf(text);
  if (stages.length === 0) return ["no FROM"];
  const final = stages.at(-1)!;
  const of = (kw: string) => final.instructions.filter((i) => i.keyword === kw);

  // CUDA and cuDNN of the base image against the sonames the pinned libtensorflow opens.
  const major = Number(inputs.tfjsNodeGpu.split(".")[0]);
  const need = GPU_RUNTIMES.find((r) => r.major === major);
  const base =
    /^nvidia\/cuda:(\d+)\.(\d+)(?:\.\d+)?-cudnn(\d+)-(?:runtime|devel)-ubuntu(\d+\.\d+)(?:@sha256:[0-9a-f]{64})?$/
      .exec(final.image);
  if (!need) {
    problems.push(
      `tfjs-node-gpu ${inputs.tfjsNodeGpu} is not in the CUDA table of tests/dockerfile_test.ts`,
    );
  } else if (!base) {
    problems.push(`final base image ${final.image} is not an nvidia/cuda cuDNN Ubuntu image`);
  } else {
    const [cudaMajor, cudaMinor, cudnn, ubuntu] = base.slice(1).map(Number);
    const provided = [...(CUDA_SONAMES[cudaMajor] ?? []), `libcudnn.so.${cudnn}`];
    const lacking = TF_GPU_LIBRARIES.filter((s) => s !== "libcuda.so.1" && !provided.includes(s));
    if (lacking.length > 0) {
      problems.push(
        `base image has CUDA ${cudaMajor}.${cudaMinor} with cuDNN ${cudnn}, which lacks ` +
          `${lacking.join(", ")} that libtensorflow ${need.libtensorflow} opens`,
      );
    }
    const [builtMajor, builtMinor] = need.builtWithCuda.split(".").map(Number);
    if (cudaMajor === builtMajor && cudaMinor < builtMinor) {
      problems.push(
        `base image has CUDA ${cudaMajor}.${cudaMinor}, older than the ${need.builtWithCuda} ` +
          `libtensorflow ${need.libtensorflow} was built with`,
      );
    }
    if (ubuntu < MIN_UBUNTU) {
      problems.push(`base image is on Ubuntu ${base[4]}, past standard support`);
    }
  }

  // Deno at the version of .dvmrc, on PATH.
  const dvmrc = inputs.dvmrc.trim();
  if (globals.get("DENO_VERSION") !== dvmrc) {
    problems.push(`ARG DENO_VERSION=${globals.get("DENO_VERSION")} but .dvmrc says ${dvmrc}`);
  }
  const denoStage = stages.find((s) => s.image === `denoland/deno:bin-${dvmrc}`);
  if (!denoStage?.alias) problems.push(`no stage FROM denoland/deno:bin-${dvmrc} AS <name>`);
  else if (
    !of("COPY").some((c) =>
      new RegExp(`--from=${denoStage.alias}\\s+/deno\\s+/usr/local/bin/deno$`).test(c.args)
    )
  ) problems.push("the deno binary is not copied to /usr/local/bin/deno");

  // Runs as a fixed non-root user, who also installs the dependencies.
  const users = of("USER");
  const user = users.at(-1)?.args.split(":")[0].trim();
  if (user === undefined || user === "root" || user === "0") {
    problems.push(`final USER is ${user ?? "unset (root)"}`);
  }
  const runs = of("RUN");
  const install = runs.filter((r) => /\bdeno install\b/.test(r.args));
  const cache = runs.filter((r) => /\bdeno cache\b/.test(r.args));
  if (install.length !== 1) problems.push(`${install.length} RUNs with deno install; expected 1`);
  if (cache.length === 0) problems.push("no RUN deno cache: the container would fetch at start");
  const lastUserLine = users.at(-1)?.line ?? Infinity;
  for (const r of [...install, ...cache]) {
    if (r.line < lastUserLine) {
      problems.push(`line ${r.line} fills node_modules/DENO_DIR before USER ${user}`);
    }
  }

  // The image proves its native path at build time: the smoke check on the tensorflow backend
  // (no GPU during docker build, so libtensorflow's CPU kernels), after the install and the
  // sources, and its failure fails the build.
  const smoke = runs.filter((r) => /\bdeno task doctor\b/.test(r.args));
  const smokeOk = smoke.filter((r) =>
    /\bdeno task doctor --smoke --backend tensorflow\s*$/.test(r.args.split("&&").at(-1)!)
  );
  const tree = of("COPY").find((c) =>
    words(c.args).filter((w) => !w.startsWith("--")).join(" ") === ". ."
  );
  if (smokeOk.length !== 1) {
    problems.push("no RUN deno task doctor --smoke --backend tensorflow (the build-time smoke)");
  }
  for (const r of smoke) {
    if (/\|\||;|\bset \+e\b/.test(r.args)) {
      problems.push(`line ${r.line}: the smoke RUN ignores its failure`);
    }
    if (install.some((i) => i.line > r.line) || (tree !== undefined && tree.line > r.line)) {
      problems.push(`line ${r.line}: the smoke runs before the install and the sources are in`);
    }
  }

  // Install scripts allowed for the native package only.
  for (const r of install) {
    const flags = r.args.match(/--allow-scripts(=\S+)?/g) ?? [];
    const allowed = flags.flatMap((f) => f.includes("=") ? f.split("=")[1].split(",") : ["*"]);
    const ok = allowed.length === 1 &&
      (allowed[0] === `npm:${NATIVE_PACKAGE}` ||
        allowed[0] === `npm:${NATIVE_PACKAGE}@${inputs.tfjsNodeGpu}`);
    if (!ok) {
      problems.push(
        `line ${r.line}: --allow-scripts allows [${
          allowed.join(", ")
        }]; expected npm:${NATIVE_PACKAGE}`,
      );
    }
  }

  // Environment of the final image.
  const env = new Map(of("ENV").flatMap(pairs));
  if (env.get("TF_FORCE_GPU_ALLOW_GROWTH") !== "true") {
    problems.push("ENV TF_FORCE_GPU_ALLOW_GROWTH=true is not set");
  }
  if (!env.get("DENO_DIR")?.startsWith("/")) problems.push("ENV DENO_DIR is not an absolute path");
  if (env.get("CUDA_CACHE_PATH") !== CUDA_CACHE_PATH) {
    problems.push(`ENV CUDA_CACHE_PATH is not ${CUDA_CACHE_PATH} (the documented volume path)`);
  }
  const cacheBytes = Number(env.get("CUDA_CACHE_MAXSIZE"));
  if (!(Number.isInteger(cacheBytes) && cacheBytes >= MIN_CUDA_CACHE_BYTES)) {
    problems.push(
      `ENV CUDA_CACHE_MAXSIZE=${env.get("CUDA_CACHE_MAXSIZE")} is below ${MIN_CUDA_CACHE_BYTES}`,
    );
  }
  if (cacheBytes > 2 ** 32) problems.push("CUDA_CACHE_MAXSIZE is above the CUDA maximum, 4 GiB");

  // No credentials, in any stage.
  for (const ins of parseDockerfile(text)) {
    if (ins.keyword === "ARG" || ins.keyword === "ENV") {
      for (const [k] of pairs(ins)) {
        if (SECRET_NAME.test(k)) {
          problems.push(`line ${ins.line}: ${ins.keyword} ${k} bakes a secret`);
        }
      }
    }
    if (
      /^(COPY|ADD|RUN)$/.test(ins.keyword) && /kaggle\.json|\.kaggle\b|KAGGLE_KEY/i.test(ins.args)
    ) {
      problems.push(`line ${ins.line}: ${ins.keyword} touches Kaggle credentials`);
    }
  }

  // `docker run IMAGE deno task ...` runs in the project root.
  const entry = of("ENTRYPOINT").at(-1);
  if (entry === undefined || entry.args.replace(/\s/g, "") !== "[]") {
    problems.push("ENTRYPOINT must be reset to [] so the command is `deno task ...`");
  }
  const workdir = of("WORKDIR").at(-1);
  const copiesTree = of("COPY").some((c) => {
    const ws = words(c.args).filter((w) => !w.startsWith("--"));
    return workdir !== undefined && c.line > workdir.line && ws.join(" ") === ". .";
  });
  if (!copiesTree) problems.push("the project is not copied (COPY . .) into the final WORKDIR");
  if (!of("VOLUME").some((v) => /(^|[\s"[])\/data([\s"\]]|$)/.test(v.args))) {
    problems.push("no VOLUME /data");
  }
  return problems;
}

/** Docker's .dockerignore matching: last matching pattern wins, `!` re-includes. */
function dockerignored(patterns: string[], path: string): boolean {
  const parts = path.split("/");
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith("!");
    const pattern = (negate ? raw.slice(1) : raw).trim().replace(/^\/+/, "").replace(/\/+$/, "");
    const re = globToRegExp(pattern);
    if (prefixes.some((p) => re.test(p))) ignored = !negate;
  }
  return ignored;
}

function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      i++;
      if (glob[i + 1] === "/") {
        i++;
        re += "(?:.*/)?";
      } else re += ".*";
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "\\" && i + 1 < glob.length) {
      re += glob[++i].replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Paths that must stay out of the build context, and some that must stay in. */
const MUST_EXCLUDE = [
  "data/images_training_rev1/100008.jpg",
  "runs/r1/model.json",
  "demo/index.html",
  "node_modules/@tensorflow/tfjs/package.json",
  ".git/HEAD",
  "bench/results.json",
  "kaggle.json",
  ".kaggle/kaggle.json",
];
const MUST_INCLUDE = [
  "deno.json",
  "deno.lock",
  ".dvmrc",
  "lib/data/schema.ts",
  "lib/backend.ts",
  "scripts/train.ts",
  "tasks/retrain.ts",
];

/** Every way .dockerignore breaks the rules; empty when it keeps them all. */
function checkDockerignore(text: string): string[] {
  const patterns = text.split(/\r?\n/).map((l) => l.trim()).filter((l) =>
    l !== "" && !l.startsWith("#")
  );
  return [
    ...MUST_EXCLUDE.filter((p) => !dockerignored(patterns, p)).map((p) => `${p} is not excluded`),
    ...MUST_INCLUDE.filter((p) => dockerignored(patterns, p)).map((p) => `${p} is excluded`),
  ];
}

function pinnedTfjsNodeGpu(): string {
  // deno.json is JSONC (trailing commas), so the import is read by pattern.
  const spec = /"@tensorflow\/tfjs-node-gpu"\s*:\s*"([^"]*)"/.exec(read("deno.json"))?.[1] ?? "";
  const m = /^npm:@tensorflow\/tfjs-node-gpu@(\d+\.\d+\.\d+)$/.exec(spec);
  if (!m) throw new Error(`deno.json imports ${NATIVE_PACKAGE} as '${spec}', not an exact version`);
  return m[1];
}

const inputs = (): Inputs => ({ dvmrc: read(".dvmrc"), tfjsNodeGpu: pinnedTfjsNodeGpu() });

// ------------------------------------------------------------------- the tests

Deno.test("parser joins continuations, skips comments, reads ENV/ARG forms", () => {
  const text = [
    "ARG A=1",
    "FROM img:${A} AS base",
    "# comment",
    "RUN echo a \\",
    "  # comment inside a continuation",
    "  && echo b",
    'ENV X=1 Y="two words"',
    "ENV LEGACY some value",
  ].join("\n");
  const { globals, stages } = stagesOf(text);
  assert.equal(globals.get("A"), "1");
  assert.equal(stages[0].image, "img:1");
  assert.equal(stages[0].alias, "base");
  const [run, env1, env2] = stages[0].instructions;
  assert.deepEqual(run, { keyword: "RUN", args: "echo a && echo b", line: 4 });
  assert.deepEqual(pairs(env1), [["X", "1"], ["Y", "two words"]]);
  assert.deepEqual(pairs(env2), [["LEGACY", "some value"]]);
  assert.throws(() => parseDockerfile("RUN a \\"), /continuation/);
});

Deno.test("dockerignore matching follows Docker's rules", () => {
  const patterns = ["data", "**/*.tmp", "bench/results*", "node_modules", "!node_modules/keep"];
  assert.ok(dockerignored(patterns, "data/a/b.jpg"));
  assert.ok(!dockerignored(patterns, "lib/data/schema.ts"), "patterns are anchored at the root");
  assert.ok(dockerignored(patterns, "x.tmp"));
  assert.ok(dockerignored(patterns, "a/b/x.tmp"));
  assert.ok(dockerignored(patterns, "bench/results.json"));
  assert.ok(!dockerignored(patterns, "bench/run.ts"));
  assert.ok(!dockerignored(patterns, "node_modules/keep"), "! re-includes");
});

Deno.test("Dockerfile.gpu: CUDA base, Deno version, user, scripts, env, no secrets", () => {
  assert.deepEqual(checkDockerfile(read("Dockerfile.gpu"), inputs()), []);
});

Deno.test("Dockerfile.gpu checks catch what they are for", () => {
  const text = read("Dockerfile.gpu");
  const ins = inputs();
  const swap = (from: RegExp, to: string) => {
    assert.match(text, from);
    return text.replace(from, to);
  };
  const cases: [string, string, Inputs, RegExp][] = [
    [
      "CUDA 12",
      swap(/^FROM nvidia\/cuda:\S+/m, "FROM nvidia/cuda:12.2.2-cudnn8-runtime-ubuntu22.04"),
      ins,
      /CUDA 12\.2 with cuDNN 8, which lacks libcudart\.so\.11\.0, libcublas\.so\.11/,
    ],
    [
      "cuDNN 9",
      swap(/^FROM nvidia\/cuda:\S+/m, "FROM nvidia/cuda:11.8.0-cudnn9-runtime-ubuntu22.04"),
      ins,
      /lacks libcudnn\.so\.8 /,
    ],
    [
      "CUDA 11.1",
      swap(/^FROM nvidia\/cuda:\S+/m, "FROM nvidia/cuda:11.1.1-cudnn8-runtime-ubuntu22.04"),
      ins,
      /CUDA 11\.1, older than the 11\.2/,
    ],
    [
      "Ubuntu 20.04",
      swap(/^FROM nvidia\/cuda:\S+/m, "FROM nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu20.04"),
      ins,
      /Ubuntu 20\.04, past standard support/,
    ],
    [
      "no cache path",
      swap(/CUDA_CACHE_PATH=\S+/, "CUDA_CACHE_PATH=/home/galaxy/.nv"),
      ins,
      /CUDA_CACHE_PATH is not \/cuda-cache/,
    ],
    [
      "small cache",
      swap(/CUDA_CACHE_MAXSIZE=\d+/, "CUDA_CACHE_MAXSIZE=268435456"),
      ins,
      /CUDA_CACHE_MAXSIZE=268435456 is below/,
    ],
    [
      "unknown tfjs",
      text,
      { ...ins, tfjsNodeGpu: "5.0.0" },
      /5\.0\.0 is not in the CUDA table/,
    ],
    ["other Deno", swap(/^ARG DENO_VERSION=\S+/m, "ARG DENO_VERSION=2.0.0"), ins, /\.dvmrc/],
    ["root", `${text}\nUSER root\n`, ins, /final USER is root/],
    [
      "all scripts",
      swap(/--allow-scripts=\S+/, "--allow-scripts"),
      ins,
      /--allow-scripts allows \[\*\]/,
    ],
    [
      "two packages",
      swap(/--allow-scripts=\S+/, `--allow-scripts=npm:${NATIVE_PACKAGE},npm:sharp`),
      ins,
      /allows \[npm:@tensorflow\/tfjs-node-gpu, npm:sharp\]/,
    ],
    ["no growth", swap(/TF_FORCE_GPU_ALLOW_GROWTH=true/, "TF_X=1"), ins, /ALLOW_GROWTH/],
    ["secret", `${text}\nENV KAGGLE_KEY=abc\n`, ins, /ENV KAGGLE_KEY bakes a secret/],
    ["secret arg", `${text}\nARG GITHUB_TOKEN\n`, ins, /ARG GITHUB_TOKEN bakes a secret/],
    [
      "kaggle.json",
      `${text}\nCOPY kaggle.json /home/galaxy/.kaggle/\n`,
      ins,
      /COPY touches Kaggle credentials/,
    ],
    ["entrypoint", `${text}\nENTRYPOINT ["bash"]\n`, ins, /ENTRYPOINT must be reset/],
    [
      "no smoke",
      swap(/^RUN deno task doctor --smoke --backend tensorflow\n/m, ""),
      ins,
      /no RUN deno task doctor --smoke --backend tensorflow/,
    ],
    [
      "smoke on wasm",
      swap(/--smoke --backend tensorflow/, "--smoke --backend wasm"),
      ins,
      /no RUN deno task doctor --smoke --backend tensorflow/,
    ],
    [
      "smoke ignored",
      swap(/--smoke --backend tensorflow/, "--smoke --backend tensorflow || true"),
      ins,
      /the smoke RUN ignores its failure/,
    ],
    [
      "smoke too early",
      swap(/^WORKDIR \/app$/m, "WORKDIR /app\nRUN deno task doctor --smoke --backend tensorflow"),
      ins,
      /runs before the install and the sources are in/,
    ],
  ];
  for (const [name, dockerfile, inputs, expected] of cases) {
    const problems = checkDockerfile(dockerfile, inputs);
    assert.ok(problems.some((p) => expected.test(p)), `${name}: ${JSON.stringify(problems)}`);
  }
});

/** A `docker run` of the galaxy image, in one line of a documented file. */
interface DockerRun {
  file: string;
  /** 1-based. */
  line: number;
  text: string;
}

/** Every line that runs the galaxy image (`docker run ... galaxy deno task ...`). */
function documentedRuns(file: string, text: string): DockerRun[] {
  return text.split("\n").flatMap((t, i) =>
    /\bdocker run\b.*\sgalaxy deno task\b/.test(t) ? [{ file, line: i + 1, text: t }] : []
  );
}

/** The runs among `runs` that do not mount the CUDA cache volume at CUDA_CACHE_PATH. */
function withoutCache(runs: readonly DockerRun[]): string[] {
  const mount = new RegExp(
    `(^|\\s)-v ${CUDA_CACHE_VOLUME}:${CUDA_CACHE_PATH.replace("/", "\\/")}(\\s|$)`,
  );
  return runs.filter((r) => !mount.test(r.text.slice(0, r.text.indexOf(" galaxy deno task"))))
    .map((r) => `${r.file}:${r.line}: ${r.text.trim()}`);
}

Deno.test("every documented docker run mounts the CUDA cache volume", () => {
  const runs = DOCUMENTED_RUNS.flatMap((f) => documentedRuns(f, read(f)));
  // The files above run the image in at least these places: a file that lost its
  // commands (or a changed image name) would otherwise pass with nothing checked.
  for (const f of DOCUMENTED_RUNS) {
    assert.ok(runs.some((r) => r.file === f), `${f} has no docker run of the galaxy image`);
  }
  assert.deepEqual(withoutCache(runs), []);
  const bad = documentedRuns("x", "docker run --gpus all -v /data:/data galaxy deno task train");
  assert.equal(withoutCache(bad).length, 1);
  const after = documentedRuns(
    "x",
    "docker run galaxy deno task train -v galaxy-cuda-cache:/cuda-cache",
  );
  assert.equal(
    withoutCache(after).length,
    1,
    "a -v after the image is the command's, not docker's",
  );
});

Deno.test(".dockerignore keeps data, runs, caches, node_modules and .git out", () => {
  assert.deepEqual(checkDockerignore(read(".dockerignore")), []);
  const without = read(".dockerignore").replace(/^data$/m, "");
  assert.deepEqual(checkDockerignore(without), [
    "data/images_training_rev1/100008.jpg is not excluded",
  ]);
  assert.deepEqual(checkDockerignore(`${read(".dockerignore")}\n**/data\n`), [
    "lib/data/schema.ts is excluded",
  ]);
});

// The table's libtensorflow version, against the installed package when it is there.
const installedConstants = new URL(
  "node_modules/@tensorflow/tfjs-node-gpu/scripts/deps-constants.js",
  ROOT,
);
Deno.test({
  name: "CUDA table agrees with the installed tfjs-node-gpu's libtensorflow",
  ignore: !existsSync(installedConstants),
  fn() {
    const pkg = JSON.parse(
      Deno.readTextFileSync(new URL("../package.json", installedConstants)),
    ) as { version: string };
    assert.equal(pkg.version, pinnedTfjsNodeGpu(), "node_modules is not at the pinned version");
    const m = /LIBTENSORFLOW_VERSION\s*=\s*'([\d.]+)'/.exec(
      Deno.readTextFileSync(installedConstants),
    );
    const row = GPU_RUNTIMES.find((r) => r.major === Number(pkg.version.split(".")[0]));
    assert.equal(m?.[1], row?.libtensorflow);
  },
});

// hadolint, where it is installed (it is not packaged for apt or npm here).
const hadolint = (Deno.env.get("PATH") ?? "").split(":").map((d) => join(d, "hadolint"))
  .find((p) => existsSync(p));
Deno.test({
  name: "hadolint finds no errors in Dockerfile.gpu",
  ignore: hadolint === undefined,
  async fn() {
    const { code, stdout } = await new Deno.Command(hadolint!, {
      signal: AbortSignal.timeout(120_000),
      args: ["--failure-threshold", "error", fromFileUrl(new URL("Dockerfile.gpu", ROOT))],
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stdout));
  },
});
