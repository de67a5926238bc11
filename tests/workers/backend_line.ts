/**
 * Prints the backend line of a fresh process that asks for wasm, with
 * `--no-native-kernels` passed through: the native-kernel fallback tests
 * need a process of their own, as oneDNN is opened once per process.
 */
import { describeBackend, setupBackend } from "../../lib/backend.ts";

const info = await setupBackend({
  requested: "wasm",
  nativeKernels: Deno.args.includes("--no-native-kernels") ? false : undefined,
});
console.log(describeBackend(info));
