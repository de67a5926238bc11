/**
 * The flags of `deno task doctor`, declared once: scripts/doctor.ts parses
 * them, `--help` and docs/cli.md show them.
 *
 * @module
 */
import { bool, text } from "../flags.ts";
import { BACKEND_FLAG } from "./common.ts";

/** `deno task doctor`. */
export const DOCTOR_TASK = {
  task: "doctor",
  synopsis: ["deno task doctor [--smoke] [--backend NAME] [--data DIR]"],
  flags: {
    smoke: bool(
      "also train a narrow ResNet-34 for one step and compare outputs, loss and every gradient " +
        "with the pure-JS cpu backend; save, reload and predict; one mirrored step of 2 replicas " +
        "where /dev/shm works",
    ),
    backend: BACKEND_FLAG,
    data: text("DIR", "the data folder whose free disk counts", {
      shown: "default: the current folder",
    }),
  },
  epilogue: "exit status: 0 this machine can train; 1 it cannot (the last line says why); " +
    "2 usage error",
};
