/**
 * Flags several tasks share, declared once: the backend choice and the
 * switch that turns the native CPU kernels off.
 *
 * @module
 */
import { BACKEND_NAMES } from "../backend.ts";
import { bool, choice } from "../flags.ts";

/** `--backend NAME`: the TF.js backend; unset, the fastest that loads (lib/backend.ts). */
export const BACKEND_FLAG = choice(BACKEND_NAMES, `TF.js backend: ${BACKEND_NAMES.join(", ")}`, {
  arg: "NAME",
  shown: "default: the fastest that loads",
});

/** `--no-native-kernels`: plain WebAssembly without oneDNN. */
/** `--no-verify`: use model files whose SHA-256 does not match the one recorded (lib/run). */
export const NO_VERIFY_FLAG = bool(
  "use a model whose files do not match the SHA-256 recorded when they were written (see " +
    "docs/run-folder.md); without it such a model is refused",
);

export const NO_NATIVE_KERNELS_FLAG = bool(
  "wasm without the oneDNN kernels (also GALAXY_NATIVE_KERNELS=0)",
);
