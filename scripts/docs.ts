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
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runMain } from "../lib/cli.ts";
import { bool, parseTask } from "../lib/flags.ts";
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { renderFlagBlocks } from "../lib/tasks/docs.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The markdown files that may hold generated blocks. */
export function docFiles(root = ROOT): string[] {
  const docs = [...Deno.readDirSync(join(root, "docs"))]
    .filter((e) => e.isFile && e.name.endsWith(".md")).map((e) => join(root, "docs", e.name))
    .sort();
  return [join(root, "README.md"), ...docs];
}

if (import.meta.main) {
  await runMain(async () => {
    const f = parseTask({
      task: "docs",
      synopsis: ["deno task docs [--check]"],
      flags: { check: bool("only report the files whose generated tables are stale") },
    }, Deno.args);
    let stale = 0;
    for (const file of docFiles()) {
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
