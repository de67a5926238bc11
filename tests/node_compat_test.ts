import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import util from "node:util";
// The module every entry point loads first: it must bring the supplements with it.
import { nativeBindingPath } from "../lib/backend.ts";
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

for (const pkg of NATIVE_PACKAGES) {
  Deno.test(`${pkg} finds its binding under Deno where lib/backend.ts looks for it`, async () => {
    // tfjs-node's index.js asks @mapbox/node-pre-gyp for the path, from Deno's process.versions.
    const manifest = createRequire(from).resolve(`${pkg}/package.json`);
    const preGyp = createRequire(manifest)("@mapbox/node-pre-gyp");
    const theirs = preGyp.find(manifest) as string;
    const ours = nativeBindingPath(pkg)!;
    // The same package (through whichever link) and the same file inside it.
    const ourRoot = dirname(dirname(dirname(ours)));
    assert.equal(await Deno.realPath(ourRoot), await Deno.realPath(dirname(manifest)));
    assert.equal(relative(dirname(manifest), theirs), relative(ourRoot, ours));
    assert.equal(relative(ourRoot, ours), join("lib", "napi-v8", "tfjs_binding.node"));
  });
}

Deno.test("every N-API function tfjs-node's binding calls is exported by this Deno", async () => {
  const nm = await new Deno.Command("nm", {
    args: ["-D", Deno.execPath()],
    stdout: "piped",
    stderr: "null",
  })
    .output().catch(() => null);
  if (nm === null || !nm.success) {
    console.log(
      "skipped: nm (binutils) is not installed, so Deno's exported symbols cannot be read",
    );
    return;
  }
  const exported = new Set(new TextDecoder().decode(nm.stdout).match(/\bnapi_\w+/g) ?? []);
  const root = dirname(createRequire(from).resolve("@tensorflow/tfjs-node/package.json"));
  const called = new Set<string>();
  for await (const e of Deno.readDir(join(root, "binding"))) {
    const text = await Deno.readTextFile(join(root, "binding", e.name));
    for (const m of text.matchAll(/\b(napi_[a-z_]+)\s*\(/g)) called.add(m[1]);
  }
  // What the scan must find, or an empty scan would pass: the binding's module setup and tensors.
  for (const f of ["napi_define_properties", "napi_set_instance_data", "napi_create_typedarray"]) {
    assert.ok(called.has(f), `the scan of binding/ did not find ${f}: ${[...called]}`);
  }
  assert.deepEqual([...called].filter((f) => !exported.has(f)), [], "N-API functions Deno lacks");
});
