/**
 * docs/export.md's Python example, run as written (the code block after
 * `<!-- export-snippet -->`) on an exported tiny model and a real JPEG
 * (generated where ../shared/data is absent), with /usr/bin/python3.
 *
 * Python's `onnxruntime` is not a Debian package: where it is not
 * installed, `import onnxruntime` finds tests/ort_stand_in, which runs the
 * model with the same ONNX Runtime engine through onnxruntime-node and
 * reads the metadata with python3-onnx. Skipped, saying why, where python3,
 * numpy, Pillow, torch or torchvision (or, for the stand-in, python3-onnx)
 * are absent.
 *
 * @module
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { setupBackend } from "../lib/backend.ts";
import { loadImage } from "../lib/data/image.ts";
import { exportModel } from "../lib/export/export.ts";
import { exportImages, maxAbsDiff, predictFolder, tinyResNetRun } from "./fixtures_export.ts";
import { encodeImage } from "./fixtures_images.ts";
import { tempDir } from "./temp.ts";

await setupBackend();

const ROOT = new URL("..", import.meta.url).pathname;
const PYTHON = "/usr/bin/python3";
const STAND_IN = join(ROOT, "tests", "ort_stand_in");

function imports(modules: string): boolean {
  if (!existsSync(PYTHON)) return false;
  return new Deno.Command(PYTHON, { args: ["-c", `import ${modules}`], stderr: "null" })
    .outputSync().success;
}
const realOrt = imports("onnxruntime");
const why = !existsSync(PYTHON)
  ? `${PYTHON} is absent`
  : !imports("numpy, PIL, torch, torchvision")
  ? `${PYTHON} lacks numpy, Pillow, torch or torchvision (Debian: python3-pil, python3-torch, ` +
    "python3-torchvision)"
  : !realOrt && !imports("onnx")
  ? `${PYTHON} has neither onnxruntime nor python3-onnx (for the stand-in)`
  : "";
if (why) console.warn(`skipping the docs/export.md snippet test: ${why}`);

/** The code block after the marker in docs/export.md. */
async function snippet(): Promise<string> {
  const doc = await Deno.readTextFile(join(ROOT, "docs", "export.md"));
  const after = doc.split("<!-- export-snippet -->")[1];
  const m = after && /```python\n([\s\S]*?)```/.exec(after);
  if (!m) throw new Error("docs/export.md: no ```python block after <!-- export-snippet -->");
  return m[1];
}

/** Mean pixel difference allowed between the snippet's Pillow preprocessing and the toolkit's. */
const PIXEL_TOLERANCE = 1.5;

Deno.test({
  name: "docs/export.md: the Python example runs as written; ONNX and torch agree within 1e-4, " +
    `its pixels are within ${PIXEL_TOLERANCE} grey levels of the toolkit's on average`,
  ignore: why !== "",
  async fn() {
    const size = 64, crop = 0.5;
    const run = await tinyResNetRun({ stem: "imagenet", head: "tree", size, crop });
    const cwd = await tempDir("galaxy-export-docs-");
    await exportModel({ model: run, format: "onnx", out: join(cwd, "model.onnx") });
    await exportModel({ model: run, format: "torch", out: join(cwd, "model.safetensors") });
    const images = await exportImages(1);
    const image = join(cwd, "galaxy.jpg");
    if (images.real) {
      const [name] = [...Deno.readDirSync(images.dir)].map((e) => e.name);
      await Deno.copyFile(join(images.dir, name), image);
    } else {
      // A survey-sized image: the small generated ones would be enlarged, which no survey needs.
      await Deno.writeFile(image, await encodeImage(424, 424, 5));
    }
    const epilogue = '\nprint("RESULT " + json.dumps({"onnx": onnx_out.tolist(), ' +
      '"torch": torch_out.tolist(), "pixels": pixels.reshape(-1).tolist()}))\n';
    await Deno.writeTextFile(join(cwd, "example.py"), (await snippet()) + epilogue);
    const r = await new Deno.Command(PYTHON, {
      args: ["example.py"],
      cwd,
      env: {
        PYTHONPATH: [join(ROOT, "python"), ...(realOrt ? [] : [STAND_IN])].join(":"),
        DENO: Deno.execPath(),
      },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(240_000),
    }).output();
    const out = new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    assert.match(out, /\{'Class1\.1': [0-9.e-]+, 'Class1\.2'/);
    const line = out.split("\n").find((l) => l.startsWith("RESULT "))!;
    const got = JSON.parse(line.slice(7)) as {
      onnx: number[][];
      torch: number[][];
      pixels: number[];
    };
    assert.ok(maxAbsDiff(got.onnx, got.torch.flat()) <= 1e-4);
    const toolkit = (await loadImage(image, { size, crop })).pixels;
    let sum = 0;
    for (let i = 0; i < toolkit.length; i++) sum += Math.abs(toolkit[i] - got.pixels[i]);
    const mean = sum / toolkit.length;
    const want = await predictFolder(run, cwd);
    const outputs = maxAbsDiff(want.rows, got.onnx.flat());
    console.log(
      `${images.real ? images.note : "a generated 424x424 JPEG"}; ${
        realOrt ? "onnxruntime" : "stand-in onnxruntime"
      }: ` +
        `mean pixel difference ${mean.toFixed(3)}, largest output difference ${outputs.toFixed(5)}`,
    );
    assert.ok(mean <= PIXEL_TOLERANCE, `mean pixel difference ${mean}`);
  },
});
