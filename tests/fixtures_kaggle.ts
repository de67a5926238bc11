/**
 * Test fixtures for the Kaggle fetcher: tiny competition archives built
 * with zip.js's writer, and a local HTTP server (127.0.0.1, port 0) that
 * behaves like the Kaggle API and its storage: basic-auth check (401),
 * refused rules (403), list with pages, redirect to a signed storage URL,
 * Range/If-Range, MD5 in `x-goog-hash`, and injected faults (a connection
 * cut mid-file, a wrong MD5, a wrong listed size, a storage error).
 *
 * @module
 */
import * as zip from "@zip.js/zip.js";
import { createHash } from "node:crypto";
import { KAGGLE_HEADER, NUM_VOTES } from "../lib/data/schema.ts";

/** One file to put in a test zip. */
export interface ZipItem {
  name: string;
  data: Uint8Array | string;
  /** Unix mode, e.g. `0o120777` for a symbolic link. */
  unixMode?: number;
  /** Deflate level; 0 stores (as Kaggle's all-files zip does). */
  level?: number;
  /** A folder entry (`data` is ignored). */
  directory?: boolean;
}

/** Builds a zip archive in memory. */
export async function makeZip(items: ZipItem[]): Promise<Uint8Array> {
  const out = new zip.Uint8ArrayWriter();
  const writer = new zip.ZipWriter(out, { useWebWorkers: false });
  for (const it of items) {
    if (it.directory) {
      await writer.add(it.name, undefined, { directory: true });
      continue;
    }
    const reader = typeof it.data === "string"
      ? new zip.TextReader(it.data)
      : new zip.Uint8ArrayReader(it.data);
    await writer.add(it.name, reader, {
      level: it.level ?? 6,
      ...(it.unixMode !== undefined ? { unixMode: it.unixMode } : {}),
    });
  }
  return await writer.close();
}

/** Deterministic pseudo-random bytes (xorshift), so fixtures are reproducible. */
export function noiseBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

/** A stand-in JPEG: SOI marker, noise, EOI marker (the fetcher never decodes it). */
export function fakeJpeg(id: number, size = 1500): Uint8Array {
  const b = noiseBytes(size, id);
  b.set([0xff, 0xd8, 0xff, 0xe0], 0);
  b.set([0xff, 0xd9], size - 2);
  return b;
}

/** A `training_solutions_rev1.csv` for `ids`, with the competition's header. */
export function solutionsCsv(ids: number[]): string {
  const rows = ids.map((id, r) => {
    const votes = Array.from({ length: NUM_VOTES }, (_, i) => (((r + 1) * (i + 3)) % 97) / 97);
    return [id, ...votes.map((v) => v.toFixed(6))].join(",");
  });
  return [KAGGLE_HEADER.join(","), ...rows].join("\r\n") + "\r\n";
}

/** The competition's archives in miniature. */
export interface CompetitionFixture {
  trainIds: number[];
  testIds: number[];
  csv: string;
  /** The single archives by name, as Kaggle lists them (benchmark included). */
  files: Record<string, Uint8Array>;
  /** One zip holding the single ones (the "download all" archive). */
  allFiles: Uint8Array;
}

/** Builds the competition's archives with `trainCount` and `testCount` images. */
export async function makeCompetition(trainCount = 4, testCount = 3): Promise<CompetitionFixture> {
  const trainIds = Array.from({ length: trainCount }, (_, i) => 100008 + 17 * i);
  const testIds = Array.from({ length: testCount }, (_, i) => 100018 + 23 * i);
  const csv = solutionsCsv(trainIds);
  const files: Record<string, Uint8Array> = {
    "all_ones_benchmark.zip": await makeZip([
      { name: "all_ones_benchmark.csv", data: `GalaxyID,Class1.1\n${testIds[0]},1\n` },
    ]),
    "images_test_rev1.zip": await makeZip([
      { name: "images_test_rev1/", data: "", directory: true },
      ...testIds.map((id) => ({ name: `images_test_rev1/${id}.jpg`, data: fakeJpeg(id) })),
    ]),
    "images_training_rev1.zip": await makeZip(
      trainIds.map((id) => ({ name: `images_training_rev1/${id}.jpg`, data: fakeJpeg(id) })),
    ),
    "training_solutions_rev1.zip": await makeZip([
      { name: "training_solutions_rev1.csv", data: csv },
    ]),
  };
  const allFiles = await makeZip(
    Object.entries(files).map(([name, data]) => ({ name, data, level: 0 })),
  );
  return { trainIds, testIds, csv, files, allFiles };
}

/** One request the fake server saw. */
export interface LoggedRequest {
  path: string;
  /** True for the storage (not the API). */
  storage: boolean;
  authorization: string | null;
  range: string | null;
  ifRange: string | null;
  status: number;
}

/** What the fake Kaggle serves, and the faults it injects. Mutable between runs. */
export interface FakeKaggleConfig {
  username: string;
  key: string;
  competition: string;
  files: Record<string, Uint8Array>;
  /** The "download all" archive. */
  allFiles?: Uint8Array;
  /** Names the list endpoint returns (default: every key of `files`). */
  listed?: string[];
  /** Answer 403 (rules not accepted). */
  forbidden?: boolean;
  /** Cut the connection after `afterBytes` of the file, for its next `times` responses. */
  cut?: { file: string; afterBytes: number; times: number };
  /** Announce a wrong MD5 for this file. */
  badMd5?: string;
  /** List this file with its size off by `delta`. */
  listSizeDelta?: { file: string; delta: number };
  /** Storage answers this status for every file. */
  storageStatus?: number;
  /** Files per page of the list (default 2, to exercise paging). */
  pageSize?: number;
}

