/**
 * The run page (web/run.html): the run's settings, training curves,
 * confusion matrix, per-class precision/recall/F1 and the most confidently
 * wrong galaxies, from `GET api/run` (lib/serve/run_summary.ts).
 *
 * @module
 */
import type { RunSummary } from "../serve/run_summary.ts";
import type { PageConfig } from "./site.ts";
import { el, formatPercent } from "./dom.ts";

const fixed = (x: number | null | undefined, d = 3) =>
  x === null || x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(d);

/** An SVG document made by the server's chart renderer, placed in a panel. */
function svgPanel(svg: string): HTMLElement {
  const panel = el("div", { class: "panel" });
  panel.innerHTML = svg; // our own Vega output, not user content
  return panel;
}

function render(s: RunSummary): HTMLElement[] {
  const out: HTMLElement[] = [el("h1", {}, `Run: ${s.name}`)];
  const facts = [
    `${s.epochs} epochs logged`,
    s.best ? `best epoch ${s.best.epoch} (${s.best.monitor} ${fixed(s.best.score, 4)})` : "",
  ].filter(Boolean).join(" · ");
  out.push(el("p", { class: "facts" }, facts));
  if (s.metrics) {
    const m = s.metrics;
    out.push(
      el(
        "p",
        {},
        el("b", {}, `Accuracy ${formatPercent(m.accuracy)}`),
        ` · balanced accuracy ${formatPercent(m.balancedAccuracy)} · macro-F1 ${fixed(m.macroF1)}` +
          ` · top-2 ${formatPercent(m.top2Accuracy)} · ECE ${fixed(m.ece)}` +
          (s.votesRmse !== null ? ` · vote-fraction RMSE ${fixed(s.votesRmse, 4)}` : ""),
      ),
      el("p", { class: "note" }, `Scores from ${s.scoresFrom}.`),
    );
  }
  for (const n of s.notes) out.push(el("p", { class: "note" }, n));

  out.push(el("h2", {}, "Training curves"));
  out.push(s.curvesSvg ? svgPanel(s.curvesSvg) : el("p", { class: "note" }, "None yet."));

  if (s.metrics) {
    out.push(el("h2", {}, "Confusion matrix and per-class scores"));
    const table = el(
      "table",
      {},
      el(
        "tr",
        {},
        ...["class", "precision", "recall", "F1", "true images", "predicted"].map((h) =>
          el("th", {}, h)
        ),
      ),
      ...s.metrics.perClass.map((c) =>
        el(
          "tr",
          {},
          el("td", {}, c.name),
          el("td", {}, fixed(c.precision)),
          el("td", {}, fixed(c.recall)),
          el("td", {}, fixed(c.f1)),
          el("td", {}, String(c.support)),
          el("td", {}, String(c.predicted)),
        )
      ),
    );
    const row = el("div", { class: "result-body" });
    if (s.confusionSvg) row.append(svgPanel(s.confusionSvg));
    row.append(el("div", {}, table));
    out.push(row);
  }

  out.push(el("h2", {}, "Most confidently wrong galaxies"));
  if (s.wrong.length) {
    if (s.wrongPicture) {
      out.push(
        el(
          "div",
          { class: "panel" },
          Object.assign(el("img", { class: "wrong-grid", alt: "grid" }), {
            src: "run-file/wrong.png",
          }),
        ),
      );
    }
    const header = ["id", "true class", "predicted", "its probability", "p(true class)"];
    const table = el(
      "table",
      {},
      el("tr", {}, ...header.map((h) => el("th", {}, h))),
      ...s.wrong.map((w) =>
        el(
          "tr",
          {},
          el("td", {}, w.id),
          el("td", {}, w.true),
          el("td", {}, w.predicted),
          el("td", {}, fixed(w.probability)),
          el("td", {}, fixed(w.trueProbability)),
        )
      ),
    );
    out.push(el("details", {}, el("summary", {}, `The ${s.wrong.length} as a table`), table));
  } else {
    out.push(el("p", { class: "note" }, "No evaluation with wrong galaxies in this run folder."));
  }
  out.push(el("h2", {}, "Settings"));
  out.push(
    el(
      "table",
      { class: "kv" },
      ...Object.entries(s.config).map(([k, v]) =>
        el("tr", {}, el("td", {}, k), el("td", {}, typeof v === "string" ? v : JSON.stringify(v)))
      ),
    ),
  );
  return out;
}

async function main() {
  const root = document.getElementById("run")!;
  try {
    const config: PageConfig = await (await fetch("page-config.json")).json();
    document.getElementById("nav-predictions")!.hidden = !config.predictions;
    const res = await fetch("api/run");
    const body = await res.json();
    if (!res.ok) throw new Error(body.error);
    root.replaceChildren(...render(body as RunSummary));
    document.body.dataset.ready = "1";
  } catch (e) {
    root.replaceChildren(
      el("p", { class: "error" }, `Cannot load the run: ${(e as Error).message}`),
    );
  }
}

main();
