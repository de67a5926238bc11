/**
 * A small client for the Kaggle public REST API (`/api/v1`), the endpoints
 * the official `kaggle` CLI calls for competition data:
 *
 * - `GET /competitions/data/list/{competition}` lists the data files (a bare
 *   array from older servers; `{files, nextPageToken}` from newer ones).
 * - `GET /competitions/data/download/{competition}/{file}` and
 *   `GET /competitions/data/download-all/{competition}` answer with a
 *   redirect to a signed storage URL that serves the bytes (with Range).
 *
 * Requests to the API carry HTTP basic auth (`username:key`); the storage
 * request never does. Error messages name URLs without their query string
 * (signed URLs carry secrets) and never contain the key.
 *
 * @module
 */
import type { KaggleCredentials } from "./credentials.ts";
import { KAGGLE_TOKEN_PAGE } from "./credentials.ts";
import { FetchError } from "./errors.ts";

/** The public API the official CLI talks to. */
export const DEFAULT_API_BASE = "https://www.kaggle.com/api/v1";

/** One data file of a competition, as listed by the API. */
export interface CompetitionFile {
  name: string;
  /** Size in bytes, when the API gives it. */
  totalBytes?: number;
  creationDate?: string;
}

/** Options of {@linkcode KaggleClient}. */
export interface KaggleClientOptions {
  credentials: KaggleCredentials;
  /** API root, default {@linkcode DEFAULT_API_BASE} (tests point it at a local server). */
  apiBase?: string;
  /** `fetch` to use; defaults to the global one. */
  fetch?: typeof fetch;
}

/** A byte range request: from `offset` on, only if the file still matches `validator`. */
export interface RangeRequest {
  offset: number;
  /** ETag or Last-Modified of the copy the partial bytes came from (sent as If-Range). */
  validator?: string;
}

/** The rules page of a competition, where a 403 sends the user. */
export function rulesUrl(competition: string): string {
  return `https://www.kaggle.com/c/${competition}/rules`;
}

/** A URL fit for messages: no query string or credentials. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url.split("?")[0];
  }
}

function basicAuth(c: KaggleCredentials): string {
  const bytes = new TextEncoder().encode(`${c.username}:${c.key}`);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return `Basic ${btoa(bin)}`;
}

function rangeHeaders(range?: RangeRequest): Record<string, string> {
  if (!range || range.offset <= 0) return {};
  const h: Record<string, string> = { Range: `bytes=${range.offset}-` };
  if (range.validator) h["If-Range"] = range.validator;
  return h;
}

function toNumber(v: unknown): number | undefined {
  // Newer servers encode 64-bit integers as JSON strings.
  const n = typeof v === "string" ? Number(v) : v;
  return typeof n === "number" && Number.isFinite(n) ? n : undefined;
}

/** Talks to the Kaggle API on behalf of one user. */
export class KaggleClient {
  readonly apiBase: string;
  readonly #credentials: KaggleCredentials;
  readonly #auth: string;
  readonly #fetch: typeof fetch;

  constructor(options: KaggleClientOptions) {
    this.apiBase = (options.apiBase ?? DEFAULT_API_BASE).replace(/\/+$/, "");
    this.#credentials = options.credentials;
    this.#auth = basicAuth(options.credentials);
    this.#fetch = options.fetch ?? fetch;
  }

  /** Removes the key (and the auth header made from it) from a message. */
  redact(text: string): string {
    let out = text;
    for (const secret of [this.#auth.slice(6), this.#credentials.key]) {
      if (secret.length >= 4) out = out.replaceAll(secret, "<redacted>");
    }
    return out;
  }

  async #request(url: string, init: RequestInit, what: string): Promise<Response> {
    try {
      return await this.#fetch(url, init);
    } catch (e) {
      const msg = this.redact(e instanceof Error ? e.message : String(e));
      throw new FetchError(
        "network",
        `cannot reach ${displayUrl(url)} while ${what} (${msg}): check the network connection`,
      );
    }
  }

