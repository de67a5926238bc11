/**
 * Node built-in functions that `@tensorflow/tfjs-node(-gpu)` 4.22.0 calls
 * and the pinned Deno's Node compatibility layer lacks, supplied on the
 * built-in modules themselves before any TensorFlow op runs.
 *
 * tfjs-node is CommonJS: it holds `require("util")` and looks a member up
 * at each call (`(0, util_1.isNullOrUndefined)(x)`), and Deno's `require`
 * of a built-in returns the same object as the `node:` module's default
 * export. Setting the member there is therefore seen by tfjs-node whenever
 * it was loaded. `lib/backend.ts` imports this module first, so anyone who
 * imports the toolkit, including a library user who later calls
 * `tf.setBackend("tensorflow")` themselves, is covered.
 *
 * Today's one gap: `util.isNullOrUndefined`, which Node deprecated in v4 and
 * removed in v23 and Deno 2.9.6 does not have (tensorflow/tfjs fixed its
 * callers upstream after 4.22.0, unreleased). `tests/node_compat_test.ts`
 * scans both packages' `dist/` for every member they take from a built-in
 * and fails, naming it, when one is missing, so a Deno upgrade that drops
 * another fails CI rather than a GPU run.
 *
 * @module
 */
import util from "node:util";

/**
 * The supplements, by built-in module and member, each with the semantics
 * Node documented for it. Only members the running Deno lacks are set.
 */
export const NODE_SUPPLEMENTS: Readonly<
  Record<string, Readonly<Record<string, (...args: never[]) => unknown>>>
> = {
  util: {
    /** Node: `true` if `object` is `null` or `undefined`, else `false`. */
    isNullOrUndefined: (object: unknown): boolean => object === null || object === undefined,
  },
};

/** The built-in module objects the supplements go on (what `require(name)` returns). */
const MODULES: Readonly<Record<string, Record<string, unknown>>> = {
  util: util as unknown as Record<string, unknown>,
};

/**
 * Sets every supplement the running Deno lacks on its built-in module and
 * returns their names (`util.isNullOrUndefined`); idempotent, and never
 * replaces a member Deno has.
 */
export function installNodeSupplements(): string[] {
  const installed: string[] = [];
  for (const [mod, members] of Object.entries(NODE_SUPPLEMENTS)) {
    const target = MODULES[mod];
    for (const [name, fn] of Object.entries(members)) {
      if (typeof target[name] === "function") continue;
      Object.defineProperty(target, name, {
        value: fn,
        writable: true,
        configurable: true,
        enumerable: false,
      });
      installed.push(`${mod}.${name}`);
    }
  }
  return installed;
}

/** What this process supplied when the module loaded (empty on a Deno that has them all). */
export const SUPPLIED: readonly string[] = installNodeSupplements();
