import assert from "node:assert/strict";
import {
  allTapsLive,
  type ConvGeometry,
  cropTaps,
  liveTaps,
  nhwcConvGeometry,
} from "../lib/kernels/conv_geometry.ts";
import { mulberry32 } from "../lib/random.ts";

// Pure arithmetic, no oneDNN: what lib/kernels/onednn/cropped_filter.ts
// relies on holds on every machine.

/** Forward NHWC convolution by direct loops, filter `hwio`. */
function convolve(g: ConvGeometry, x: Float32Array, w: Float32Array): Float64Array {
  const y = new Float64Array(g.batch * g.outHeight * g.outWidth * g.outChannels);
  for (let n = 0; n < g.batch; n++) {
    for (let oy = 0; oy < g.outHeight; oy++) {
      for (let ox = 0; ox < g.outWidth; ox++) {
        for (let ky = 0; ky < g.filterHeight; ky++) {
          const iy = oy * g.strideHeight - g.padTop + ky;
          if (iy < 0 || iy >= g.inHeight) continue;
          for (let kx = 0; kx < g.filterWidth; kx++) {
            const ix = ox * g.strideWidth - g.padLeft + kx;
            if (ix < 0 || ix >= g.inWidth) continue;
            for (let c = 0; c < g.inChannels; c++) {
              const xv = x[((n * g.inHeight + iy) * g.inWidth + ix) * g.inChannels + c];
              for (let o = 0; o < g.outChannels; o++) {
                y[((n * g.outHeight + oy) * g.outWidth + ox) * g.outChannels + o] += xv *
                  w[((ky * g.filterWidth + kx) * g.inChannels + c) * g.outChannels + o];
              }
            }
          }
        }
      }
    }
  }
  return y;
}

/** Whether filter tap `k` of one dimension meets a real input row (or column) at some output. */
function meets(k: number, out: number, stride: number, pad: number, input: number): boolean {
  for (let o = 0; o < out; o++) {
    const i = o * stride - pad + k;
    if (i >= 0 && i < input) return true;
  }
  return false;
}

/** Whether tap (ky, kx) meets a real input pixel at some output pixel. */
function tapMeetsInput(g: ConvGeometry, ky: number, kx: number): boolean {
  return meets(ky, g.outHeight, g.strideHeight, g.padTop, g.inHeight) &&
    meets(kx, g.outWidth, g.strideWidth, g.padLeft, g.inWidth);
}

/** The `hwio` filter restricted to rows top.., columns left.. of the given size. */
function cropFilter(g: ConvGeometry, w: Float32Array, t: ReturnType<typeof liveTaps>) {
  const tap = g.inChannels * g.outChannels;
  const out = new Float32Array(t.height * t.width * tap);
  for (let r = 0; r < t.height; r++) {
    for (let c = 0; c < t.width; c++) {
      const from = ((t.top + r) * g.filterWidth + t.left + c) * tap;
      out.set(w.subarray(from, from + tap), (r * t.width + c) * tap);
    }
  }
  return out;
}

const random = mulberry32(21);
const values = (n: number) => Float32Array.from({ length: n }, () => random() * 2 - 1);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];

/** Random geometries over small maps, where dead taps are common; every pad mode TF.js has. */
function randomGeometries(count: number): ConvGeometry[] {
  const out: ConvGeometry[] = [];
  while (out.length < count) {
    const k = pick([1, 2, 3, 5, 7]);
    const [h, w] = [1 + Math.floor(random() * 5), 1 + Math.floor(random() * 5)];
    const stride = pick([1, 2, 3]);
    const pad = pick<"same" | "valid" | number>(["same", "valid", 0, 1, 2, 3]);
    try {
      const g = nhwcConvGeometry([2, h, w, 2], [k, k, 2, 3], stride, pad, undefined);
      if (g.outHeight > 0 && g.outWidth > 0) out.push(g);
    } catch {
      // An input smaller than a "valid" filter: TF.js refuses it, as it should.
    }
  }
  return out;
}

