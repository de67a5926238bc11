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
  | { string: string }
  | { graph: onnx.IGraphProto };

/** A graph input or output: element type and shape, `string` dims being symbolic (e.g. the batch). */
export interface ValueSpec {
  name: string;
  /**
   * Element type: float32 is the only one the exported models exchange; the
   * others appear between the nodes of a subgraph (a Loop body).
   */
  type: "float32" | "float64" | "int64" | "bool";
  /** Dimensions; absent: any shape (a subgraph's loop-carried values). */
  shape?: (number | string)[];
}

const ELEMENT_TYPES = {
  float32: ONNX.TensorProto.DataType.FLOAT,
  float64: ONNX.TensorProto.DataType.DOUBLE,
  int64: ONNX.TensorProto.DataType.INT64,
  bool: ONNX.TensorProto.DataType.BOOL,
} as const;

function attribute(name: string, v: AttrValue): onnx.IAttributeProto {
  const T = ONNX.AttributeProto.AttributeType;
  if ("int" in v) return { name, type: T.INT, i: v.int };
  if ("ints" in v) return { name, type: T.INTS, ints: [...v.ints] };
  if ("float" in v) return { name, type: T.FLOAT, f: v.float };
  if ("graph" in v) return { name, type: T.GRAPH, g: v.graph };
  return { name, type: T.STRING, s: new TextEncoder().encode(v.string) };
}

function valueInfo(v: ValueSpec): onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: ELEMENT_TYPES[v.type],
        ...(v.shape
          ? {
            shape: {
              dim: v.shape.map((d) => typeof d === "number" ? { dimValue: d } : { dimParam: d }),
            },
          }
          : {}),
      },
    },
  };
}

/** Little-endian bytes of a typed array (TensorProto.raw_data is little-endian by spec). */
export function littleEndianBytes(a: Float32Array | Float64Array | BigInt64Array): Uint8Array {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) return bytes.slice();
  const out = new Uint8Array(a.byteLength);
  const view = new DataView(out.buffer);
  a.forEach((x: number | bigint, i: number) =>
    typeof x === "bigint"
      ? view.setBigInt64(i * 8, x, true)
      : a instanceof Float64Array
      ? view.setFloat64(i * 8, x, true)
      : view.setFloat32(i * 4, x, true)
  );
  return out;
}

/** The initializers of a graph and its subgraphs, and the tensor names they all share. */
class Scope {
  readonly initializers: onnx.ITensorProto[] = [];
  readonly used = new Set<string>();
}

/** Collects the nodes and initializers of one graph, handing out unique tensor names. */
export class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  #scope: Scope;

  /** A builder of a new graph, or (given `scope`) of a subgraph of the graph that owns it. */
  constructor(scope: Scope = new Scope()) {
    this.#scope = scope;
  }

  /** The initializers of the graph and of every subgraph (ONNX subgraphs read outer values). */
  get initializers(): readonly onnx.ITensorProto[] {
    return this.#scope.initializers;
  }

  /**
   * A builder of a subgraph (a Loop body): its own nodes, names unique
   * across the whole model, and initializers kept in the outer graph, which
   * the subgraph reads by name.
   */
  subgraph(): GraphBuilder {
    return new GraphBuilder(this.#scope);
  }

  /** `base`, or `base_2`, `base_3` ... if taken: a tensor name not used before. */
  unique(base: string): string {
    let name = base;
    for (let i = 2; this.#scope.used.has(name); i++) name = `${base}_${i}`;
    this.#scope.used.add(name);
    return name;
  }

  /** Marks `name` as taken (a subgraph's input, named by the caller). */
  reserve(name: string): string {
    if (this.#scope.used.has(name)) throw new Error(`internal error: tensor ${name} exists`);
    this.#scope.used.add(name);
    return name;
  }

  /** Adds a float32 initializer of shape `dims`; returns its name. */
  floats(name: string, data: ArrayLike<number>, dims: readonly number[]): string {
    return this.#initializer(name, Float32Array.from(data), dims);
  }

  /** Adds a float64 initializer of shape `dims`; returns its name. */
  doubles(name: string, data: ArrayLike<number>, dims: readonly number[]): string {
    return this.#initializer(name, Float64Array.from(data), dims);
  }

  /** Adds a bool initializer of shape `dims`; returns its name. */
  bools(name: string, data: readonly boolean[], dims: readonly number[]): string {
    return this.#initializer(name, Uint8Array.from(data, (b) => b ? 1 : 0), dims);
  }

  /** Adds an int64 initializer of shape `dims` (e.g. Pad's pads, Slice's starts); returns its name. */
  int64s(name: string, data: readonly number[], dims: readonly number[] = [data.length]): string {
    return this.#initializer(name, BigInt64Array.from(data.map(BigInt)), dims);
  }

  #initializer(
    name: string,
    data: Float32Array | Float64Array | BigInt64Array | Uint8Array,
    dims: readonly number[],
  ): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== data.length) {
      throw new Error(`initializer ${name}: ${data.length} values for shape [${dims}]`);
    }
    const unique = this.unique(name);
    this.#scope.initializers.push({
      name: unique,
      dims: [...dims],
      dataType: data instanceof Float32Array
        ? ONNX.TensorProto.DataType.FLOAT
        : data instanceof Float64Array
        ? ONNX.TensorProto.DataType.DOUBLE
        : data instanceof Uint8Array
        ? ONNX.TensorProto.DataType.BOOL
        : ONNX.TensorProto.DataType.INT64,
      // One byte per bool (TensorProto raw_data).
      rawData: data instanceof Uint8Array ? data.slice() : littleEndianBytes(data),
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
    const out = output ?? this.unique(`${name}/${op}:0`);
    if (output !== undefined) this.#scope.used.add(output);
    this.#push(op, inputs, [out], attrs, name);
    return out;
  }

  /** Adds a node with `count` outputs (e.g. Loop); returns their fresh names. */
  nodeOutputs(
    op: string,
    inputs: readonly string[],
    count: number,
    attrs: Record<string, AttrValue> = {},
    name = op,
  ): string[] {
    const outs = Array.from({ length: count }, (_, i) => this.unique(`${name}/${op}:${i}`));
    this.#push(op, inputs, outs, attrs, name);
    return outs;
  }

  #push(
    op: string,
    inputs: readonly string[],
    outputs: string[],
    attrs: Record<string, AttrValue>,
    name: string,
  ): void {
    this.nodes.push({
      name: this.unique(`${name}/${op}`),
      opType: op,
      input: [...inputs],
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
  }

  /** This builder's nodes as a subgraph (a Loop body) with the given inputs and outputs. */
  graph(name: string, inputs: ValueSpec[], outputs: ValueSpec[]): onnx.IGraphProto {
    return {
      name,
      node: this.nodes,
      input: inputs.map(valueInfo),
      output: outputs.map(valueInfo),
    };
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
        initializer: [...this.initializers],
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
