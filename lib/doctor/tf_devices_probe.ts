/**
 * Child process of `tensorFlowDevices` (lib/doctor/native.ts): loads the
 * native backend of the package named by its one argument and runs one op,
 * so TensorFlow creates its devices and logs them on stderr.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { defaultCandidates, setupBackend } from "../backend.ts";

const pkg = Deno.args[0];
const candidates = defaultCandidates().filter((c) => c.label === pkg);
if (candidates.length === 0) throw new Error(`${pkg} is not a native backend package`);
await setupBackend({ requested: "tensorflow", candidates });
tf.tidy(() => tf.matMul(tf.ones([2, 2]), tf.ones([2, 2])).dataSync());
