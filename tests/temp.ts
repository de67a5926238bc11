/**
 * Temporary folders for the tests and their fixtures, removed when the test
 * module is done, so that a test run leaves nothing in the system's temp
 * folder. Deno dispatches "unload" to each test module after its last test,
 * whether its tests passed or failed (not when the run is killed); fixtures
 * cached for the module (a tiny dataset, a trained run) therefore stay usable
 * until then. A test whose folder is its own alone may still remove it
 * earlier in a `finally`.
 *
 * @module
 */

const registered = new Set<string>();

globalThis.addEventListener("unload", () => {
  for (const path of registered) {
    try {
      Deno.removeSync(path, { recursive: true });
    } catch (e) {
      // Already removed by its test: fine. Anything else is worth a line in the output.
      if (!(e instanceof Deno.errors.NotFound)) {
        console.error(`cannot remove the test folder ${path}: ${(e as Error).message}`);
      }
    }
  }
  registered.clear();
});

/**
 * A new empty folder in the temp folder, named `prefix` + random characters,
 * removed when the test module is done.
 */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  registered.add(dir);
  return dir;
}
