import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { digestFile, sha256File } from "../lib/io/digest.ts";

Deno.test("digestFile: every digest of a file read once, across read chunks", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "blob.bin");
    // Past one 4 MiB read, so the chunks are joined.
    const bytes = new Uint8Array((1 << 22) + 12345);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    await Deno.writeFile(path, bytes);
    const d = await digestFile(path, ["sha256", "md5"]);
    assert.equal(d.size, bytes.length);
    assert.equal(d.digests.sha256, createHash("sha256").update(bytes).digest("hex"));
    assert.equal(d.digests.md5, createHash("md5").update(bytes).digest("hex"));
    assert.equal(await sha256File(path), d.digests.sha256);
    const empty = join(dir, "empty");
    await Deno.writeFile(empty, new Uint8Array(0));
    assert.equal(await sha256File(empty), createHash("sha256").digest("hex"));
    await assert.rejects(sha256File(join(dir, "missing")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
