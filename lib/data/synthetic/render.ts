/**
 * Renders a {@linkcode Scene} to a 424x424 RGB image that looks like an SDSS
 * gri composite from Galaxy Zoo: linear light on a half-resolution grid
 * (212x212, one Float32Array per channel), seeing, sky noise, an asinh
 * ("Lupton") stretch, then a 2x bilinear upsample - the Galaxy Zoo cutouts
 * are themselves resampled from coarser SDSS pixels, so their light and
 * noise are smooth over a few pixels just like this.
 *
 * Speed comes from evaluating every profile through a per-component lookup
 * table indexed by radius (no per-pixel exp/pow), computing spiral-arm phases
 * with complex powers instead of atan2, touching only each component's
 * bounding box, drawing sky noise from a precomputed correlated noise field,
 * and applying the seeing analytically per component instead of convolving:
 * radii are softened by the PSF width, Gaussian widths add in quadrature, and
 * the thin axis of edge-on disks is convolved in one dimension. Spiral arms
 * are left unblurred: they are wider than the PSF everywhere they are bright.
 *
 * @module
 */
import { Rng } from "./prng.ts";
import { armContrast, effectiveDustDepth, sersicB } from "./morphology.ts";
import type {
  ArcComponent,
  DiskComponent,
  DustLane,
  EdgeOnComponent,
  KnotComponent,
  Scene,
  SersicComponent,
  StarSource,
  TrailSource,
} from "./scene.ts";

/** Side of the written images, as in the competition. */
export const IMAGE_SIZE = 424;
/** Side of the internal grid the light is computed on. */
export const RENDER_SIZE = 212;

const W = RENDER_SIZE;
const SCALE = RENDER_SIZE / IMAGE_SIZE;
/**
 * Centre of render pixel i, in render units: output pixel 2i (centre 2i + 0.5
 * in image pixels) copies it and output pixel 2i + 1 averages i and i + 1, so
 * the 2x upsample is exact linear interpolation with no shift.
 */
const PIX = 0.25;
/** Lookup tables step a quarter of a render pixel in radius. */
const LUT_STEP = 4;
/** Faintest light worth evaluating (sky-noise units). */
const FAINTEST = 0.01;

/** Residual sky left by the sky subtraction, per channel (red, green, blue): not quite black. */
const SKY = [0.6, 0.6, 0.3];

/** Asinh stretch: softening (noise units) and the intensity that reaches full scale. */
const STRETCH_SOFTENING = 4;
const STRETCH_SATURATION = 3000;

/** Linear light being built up. */
class Canvas {
  readonly r = new Float32Array(W * W);
  readonly g = new Float32Array(W * W);
  readonly b = new Float32Array(W * W);
}

interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

function boxAround(x: number, y: number, rx: number, ry: number): Box | null {
  const x0 = Math.max(0, Math.floor(x - rx)), x1 = Math.min(W - 1, Math.ceil(x + rx));
  const y0 = Math.max(0, Math.floor(y - ry)), y1 = Math.min(W - 1, Math.ceil(y + ry));
  return x0 > x1 || y0 > y1 ? null : { x0, y0, x1, y1 };
}

/** Half-extents of the bounding box of an ellipse with semi-axes a, b at angle pa. */
function ellipseExtent(a: number, b: number, pa: number): [number, number] {
  const c = Math.cos(pa), s = Math.sin(pa);
  return [Math.sqrt(a * a * c * c + b * b * s * s), Math.sqrt(a * a * s * s + b * b * c * c)];
}

/** A radial lookup table: entry i holds f at radius (i + 0.5) / LUT_STEP. */
function radialLut(rmax: number, f: (r: number) => number): Float32Array {
  const n = Math.max(2, Math.ceil(rmax * LUT_STEP) + 1);
  const lut = new Float32Array(n);
  for (let i = 0; i < n; i++) lut[i] = f((i + 0.5) / LUT_STEP);
  return lut;
}

