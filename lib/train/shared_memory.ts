/**
 * Shared memory between replica processes: a file under /dev/shm mapped
 * into every replica with libc's `mmap` through Deno's FFI, so gradients
 * are summed straight out of each other's memory instead of being copied
 * through sockets. Linux only; {@linkcode sharedMemoryAvailable} says
 * whether it works here, and the mirrored trainer falls back to the socket
 * ring where it does not.
 *
 * @module
 */

const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
const O_RDWR = 2, O_CREAT = 0o100;

const symbols = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  posix_fallocate: { parameters: ["i32", "i64", "i64"], result: "i32" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  unlink: { parameters: ["buffer"], result: "i32" },
} as const;

let libc: Deno.DynamicLibrary<typeof symbols> | null = null;
function lib(): Deno.DynamicLibrary<typeof symbols> {
  libc ??= Deno.dlopen("libc.so.6", symbols);
  return libc;
}

/**
 * Whether shared memory works in this process: Linux, FFI access to libc,
 * and a small file under /dev/shm can be mapped. (Deno grants access to
 * /dev only with --allow-all, so /dev/shm is reached through libc alone.)
 */
export function sharedMemoryAvailable(): boolean {
  return sharedMemoryCanHold(4096);
}

/**
 * Whether /dev/shm can hold `bytes` more bytes right now: reserves them in a
 * probe file and frees them again. False where shared memory is unavailable.
 */
export function sharedMemoryCanHold(bytes: number): boolean {
  if (Deno.build.os !== "linux") return false;
  const probe = `/dev/shm/galaxy-capacity-${Deno.pid}`;
  try {
    mapShared(probe, bytes).close();
    return true;
  } catch {
    return false;
  } finally {
    try {
      unlinkShared(probe);
    } catch { /* nothing to remove */ }
  }
}

/** Removes a shared memory file (through libc: Deno's own API needs --allow-all for /dev). */
export function unlinkShared(path: string): void {
  lib().symbols.unlink(new TextEncoder().encode(path + "\0"));
}

/** A shared mapping; `buffer` aliases the same memory in every process that maps the file. */
export interface SharedMapping {
  readonly buffer: ArrayBuffer;
  readonly path: string;
  close(): void;
}

/**
 * Maps `bytes` bytes of the file at `path` (created and sized if needed) as
 * shared memory.
 */
export function mapShared(path: string, bytes: number): SharedMapping {
  const c = lib();
  const fd = c.symbols.open(new TextEncoder().encode(path + "\0"), O_RDWR | O_CREAT, 0o600);
  if (fd < 0) throw new Error(`cannot open shared memory file ${path}`);
  try {
    if (c.symbols.ftruncate(fd, BigInt(bytes)) !== 0) {
      throw new Error(`cannot size ${path} to ${bytes} bytes (is /dev/shm full?)`);
    }
    // Reserve the pages now: on a tmpfs too small for them (Docker's /dev/shm is 64 MiB
    // unless --shm-size says otherwise) a write to the mapping would kill the process
    // with SIGBUS; reserving fails here instead, with a message.
    if (c.symbols.posix_fallocate(fd, 0n, BigInt(bytes)) !== 0) {
      throw new Error(
        `cannot reserve ${bytes} bytes of shared memory for ${path}: /dev/shm is too small ` +
          "(in Docker, give it more with docker run --shm-size=1g)",
      );
    }
    const ptr = c.symbols.mmap(null, BigInt(bytes), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n);
    // MAP_FAILED is (void*)-1.
    if (ptr === null || Deno.UnsafePointer.value(ptr) === 0xffffffffffffffffn) {
      throw new Error(`cannot map ${path} (${bytes} bytes)`);
    }
    const buffer = Deno.UnsafePointerView.getArrayBuffer(ptr, bytes);
    let open = true;
    return {
      buffer,
      path,
      close() {
        if (!open) return;
        open = false;
        c.symbols.munmap(ptr, BigInt(bytes));
      },
    };
  } finally {
    c.symbols.close(fd);
  }
}
