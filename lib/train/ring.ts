/**
 * Ring collectives between replica processes on one machine, over TCP on
 * loopback.
 *
 * Replica r listens on a loopback port it publishes as `DIR/r<r>.port`,
 * sends to replica r+1 and receives
 * from replica r-1 (mod N). The all-reduce is the bandwidth-optimal ring
 * algorithm (Patarasuk & Yuan 2009, as in Horovod and NCCL): a
 * reduce-scatter then an all-gather, each of N-1 rounds moving 1/N of the
 * buffer, so every replica sends and receives 2 (N-1)/N of the gradient.
 * Each chunk is summed by exactly one replica and then copied, so all
 * replicas end with bit-identical results.
 *
 * A replica that dies closes its sockets; its neighbours then fail their
 * next read with an error naming it, instead of hanging.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import type { Collective } from "./collective.ts";
import {
  mapShared,
  type SharedMapping,
  sharedMemoryAvailable,
  unlinkShared,
} from "./shared_memory.ts";

/** Exact-length read from a connection, naming the peer when it has gone. */
async function readExactly(conn: Deno.Conn, buf: Uint8Array, peer: string): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    let n: number | null;
    try {
      n = await conn.read(buf.subarray(off));
    } catch (e) {
      throw new Error(`lost the connection to ${peer}: ${(e as Error).message}`);
    }
    if (n === null) throw new Error(`${peer} closed its connection (did it crash?)`);
    off += n;
  }
}

async function writeAll(conn: Deno.Conn, buf: Uint8Array, peer: string): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    try {
      off += await conn.write(buf.subarray(off));
    } catch (e) {
      throw new Error(`lost the connection to ${peer}: ${(e as Error).message}`);
    }
  }
}

