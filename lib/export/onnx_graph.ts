/**
 * A small builder of ONNX graphs over the `onnx-proto` message classes
 * (protobufjs code generated from ONNX's `onnx.proto`): nodes, float and
 * int64 initializers, typed attributes, and the final `ModelProto` bytes.
 * The protobuf wire format is left entirely to the library.
 *
 * @module
 */
import proto from "onnx-proto";
import type { onnx } from "onnx-proto";

const ONNX = proto.onnx;

/**
 * IR version 8 (ONNX 1.10 to 1.12) and default-domain opset 13: read by
 * every ONNX Runtime since 1.8, TensorRT 8, OpenVINO, and by Debian 12's
 * python3-onnx 1.12 checker (which refuses IR versions above 8).
 */
export const ONNX_IR_VERSION = 8;
/** The default-domain operator set the exported graphs use. */
export const ONNX_OPSET = 13;

/** An attribute value, tagged with its ONNX type. */
export type AttrValue =
  | { int: number }
  | { ints: readonly number[] }
  | { float: number }
  | { string: string };

/** A graph input or output: element type and shape, `string` dims being symbolic (e.g. the batch). */
export interface ValueSpec {
  name: string;
  /** Element type; float32 is the only one the toolkit's graphs exchange. */
  type: "float32";
  shape: (number | string)[];
}

function attribute(name: string, v: AttrValue): onnx.IAttributeProto {
  const T = ONNX.AttributeProto.AttributeType;
  if ("int" in v) return { name, type: T.INT, i: v.int };
  if ("ints" in v) return { name, type: T.INTS, ints: [...v.ints] };
  if ("float" in v) return { name, type: T.FLOAT, f: v.float };
  return { name, type: T.STRING, s: new TextEncoder().encode(v.string) };
}

function valueInfo(v: ValueSpec): onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: ONNX.TensorProto.DataType.FLOAT,
        shape: {
          dim: v.shape.map((d) => typeof d === "number" ? { dimValue: d } : { dimParam: d }),
        },
      },
    },
  };
}

/** Little-endian bytes of a typed array (TensorProto.raw_data is little-endian by spec). */
export function littleEndianBytes(a: Float32Array | BigInt64Array): Uint8Array {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) return bytes.slice();
  const out = new Uint8Array(a.byteLength);
  const view = new DataView(out.buffer);
  a.forEach((x: number | bigint, i: number) =>
    typeof x === "bigint" ? view.setBigInt64(i * 8, x, true) : view.setFloat32(i * 4, x, true)
  );
  return out;
}

/** Collects the nodes and initializers of one graph, handing out unique tensor names. */
export class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  #used = new Set<string>();

  /** `base`, or `base_2`, `base_3` ... if taken: a tensor name not used before. */
  unique(base: string): string {
    let name = base;
    for (let i = 2; this.#used.has(name); i++) name = `${base}_${i}`;
    this.#used.add(name);
    return name;
  }

  /** Adds a float32 initializer of shape `dims`; returns its name. */
  floats(name: string, data: ArrayLike<number>, dims: readonly number[]): string {
    return this.#initializer(name, Float32Array.from(data), dims);
  }

  /** Adds an int64 initializer of shape `dims` (e.g. Pad's pads, Slice's starts); returns its name. */
  int64s(name: string, data: readonly number[], dims: readonly number[] = [data.length]): string {
    return this.#initializer(name, BigInt64Array.from(data.map(BigInt)), dims);
  }

  #initializer(name: string, data: Float32Array | BigInt64Array, dims: readonly number[]): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== data.length) {
      throw new Error(`initializer ${name}: ${data.length} values for shape [${dims}]`);
    }
    const unique = this.unique(name);
    this.initializers.push({
      name: unique,
      dims: [...dims],
      dataType: data instanceof Float32Array
        ? ONNX.TensorProto.DataType.FLOAT
        : ONNX.TensorProto.DataType.INT64,
      rawData: littleEndianBytes(data),
    });
    return unique;
  }

  /**
   * Adds a node of operator `op` reading `inputs`; returns the name of its
   * (single) output, `output` or a fresh name derived from `name`.
   */
  node(
    op: string,
    inputs: readonly string[],
    attrs: Record<string, AttrValue> = {},
    name = op,
    output?: string,
  ): string {
    const nodeName = this.unique(`${name}/${op}`);
    const out = output ?? this.unique(`${name}/${op}:0`);
    if (output !== undefined) this.#used.add(output);
    this.nodes.push({
      name: nodeName,
      opType: op,
      input: [...inputs],
      output: [out],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  /** The serialised `ModelProto` of this graph. */
  encode(o: {
    graphName: string;
    inputs: ValueSpec[];
    outputs: ValueSpec[];
    producerVersion: string;
    docString: string;
    metadata: Record<string, string>;
  }): Uint8Array {
    const model: onnx.IModelProto = {
      irVersion: ONNX_IR_VERSION,
      opsetImport: [{ domain: "", version: ONNX_OPSET }],
      producerName: "galaxy",
      producerVersion: o.producerVersion,
      docString: o.docString,
      graph: {
        name: o.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: o.inputs.map(valueInfo),
        output: o.outputs.map(valueInfo),
      },
      metadataProps: Object.entries(o.metadata).map(([key, value]) => ({ key, value })),
    };
    const err = ONNX.ModelProto.verify(model);
    if (err) throw new Error(`internal error: invalid ONNX model message: ${err}`);
    return ONNX.ModelProto.encode(model).finish();
  }
}