/** Smooth 1 -> 0 fade between radius `a` and `b`. */
function fade(r: number, a: number, b: number): number {
  if (r <= a) return 1;
  if (r >= b) return 0;
  const t = (r - a) / (b - a);
  return 1 - t * t * (3 - 2 * t);
}

/** Radius softened by the seeing: cores and cusps flatten over about one PSF width. */
function soft(r: number, psf: number): number {
  return Math.sqrt(r * r + psf * psf);
}

function drawSersic(cv: Canvas, c: SersicComponent, psf: number): void {
  const x = c.x * SCALE, y = c.y * SCALE, re = c.re * SCALE;
  const b = sersicB(c.n), invN = 1 / c.n;
  const rmax = Math.min(
    c.ie > FAINTEST ? re * Math.pow(1 + Math.log(c.ie / FAINTEST) / b, c.n) : 0,
    1.5 * W,
  );
  if (rmax < 0.5) return;
  const lut = radialLut(rmax, (r) => c.ie * Math.exp(-b * (Math.pow(soft(r, psf) / re, invN) - 1)));
  const [ex, ey] = ellipseExtent(rmax, rmax * c.q, c.pa);
  const box = boxAround(x, y, ex, ey);
  if (!box) return;
  const cs = Math.cos(c.pa), sn = Math.sin(c.pa), invQ = 1 / c.q;
  const [cr, cg, cb] = c.color;
  const n = lut.length, boxy = c.boxy;
  // Boxy isophotes: (u^4 + v^4)^(1/4), scaled to enclose about the same area as the ellipse.
  const boxyNorm = 1.1;
  const R = cv.r, G = cv.g, B = cv.b;
  for (let j = box.y0; j <= box.y1; j++) {
    const dy = j + PIX - y;
    let p = j * W + box.x0;
    let u = (box.x0 + PIX - x) * cs + dy * sn;
    let v = (dy * cs - (box.x0 + PIX - x) * sn) * invQ;
    const du = cs, dv = -sn * invQ;
    for (let i = box.x0; i <= box.x1; i++, p++, u += du, v += dv) {
      let r: number;
      if (boxy) {
        const u2 = u * u, v2 = v * v;
        r = Math.sqrt(Math.sqrt(u2 * u2 + v2 * v2)) * boxyNorm;
      } else r = Math.sqrt(u * u + v * v);
      const k = (r * LUT_STEP) | 0;
      if (k >= n) continue;
      const val = lut[k];
      R[p] += val * cr;
      G[p] += val * cg;
      B[p] += val * cb;
    }
  }
}

/** Azimuthal arm profile ((1 + cos psi) / 2)^sharpness, normalised to mean 1 over psi. */
const PROFILE_SIZE = 512;
function armProfile(sharpness: number): Float32Array {
  const lut = new Float32Array(PROFILE_SIZE + 1);
  for (let i = 0; i <= PROFILE_SIZE; i++) lut[i] = Math.pow(i / PROFILE_SIZE, sharpness);
  let mean = 0;
  const steps = 256;
  for (let k = 0; k < steps; k++) {
    mean += Math.pow((1 + Math.cos(2 * Math.PI * k / steps)) / 2, sharpness);
  }
  mean /= steps;
  for (let i = 0; i <= PROFILE_SIZE; i++) lut[i] /= mean;
  return lut;
}