  async #apiFailure(res: Response, url: string, competition: string): Promise<FetchError> {
    let detail = "";
    try {
      const text = await res.text();
      const m = /"message"\s*:\s*"([^"]{1,200})"/.exec(text);
      detail = m ? ` ("${this.redact(m[1])}")` : "";
    } catch {
      // The status says enough.
    }
    const who = this.#credentials.username;
    switch (res.status) {
      case 401:
        return new FetchError(
          "auth",
          `Kaggle rejected the API key of user '${who}' (HTTP 401${detail}); the credentials ` +
            `came from ${this.#credentials.source}. The key is wrong, expired or revoked: create ` +
            `a new token at ${KAGGLE_TOKEN_PAGE} and put it there.`,
        );
      case 403:
        return new FetchError(
          "rules",
          `Kaggle refused the data of '${competition}' to user '${who}' (HTTP 403${detail}): ` +
            `sign in and accept the competition rules at ${rulesUrl(competition)}, then run again.`,
        );
      case 404:
        return new FetchError(
          "not-found",
          `Kaggle has no such competition or file (HTTP 404 from ${displayUrl(url)}${detail})`,
        );
      case 429:
        return new FetchError(
          "http",
          `Kaggle is limiting the request rate (HTTP 429): wait a few minutes and run again`,
        );
      default:
        return new FetchError(
          "http",
          `Kaggle answered HTTP ${res.status} for ${displayUrl(url)}${detail}: try again later`,
        );
    }
  }

  /**
   * Lists a competition's data files, following pages up to `maxPages`.
   * `complete` is false when it stopped early.
   */
  async listDataFiles(
    competition: string,
    maxPages = 50,
  ): Promise<{ files: CompetitionFile[]; complete: boolean }> {
    const files: CompetitionFile[] = [];
    let token = "";
    for (let page = 0; page < maxPages; page++) {
      const url = `${this.apiBase}/competitions/data/list/${encodeURIComponent(competition)}` +
        (token ? `?pageToken=${encodeURIComponent(token)}` : "");
      const res = await this.#request(
        url,
        { headers: { Authorization: this.#auth, Accept: "application/json" } },
        "listing the competition files",
      );
      if (!res.ok) throw await this.#apiFailure(res, url, competition);
      let body: unknown;
      try {
        body = await res.json();
      } catch (e) {
        throw new FetchError(
          "http",
          `Kaggle's file list from ${displayUrl(url)} is not JSON (${
            e instanceof Error ? e.message : e
          }): try again later`,
        );
      }
      const list = Array.isArray(body) ? body : (body as { files?: unknown })?.files;
      if (!Array.isArray(list)) {
        throw new FetchError("http", `Kaggle's file list from ${displayUrl(url)} has no files`);
      }
      for (const f of list as Record<string, unknown>[]) {
        if (typeof f?.name !== "string") continue;
        files.push({
          name: f.name,
          totalBytes: toNumber(f.totalBytes ?? f.total_bytes ?? f.size),
          creationDate: typeof f.creationDate === "string" ? f.creationDate : undefined,
        });
      }
      token = Array.isArray(body)
        ? ""
        : String((body as { nextPageToken?: unknown }).nextPageToken ?? "");
      if (!token) return { files, complete: true };
    }
    return { files, complete: false };
  }

  /**
   * Opens one data file (`fileName`), or the all-files archive when it is
   * `null`: asks the API, follows its redirect to storage without the auth
   * header, and returns the storage response (200, 206 or 416) for the
   * caller to stream. API errors become {@linkcode FetchError}s.
   */
  async openDataFile(
    competition: string,
    fileName: string | null,
    range?: RangeRequest,
  ): Promise<Response> {
    const slug = encodeURIComponent(competition);
    const url = fileName === null
      ? `${this.apiBase}/competitions/data/download-all/${slug}`
      : `${this.apiBase}/competitions/data/download/${slug}/${
        fileName.split("/").map(encodeURIComponent).join("/")
      }`;
    const what = `downloading ${fileName ?? "the competition archive"}`;
    const res = await this.#request(url, {
      redirect: "manual",
      headers: { Authorization: this.#auth, ...rangeHeaders(range) },
    }, what);
    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.get("location");
      await res.body?.cancel();
      if (!location) {
        throw new FetchError(
          "http",
          `Kaggle redirected ${displayUrl(url)} nowhere: try again later`,
        );
      }
      const storageUrl = new URL(location, url).href;
      const data = await this.#request(
        storageUrl,
        { headers: rangeHeaders(range), redirect: "follow" },
        what,
      );
      if (data.ok || data.status === 416) return data;
      await data.body?.cancel();
      throw new FetchError(
        "http",
        `the storage server answered HTTP ${data.status} for ${displayUrl(storageUrl)} while ` +
          `${what}: run again later (a new download link is requested each run)`,
      );
    }
    // Some deployments serve the bytes from the API itself.
    if (res.ok || res.status === 416) return res;
    throw await this.#apiFailure(res, url, competition);
  }
}
