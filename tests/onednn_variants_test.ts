/**
 * The whole oneDNN test file again in the configurations this machine
 * would not take by itself: capped at AVX2 (oneDNN's own
 * `ONEDNN_MAX_CPU_ISA` / `DNNL_MAX_CPU_ISA`) where oneDNN runs AVX-512
 * here, so an AVX-512 machine proves the AVX2 path most laptops take; and
 * against oneDNN 3.1.1 built from upstream (`../shared/onednn/3.1.1`, what
 * Ubuntu 24.04 ships as `libdnnl3`), natively and capped, where present.
 * Each runs in a process of its own (oneDNN reads the cap when it loads).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { probeCpuIsa } from "../lib/kernels/onednn/library.ts";
import { runsAvx512, sharedOneDnn3 } from "../lib/bench/native_configs.ts";

const TEST_FILE = fileURLToPath(new URL("./onednn_test.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));
const ONEDNN_3 = sharedOneDnn3();
const AVX2 = { ONEDNN_MAX_CPU_ISA: "AVX2", DNNL_MAX_CPU_ISA: "AVX2" };
/** One run of the oneDNN test file takes 5-15 s here; a hung one fails the test instead. */
const DEADLINE_MS = 300_000;

/** Runs tests/onednn_test.ts in a child with `env` added; fails with its output on failure. */
async function runOneDnnTests(env: Record<string, string>, expect: RegExp): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      "--config",
      CONFIG,
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-ffi",
      "--allow-run",
      "--allow-sys",
      TEST_FILE,
    ],
    env: { ...env, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(DEADLINE_MS),
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const tail = text.split("\n").slice(-40).join("\n");
  assert.ok(out.success, `tests/onednn_test.ts failed with ${JSON.stringify(env)}:\n${tail}`);
  // The child really ran on the configuration (it skips, saying why, where oneDNN does not load).
  assert.match(text, expect, `tests/onednn_test.ts did not run as asked:\n${tail}`);
  assert.doesNotMatch(text, /skipping oneDNN kernel tests/, tail);
  for (const line of text.split("\n").filter((l) => /^ {2}(avx|sse)/.test(l))) {
    console.log(`  ${JSON.stringify(env)}: ${line.trim()}`);
  }
}

const avx512 = runsAvx512();
const shared3 = (() => {
  try {
    Deno.statSync(ONEDNN_3);
    return true;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "the oneDNN tests pass capped at AVX2 (what most laptops run)",
  ignore: !avx512,
  fn: () => runOneDnnTests(AVX2, /^ {2}avx2: /m),
});

Deno.test({
  name: "the oneDNN tests pass against oneDNN 3.1.1 (Ubuntu 24.04's libdnnl3)",
  ignore: !shared3,
  fn: () => runOneDnnTests({ GALAXY_DNNL_LIBRARY: ONEDNN_3 }, /oneDNN 3\.1 \(/),
});

Deno.test({
  name: "the oneDNN tests pass against oneDNN 3.1.1 capped at AVX2",
  ignore: !shared3 || probeCpuIsa(ONEDNN_3)?.family !== "avx512_core",
  fn: () => runOneDnnTests({ GALAXY_DNNL_LIBRARY: ONEDNN_3, ...AVX2 }, /oneDNN 3\.1 \(avx2,/),
});

if (!avx512) {
  console.warn(
    "skipping the AVX2-capped run: no oneDNN here runs AVX-512 kernels (it runs AVX2 or less " +
      "already, or none loads)",
  );
}
if (!shared3) console.warn(`skipping the oneDNN 3.1.1 runs: no library at ${ONEDNN_3}`);
