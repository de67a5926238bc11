/**
 * The generated parts of the markdown docs: between
 * `<!-- flags:TASK -->` and `<!-- /flags:TASK -->` stands the task's
 * synopsis and flag table, made from its flag table (lib/tasks/), so the
 * docs cannot drift from the parser. `deno task docs` rewrites them;
 * tests/docs_test.ts fails when a file differs from what it would write.
 *
 * @module
 */
import { join } from "node:path";
import { markdownTable, type TaskFlags } from "../flags.ts";
import { TASKS } from "./mod.ts";

const MARKER = /<!-- flags:([a-z-]+) -->\n[\s\S]*?<!-- \/flags:\1 -->/g;

/** The generated block of a task: its synopsis as a code block, then its flag table. */
export function flagsBlock(cli: TaskFlags): string {
  return [
    `<!-- flags:${cli.task} -->`,
    "",
    "```",
    ...cli.synopsis,
    "```",
    "",
    markdownTable(cli),
    "",
    `<!-- /flags:${cli.task} -->`,
  ].join("\n");
}

/** The tasks whose blocks `markdown` holds, in order. */
export function flagBlocksIn(markdown: string): string[] {
  return [...markdown.matchAll(MARKER)].map((m) => m[1]);
}

/**
 * `markdown` with every flags block regenerated; a block naming a task
 * that does not exist is an Error naming it and `file`.
 */
export function renderFlagBlocks(markdown: string, file: string, tasks = TASKS): string {
  return markdown.replace(MARKER, (_block, name: string) => {
    const cli = tasks.find((t) => t.task === name);
    if (!cli) {
      throw new Error(
        `${file}: <!-- flags:${name} --> names no task (tasks: ${
          tasks.map((t) => t.task).join(", ")
        })`,
      );
    }
    return flagsBlock(cli);
  });
}

/** The markdown files under `root` that may hold generated blocks: README.md and docs/*.md. */
export function docFiles(root: string): string[] {
  const docs = [...Deno.readDirSync(join(root, "docs"))]
    .filter((e) => e.isFile && e.name.endsWith(".md")).map((e) => join(root, "docs", e.name))
    .sort();
  return [join(root, "README.md"), ...docs];
}