function bytesOf(a: Float32Array | Float64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Options of {@linkcode connectRing}. */
export interface RingOptions {
  /** Folder holding the sockets (shared by all replicas of a run). */
  dir: string;
  rank: number;
  size: number;
  /** How long to wait for the neighbours to come up. Default 120 s. */
  connectTimeoutMs?: number;
  /**
   * A file under /dev/shm for the all-reduce through shared memory; without
   * it (or where shared memory is unavailable) gradients go around the ring.
   */
  sharedMemoryPath?: string;
}

/** Joins the ring and returns the group's {@linkcode Collective}. */
export async function connectRing(options: RingOptions): Promise<Collective> {
  const { dir, rank, size } = options;
  if (size < 2) throw new Error("a ring needs at least 2 replicas");
  const timeout = options.connectTimeoutMs ?? 120_000;
  const next = (rank + 1) % size;
  const prev = (rank + size - 1) % size;
  const nextName = `replica ${next}`;
  const prevName = `replica ${prev}`;
  // TCP on loopback (Deno grants it as --allow-net=127.0.0.1); each replica
  // publishes its port in the run's folder, written atomically.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await writeFileAtomic(join(dir, `r${rank}.port`), String(listener.addr.port));
  const accepted = listener.accept();

  const deadline = Date.now() + timeout;
  let out: Deno.TcpConn | null = null;
  while (out === null) {
    try {
      const port = Number(await Deno.readTextFile(join(dir, `r${next}.port`)));
      out = await Deno.connect({ hostname: "127.0.0.1", port });
      out.setNoDelay(true);
    } catch {
      if (Date.now() > deadline) {
        listener.close();
        throw new Error(`replica ${rank}: ${nextName} did not come up within ${timeout / 1000} s`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await writeAll(out, new Uint8Array(new Uint32Array([rank]).buffer), nextName);
  const timer = setTimeout(() => listener.close(), Math.max(0, deadline - Date.now()));
  let inc: Deno.TcpConn;
  try {
    inc = await accepted;
  } catch {
    throw new Error(`replica ${rank}: ${prevName} did not connect within ${timeout / 1000} s`);
  } finally {
    clearTimeout(timer);
  }
  inc.setNoDelay(true);
  const hello = new Uint8Array(4);
  await readExactly(inc, hello, prevName);
  const from = new Uint32Array(hello.buffer)[0];
  if (from !== prev) throw new Error(`replica ${rank}: expected ${prevName}, got replica ${from}`);
  listener.close();
  const outConn = out;

  let scratch = new Float32Array(0);
  const chunk = (n: number, i: number): [number, number] => {
    const per = Math.ceil(n / size);
    return [Math.min(n, i * per), Math.min(n, (i + 1) * per)];
  };
  /** Sends `send` to next while receiving `recvLen` floats from prev into scratch. */
  const exchange = async (send: Float32Array, recvLen: number): Promise<Float32Array> => {
    if (scratch.length < recvLen) scratch = new Float32Array(recvLen);
    const recv = scratch.subarray(0, recvLen);
    await Promise.all([
      writeAll(outConn, bytesOf(send), nextName),
      readExactly(inc, bytesOf(recv), prevName),
    ]);
    return recv;
  };
  const mod = (i: number) => ((i % size) + size) % size;

  let own = new Float32Array(0);
  const ring: Collective = {
    rank,
    size,
    transport: "tcp-ring",
    scratch(n) {
      if (own.length !== n) own = new Float32Array(n);
      return own;
    },
    async allReduceMean(data) {
      const n = data.length;
      // Reduce-scatter: after N-1 rounds replica r holds the full sum of chunk r+1.
      for (let s = 0; s < size - 1; s++) {
        const [sa, sb] = chunk(n, mod(rank - s));
        const [ra, rb] = chunk(n, mod(rank - s - 1));
        const recv = await exchange(data.subarray(sa, sb), rb - ra);
        const target = data.subarray(ra, rb);
        for (let i = 0; i < recv.length; i++) target[i] += recv[i];
      }
      // Each replica scales the chunk it owns, so the mean is computed once per value.
      const [oa, ob] = chunk(n, mod(rank + 1));
      const own = data.subarray(oa, ob);
      for (let i = 0; i < own.length; i++) own[i] /= size;
      // All-gather: pass the finished chunks around the ring.
      for (let s = 0; s < size - 1; s++) {
        const [sa, sb] = chunk(n, mod(rank + 1 - s));
        const [ra, rb] = chunk(n, mod(rank - s));
        const recv = await exchange(data.subarray(sa, sb), rb - ra);
        data.set(recv, ra);
      }
    },
    async broadcast(data) {
      // Replica 0's copy travels once around the ring.
      if (rank !== 0) {
        await readExactly(inc, bytesOf(data), prevName);
      }
      if (next !== 0) await writeAll(outConn, bytesOf(data), nextName);
    },
    async allGather(value) {
      const all = new Float64Array(size);
      all[rank] = value;
      const one = new Float64Array(1);
      for (let s = 0; s < size - 1; s++) {
        one[0] = all[mod(rank - s)];
        const got = new Float64Array(1);
        await Promise.all([
          writeAll(outConn, bytesOf(one), nextName),
          readExactly(inc, bytesOf(got), prevName),
        ]);
        all[mod(rank - s - 1)] = got[0];
      }
      return Array.from(all);
    },
    close() {
      for (const c of [outConn, inc]) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      return Promise.resolve();
    },
  };
  const shmPath = options.sharedMemoryPath;
  if (!shmPath) return ring;
  // Every replica must take the same path: use shared memory only if all can.
  const able = await ring.allGather(sharedMemoryAvailable() ? 1 : 0);
  return able.every((a) => a === 1) ? withSharedMemory(ring, shmPath) : ring;
}

/**
 * Replaces the ring's all-reduce by one through shared memory: every
 * replica copies its buffer into its own slot, then sums one 1/N chunk
 * across all slots (always in rank order, so the result is the same bits
 * everywhere), then copies the finished chunks out. Small ring messages act
 * as the barriers between the phases.
 */
function withSharedMemory(ring: Collective, path: string): Collective {
  const { rank, size } = ring;
  let map: SharedMapping | null = null;
  let slots: Float32Array[] = [];
  const barrier = () => ring.allGather(0);
  const ensure = (n: number) => {
    if (!map || slots[0].length !== n) {
      map?.close();
      map = mapShared(path, n * 4 * size);
      slots = Array.from({ length: size }, (_, r) => new Float32Array(map!.buffer, r * n * 4, n));
    }
  };
  return {
    ...ring,
    transport: "shared-memory",
    scratch(n) {
      ensure(n);
      return slots[rank];
    },
    async allReduceMean(data) {
      const n = data.length;
      ensure(n);
      const mine = slots[rank];
      if (data !== mine) mine.set(data);
      await barrier();
      const per = Math.ceil(n / size);
      const a = Math.min(n, rank * per), b = Math.min(n, (rank + 1) * per);
      // Sum chunk `rank` over the slots in rank order, in place in this replica's
      // own slot (nobody else reads that chunk of it).
      if (size === 2) {
        const s0 = slots[0], s1 = slots[1];
        for (let i = a; i < b; i++) mine[i] = (s0[i] + s1[i]) / 2;
      } else {
        for (let i = a; i < b; i++) {
          let sum = slots[0][i];
          for (let r = 1; r < size; r++) sum = Math.fround(sum + slots[r][i]);
          mine[i] = sum / size;
        }
      }
      await barrier();
      for (let r = 0; r < size; r++) {
        if (r === rank && data === mine) continue;
        const ra = Math.min(n, r * per), rb = Math.min(n, (r + 1) * per);
        data.set(slots[r].subarray(ra, rb), ra);
      }
      // Nobody may overwrite a slot before everyone has copied out of it.
      await barrier();
    },
    async close() {
      map?.close();
      if (rank === 0) unlinkShared(path);
      await ring.close();
    },
  };
}