Deno.test("liveTaps: ResNet-34's last stage at 32 px (3x3 'same' on 1x1 maps) keeps only the centre", () => {
  const g = nhwcConvGeometry([4, 1, 1, 512], [3, 3, 512, 512], 1, "same", undefined);
  assert.deepEqual(liveTaps(g), { top: 1, left: 1, height: 1, width: 1 });
  const c = cropTaps(g, liveTaps(g));
  assert.deepEqual(
    [c.filterHeight, c.filterWidth, c.padTop, c.padLeft, c.padBottom, c.padRight],
    [1, 1, 0, 0, 0, 0],
  );
  // On 2x2 maps every tap of a 3x3 'same' filter meets a pixel somewhere: nothing to crop.
  const g2 = nhwcConvGeometry([4, 2, 2, 512], [3, 3, 512, 512], 1, "same", undefined);
  assert.ok(allTapsLive(g2, liveTaps(g2)));
});

Deno.test("liveTaps: every tap outside the block meets only padding; at stride 1 the block is tight", () => {
  let [cropped, empty] = [0, 0];
  for (const g of randomGeometries(400)) {
    const t = liveTaps(g);
    if (t.height === 0 || t.width === 0) empty++;
    for (let ky = 0; ky < g.filterHeight; ky++) {
      for (let kx = 0; kx < g.filterWidth; kx++) {
        const inside = ky >= t.top && ky < t.top + t.height && kx >= t.left &&
          kx < t.left + t.width;
        if (!inside) {
          assert.ok(!tapMeetsInput(g, ky, kx), `tap ${ky},${kx} of ${JSON.stringify(g)}`);
        }
      }
    }
    // At stride 1 the block is tight: its first and last rows and columns are used.
    if (g.strideHeight === 1) {
      for (const k of [t.top, t.top + t.height - 1]) {
        assert.ok(
          meets(k, g.outHeight, 1, g.padTop, g.inHeight),
          `row ${k} of ${JSON.stringify(g)}`,
        );
      }
    }
    if (g.strideWidth === 1) {
      for (const k of [t.left, t.left + t.width - 1]) {
        assert.ok(
          meets(k, g.outWidth, 1, g.padLeft, g.inWidth),
          `column ${k} of ${JSON.stringify(g)}`,
        );
      }
    }
    if (t.height > 0 && t.width > 0 && !allTapsLive(g, t)) cropped++;
  }
  assert.ok(cropped > 50, `only ${cropped} of 400 random geometries had dead taps`);
  assert.ok(empty > 0, "no random geometry had a stride stepping over the whole input");
});

Deno.test("cropTaps: the cropped convolution has the same output size, non-negative pads and the same sums", () => {
  for (const g of randomGeometries(200)) {
    const t = liveTaps(g);
    const what = JSON.stringify(g);
    const x = values(g.batch * g.inHeight * g.inWidth * g.inChannels);
    const w = values(g.filterHeight * g.filterWidth * g.inChannels * g.outChannels);
    const full = convolve(g, x, w);
    if (t.height === 0 || t.width === 0) {
      // No live tap: nothing to crop to, and every output is zero (the bias alone).
      assert.ok(full.every((v) => v === 0), what);
      continue;
    }
    const c = cropTaps(g, t);
    assert.deepEqual([c.outHeight, c.outWidth], [g.outHeight, g.outWidth], what);
    for (const p of [c.padTop, c.padLeft, c.padBottom, c.padRight]) assert.ok(p >= 0, what);
    // The output size the cropped geometry implies is the one it claims.
    const implied = (i: number, k: number, s: number, a: number, b: number) =>
      Math.floor((i + a + b - k) / s) + 1;
    assert.equal(
      implied(c.inHeight, c.filterHeight, c.strideHeight, c.padTop, c.padBottom),
      c.outHeight,
      what,
    );
    assert.equal(
      implied(c.inWidth, c.filterWidth, c.strideWidth, c.padLeft, c.padRight),
      c.outWidth,
      what,
    );
    const crop = convolve(c, x, cropFilter(g, w, t));
    for (let i = 0; i < full.length; i++) {
      assert.ok(Math.abs(full[i] - crop[i]) <= 1e-9 * (1 + Math.abs(full[i])), `${what} @${i}`);
    }
  }
});
