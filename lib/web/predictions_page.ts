/**
 * The predictions page (web/predictions.html): one page of rows of a
 * predictions CSV at a time from `GET api/predictions` (filtered and sorted
 * by the server, lib/serve/predictions_table.ts), with thumbnails from
 * `thumb/<id>`, and a link that downloads every filtered row as CSV.
 *
 * @module
 */
import type { PredictionPage } from "../serve/predictions_table.ts";
import { el, probabilityBar } from "./dom.ts";

interface Answer extends PredictionPage {
  file: string;
  size: number;
  classes: string[];
  counts: Record<string, number>;
  thumbnails: boolean;
  error?: string;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function query(offset: number): URLSearchParams {
  const q = new URLSearchParams();
  const label = $<HTMLSelectElement>("label").value;
  if (label) q.set("label", label);
  q.set("min", $<HTMLInputElement>("min").value || "0");
  q.set("max", $<HTMLInputElement>("max").value || "1");
  q.set("sort", $<HTMLSelectElement>("sort").value);
  q.set("offset", String(offset));
  q.set("limit", $<HTMLSelectElement>("limit").value);
  return q;
}

let offset = 0;
let classesShown = false;

async function load(): Promise<void> {
  const q = query(offset);
  const res = await fetch(`api/predictions?${q}`);
  const a: Answer = await res.json();
  if (!res.ok) {
    $("cards").replaceChildren(el("p", { class: "error" }, a.error ?? res.statusText));
    return;
  }
  $("file").textContent = a.file;
  $("facts").textContent = `${a.size.toLocaleString("en")} rows; ` +
    Object.entries(a.counts).map(([k, n]) => `${k}: ${n.toLocaleString("en")}`).join(", ");
  if (!classesShown) {
    const select = $<HTMLSelectElement>("label");
    for (const [k, n] of Object.entries(a.counts)) {
      select.append(el("option", { value: k }, `${k} (${n.toLocaleString("en")})`));
    }
    classesShown = true;
  }
  const limit = Number(q.get("limit"));
  const last = Math.min(a.total, offset + a.rows.length);
  $("range").textContent = a.total === 0
    ? "no rows match"
    : `rows ${(offset + 1).toLocaleString("en")}–${last.toLocaleString("en")} of ${
      a.total.toLocaleString("en")
    } matching`;
  $<HTMLButtonElement>("prev").disabled = offset === 0;
  $<HTMLButtonElement>("next").disabled = offset + limit >= a.total;
  const download = new URLSearchParams(q);
  download.delete("offset");
  download.delete("limit");
  $<HTMLAnchorElement>("download").href = `api/predictions.csv?${download}`;
  $("cards").replaceChildren(
    ...a.rows.map((r) => {
      const picture = a.thumbnails
        ? Object.assign(el("img", { loading: "lazy", alt: r.id }), {
          src: `thumb/${encodeURIComponent(r.id)}`,
        })
        : el("div", { class: "noimg" }, "no --images");
      return el(
        "div",
        { class: "card", "data-id": r.id },
        picture,
        el("div", { class: "id" }, r.id),
        el("div", {}, r.label),
        probabilityBar(r.label, r.probability, true),
      );
    }),
  );
  document.body.dataset.ready = "1";
}

$("filters").addEventListener("submit", (e) => {
  e.preventDefault();
  offset = 0;
  load();
});
for (const id of ["label", "sort", "limit"]) {
  $(id).addEventListener("change", () => {
    offset = 0;
    load();
  });
}
$("prev").addEventListener("click", () => {
  offset = Math.max(0, offset - Number($<HTMLSelectElement>("limit").value));
  load();
});
$("next").addEventListener("click", () => {
  offset += Number($<HTMLSelectElement>("limit").value);
  load();
});
load();
