/**
 * Seeded pseudo-random numbers for the generated data set: a splitmix32
 * stream with the draws the generator needs, seeded through the toolkit's
 * {@linkcode mixSeed} (lib/random.ts), so every galaxy gets its own
 * independent stream derived from (seed, GalaxyID, purpose) and the output
 * does not depend on the order or concurrency in which galaxies are produced.
 *
 * @module
 */
import { mixSeed } from "../../random.ts";

/** A splitmix32 generator: small state, passes the usual statistical batteries. */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Next unsigned 32-bit integer. */
  nextU32(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer uniform in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Standard normal deviate (Box-Muller; one of the pair is discarded to keep state simple). */
  normal(): number {
    const u = 1 - this.next(); // (0, 1]: log stays finite
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Log-uniform in [lo, hi). */
  logUniform(lo: number, hi: number): number {
    return lo * Math.exp(Math.log(hi / lo) * this.next());
  }

  /** Index drawn with probability proportional to `weights` (not necessarily normalised). */
  pick(weights: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < weights.length; i++) total += weights[i];
    let u = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      u -= weights[i];
      if (u < 0) return i;
    }
    // Rounding can leave u a hair above zero: return the last non-zero weight.
    for (let i = weights.length - 1; i >= 0; i--) if (weights[i] > 0) return i;
    throw new Error("Rng.pick: all weights are zero");
  }
}

/**
 * A keyed bijection on [0, size): a 4-round Feistel network on the next
 * power-of-four domain with cycle walking. Used to turn counters into unique,
 * scattered GalaxyIDs without a registry of used IDs.
 */
export function permuteIndex(index: number, size: number, key: number): number {
  if (!(index >= 0 && index < size)) throw new Error(`permuteIndex: ${index} outside [0, ${size})`);
  let halfBits = 1;
  while (1 << (2 * halfBits) < size) halfBits++;
  const mask = (1 << halfBits) - 1;
  let x = index;
  do {
    let left = x >>> halfBits;
    let right = x & mask;
    for (let round = 0; round < 4; round++) {
      const f = mixSeed(key, round, right) & mask;
      const next = left ^ f;
      left = right;
      right = next;
    }
    x = (left << halfBits) | right;
  } while (x >= size);
  return x;
}

/** Seed used when none is given. */
export const DEFAULT_SEED = 42;
