/**
 * Every task's flag table, in the order the docs list them.
 *
 * @module
 */
import type { TaskFlags } from "../flags.ts";
import { BENCH_TASK } from "./bench.ts";
import { DEMO_TASK } from "./demo.ts";
import { DOCTOR_TASK } from "./doctor.ts";
import { EVALUATE_TASK } from "./evaluate.ts";
import { EXPORT_TASK } from "./export.ts";
import { FETCH_TASK } from "./fetch.ts";
import { PREDICT_TASK } from "./predict.ts";
import { PREPROCESS_TASK } from "./preprocess.ts";
import { QUALITY_TASK } from "./quality.ts";
import { RETRAIN_TASK } from "./retrain.ts";
import { EXPORT_WEB_TASK, SERVE_TASK } from "./serve.ts";
import { TRAIN_TASK } from "./train.ts";

/** The command line of every `deno task` that takes flags. */
export const TASKS: readonly TaskFlags[] = [
  FETCH_TASK,
  PREPROCESS_TASK,
  TRAIN_TASK,
  PREDICT_TASK,
  EVALUATE_TASK,
  SERVE_TASK,
  EXPORT_WEB_TASK,
  EXPORT_TASK,
  RETRAIN_TASK,
  BENCH_TASK,
  QUALITY_TASK,
  DOCTOR_TASK,
  DEMO_TASK,
];
