/**
 * Has the scheme's class set changed since the current run? A class folder
 * gains its first images (or loses its last) between two nightly runs, and
 * the `csv` scheme's classes are whatever the data holds. The old model's
 * output layer then no longer fits: it cannot be fine-tuned, and its test
 * scores on the new labels mean nothing.
 *
 * @module
 */

/** Classes added and removed between two class lists. */
export interface ClassChange {
  added: string[];
  removed: string[];
}

/** The classes added and removed from `before` to `after`, or null when the set is the same. */
export function classChange(
  before: readonly string[],
  after: readonly string[],
): ClassChange | null {
  const was = new Set(before);
  const now = new Set(after);
  const added = after.filter((c) => !was.has(c));
  const removed = before.filter((c) => !now.has(c));
  return added.length || removed.length ? { added, removed } : null;
}

/** E.g. `added 'irregular'; removed 'merger'`. */
export function describeClassChange(c: ClassChange): string {
  const list = (xs: string[]) => xs.map((x) => `'${x}'`).join(", ");
  return [
    ...(c.added.length ? [`added ${list(c.added)}`] : []),
    ...(c.removed.length ? [`removed ${list(c.removed)}`] : []),
  ].join("; ");
}
