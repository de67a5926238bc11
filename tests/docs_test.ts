import assert from "node:assert/strict";
import { UsageError } from "../lib/cli.ts";
import {
  bool,
  choice,
  hidden,
  int,
  list,
  markdownTable,
  parseTask,
  text,
  usage,
} from "../lib/flags.ts";
import { docFiles, flagBlocksIn, flagsBlock, renderFlagBlocks } from "../lib/tasks/docs.ts";
import { TASKS } from "../lib/tasks/mod.ts";
import { TRAIN_TASK } from "../lib/tasks/train.ts";
import { ROOT, runTask } from "./task_cli.ts";

const demo = {
  task: "demo-task",
  synopsis: ["deno task demo-task --in DIR"],
  flags: {
    in: text("DIR", "input folder"),
    epochs: int("N", "epochs", { min: 1, default: 3 }),
    head: choice(["softmax", "tree"] as const, "output layer", { default: "softmax" }),
    dry: bool("do nothing"),
    merge: list("FILES", "files to merge"),
    rank: hidden(int("N", "set by the launcher", { min: 0 })),
  },
};

Deno.test("parseTask: defaults, checked values, repeats; unknown flags and bad values are usage errors", () => {
  assert.deepEqual(parseTask(demo, []), {
    in: undefined,
    epochs: 3,
    head: "softmax",
    dry: false,
    merge: [],
    rank: undefined,
  });
  assert.deepEqual(
    parseTask(demo, [
      "--in",
      "x",
      "--epochs=7",
      "--head",
      "tree",
      "--dry",
      "--merge",
      "a",
      "--merge",
      "b",
    ]),
    { in: "x", epochs: 7, head: "tree", dry: true, merge: ["a", "b"], rank: undefined },
  );
  assert.throws(
    () => parseTask(demo, ["--epochs", "0"]),
    /--epochs must be an integer >= 1, got '0'/,
  );
  assert.throws(() => parseTask(demo, ["--head", "big"]), /--head must be one of softmax, tree/);
  assert.throws(
    () => parseTask(demo, ["--bogus"]),
    (e) =>
      e instanceof UsageError && /bogus/.test(e.message) &&
      /usage: deno task demo-task/.test(e.message),
  );
});

Deno.test("usage and the markdown table come from the same table; hidden flags are in neither", () => {
  const help = usage(demo);
  assert.match(help, /^usage: deno task demo-task --in DIR$/m);
  assert.match(help, /^ {2}--epochs N {12}epochs \(3\)$/m);
  assert.match(help, /^ {2}--head softmax\|tree {3}output layer \(softmax\)$/m);
  assert.doesNotMatch(help, /--rank/);
  const table = markdownTable(demo);
  const rows = table.split("\n");
  assert.equal(rows.length, 2 + 5);
  assert.match(rows[4], /^\| `--head softmax\\\|tree` +\| output layer \(softmax\) +\|$/);
  assert.doesNotMatch(table, /--rank/);
  // Padded as deno fmt pads tables: every row as long as the header.
  assert.ok(rows.every((r) => r.length === rows[0].length));
});

Deno.test("a flags block is regenerated in place, a stale one is rewritten, an unknown task is named", () => {
  const doc = (body: string) => `# t\n\nbefore\n\n${body}\n\nafter\n`;
  const fresh = doc(flagsBlock(demo));
  assert.equal(renderFlagBlocks(fresh, "x.md", [demo]), fresh);
  const stale = doc("<!-- flags:demo-task -->\n| old |\n<!-- /flags:demo-task -->");
  assert.equal(renderFlagBlocks(stale, "x.md", [demo]), fresh);
  const changed = { ...demo, flags: { ...demo.flags, epochs: int("N", "epochs", { default: 4 }) } };
  assert.notEqual(renderFlagBlocks(fresh, "x.md", [changed]), fresh);
  assert.throws(
    () => renderFlagBlocks(doc("<!-- flags:nope -->\n<!-- /flags:nope -->"), "x.md", [demo]),
    /x\.md: <!-- flags:nope --> names no task/,
  );
});

Deno.test("the docs' flag tables are the generated ones, each task's exactly once (else: deno task docs)", async () => {
  const seen: string[] = [];
  for (const file of docFiles(ROOT)) {
    const markdown = await Deno.readTextFile(file);
    assert.equal(
      markdown,
      renderFlagBlocks(markdown, file),
      `${file}: its flag tables differ from the generated ones; run deno task docs`,
    );
    seen.push(...flagBlocksIn(markdown));
  }
  assert.deepEqual(seen.toSorted(), TASKS.map((t) => t.task).toSorted());
});

Deno.test("README.md stays a front door: at most 25 KB, the details in docs/", async () => {
  const bytes = (await Deno.stat(`${ROOT}/README.md`)).size;
  assert.ok(
    bytes <= 25 * 1024,
    `README.md is ${bytes} bytes, more than 25 KiB: move details to docs/`,
  );
});

Deno.test("deno task train --help prints the usage made from train's table", async () => {
  const r = await runTask("train", ["--help"], { seconds: 120 });
  assert.equal(r.code, 0);
  assert.equal(new TextDecoder().decode(r.stdout).trimEnd(), usage(TRAIN_TASK));
});
