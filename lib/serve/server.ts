/**
 * `deno task serve`: a small local web app around one run.
 *
 * | path | what |
 * | --- | --- |
 * | `/` | classify page: the model runs in the browser on dropped images |
 * | `/run.html` | run page: curves, confusion matrix, per-class scores, wrong galaxies |
 * | `/predictions.html` | predictions page (with `--predictions`) |
 * | `POST /api/predict` | one image's outputs, computed here (lib/serve/predict_api.ts) |
 * | `/api/run`, `/api/predictions`, `/api/predictions.csv` | the pages' data |
 * | `/page-config.json`, `/model/*`, `/app/*`, `/tfjs-wasm/*` | what the classify page loads |
 *
 * The classify page's files sit at the same relative paths in the static
 * site of `deno task export-web` (lib/web/site.ts), so one page serves both.
 *
 * Connections: a client must send complete request headers within
 * `headerSeconds` (10) or gets a 408 and is closed (lib/serve/header_gate.ts
 * in front of `Deno.serve`, which listens on a private loopback port).
 *
 * @module
 */
import { extname, join } from "node:path";
import { resolveInput } from "../predict/inputs.ts";
import type { Run } from "../run/open.ts";
import { MODEL_JSON, runPaths } from "../run/layout.ts";
import { assertSiteBuilt, pageConfig, SITE_ASSETS, siteFile, webRoot } from "../web/site.ts";
import { ApiError, json, PredictApi, type PredictApiLimits } from "./predict_api.ts";
import {
  PREDICTION_SORTS,
  type PredictionFilter,
  type PredictionSort,
  PredictionTable,
} from "./predictions_table.ts";
import { type RunSummary, runSummary } from "./run_summary.ts";
import { HEADER_SECONDS, startHeaderGate } from "./header_gate.ts";

/** Settings of {@linkcode startServer}. */
export interface ServeOptions {
  /** The opened run. */
  run: Run;
  /** Port (0: any free port). Default 8080. */
  port?: number;
  /** Address to bind. Default 127.0.0.1 (this machine only). */
  host?: string;
  /** Predictions CSV for the predictions page. */
  predictions?: string;
  /** Folder of the images of those predictions (thumbnails). */
  images?: string;
  /** Limits of `POST /api/predict`. */
  limits?: Partial<PredictApiLimits>;
  /** Seconds a connection may take to send its request headers (10). */
  headerSeconds?: number;
  /** Called with each request's method, path, status and milliseconds. */
  log?: (line: string) => void;
}

/** A running server. */
export interface GalaxyServer {
  /** The address it listens on, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Stops listening and waits for open requests to finish. */
  close(): Promise<void>;
  /** Resolves when the server has stopped. */
  finished: Promise<void>;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".bin": "application/octet-stream",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".svg": "image/svg+xml",
};

async function fileResponse(path: string, cache = "no-cache"): Promise<Response> {
  try {
    const file = await Deno.open(path, { read: true });
    return new Response(file.readable, {
      headers: {
        "content-type": TYPES[extname(path).toLowerCase()] ?? "application/octet-stream",
        "cache-control": cache,
      },
    });
  } catch {
    return json({ error: `not found: ${path.split("/").pop()}` }, 404);
  }
}

function numberParam(q: URLSearchParams, name: string, fallback: number, min: number, max: number) {
  const v = q.get(name);
  if (v === null || v === "") return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new ApiError(400, `${name} must be a number in [${min}, ${max}], got '${v}'`);
  }
  return n;
}

/** The filter of a predictions query string. */
export function parseFilter(q: URLSearchParams): PredictionFilter {
  const sort = q.get("sort") ?? "id";
  if (!(PREDICTION_SORTS as readonly string[]).includes(sort)) {
    throw new ApiError(400, `sort must be one of ${PREDICTION_SORTS.join(", ")}, got '${sort}'`);
  }
  const label = q.get("label");
  return {
    label: label === null || label === "" ? undefined : label,
    min: numberParam(q, "min", 0, 0, 1),
    max: numberParam(q, "max", 1, 0, 1),
    sort: sort as PredictionSort,
  };
}

/**
 * Starts the server; resolves once it listens. Throws, saying how to build
 * them, when the page bundles are missing (the page would stay at
 * "Loading…").
 */
