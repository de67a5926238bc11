/**
 * The few DOM helpers the pages share: an element builder and the
 * probability bar every page draws.
 *
 * @module
 */

/** Creates `<tag attrs...>children...</tag>`. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** `0.81234` -> `"81.23 %"` (`digits` after the point). */
export function formatPercent(p: number, digits = 2): string {
  return `${(p * 100).toFixed(digits)} %`;
}

/**
 * One labelled horizontal bar of a probability in [0, 1]; its exact value
 * is kept in `data-value` (for tests and copy-paste), its text shows it in
 * per cent to 0.01 % (1e-4).
 */
export function probabilityBar(name: string, p: number, top: boolean, title = ""): HTMLElement {
  const fill = el("span", { class: "fill" });
  fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
  return el(
    "div",
    { class: top ? "bar top" : "bar", "data-name": name, "data-value": String(p), title },
    el("span", { class: "name" }, name),
    el("span", { class: "track" }, fill),
    el("span", { class: "value" }, formatPercent(p)),
  );
}