function drawDisk(cv: Canvas, d: DiskComponent, psf: number): void {
  const x = d.x * SCALE, y = d.y * SCALE, h = d.h * SCALE;
  const rmax = Math.min(d.truncation * h + 0.5 * h, 1.5 * W);
  const edge0 = d.truncation * h - 0.5 * h;
  const n = Math.ceil(rmax * LUT_STEP) + 1;
  // One interleaved table per radius: disk light, arm fraction, arm phase (cos, sin), ring light.
  const t = new Float32Array(n * 5);
  const arms = d.arms, ring = d.ring;
  const r0 = arms ? arms.r0 * SCALE : 1;
  const k = arms ? arms.count * arms.handedness / Math.tan(arms.pitchDeg * Math.PI / 180) : 0;
  const ringR = ring ? ring.radius * SCALE : 0;
  const ringW = ring ? Math.hypot(ring.width * SCALE, psf) : 1;
  const ringA = ring ? ring.amplitude * ring.width * SCALE / ringW : 0;
  for (let i = 0; i < n; i++) {
    const r = (i + 0.5) / LUT_STEP;
    t[5 * i] = d.i0 * Math.exp(-soft(r, psf) / h) * fade(r, edge0, rmax);
    if (arms) {
      // The seeing washes out arms closer together than a few PSF widths.
      const contrast = armContrast(arms, d.q, r, psf);
      t[5 * i + 1] = arms.strength * contrast * (1 - fade(r, 0.55 * r0, r0));
      const a = -k * Math.log(r / r0) - arms.phase;
      t[5 * i + 2] = Math.cos(a);
      t[5 * i + 3] = Math.sin(a);
    }
    if (ring) t[5 * i + 4] = ringA * Math.exp(-0.5 * ((r - ringR) / ringW) ** 2);
  }
  const profile = arms ? armProfile(arms.sharpness) : null;
  const bar = d.bar;
  let barLut: Float32Array | null = null, barCos = 1, barSin = 0, barInvQ = 1;
  if (bar) {
    const len = bar.length * SCALE;
    barLut = radialLut(len * 1.3, (r) => {
      const s = Math.min(1, r / len);
      return bar.amplitude * Math.pow(1 - s * s, 1.5) * fade(r, 0.9 * len, 1.3 * len) +
        bar.amplitude * 0.05 * fade(r, len, 1.3 * len);
    });
    barCos = Math.cos(bar.angle);
    barSin = Math.sin(bar.angle);
    barInvQ = 1 / bar.q;
  }
  const [ex, ey] = ellipseExtent(rmax, rmax * d.q, d.pa);
  const box = boxAround(x, y, ex, ey);
  if (!box) return;
  const cs = Math.cos(d.pa), sn = Math.sin(d.pa), invQ = 1 / d.q;
  const [dr, dg, db] = d.color;
  const [ar, ag, ab] = arms ? arms.color : d.color;
  const [rr0, rg0, rb0] = ring ? ring.color : d.color;
  const [br0, bg0, bb0] = bar ? bar.color : d.color;
  const m = arms ? arms.count : 0;
  const lopC = arms ? arms.lopsidedness * Math.cos(arms.lopsidedAngle) : 0;
  const lopS = arms ? arms.lopsidedness * Math.sin(arms.lopsidedAngle) : 0;
  const half = PROFILE_SIZE / 2;
  const nb = barLut ? barLut.length : 0;
  const R = cv.r, G = cv.g, B = cv.b;
  for (let j = box.y0; j <= box.y1; j++) {
    const dy = j + PIX - y;
    let p = j * W + box.x0;
    let u = (box.x0 + PIX - x) * cs + dy * sn;
    let v = (dy * cs - (box.x0 + PIX - x) * sn) * invQ;
    const du = cs, dv = -sn * invQ;
    for (let i = box.x0; i <= box.x1; i++, p++, u += du, v += dv) {
      const r = Math.sqrt(u * u + v * v);
      const ki = (r * LUT_STEP) | 0;
      if (ki >= n) continue;
      const o = 5 * ki;
      const base = t[o];
      let rr = 0, gg = 0, bb = 0;
      if (m > 0) {
        // cos(m*phi + A(r)) from the unit vector's m-th power: no atan2 per pixel.
        const inv = r > 1e-6 ? 1 / r : 0;
        const cu = u * inv, su = v * inv;
        let pr = cu, pi = su;
        for (let s = 1; s < m; s++) {
          const nr = pr * cu - pi * su;
          pi = pr * su + pi * cu;
          pr = nr;
        }
        const cosPsi = pr * t[o + 2] - pi * t[o + 3];
        const frac = t[o + 1];
        // A lopsided (m = 1) modulation: real arms are rarely equally bright.
        const armLight = base * frac * (1 + lopC * cu + lopS * su) *
          profile![((cosPsi + 1) * half) | 0];
        const smooth = base * (1 - frac);
        rr = smooth * dr + armLight * ar;
        gg = smooth * dg + armLight * ag;
        bb = smooth * db + armLight * ab;
      } else {
        rr = base * dr;
        gg = base * dg;
        bb = base * db;
      }
      const rv = t[o + 4];
      if (rv !== 0) {
        rr += rv * rr0;
        gg += rv * rg0;
        bb += rv * rb0;
      }
      if (nb > 0) {
        const bu = u * barCos + v * barSin;
        const bv = (v * barCos - u * barSin) * barInvQ;
        const kb = (Math.sqrt(bu * bu + bv * bv) * LUT_STEP) | 0;
        if (kb < nb) {
          const bvv = barLut![kb];
          rr += bvv * br0;
          gg += bvv * bg0;
          bb += bvv * bb0;
        }
      }
      R[p] += rr;
      G[p] += gg;
      B[p] += bb;
    }
  }
}