/** A running fake Kaggle. */
export interface FakeKaggle {
  /** API root to pass as `apiBase`. */
  base: string;
  config: FakeKaggleConfig;
  log: LoggedRequest[];
  close(): Promise<void>;
}

/** Name under which the "download all" archive is stored. */
const ALL_FILES = "__all__";

/** The secret a signed storage URL carries (must never show in messages). */
export const STORAGE_SIGNATURE = "sig-TOPSECRET-5b1c";

function md5(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("md5").update(data).digest());
}

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** Starts the fake Kaggle on 127.0.0.1 (port chosen by the OS). */
export function startFakeKaggle(config: FakeKaggleConfig): FakeKaggle {
  const log: LoggedRequest[] = [];
  let origin = "";

  const serveStorage = (req: Request, name: string): Response => {
    const data = name === ALL_FILES ? config.allFiles : config.files[name];
    if (!data) return new Response("no such object", { status: 404 });
    if (config.storageStatus) {
      return new Response("storage error", { status: config.storageStatus });
    }
    const digest = md5(data);
    const etag = `"${b64(digest)}"`;
    const announced = config.badMd5 === name ? md5(new TextEncoder().encode("other")) : digest;
    const headers: Record<string, string> = {
      "accept-ranges": "bytes",
      etag,
      "x-goog-hash": `crc32c=AAAAAA==,md5=${b64(announced)}`,
      "content-type": "application/zip",
    };
    let start = 0;
    let status = 200;
    const range = /^bytes=(\d+)-$/.exec(req.headers.get("range") ?? "");
    const ifRange = req.headers.get("if-range");
    if (range && (ifRange === null || ifRange === etag)) {
      start = Number(range[1]);
      if (start >= data.length) {
        return new Response(null, {
          status: 416,
          headers: { ...headers, "content-range": `bytes */${data.length}` },
        });
      }
      status = 206;
      headers["content-range"] = `bytes ${start}-${data.length - 1}/${data.length}`;
    }
    const body = data.subarray(start);
    headers["content-length"] = String(body.length);
    const cut = config.cut;
    if (cut && cut.file === name && cut.times > 0 && cut.afterBytes > start) {
      cut.times--;
      const head = data.subarray(start, cut.afterBytes);
      let sent = false;
      const stream = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (!sent) {
            sent = true;
            c.enqueue(head.slice());
            return;
          }
          // Let the first bytes reach the client, then end short of Content-Length:
          // the connection drops mid-file.
          await new Promise((r) => setTimeout(r, 150));
          c.close();
        },
      });
      return new Response(stream, { status, headers });
    }
    return new Response(body.slice(), { status, headers });
  };

  const serveApi = (req: Request, path: string): Response => {
    const expected = "Basic " + b64(new TextEncoder().encode(`${config.username}:${config.key}`));
    if (req.headers.get("authorization") !== expected) {
      return json(401, { code: 401, message: "Unauthenticated" });
    }
    const slug = encodeURIComponent(config.competition);
    if (config.forbidden) {
      return json(403, {
        code: 403,
        message:
          "You must accept this competition's rules before you'll be able to download files.",
      });
    }
    const list = `/api/v1/competitions/data/list/${slug}`;
    const one = `/api/v1/competitions/data/download/${slug}/`;
    const all = `/api/v1/competitions/data/download-all/${slug}`;
    if (path === list) {
      const names = config.listed ?? Object.keys(config.files);
      const page = Number(new URL(req.url).searchParams.get("pageToken") || "0");
      const size = config.pageSize ?? 2;
      const files = names.slice(page * size, (page + 1) * size).map((name) => ({
        ref: name,
        name,
        totalBytes: String(
          config.files[name].length +
            (config.listSizeDelta?.file === name ? config.listSizeDelta.delta : 0),
        ),
        creationDate: "2013-12-20T21:44:09Z",
      }));
      const more = (page + 1) * size < names.length;
      return json(200, { files, nextPageToken: more ? String(page + 1) : "" });
    }
    const target = path.startsWith(one)
      ? decodeURIComponent(path.slice(one.length))
      : path === all
      ? ALL_FILES
      : undefined;
    if (target === undefined || (target !== ALL_FILES && !config.files[target])) {
      return json(404, { code: 404, message: "Not found" });
    }
    return new Response(null, {
      status: 302,
      headers: {
        location: `${origin}/storage/${
          encodeURIComponent(target)
        }?X-Goog-Signature=${STORAGE_SIGNATURE}`,
      },
    });
  };

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => {
      const url = new URL(req.url);
      const storage = url.pathname.startsWith("/storage/");
      const res = storage
        ? serveStorage(req, decodeURIComponent(url.pathname.slice("/storage/".length)))
        : serveApi(req, url.pathname);
      log.push({
        path: url.pathname,
        storage,
        authorization: req.headers.get("authorization"),
        range: req.headers.get("range"),
        ifRange: req.headers.get("if-range"),
        status: res.status,
      });
      return res;
    },
  );
  origin = `http://127.0.0.1:${server.addr.port}`;
  return {
    base: `${origin}/api/v1`,
    config,
    log,
    close: () => server.shutdown(),
  };
}
