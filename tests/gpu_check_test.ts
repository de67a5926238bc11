/**
 * scripts/gpu_check.sh as a person runs it, with `--quick`: here, without
 * a GPU, it says so, names the skipped checks and exits 3; with a GPU that
 * nvidia-smi lists but native TensorFlow cannot use, it fails by name.
 *
 * @module
 */
import assert from "node:assert/strict";
import { withDeadline } from "./deadline.ts";
import { ROOT } from "./task_cli.ts";
import { tempDir } from "./temp.ts";

async function gpuCheck(
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; last: string }> {
  const r = await withDeadline(
    "scripts/gpu_check.sh --quick",
    900,
    (signal) =>
      new Deno.Command("bash", {
        args: [`${ROOT}/scripts/gpu_check.sh`, "--quick"],
        env: { NO_COLOR: "1", ...env },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal,
      }).output(),
  );
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  const stdout = text(r.stdout);
  return { code: r.code, out: stdout + text(r.stderr), last: stdout.trim().split("\n").at(-1)! };
}

const hasNvidiaSmi = (Deno.env.get("PATH") ?? "").split(":").some((d) => {
  try {
    return Deno.statSync(`${d}/nvidia-smi`).isFile;
  } catch {
    return false;
  }
});

Deno.test({
  name: "gpu_check.sh without a GPU: CPU checks pass, GPU checks skipped by name, exit 3",
  ignore: hasNvidiaSmi,
  async fn() {
    const r = await gpuCheck();
    assert.equal(r.code, 3, r.out);
    assert.match(r.out, /^no NVIDIA GPU found: nvidia-smi is not installed/m);
    assert.match(r.out, /^ok +smoke on wasm$/m);
    assert.match(r.out, /^ok +train step on wasm$/m);
    assert.match(r.out, /^ok +inference on wasm$/m);
    assert.match(r.out, /^skip +tensorflow \(CUDA\) smoke and speed: no NVIDIA GPU found$/m);
    assert.match(r.out, /^skip +webgpu smoke and speed: /m);
    assert.match(r.out, /^wasm +\d[\d.]* +1\.00x +\d[\d.]* +1\.00x$/m);
    assert.doesNotMatch(r.out, /^FAIL/m);
    assert.match(r.last, /^gpu_check: no GPU found; .*\(exit 3\)$/);
  },
});

Deno.test("gpu_check.sh fails by name when a listed GPU cannot be used by native TensorFlow", async () => {
  // An nvidia-smi that lists an L4: tfjs-node-gpu has no binding here, so the CUDA path fails.
  const bin = await tempDir("galaxy-fake-smi-");
  await Deno.writeTextFile(
    `${bin}/nvidia-smi`,
    `#!/bin/sh\ncase "$*" in\n  *compute_cap*) echo '0, NVIDIA L4, 8.9' ;;\n` +
      `  *) echo '0, NVIDIA L4, 23034, 535.104.05' ;;\nesac\n`,
    { mode: 0o755 },
  );
  const r = await gpuCheck({ PATH: `${bin}:${Deno.env.get("PATH")}` });
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /^0, NVIDIA L4, 8\.9$/m);
  assert.match(r.out, /^FAIL +smoke on tensorflow \(exit status 1\)$/m);
  assert.match(r.out, /^FAIL +train step on tensorflow/m);
  assert.match(r.out, /^ok +smoke on wasm$/m);
  assert.match(r.last, /^gpu_check: \d+ check\(s\) failed$/);
});