function drawEdgeOn(cv: Canvas, e: EdgeOnComponent, psf: number): void {
  const x = e.x * SCALE, y = e.y * SCALE, h = e.h * SCALE, z0 = e.z0 * SCALE;
  const umax = e.truncation * h + psf;
  // Along the plane: exponential, truncated.
  const along = radialLut(
    umax,
    (u) => Math.exp(-soft(u, psf) / h) * fade(u, umax - 0.6 * h - psf, umax),
  );
  // Across: sech^2 convolved with the PSF (and a pixel) in one dimension: exact for a long disk.
  const sig = Math.sqrt(psf * psf + 1 / 12);
  const vmax = z0 * Math.log(4 * e.i0 / FAINTEST) / 2 + 3 * sig;
  const across = radialLut(vmax, (v) => {
    let s = 0, wsum = 0;
    for (let k = -12; k <= 12; k++) {
      const dz = k * sig / 4;
      const w = Math.exp(-0.5 * (k / 4) ** 2);
      const c = 1 / Math.cosh((v + dz) / z0);
      s += w * c * c;
      wsum += w;
    }
    return e.i0 * s / wsum;
  });
  const [ex, ey] = ellipseExtent(umax, vmax, e.pa);
  const box = boxAround(x, y, ex, ey);
  if (!box) return;
  const cs = Math.cos(e.pa), sn = Math.sin(e.pa);
  const [cr, cg, cb] = e.color;
  const na = along.length, nv = across.length;
  const R = cv.r, G = cv.g, B = cv.b;
  for (let j = box.y0; j <= box.y1; j++) {
    const dy = j + PIX - y;
    let p = j * W + box.x0;
    let u = (box.x0 + PIX - x) * cs + dy * sn;
    let v = dy * cs - (box.x0 + PIX - x) * sn;
    for (let i = box.x0; i <= box.x1; i++, p++, u += cs, v -= sn) {
      const ku = ((u < 0 ? -u : u) * LUT_STEP) | 0;
      const kv = ((v < 0 ? -v : v) * LUT_STEP) | 0;
      if (ku >= na || kv >= nv) continue;
      const val = along[ku] * across[kv];
      R[p] += val * cr;
      G[p] += val * cg;
      B[p] += val * cb;
    }
  }
}

