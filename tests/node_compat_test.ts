import assert from "node:assert/strict";
import { createRequire } from "node:module";
import util from "node:util";
// The module every entry point loads first: it must bring the supplements with it.
import "../lib/backend.ts";
import { missingBuiltins, scanPackage, scanSource } from "../lib/doctor/builtins.ts";

const NATIVE_PACKAGES = ["@tensorflow/tfjs-node", "@tensorflow/tfjs-node-gpu"];
const from = new URL("../mod.ts", import.meta.url);

for (const pkg of NATIVE_PACKAGES) {
  Deno.test(`every Node built-in member ${pkg} takes exists once lib/backend.ts is loaded`, async () => {
    const uses = await scanPackage(pkg, from);
    const found = new Set(uses.map((u) => `${u.module}.${u.member}`));
    // The scan must see what is known to be there, or an empty scan would pass.
    for (
      const known of ["util.isNullOrUndefined", "util.promisify", "fs.existsSync", "path.join"]
    ) {
      assert.ok(found.has(known), `the scan of ${pkg} did not find ${known}: ${[...found]}`);
    }
    const missing = missingBuiltins(uses, from);
    assert.deepEqual(
      missing.map((u) => `${u.module}.${u.member} (used at ${u.sites.join(", ")})`),
      [],
      `${pkg} calls Node built-ins this Deno (${Deno.version.deno}) lacks; ` +
        "supply them in lib/node_compat.ts",
    );
  });
}

Deno.test("tfjs-node's op-attribute helper runs (it crashed on util.isNullOrUndefined)", () => {
  const require = createRequire(from);
  const kernelBackend = require("@tensorflow/tfjs-node-gpu/dist/nodejs_kernel_backend.js");
  // Without a binding it gets as far as asking the (absent) native backend for the dtype code.
  assert.throws(
    () => kernelBackend.createTensorsTypeOpAttr("T", "float32"),
    (e: Error) => !/is not a function/.test(e.message) && /binding/.test(e.message),
  );
});

Deno.test("the supplement has Node's semantics and never replaces what Deno has", async () => {
  // Imported here, not above: the scan tests must see only what lib/backend.ts brings.
  const { installNodeSupplements, NODE_SUPPLEMENTS } = await import("../lib/node_compat.ts");
  const isNullOrUndefined = (util as unknown as Record<string, (v: unknown) => boolean>)
    .isNullOrUndefined;
  assert.equal(isNullOrUndefined(null), true);
  assert.equal(isNullOrUndefined(undefined), true);
  for (const v of [0, "", false, NaN, {}, []]) assert.equal(isNullOrUndefined(v), false);
  // Already present now, so a second install changes nothing.
  assert.deepEqual(installNodeSupplements(), []);
  const require = createRequire(from);
  for (const [mod, members] of Object.entries(NODE_SUPPLEMENTS)) {
    for (const name of Object.keys(members)) {
      assert.equal(typeof require(mod)[name], "function", `${mod}.${name} as require sees it`);
    }
  }
});

Deno.test("the scan reads tsc's CommonJS: bound, wrapped and direct requires, not locals", () => {
  const src = [
    'var util_1 = require("util");',
    'const fs = __importStar(require("node:fs"));',
    'var path = require("path");',
    'var lib = require("./lib");',
    "(0, util_1.isNullOrUndefined)(x);",
    "fs.default.existsSync(p); fs.readFileSync(p);",
    'var v = require("os").endianness();',
    "function f(paths) { return paths.length + lib.path.length; }",
    "path.join(a, b);",
  ].join("\n");
  const uses = scanSource(src, "x.js").map((u) => `${u.module}.${u.member}@${u.sites}`);
  assert.deepEqual(uses.sort(), [
    "fs.existsSync@x.js:6",
    "fs.readFileSync@x.js:6",
    "os.endianness@x.js:7",
    "path.join@x.js:9",
    "util.isNullOrUndefined@x.js:5",
  ]);
});
