/**
 * Runs a task's script as `deno task NAME` runs it (the script and the
 * permissions written in deno.json), with a deadline, so a test of a CLI
 * checks what users get and never hangs.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { withDeadline } from "./deadline.ts";

/** The repository's root folder. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The `--allow-*` flags and the script of task `name` in deno.json. */
export function taskCommandLine(name: string): { permissions: string[]; script: string } {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`));
  const words = String(config.tasks[name] ?? "").split(" ");
  const script = words.find((w) => w.endsWith(".ts"));
  if (!script) throw new Error(`deno.json has no task '${name}' running a .ts script`);
  return { permissions: words.filter((w) => w.startsWith("--allow")), script };
}

/**
 * Runs task `name` with `args` from the repository root, output piped;
 * fails naming the task if it has not ended within `seconds` (the child is
 * then killed).
 */
export function runTask(
  name: string,
  args: string[],
  o: { seconds?: number; env?: Record<string, string> } = {},
): Promise<Deno.CommandOutput> {
  const { permissions, script } = taskCommandLine(name);
  return withDeadline(
    `deno task ${name} ${args.join(" ")}`,
    o.seconds ?? 300,
    (signal) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--config", `${ROOT}/deno.json`, ...permissions, script, ...args],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1", ...o.env },
        signal,
      }).output(),
  );
}