/** A Gaussian spot of the given width (render pixels) and total light `peak * 2 pi sigma0^2`. */
function drawGaussian(
  cv: Canvas,
  x: number,
  y: number,
  sigma0: number,
  peak0: number,
  psf: number,
  color: readonly number[],
): void {
  // Seeing and the pixel widen it, keeping its total light.
  const s2 = sigma0 * sigma0 + psf * psf + 1 / 12;
  const s = Math.sqrt(s2);
  const peak = peak0 * sigma0 * sigma0 / s2;
  const rad = s * Math.sqrt(Math.max(1, 2 * Math.log(peak / FAINTEST)));
  const box = boxAround(x, y, rad, rad);
  if (!box) return;
  const wx = new Float32Array(box.x1 - box.x0 + 1);
  for (let i = box.x0; i <= box.x1; i++) {
    const d = (i + PIX - x) / s;
    wx[i - box.x0] = Math.exp(-0.5 * d * d);
  }
  const [cr, cg, cb] = color;
  for (let j = box.y0; j <= box.y1; j++) {
    const d = (j + PIX - y) / s;
    const wy = peak * Math.exp(-0.5 * d * d);
    let p = j * W + box.x0;
    for (let i = 0; i < wx.length; i++, p++) {
      const val = wy * wx[i];
      cv.r[p] += val * cr;
      cv.g[p] += val * cg;
      cv.b[p] += val * cb;
    }
  }
}

function drawKnot(cv: Canvas, k: KnotComponent, psf: number): void {
  drawGaussian(cv, k.x * SCALE, k.y * SCALE, k.sigma * SCALE, k.amplitude, psf, k.color);
}

function drawArc(cv: Canvas, a: ArcComponent, psf: number): void {
  const x = a.x * SCALE, y = a.y * SCALE, rad = a.radius * SCALE;
  const w0 = a.width * SCALE;
  const w = Math.hypot(w0, psf);
  const amp = a.amplitude * w0 / w;
  const box = boxAround(x, y, rad + 4 * w, rad + 4 * w);
  if (!box) return;
  const [cr, cg, cb] = a.color;
  for (let j = box.y0; j <= box.y1; j++) {
    for (let i = box.x0; i <= box.x1; i++) {
      const dx = i + PIX - x, dy = j + PIX - y;
      const t = (Math.hypot(dx, dy) - rad) / w;
      if (t * t > 16) continue;
      let dphi = Math.atan2(dy, dx) - a.angle;
      dphi = Math.atan2(Math.sin(dphi), Math.cos(dphi));
      const val = amp * Math.exp(-0.5 * t * t) *
        fade(Math.abs(dphi), 0.4 * a.halfSpan, a.halfSpan);
      const p = j * W + i;
      cv.r[p] += val * cr;
      cv.g[p] += val * cg;
      cv.b[p] += val * cb;
    }
  }
}

function applyDust(cv: Canvas, d: DustLane, psf: number): void {
  const x = d.x * SCALE, y = d.y * SCALE, len = d.length * SCALE, off = d.offset * SCALE;
  const w0 = d.width * SCALE;
  // Seen through the seeing, a lane thinner than the PSF is wider and shallower.
  const w = Math.sqrt(w0 * w0 + psf * psf);
  const tau = effectiveDustDepth({ tau: d.tau, width: w0 }, psf);
  const vmax = 4 * w;
  const lane = radialLut(vmax, (v) => Math.exp(-0.5 * (v / w) ** 2));
  const taper = radialLut(len, (u) => fade(u, 0.6 * len, len));
  const [ex, ey] = ellipseExtent(len, vmax + Math.abs(off), d.pa);
  const box = boxAround(x, y, ex, ey);
  if (!box) return;
  const cs = Math.cos(d.pa), sn = Math.sin(d.pa);
  // Bluer light is absorbed more (reddening); red, green, blue relative optical depths.
  const tr = 0.85 * tau, tg = 0.93 * tau, tb = tau;
  for (let j = box.y0; j <= box.y1; j++) {
    const dy = j + PIX - y;
    for (let i = box.x0; i <= box.x1; i++) {
      const dx = i + PIX - x;
      const ku = (Math.abs(dx * cs + dy * sn) * LUT_STEP) | 0;
      const kv = (Math.abs(dy * cs - dx * sn - off) * LUT_STEP) | 0;
      if (ku >= taper.length || kv >= lane.length) continue;
      const f = lane[kv] * taper[ku];
      const p = j * W + i;
      cv.r[p] *= 1 - tr * f;
      cv.g[p] *= 1 - tg * f;
      cv.b[p] *= 1 - tb * f;
    }
  }
}

