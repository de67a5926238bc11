/**
 * The report's charts as Vega-Lite specs, and {@linkcode writeTrainingCurves}
 * which the trainer calls at the end of a run.
 *
 * @module
 */
import type { TopLevelSpec } from "vega-lite";
import { writeFileAtomic } from "../io/atomic.ts";
import { readLines } from "../predict/lines.ts";
import { runPaths } from "../run/layout.ts";
import { CHART_CONFIG, svgToPng, vegaLiteToSvg } from "./render.ts";

/** A chart as both SVG (for the web) and PNG (for everything else). */
export interface Picture {
  svg: string;
  png: Uint8Array;
}

/** Renders a spec to SVG and to PNG at twice the SVG's size (crisp on high-DPI screens). */
export async function renderChart(spec: TopLevelSpec): Promise<Picture> {
  const svg = await vegaLiteToSvg(spec);
  return { svg, png: await svgToPng(svg, { scale: 2 }) };
}

/** Writes `<base>.svg` and `<base>.png`; returns the PNG's path. */
export async function writePicture(base: string, p: Picture): Promise<string> {
  await writeFileAtomic(`${base}.svg`, p.svg);
  await writeFileAtomic(`${base}.png`, p.png);
  return `${base}.png`;
}

/**
 * The confusion matrix as a heat map: rows true classes, columns predicted,
 * each cell's count written in it and coloured by its share of the row (so
 * the diagonal shows recall, whatever the class sizes).
 */
export function confusionSpec(
  confusion: readonly (readonly number[])[],
  classes: readonly string[],
  title: string,
): TopLevelSpec {
  const values = [];
  for (let i = 0; i < classes.length; i++) {
    const total = confusion[i].reduce((a, b) => a + b, 0);
    for (let j = 0; j < classes.length; j++) {
      const count = confusion[i][j];
      values.push({
        true: classes[i],
        predicted: classes[j],
        count,
        share: total > 0 ? count / total : 0,
      });
    }
  }
  const step = Math.max(30, Math.min(64, Math.floor(480 / Math.max(1, classes.length))));
  return {
    title: { text: title, subtitle: "cell colour: share of the true class's images (row)" },
    data: { values },
    width: { step },
    height: { step },
    encoding: {
      x: {
        field: "predicted",
        type: "nominal",
        sort: [...classes],
        axis: { title: "predicted class", labelAngle: -35, labelLimit: 140 },
      },
      y: {
        field: "true",
        type: "nominal",
        sort: [...classes],
        axis: { title: "true class", labelLimit: 140 },
      },
    },
    layer: [
      {
        mark: { type: "rect" },
        encoding: {
          color: {
            field: "share",
            type: "quantitative",
            scale: { domain: [0, 1], scheme: "blues" },
            legend: { title: "share of row", format: ".0%" },
          },
        },
      },
      {
        mark: { type: "text", fontSize: step >= 40 ? 12 : 10 },
        encoding: {
          text: { field: "count", type: "quantitative" },
          color: { condition: { test: "datum.share > 0.5", value: "white" }, value: "black" },
        },
      },
    ],
    config: CHART_CONFIG,
  } as TopLevelSpec;
}

/** One line of a run's `metrics.jsonl` (the fields the curves use). */
export interface CurveRow {
  epoch: number;
  train_loss?: number;
  val_loss?: number;
  val_accuracy?: number;
  val_balanced_accuracy?: number;
  val_macro_f1?: number;
  val_rmse?: number;
}

const SCORE_SERIES: [keyof CurveRow, string][] = [
  ["val_accuracy", "val accuracy"],
  ["val_balanced_accuracy", "val balanced accuracy"],
  ["val_macro_f1", "val macro-F1"],
  ["val_rmse", "val RMSE"],
];

/**
 * Training curves: train and validation loss per epoch beside the
 * validation scores, with the best epoch marked when known.
 */
