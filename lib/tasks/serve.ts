/**
 * The flags of `deno task serve` and `deno task export-web`, declared
 * once: their scripts parse them, `--help` and docs/cli.md show them.
 *
 * @module
 */
import { bool, int, num, text } from "../flags.ts";
import { PREDICT_API_LIMITS } from "../serve/predict_api.ts";
import { BACKEND_FLAG, NO_VERIFY_FLAG } from "./common.ts";

/** `deno task serve`. */
export const SERVE_TASK = {
  task: "serve",
  synopsis: ["deno task serve --model RUN_DIR [flags]"],
  flags: {
    model: text(
      "RUN_DIR",
      "training run folder (config.json + model/); also RUN/model, RUN/model/model.json or a " +
        "file:// URL of one of these",
    ),
    port: int("N", "port (0 picks a free one)", { min: 0, max: 65535, default: 8080 }),
    host: text(
      "ADDR",
      "address to listen on (127.0.0.1: this machine only; 0.0.0.0 for every interface)",
      { default: "127.0.0.1" },
    ),
    predictions: text("CSV", "a predictions file of deno task predict, for the predictions page"),
    images: text("DIR", "the folder of its images, for thumbnails"),
    "max-mb": num("N", "largest image POST /api/predict accepts, MiB", {
      min: 0.001,
      max: 1024,
      default: PREDICT_API_LIMITS.maxBytes / 1024 / 1024,
    }),
    concurrency: int("N", "images predicted at once by the API", {
      min: 1,
      max: 64,
      default: PREDICT_API_LIMITS.maxConcurrent,
    }),
    backend: BACKEND_FLAG,
    quiet: bool("no line per request"),
    "no-verify": NO_VERIFY_FLAG,
  },
  epilogue: "pages: /  classify in the browser · /run.html  the run · /predictions.html  browse " +
    "--predictions\nAPI:   curl -F file=@galaxy.jpg http://127.0.0.1:8080/api/predict[?tta=1]\n" +
    "       (or the bytes as the body: curl --data-binary @galaxy.fits ...)",
};

/** `deno task export-web`. */
export const EXPORT_WEB_TASK = {
  task: "export-web",
  synopsis: ["deno task export-web --model RUN_DIR --out SITE_DIR"],
  flags: {
    model: text("RUN_DIR", "training run folder (config.json + model/)"),
    out: text(
      "SITE_DIR",
      "folder to write the site into (index.html, app/, model/, tfjs-wasm/)",
    ),
    "no-verify": NO_VERIFY_FLAG,
  },
  epilogue:
    "Serve SITE_DIR with any static web server, e.g. python3 -m http.server -d SITE_DIR.\n" +
    "(Opening index.html from disk does not work: browsers do not let a page fetch\n" +
    "files next to it from file:// URLs.)",
};