function drawStar(cv: Canvas, s: StarSource, psf: number): void {
  const x = s.x * SCALE, y = s.y * SCALE;
  // Core plus a faint wide halo (the PSF's wings).
  drawGaussian(cv, x, y, 1e-3, s.peak * 1e6 * (psf * psf + 1 / 12), psf, s.color);
  drawGaussian(cv, x, y, 3 * psf, 0.03 * s.peak, 0, s.color);
  // Bright stars also show the PSF's far wings (scattered light).
  if (s.peak > 2000) drawGaussian(cv, x, y, 9 * psf, 0.002 * s.peak, 0, s.color);
  if (!s.spikes) return;
  // Diffraction spikes along the columns and rows, as the SDSS telescope's vanes make them.
  const sc = Math.sqrt(psf * psf + 1 / 12);
  const len = Math.min(W / 2, 3 * sc * Math.sqrt(s.peak / 100));
  const amp = 0.05 * s.peak;
  const [cr, cg, cb] = s.color;
  const ix = Math.floor(x), iy = Math.floor(y);
  const fx = x - ix - PIX, fy = y - iy - PIX;
  for (let d = 1; d <= len; d++) {
    const val = amp * Math.pow(sc / (d + sc), 1.6) * fade(d, 0.5 * len, len);
    if (val < 0.02) break;
    for (const sign of [-1, 1]) {
      for (let lat = -1; lat <= 1; lat++) {
        const wl = Math.exp(-2 * (lat - fy) ** 2), wv = Math.exp(-2 * (lat - fx) ** 2);
        const hx = ix + sign * d, hy = iy + lat;
        if (hx >= 0 && hx < W && hy >= 0 && hy < W) {
          const p = hy * W + hx;
          cv.r[p] += val * wl * cr;
          cv.g[p] += val * wl * cg;
          cv.b[p] += val * wl * cb;
        }
        const vx = ix + lat, vy = iy + sign * d;
        if (vx >= 0 && vx < W && vy >= 0 && vy < W) {
          const p = vy * W + vx;
          cv.r[p] += val * wv * cr;
          cv.g[p] += val * wv * cg;
          cv.b[p] += val * wv * cb;
        }
      }
    }
  }
}

function drawTrail(cv: Canvas, t: TrailSource, psf: number): void {
  const x = t.x * SCALE, y = t.y * SCALE, off = t.bandOffset * SCALE;
  const w = Math.max(psf * 0.6, 0.6);
  const nx = -Math.sin(t.angle), ny = Math.cos(t.angle);
  const reach = off + 4 * w;
  const chans = [cv.r, cv.g, cv.b];
  for (let j = 0; j < W; j++) {
    for (let i = 0; i < W; i++) {
      const d = (i + PIX - x) * nx + (j + PIX - y) * ny;
      if (d > reach || d < -reach) continue;
      const p = j * W + i;
      for (let c = 0; c < 3; c++) {
        const e = (d - (1 - c) * off) / w;
        chans[c][p] += t.amplitude * Math.exp(-0.5 * e * e);
      }
    }
  }
}

/**
 * A fixed field of unit-variance sky noise, blotchy over a few image pixels
 * like the resampled SDSS noise: half its variance white, half on a 2x
 * coarser grid interpolated bilinearly. Each image reads windows of it at
 * seeded offsets, which costs one add per pixel instead of a random draw.
 */
