/**
 * Deadlines for tests that start processes: such a test fails with a message
 * naming what it was waiting for, instead of hanging the whole run (CI has 90
 * minutes, and one hung test loses them all).
 *
 * The body gets an `AbortSignal` that fires at the deadline: pass it to
 * `Deno.Command` (`signal`) so its child is killed, or hook a pool's `kill()`
 * on it, so no process outlives the failed test.
 *
 * @module
 */

/**
 * Runs `body`, rejecting with "`what` did not finish within `seconds` s" if it
 * has not settled by then (and aborting the signal it was given).
 */
export async function withDeadline<T>(
  what: string,
  seconds: number,
  body: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const abort = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const e = new Error(`${what} did not finish within ${seconds} s: stopped as hung`);
      abort.abort(e);
      reject(e);
    }, seconds * 1000);
  });
  try {
    return await Promise.race([body(abort.signal), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** `Deno.test(name, fn)` with {@linkcode withDeadline} around `fn`. */
export function deadlineTest(
  name: string,
  seconds: number,
  fn: (signal: AbortSignal) => Promise<void>,
  options: Omit<Deno.TestDefinition, "name" | "fn"> = {},
): void {
  Deno.test({ ...options, name, fn: () => withDeadline(`test '${name}'`, seconds, fn) });
}
