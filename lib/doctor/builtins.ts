/**
 * Which members of Node's built-in modules a package's compiled JavaScript
 * takes (`util_1.isNullOrUndefined`, `fs.existsSync`, ...), found by
 * reading its files, and which of them the running Deno does not provide.
 *
 * The scan reads CommonJS as TypeScript emits it: a variable bound to
 * `require("<built-in>")` (optionally wrapped in `__importStar` /
 * `__importDefault`), then every `<variable>.<member>` in the same file, plus
 * direct `require("<built-in>").<member>`. It is a reader of tsc's output,
 * not a JavaScript parser: computed access (`util["x"]`) is not seen.
 *
 * @module
 */
import { builtinModules, createRequire } from "node:module";
import { dirname, join, relative } from "node:path";

/** One member of a built-in module that a package uses. */
export interface BuiltinUse {
  /** Built-in module name without `node:` (`util`, `fs`, `path`). */
  module: string;
  /** Member taken from it (`isNullOrUndefined`). */
  member: string;
  /** Files (relative to the package root) and line numbers where it is used, e.g. `dist/index.js:60`. */
  sites: string[];
}

const BUILTINS = new Set(builtinModules.map((m) => m.replace(/^node:/, "")));

/** `var X = require("m")`, `const X = __importStar(require("node:m"))`. */
const BINDING =
  /\b(?:var|let|const)\s+([A-Za-z_$][\w$]*)\s*=\s*(?:__importStar\(|__importDefault\()?require\(\s*["'](?:node:)?([\w/]+)["']\s*\)/g;
/** `require("m").member`. */
const DIRECT = /\brequire\(\s*["'](?:node:)?([\w/]+)["']\s*\)\s*\.\s*([A-Za-z_$][\w$]*)/g;

function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * Built-in members used by one file's text. `file` names the sites.
 * Members of a default-import wrapper (`fs_1.default.x`) are read past `default`.
 */
export function scanSource(text: string, file: string): BuiltinUse[] {
  const uses = new Map<string, BuiltinUse>();
  const add = (module: string, member: string, index: number) => {
    if (member === "default") return;
    const key = `${module}.${member}`;
    const use = uses.get(key) ?? { module, member, sites: [] };
    use.sites.push(`${file}:${lineOf(text, index)}`);
    uses.set(key, use);
  };
  for (const m of text.matchAll(BINDING)) {
    const [, variable, module] = m;
    if (!BUILTINS.has(module)) continue;
    const esc = variable.replace(/\$/g, "\\$");
    const member = new RegExp(
      `(?<![\\w$.])${esc}\\s*\\.\\s*(?:default\\s*\\.\\s*)?([A-Za-z_$][\\w$]*)`,
      "g",
    );
    for (const u of text.matchAll(member)) add(module, u[1], u.index);
  }
  for (const m of text.matchAll(DIRECT)) {
    if (BUILTINS.has(m[1])) add(m[1], m[2], m.index);
  }
  return [...uses.values()];
}

/** Whether a file of a package's dist/ is ever loaded by a user (its own tests are not). */
function isShipped(path: string): boolean {
  return path.endsWith(".js") && !path.endsWith("_test.js") && !/(^|\/)run_tests\.js$/.test(path);
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) yield* walk(p);
    else if (e.isFile) yield p;
  }
}

/**
 * Built-in members used by the shipped JavaScript under `<package>/dist`
 * (the package's own tests excluded), merged across files and sorted.
 * Throws when the package is not installed.
 */
export async function scanPackage(pkg: string, from: string | URL): Promise<BuiltinUse[]> {
  const manifest = createRequire(from).resolve(`${pkg}/package.json`);
  const root = dirname(manifest);
  const merged = new Map<string, BuiltinUse>();
  for await (const path of walk(join(root, "dist"))) {
    if (!isShipped(path)) continue;
    const text = await Deno.readTextFile(path);
    for (const u of scanSource(text, relative(root, path))) {
      const key = `${u.module}.${u.member}`;
      const had = merged.get(key);
      if (had) had.sites.push(...u.sites);
      else merged.set(key, { ...u, sites: [...u.sites] });
    }
  }
  return [...merged.values()].sort((a, b) =>
    `${a.module}.${a.member}`.localeCompare(`${b.module}.${b.member}`)
  );
}

/**
 * The uses whose member the running Deno's built-in module lacks, as the
 * package's own `require` would see it.
 */
export function missingBuiltins(uses: readonly BuiltinUse[], from: string | URL): BuiltinUse[] {
  const require = createRequire(from);
  return uses.filter((u) => {
    const mod = require(u.module) as Record<string, unknown>;
    return mod[u.member] === undefined;
  });
}