const NOISE_SIDE = 512;
let noiseField: Float32Array | null = null;
function skyNoiseField(): Float32Array {
  if (noiseField) return noiseField;
  const rng = new Rng(0x5eed5);
  const coarseSide = NOISE_SIDE / 2 + 2;
  const coarse = new Float32Array(coarseSide * coarseSide);
  for (let p = 0; p < coarse.length; p++) coarse[p] = rng.normal();
  // Bilinear 2x weights (3/4, 1/4 per axis) keep (81 + 9 + 9 + 1) / 256 of the variance.
  const coarseGain = Math.SQRT1_2 / Math.sqrt(100 / 256);
  const field = new Float32Array(NOISE_SIDE * NOISE_SIDE);
  for (let j = 0; j < NOISE_SIDE; j++) {
    const cj = (j >> 1) + 1, nj = j & 1 ? cj + 1 : cj - 1;
    for (let i = 0; i < NOISE_SIDE; i++) {
      const ci = (i >> 1) + 1, ni = i & 1 ? ci + 1 : ci - 1;
      const blotch = 0.5625 * coarse[cj * coarseSide + ci] + 0.1875 * coarse[cj * coarseSide + ni] +
        0.1875 * coarse[nj * coarseSide + ci] + 0.0625 * coarse[nj * coarseSide + ni];
      field[j * NOISE_SIDE + i] = blotch * coarseGain + rng.normal() * Math.SQRT1_2;
    }
  }
  noiseField = field;
  return field;
}

/** Asinh stretch gain S(I)/I: fine steps in I for the sky and faint light, sqrt(I) steps above. */
const LOW_MAX = 64;
const LOW_STEPS = 16;
const HIGH_STEPS = 64;
const HIGH_MAX_SQRT = 120;
function stretchGain(i: number): number {
  return Math.asinh(i / STRETCH_SOFTENING) /
    Math.asinh(STRETCH_SATURATION / STRETCH_SOFTENING) / i;
}
let gainLow: Float32Array | null = null, gainHigh: Float32Array | null = null;
function gainTables(): [Float32Array, Float32Array] {
  if (!gainLow || !gainHigh) {
    gainLow = new Float32Array(LOW_MAX * LOW_STEPS + 1);
    for (let k = 0; k < gainLow.length; k++) gainLow[k] = stretchGain((k + 0.5) / LOW_STEPS);
    gainHigh = new Float32Array(HIGH_MAX_SQRT * HIGH_STEPS + 1);
    for (let k = 0; k < gainHigh.length; k++) {
      gainHigh[k] = stretchGain(((k + 0.5) / HIGH_STEPS) ** 2);
    }
  }
  return [gainLow, gainHigh];
}

/**
 * Adds the sky (residual level plus noise from windows of the noise field),
 * applies the colour-preserving asinh stretch - heavily saturated light turns
 * white, as on the CCD - and writes the 2x upsampled bytes.
 */
