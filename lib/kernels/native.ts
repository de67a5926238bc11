/**
 * Native CPU kernels for the wasm backend, found at startup: oneDNN when a
 * supported `libdnnl` loads, else plain wasm with the reason.
 *
 * Off by `--no-native-kernels` (scripts pass `enabled: false`) or by the
 * environment variable `GALAXY_NATIVE_KERNELS=0`.
 *
 * @module
 */
import { describeOneDnn, OneDnnUnavailable, openOneDnn } from "./onednn/library.ts";
import { registerOneDnnKernels, unregisterOneDnnKernels } from "./onednn/kernels.ts";

/** The environment variable that turns native kernels off when `0` (or `false`, `off`, `no`). */
export const NATIVE_KERNELS_ENV = "GALAXY_NATIVE_KERNELS";

/** The outcome of {@linkcode enableNativeKernels}. */
export interface NativeKernels {
  /** Whether native kernels are registered. */
  enabled: boolean;
  /** One line: what is in use (`oneDNN 2.6 (avx2, 2 threads)`), or why none is (`off: ...`). */
  description: string;
}

/** Why native kernels are off by request (the environment variable or `enabled: false`), or null. */
export function nativeKernelsRefusal(enabled?: boolean): string | null {
  if (enabled === false) return "--no-native-kernels";
  const env = Deno.env.get(NATIVE_KERNELS_ENV)?.trim().toLowerCase();
  if (env !== undefined && ["0", "false", "off", "no"].includes(env)) {
    return `${NATIVE_KERNELS_ENV}=${Deno.env.get(NATIVE_KERNELS_ENV)}`;
  }
  return null;
}

/**
 * Registers oneDNN kernels on the wasm backend (call after the wasm
 * training kernels are registered) unless they are refused or no supported
 * library loads; never throws for a missing or unsupported library.
 */
export function enableNativeKernels(options: { enabled?: boolean } = {}): NativeKernels {
  const refused = nativeKernelsRefusal(options.enabled);
  if (refused) {
    unregisterOneDnnKernels();
    return { enabled: false, description: `off (${refused})` };
  }
  try {
    const dnnl = openOneDnn();
    registerOneDnnKernels(dnnl);
    return { enabled: true, description: describeOneDnn(dnnl) };
  } catch (e) {
    if (e instanceof OneDnnUnavailable || e instanceof Deno.errors.NotCapable) {
      return { enabled: false, description: `off (${(e as Error).message.split("\n")[0]})` };
    }
    throw e;
  }
}

/** Takes the native kernels off the wasm backend again (plain wasm from here on). */
export function disableNativeKernels(): void {
  unregisterOneDnnKernels();
}