export async function startServer(o: ServeOptions): Promise<GalaxyServer> {
  await assertSiteBuilt();
  const api = new PredictApi(o.run, o.limits);
  const table = o.predictions ? await PredictionTable.open(o.predictions) : null;
  let thumbs: Map<string, string> | null = null;
  if (o.images) {
    const input = await resolveInput(o.images);
    if (input.kind !== "images") {
      input.dataset.close();
      throw new Error(`--images ${o.images} is a dataset folder: give the folder of image files`);
    }
    thumbs = new Map(input.items.map((it) => [it.id, it.path]));
  }
  const config = pageConfig(o.run, { server: true, predictions: table !== null });
  const modelDir = runPaths(o.run.dir).modelDir;
  const modelFiles = new Set([MODEL_JSON, ...config.modelFiles]);
  let summary: Promise<RunSummary> | null = null;
  /** The run's summary, computed once; a failure is not kept, so the next request tries again. */
  const loadSummary = (): Promise<RunSummary> => {
    if (!summary) {
      summary = runSummary(o.run.dir);
      summary.catch(() => (summary = null));
    }
    return summary;
  };

  const route = async (req: Request, url: URL): Promise<Response> => {
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      throw new ApiError(400, `malformed percent-encoding in ${url.pathname}`);
    }
    if (path === "/api/predict") return await api.handle(req);
    if (req.method !== "GET" && req.method !== "HEAD") {
      throw new ApiError(405, `${req.method} is not allowed on ${path}`, { allow: "GET" });
    }
    if (path === "/" || path === "/index.html") return await fileResponse(siteFile("index.html"));
    if (path === "/run.html" || path === "/predictions.html") {
      return await fileResponse(join(webRoot(), path.slice(1)));
    }
    if (path === "/page-config.json") return json(config);
    if (path.startsWith("/app/")) {
      const name = path.slice(5);
      if (!SITE_ASSETS.includes(name)) throw new ApiError(404, `not found: ${path}`);
      return await fileResponse(siteFile(`app/${name}`));
    }
    if (path.startsWith("/tfjs-wasm/")) {
      const name = path.slice(11);
      if (!config.wasmFiles.includes(name)) throw new ApiError(404, `not found: ${path}`);
      return await fileResponse(siteFile(`tfjs-wasm/${name}`), "max-age=86400");
    }
    if (path.startsWith("/model/")) {
      const name = path.slice(7);
      if (!modelFiles.has(name)) throw new ApiError(404, `not found: ${path}`);
      return await fileResponse(join(modelDir, name));
    }
    if (path === "/api/run") {
      return json(await loadSummary());
    }
    if (path === "/run-file/wrong.png") {
      const s = await loadSummary();
      if (!s.wrongPicture) {
        throw new ApiError(404, "this run has no evaluation with wrong galaxies");
      }
      return await fileResponse(join(o.run.dir, s.wrongPicture));
    }
    if (path === "/api/predictions" || path === "/api/predictions.csv") {
      if (!table) throw new ApiError(404, "no --predictions file was given to deno task serve");
      const q = url.searchParams;
      const filter = parseFilter(q);
      if (path.endsWith(".csv")) {
        return new Response(table.csvStream(filter), {
          headers: {
            "content-type": "text/csv; charset=utf-8",
            "content-disposition": 'attachment; filename="predictions-filtered.csv"',
          },
        });
      }
      const page = await table.query(
        filter,
        numberParam(q, "offset", 0, 0, Number.MAX_SAFE_INTEGER),
        numberParam(q, "limit", 50, 1, 500),
      );
      return json({
        ...page,
        file: table.path.split("/").pop(),
        size: table.size,
        classes: table.classes,
        counts: table.counts,
        thumbnails: thumbs !== null,
      });
    }
    if (path.startsWith("/thumb/")) {
      const file = thumbs?.get(path.slice(7));
      if (!file) throw new ApiError(404, `no image for id '${path.slice(7)}'`);
      return await fileResponse(file, "max-age=3600");
    }
    throw new ApiError(404, `not found: ${path}`);
  };

  const handler = async (req: Request): Promise<Response> => {
    const t0 = performance.now();
    const url = new URL(req.url);
    let res: Response;
    try {
      res = await route(req, url);
    } catch (e) {
      res = e instanceof ApiError
        ? json({ error: e.message }, e.status, e.headers)
        : json({ error: `internal error: ${(e as Error).message}` }, 500);
    }
    o.log?.(
      `${req.method} ${url.pathname} ${res.status} ${(performance.now() - t0).toFixed(0)} ms`,
    );
    return res;
  };

  const ac = new AbortController();
  let listening!: (addr: Deno.NetAddr) => void;
  let cannotListen!: (e: unknown) => void;
  const ready = new Promise<Deno.NetAddr>((resolve, reject) => {
    listening = resolve;
    cannotListen = reject;
  });
  ready.catch(() => {}); // a failure is thrown below; connections waiting on it end
  // The public address is the gate's, listening first (a port in use fails before anything else
  // starts); the server itself listens on a private loopback port behind it.
  const gate = startHeaderGate({
    hostname: o.host ?? "127.0.0.1",
    port: o.port ?? 8080,
    backend: ready,
    headerSeconds: o.headerSeconds ?? HEADER_SECONDS,
    signal: ac.signal,
  });
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      signal: ac.signal,
      onListen: (addr) => listening(addr as Deno.NetAddr),
    }, handler);
  } catch (e) {
    cannotListen(e);
    ac.abort(); // the gate stops listening too
    throw e;
  }
  await ready;
  const addr = gate.addr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const finished = Promise.all([server.finished, gate.finished]).then(() => {});
  return {
    url: `http://${host}:${addr.port}`,
    finished,
    close: async () => {
      ac.abort();
      await finished;
    },
  };
}