function finish(cv: Canvas, scene: Scene): Uint8Array {
  const field = skyNoiseField();
  const rng = new Rng(scene.noiseSeed);
  const off: number[] = [];
  for (let c = 0; c < 3; c++) {
    off.push(rng.int(0, NOISE_SIDE - W) + rng.int(0, NOISE_SIDE - W) * NOISE_SIDE);
  }
  const [nr, ng, nb] = scene.noise;
  const [sr, sg, sb] = SKY;
  const [low, high] = gainTables();
  const nHigh = high.length;
  const slope0 = stretchGain(1e-6);
  const R = cv.r, G = cv.g, B = cv.b;
  const out = new Uint8Array(IMAGE_SIZE * IMAGE_SIZE * 3);
  const rowOut = IMAGE_SIZE * 3;
  const row = new Uint8Array(W * 3);
  for (let j = 0; j < W; j++) {
    let fr = off[0] + j * NOISE_SIDE, fg = off[1] + j * NOISE_SIDE, fb = off[2] + j * NOISE_SIDE;
    for (let i = 0, p = j * W, o = 0; i < W; i++, p++, o += 3) {
      const r = R[p] + sr + nr * field[fr++];
      const g = G[p] + sg + ng * field[fg++];
      const b = B[p] + sb + nb * field[fb++];
      const I = (r + g + b) * (1 / 3);
      let gain: number;
      if (I <= 0) gain = slope0;
      else if (I < LOW_MAX) gain = low[(I * LOW_STEPS) | 0];
      else {
        const k = (Math.sqrt(I) * HIGH_STEPS) | 0;
        gain = k < nHigh ? high[k] : stretchGain(I);
      }
      let rr = r * gain, gg = g * gain, bb = b * gain;
      if (rr > 1 || gg > 1 || bb > 1) {
        const mx = rr > gg ? (rr > bb ? rr : bb) : (gg > bb ? gg : bb);
        const white = mx > 3 ? 1 : (mx - 1) * 0.5;
        const inv = 1 / mx;
        rr = rr * inv + (1 - rr * inv) * white;
        gg = gg * inv + (1 - gg * inv) * white;
        bb = bb * inv + (1 - bb * inv) * white;
      }
      // Uint8Array stores truncate: +0.5 rounds, and values never exceed 255.5.
      row[o] = rr <= 0 ? 0 : rr * 255 + 0.5;
      row[o + 1] = gg <= 0 ? 0 : gg * 255 + 0.5;
      row[o + 2] = bb <= 0 ? 0 : bb * 255 + 0.5;
    }
    // Even output row 2j: copy even pixels, average neighbours into odd ones.
    const base = 2 * j * rowOut;
    for (let i = 0, s = 0, o = base; i < W - 1; i++, s += 3, o += 6) {
      out[o] = row[s];
      out[o + 1] = row[s + 1];
      out[o + 2] = row[s + 2];
      out[o + 3] = (row[s] + row[s + 3] + 1) >> 1;
      out[o + 4] = (row[s + 1] + row[s + 4] + 1) >> 1;
      out[o + 5] = (row[s + 2] + row[s + 5] + 1) >> 1;
    }
    const s = 3 * (W - 1), o = base + 6 * (W - 1);
    out[o] = out[o + 3] = row[s];
    out[o + 1] = out[o + 4] = row[s + 1];
    out[o + 2] = out[o + 5] = row[s + 2];
  }
  // Odd output rows average the even rows around them, four bytes at a time.
  const words = new Uint32Array(out.buffer);
  const rowWords = rowOut / 4;
  for (let j = 0; j < W - 1; j++) {
    const a = 2 * j * rowWords, m = a + rowWords, b = m + rowWords;
    for (let k = 0; k < rowWords; k++) {
      const x = words[a + k], y = words[b + k];
      words[m + k] = (x & y) + (((x ^ y) >>> 1) & 0x7f7f7f7f);
    }
  }
  out.copyWithin((2 * W - 1) * rowOut, (2 * W - 2) * rowOut, (2 * W - 1) * rowOut);
  return out;
}

const canvas = new Canvas();

/**
 * Renders a scene to packed 8-bit RGB at `IMAGE_SIZE` x `IMAGE_SIZE`
 * (row-major, 3 bytes a pixel), ready for a raw-input JPEG encoder.
 */
export function renderScene(scene: Scene): Uint8Array {
  const cv = canvas;
  cv.r.fill(0);
  cv.g.fill(0);
  cv.b.fill(0);
  const psf = scene.psfSigma * SCALE;
  for (const c of scene.light) {
    switch (c.type) {
      case "sersic":
        drawSersic(cv, c, psf);
        break;
      case "disk":
        drawDisk(cv, c, psf);
        break;
      case "edge_on":
        drawEdgeOn(cv, c, psf);
        break;
      case "knot":
        drawKnot(cv, c, psf);
        break;
      case "arc":
        drawArc(cv, c, psf);
        break;
    }
  }
  for (const d of scene.dust) applyDust(cv, d, psf);
  for (const s of scene.sources) {
    if (s.type === "star") drawStar(cv, s, psf);
    else drawTrail(cv, s, psf);
  }
  return finish(cv, scene);
}
