/**
 * Runs an ONNX model on one float32 input with onnxruntime-node, for the
 * Python stand-in of `onnxruntime` (tests/ort_stand_in/onnxruntime):
 * `run_onnx.ts MODEL INPUT_NAME SHAPE_JSON IN.f32 OUT.f32`; prints the
 * output's shape as JSON. Raw files are little-endian float32, C order.
 *
 * @module
 */
import * as ort from "onnxruntime-node";

const [model, name, shapeJson, inFile, outFile] = Deno.args;
const shape = JSON.parse(shapeJson) as number[];
const bytes = await Deno.readFile(inFile);
const x = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
});
const r = await session.run({ [name]: new ort.Tensor("float32", x, shape) });
const y = r[session.outputNames[0]];
const data = y.data as Float32Array;
await Deno.writeFile(outFile, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
console.log(JSON.stringify(y.dims));
await session.release();
