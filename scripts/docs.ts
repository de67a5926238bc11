/**
 * `deno task docs [--check]`: rewrites the generated flag tables of
 * README.md and docs/*.md from the tasks' flag tables (lib/tasks/docs.ts);
 * `--check` only says which files differ.
 *
 * Exit status: 0 up to date (or rewritten); 1 `--check` found a stale file;
 * 2 usage error.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { runMain } from "../lib/cli.ts";
import { bool, parseTask } from "../lib/flags.ts";
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { docFiles, renderFlagBlocks } from "../lib/tasks/docs.ts";

if (import.meta.main) {
  await runMain(async () => {
    const f = parseTask({
      task: "docs",
      synopsis: ["deno task docs [--check]"],
      flags: { check: bool("only report the files whose generated tables are stale") },
    }, Deno.args);
    let stale = 0;
    for (const file of docFiles(fileURLToPath(new URL("..", import.meta.url)))) {
      const before = await Deno.readTextFile(file);
      const after = renderFlagBlocks(before, file);
      if (after === before) continue;
      stale++;
      if (f.check) console.error(`${file}: flag tables out of date (run deno task docs)`);
      else {
        await writeFileAtomic(file, new TextEncoder().encode(after));
        console.log(`rewrote ${file}`);
      }
    }
    return f.check && stale ? 1 : 0;
  });
}