export function curvesSpec(
  rows: readonly CurveRow[],
  title: string,
  bestEpoch?: number,
): TopLevelSpec {
  const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
  const losses = rows.flatMap((r) => [
    ...(finite(r.train_loss)
      ? [{ epoch: r.epoch, series: "train loss", value: r.train_loss }]
      : []),
    ...(finite(r.val_loss) ? [{ epoch: r.epoch, series: "val loss", value: r.val_loss }] : []),
  ]);
  const scores = rows.flatMap((r) =>
    SCORE_SERIES.filter(([k]) => finite(r[k])).map(([k, name]) => ({
      epoch: r.epoch,
      series: name,
      value: r[k] as number,
    }))
  );
  const maxEpoch = Math.max(1, ...rows.map((r) => r.epoch));
  const x = {
    field: "epoch",
    type: "quantitative",
    scale: { domain: [rows.length > 1 ? Math.min(...rows.map((r) => r.epoch)) : 0, maxEpoch] },
    axis: { tickMinStep: 1, format: "d", title: "epoch" },
  };
  const rule = bestEpoch !== undefined
    ? [{
      data: { values: [{ epoch: bestEpoch }] },
      mark: { type: "rule", strokeDash: [4, 3], color: "#888" },
      encoding: { x: { field: "epoch", type: "quantitative" } },
    }]
    : [];
  const panel = (values: unknown[], yTitle: string, zero: boolean) => ({
    width: 320,
    height: 220,
    layer: [
      {
        data: { values },
        mark: { type: "line", point: true },
        encoding: {
          x,
          y: { field: "value", type: "quantitative", title: yTitle, scale: { zero } },
          color: {
            field: "series",
            type: "nominal",
            title: null,
            legend: { orient: "bottom", labelLimit: 240, columns: 2 },
          },
        },
      },
      ...rule,
    ],
  });
  return {
    title: {
      text: title,
      subtitle: bestEpoch !== undefined ? `dashed line: best epoch (${bestEpoch})` : "",
    },
    hconcat: [panel(losses, "loss", false), panel(scores, "score", false)],
    resolve: { scale: { color: "independent" } },
    config: CHART_CONFIG,
  } as TopLevelSpec;
}

/** Reads a run's `metrics.jsonl`, naming the file and line of a bad line. */
export async function readMetricsLog(path: string): Promise<CurveRow[]> {
  const rows: CurveRow[] = [];
  let line = 0;
  for await (const text of readLines(path)) {
    line++;
    if (text.trim() === "") continue;
    let row: CurveRow;
    try {
      row = JSON.parse(text);
    } catch (e) {
      throw new Error(`${path}:${line}: not JSON (${(e as Error).message})`);
    }
    if (typeof row.epoch !== "number") throw new Error(`${path}:${line}: no "epoch" number`);
    rows.push(row);
  }
  return rows;
}

/** The best epoch a run's `report.json` names, if it has one. */
async function bestEpochOf(runDir: string): Promise<number | undefined> {
  try {
    const r = JSON.parse(await Deno.readTextFile(runPaths(runDir).report));
    return typeof r.bestEpoch === "number" && r.bestEpoch >= 1 ? r.bestEpoch : undefined;
  } catch {
    return undefined;
  }
}

/** The training curves of a run folder as a picture (from `metrics.jsonl`). */
export async function trainingCurves(runDir: string): Promise<Picture> {
  const path = runPaths(runDir).metrics;
  if (!await Deno.stat(path).then(() => true, () => false)) {
    throw new Error(`${path} does not exist`);
  }
  const rows = await readMetricsLog(path);
  if (rows.length === 0) throw new Error(`${path} has no epochs yet`);
  const name = runDir.replace(/\/+$/, "").split("/").pop() ?? runDir;
  return await renderChart(curvesSpec(rows, `Training curves: ${name}`, await bestEpochOf(runDir)));
}

/**
 * Writes `RUN/curves.png` (and `curves.svg`) from `RUN/metrics.jsonl`;
 * returns the PNG's path. The trainer calls this at the end of a run.
 */
export async function writeTrainingCurves(runDir: string): Promise<string> {
  return await writePicture(runPaths(runDir).curves, await trainingCurves(runDir));
}
