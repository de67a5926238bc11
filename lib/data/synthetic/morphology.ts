/**
 * Draws the true morphology of a generated galaxy and the light components
 * that show it: ellipticals (round, in-between, cigar-shaped), spirals with
 * 1-6 logarithmic arms of either handedness and tight/medium/loose winding,
 * bars, rings, lenticulars, edge-on disks with rounded/boxy/no bulges and
 * dust lanes, mergers with tidal tails, irregulars, and stars or artifacts,
 * plus foreground stars and faint background galaxies. Colours follow SDSS
 * gri composites: old populations (ellipticals, bulges) yellow-red, young
 * ones (arms, knots, irregulars) blue.
 *
 * @module
 */
import type { Rng } from "./prng.ts";
import type {
  BulgeShape,
  DiskComponent,
  DustLane,
  GalaxyKind,
  LightComponent,
  Morphology,
  PointSource,
  Rgb,
  Scene,
  SersicComponent,
} from "./scene.ts";

/** How often each kind is drawn (sums to 1), roughly the mix of the Galaxy Zoo 2 sample. */
export const KIND_WEIGHTS: Readonly<Record<GalaxyKind, number>> = {
  elliptical: 0.38,
  spiral: 0.28,
  lenticular: 0.05,
  edge_on: 0.15,
  merger: 0.05,
  irregular: 0.04,
  star: 0.035,
  artifact: 0.015,
};

const KINDS = Object.keys(KIND_WEIGHTS) as GalaxyKind[];

/** Intensity unit: light that is plainly visible sits a few LIGHT above the sky noise. */
const LIGHT = 10;

/** Image centre in 424-pixel coordinates. */
const CENTRE = 212;

// Colours in linear (R, G, B) = (i, r, g) flux weights.
const OLD: Rgb = [1.0, 0.82, 0.64];
const DISK_OLD: Rgb = [0.9, 0.84, 0.82];
const YOUNG: Rgb = [0.7, 0.78, 1.02];

/** Varies a colour along the red-blue axis only (populations differ in age, not in hue). */
function jitterColor(rng: Rng, c: Rgb, amount: number): Rgb {
  const t = amount * Math.max(-2, Math.min(2, rng.normal()));
  return [c[0] * (1 + t), c[1], c[2] * (1 - t)];
}

function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

function starColor(rng: Rng): Rgb {
  // From cool red dwarfs to hot blue stars; most field stars are yellow-white.
  const t = Math.min(1, Math.max(0, rng.uniform(-0.1, 1.1)));
  return mix([1.15, 0.8, 0.55], [0.75, 0.85, 1.1], t);
}

/** Sersic b_n (Ciotti & Bertin 1999 asymptotic series). */
export function sersicB(n: number): number {
  return 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n * n);
}

/** Total light of a Sersic profile with unit intensity at `re` and axis ratio 1. */
export function sersicTotal(n: number, re: number): number {
  const b = sersicB(n);
  // Integrate in log r: the profile spans decades and the integrand is smooth there.
  const lo = Math.log(re * 1e-4), hi = Math.log(re * 30);
  const steps = 400;
  const dl = (hi - lo) / steps;
  let sum = 0;
  for (let k = 0; k <= steps; k++) {
    const r = Math.exp(lo + k * dl);
    const w = k === 0 || k === steps ? 0.5 : 1;
    sum += w * Math.exp(-b * (Math.pow(r / re, 1 / n) - 1)) * 2 * Math.PI * r * r;
  }
  return sum * dl;
}

/**
 * How much of an arm pattern's contrast survives the seeing at radius `r`:
 * a Gaussian blur scales a pattern of wavelength L by exp(-2 pi^2 sigma^2 / L^2),
 * and across the arms L = 2 pi r sin(pitch) / count, narrowed on the sky by
 * foreshortening (~sqrt(q)). The renderer applies the same factor.
 */
export function armContrast(
  arms: { count: number; pitchDeg: number },
  q: number,
  r: number,
  psfSigma: number,
): number {
  const wave = 2 * Math.PI * r * Math.sin(arms.pitchDeg * Math.PI / 180) / arms.count *
    Math.sqrt(q);
  return Math.exp(-2 * Math.PI * Math.PI * psfSigma * psfSigma / (wave * wave));
}

/** Axis ratio of a disk of intrinsic thickness `q0` at inclination whose cosine is `cosI`. */
function inclinedAxisRatio(cosI: number, q0: number): number {
  return Math.sqrt(cosI * cosI * (1 - q0 * q0) + q0 * q0);
}

interface Placement {
  x: number;
  y: number;
}

function centre(rng: Rng): Placement {
  return { x: CENTRE + 1.2 * rng.normal(), y: CENTRE + 1.2 * rng.normal() };
}

function baseMorphology(kind: GalaxyKind): Morphology {
  return {
    kind,
    axisRatio: 1,
    bulgeFraction: 0,
    bulgeShape: "none",
    arms: 0,
    pitchDeg: 0,
    armVisibility: 0,
    barVisibility: 0,
    odd: "none",
    clarity: 1,
    brightStarNearby: false,
  };
}

/** Clarity from surface brightness and size: faint or small galaxies are harder to read. */
function clarityOf(brightness: number, size: number): number {
  const b = Math.min(1, brightness);
  const s = Math.min(1, size / 14);
  return Math.max(0.2, Math.min(1, 0.35 + 0.65 * b * s));
}

interface Built {
  morphology: Morphology;
  light: LightComponent[];
  dust: DustLane[];
  sources: PointSource[];
}

function elliptical(rng: Rng, at: Placement): Built {
  const m = baseMorphology("elliptical");
  // Draw the flattening band first so round, in-between and cigar-shaped smooth
  // galaxies all occur in useful numbers, with soft edges between them.
  const band = rng.pick([0.38, 0.36, 0.26]);
  const [qLo, qHi] = ([[0.82, 1], [0.5, 0.76], [0.2, 0.42]] as const)[band];
  const q = rng.uniform(qLo, qHi);
  const n = band === 2 ? rng.uniform(1.5, 3) : rng.uniform(2.5, 5);
  const re = rng.logUniform(9, 28);
  const brightness = rng.logUniform(0.6, 1.6);
  const ie = 4.5 * LIGHT * brightness * (n < 3 ? 1.6 : 1);
  const light: LightComponent[] = [{
    type: "sersic",
    x: at.x,
    y: at.y,
    re,
    n,
    q,
    pa: rng.uniform(0, Math.PI),
    ie,
    color: jitterColor(rng, OLD, 0.06),
    boxy: false,
  }];
  m.axisRatio = q;
  m.bulgeFraction = 1;
  m.clarity = clarityOf(brightness, re);
  if (rng.chance(0.03)) {
    // A faint blue gravitational arc around the elliptical.
    m.odd = "lens";
    light.push({
      type: "arc",
      x: at.x,
      y: at.y,
      radius: re * rng.uniform(1.8, 2.8),
      width: rng.uniform(1.5, 2.5),
      angle: rng.uniform(0, 2 * Math.PI),
      halfSpan: rng.uniform(0.4, 0.9),
      amplitude: LIGHT * rng.uniform(4, 8),
      color: YOUNG,
    });
  }
  return { morphology: m, light, dust: [], sources: [] };
}

interface DiskOptions {
  /** Seeing (PSF sigma) of the image: it decides how much of tightly wound arms survives. */
  psfSigma: number;
  armed: boolean;
  barChance: number;
  ringChance: number;
  bulgeRange: [number, number];
  cosIRange: [number, number];
  diskColor: Rgb;
}

function diskGalaxy(rng: Rng, at: Placement, kind: GalaxyKind, o: DiskOptions): Built {
  const m = baseMorphology(kind);
  const h = rng.logUniform(10, 21);
  const cosI = rng.uniform(o.cosIRange[0], o.cosIRange[1]);
  const q = inclinedAxisRatio(cosI, 0.15);
  const pa = rng.uniform(0, Math.PI);
  const brightness = rng.logUniform(0.6, 1.5);
  // An inclined disk is brighter per pixel: the same light is seen through more of it.
  const i0 = 22 * LIGHT * brightness / Math.sqrt(q);
  const bt = rng.uniform(o.bulgeRange[0], o.bulgeRange[1]) ** 1.3;
  const bulgeRe = h * rng.uniform(0.15, 0.35);
  const bulgeN = rng.uniform(1.5, 4);
  const bulgeQ = Math.max(q, rng.uniform(0.75, 0.95));
  const diskLight = 2 * Math.PI * h * h * i0 * q;
  const bulgeLight = bt / Math.max(1e-3, 1 - bt) * diskLight;
  const bulgeIe = bulgeLight / (sersicTotal(bulgeN, bulgeRe) * bulgeQ);

  const disk: DiskComponent = {
    type: "disk",
    x: at.x,
    y: at.y,
    h,
    q,
    pa,
    i0,
    color: jitterColor(rng, o.diskColor, 0.05),
    truncation: rng.uniform(3.8, 5),
    arms: null,
    bar: null,
    ring: null,
  };
  const light: LightComponent[] = [disk];
  if (bt > 0.01) {
    light.push({
      type: "sersic",
      x: at.x,
      y: at.y,
      re: bulgeRe,
      n: bulgeN,
      q: bulgeQ,
      pa,
      ie: bulgeIe,
      color: jitterColor(rng, OLD, 0.05),
      boxy: false,
    });
  }
  if (rng.chance(o.barChance)) {
    const strength = rng.uniform(0.35, 1);
    disk.bar = {
      length: h * rng.uniform(0.9, 1.8),
      q: rng.uniform(0.2, 0.34),
      angle: rng.uniform(0, Math.PI),
      amplitude: i0 * (0.35 + 0.6 * strength),
      color: mix(OLD, DISK_OLD, 0.5),
    };
    m.barVisibility = Math.min(1, strength * (0.6 + 0.4 * cosI) * Math.min(1, brightness + 0.2));
  }
  if (o.armed) {
    const count = 1 + rng.pick([0.05, 0.55, 0.2, 0.1, 0.05, 0.05]);
    const winding = rng.int(0, 2);
    const pitchDeg = winding === 0
      ? rng.uniform(7, 13)
      : winding === 1
      ? rng.uniform(15, 23)
      : rng.uniform(27, 40);
    const strength = rng.uniform(0.5, 0.88);
    const r0 = Math.max(bulgeRe * 1.6, disk.bar ? disk.bar.length * 0.9 : 0, 0.5 * h);
    disk.arms = {
      count,
      pitchDeg,
      handedness: rng.chance(0.5) ? 1 : -1,
      strength,
      // Many arms are narrower, as in flocculent-ish multi-arm spirals.
      sharpness: count <= 2 ? rng.uniform(2, 4) : rng.uniform(1.5, 3),
      r0,
      phase: rng.uniform(0, 2 * Math.PI),
      lopsidedness: rng.uniform(0, 0.4),
      lopsidedAngle: rng.uniform(0, 2 * Math.PI),
      color: jitterColor(rng, YOUNG, 0.05),
    };
    m.arms = count;
    m.pitchDeg = pitchDeg;
    m.armVisibility = Math.min(
      1,
      1.6 * strength * armContrast(disk.arms, q, 3 * h, o.psfSigma) *
        Math.min(1, 0.4 + 0.6 * brightness) * (0.6 + 0.4 * cosI),
    );
    // Star-forming knots along the arms.
    const knots = rng.int(6, 26);
    const k = 1 / Math.tan(pitchDeg * Math.PI / 180);
    const c = Math.cos(pa), s = Math.sin(pa);
    for (let j = 0; j < knots; j++) {
      const arm = rng.int(0, count - 1);
      const r = r0 * Math.exp(rng.uniform(0, Math.log(3.2 * h / r0)));
      const phi = disk.arms.handedness * k * Math.log(r / r0) +
        (disk.arms.phase + 2 * Math.PI * arm) / count + 0.15 * rng.normal();
      const u = r * Math.cos(phi), v = r * Math.sin(phi) * q;
      light.push({
        type: "knot",
        x: at.x + u * c - v * s,
        y: at.y + u * s + v * c,
        sigma: rng.uniform(2, 4),
        amplitude: i0 * Math.exp(-r / h) * rng.uniform(0.5, 1.6),
        color: YOUNG,
      });
    }
  }
  if (rng.chance(o.ringChance)) {
    disk.ring = {
      radius: h * rng.uniform(1.6, 2.6),
      width: h * rng.uniform(0.15, 0.3),
      amplitude: i0 * rng.uniform(0.35, 0.6),
      color: mix(YOUNG, DISK_OLD, 0.3),
    };
    m.odd = "ring";
  }
  m.axisRatio = q;
  m.bulgeFraction = bt;
  m.clarity = clarityOf(brightness, h * 1.3);
  return { morphology: m, light, dust: [], sources: [] };
}

/** Fraction of blue light a dust lane still absorbs once the seeing has widened it. */
export function effectiveDustDepth(lane: { tau: number; width: number }, psfSigma: number): number {
  return lane.tau * Math.min(1, 1.5 * lane.width / Math.hypot(lane.width, psfSigma));
}

function edgeOn(rng: Rng, at: Placement, psfSigma: number): Built {
  const m = baseMorphology("edge_on");
  const h = rng.logUniform(12, 23);
  const dusty = rng.chance(0.5);
  // Dust lanes show in the larger, thicker (better resolved) disks.
  const z0 = h * (dusty ? rng.uniform(0.15, 0.25) : rng.uniform(0.08, 0.16));
  const pa = rng.uniform(0, Math.PI);
  const brightness = rng.logUniform(0.6, 1.5);
  const i0 = 24 * LIGHT * brightness;
  const shape: BulgeShape = ["rounded", "boxy", "none"][rng.pick([0.45, 0.2, 0.35])] as BulgeShape;
  const color = jitterColor(rng, mix(DISK_OLD, YOUNG, 0.25), 0.05);
  const truncation = rng.uniform(3.8, 4.8);
  const light: LightComponent[] = [
    { type: "edge_on", x: at.x, y: at.y, h, z0, pa, i0, color, truncation },
    // A faint thick disk: it gives edge-on galaxies their lens shape.
    {
      type: "edge_on",
      x: at.x,
      y: at.y,
      h: h * 0.9,
      z0: z0 * rng.uniform(2.5, 3.5),
      pa,
      i0: i0 * rng.uniform(0.08, 0.15),
      color: mix(color, OLD, 0.3),
      truncation,
    },
  ];
  let bt = 0;
  if (shape !== "none") {
    bt = rng.uniform(0.12, 0.4);
    const re = h * rng.uniform(0.25, 0.45);
    const n = shape === "boxy" ? rng.uniform(1, 2) : rng.uniform(2, 4);
    const q = shape === "boxy" ? rng.uniform(0.6, 0.8) : rng.uniform(0.65, 0.9);
    const diskLight = 4 * i0 * h * z0; // exp along the plane (2h) x sech^2 across it (2 z0)
    const ie = bt / (1 - bt) * diskLight / (sersicTotal(n, re) * q);
    light.push({
      type: "sersic",
      x: at.x,
      y: at.y,
      re,
      n,
      q,
      pa,
      ie,
      color: jitterColor(rng, OLD, 0.05),
      boxy: shape === "boxy",
    });
  }
  const dust: DustLane[] = [];
  if (dusty) {
    const lane: DustLane = {
      x: at.x,
      y: at.y,
      pa,
      length: h * rng.uniform(2.5, 3.5),
      width: z0 * rng.uniform(0.6, 1),
      offset: z0 * rng.uniform(-0.4, 0.4),
      tau: rng.uniform(0.75, 0.98),
    };
    dust.push(lane);
    if (effectiveDustDepth(lane, psfSigma) > 0.45 && rng.chance(0.8)) m.odd = "dust_lane";
  }
  m.axisRatio = Math.min(1, z0 * 2.2 / h + (shape === "none" ? 0 : 0.1));
  m.bulgeFraction = bt;
  m.bulgeShape = shape;
  m.clarity = clarityOf(brightness, h);
  return { morphology: m, light, dust, sources: [] };
}

function merger(rng: Rng, at: Placement): Built {
  const m = baseMorphology("merger");
  const sep = rng.uniform(20, 50);
  const dir = rng.uniform(0, 2 * Math.PI);
  const w = rng.uniform(0.3, 0.5);
  const a = { x: at.x - sep * w * Math.cos(dir), y: at.y - sep * w * Math.sin(dir) };
  const b = { x: at.x + sep * (1 - w) * Math.cos(dir), y: at.y + sep * (1 - w) * Math.sin(dir) };
  const light: LightComponent[] = [];
  const nucleus = (p: Placement, scale: number): SersicComponent => ({
    type: "sersic",
    x: p.x,
    y: p.y,
    re: rng.logUniform(6, 14) * scale,
    n: rng.uniform(1.5, 4),
    q: rng.uniform(0.5, 1),
    pa: rng.uniform(0, Math.PI),
    ie: LIGHT * rng.uniform(4, 9),
    color: jitterColor(rng, mix(OLD, DISK_OLD, rng.next()), 0.06),
    boxy: false,
  });
  light.push(nucleus(a, 1), nucleus(b, rng.uniform(0.6, 1)));
  // Tidal tails: open, fully "armed" faint disks around each nucleus.
  const tails = rng.int(1, 2);
  for (let t = 0; t < tails; t++) {
    const p = t === 0 ? a : b;
    const h = rng.uniform(15, 25);
    light.push({
      type: "disk",
      x: p.x,
      y: p.y,
      h,
      q: rng.uniform(0.5, 1),
      pa: rng.uniform(0, Math.PI),
      i0: LIGHT * rng.uniform(5, 10),
      color: mix(DISK_OLD, YOUNG, 0.4),
      truncation: 4,
      arms: {
        count: rng.chance(0.6) ? 2 : 1,
        pitchDeg: rng.uniform(30, 50),
        handedness: rng.chance(0.5) ? 1 : -1,
        strength: 0.95,
        sharpness: rng.uniform(3, 6),
        r0: 6,
        phase: rng.uniform(0, 2 * Math.PI),
        lopsidedness: rng.uniform(0.2, 0.5),
        lopsidedAngle: rng.uniform(0, 2 * Math.PI),
        color: mix(DISK_OLD, YOUNG, 0.5),
      },
      bar: null,
      ring: null,
    });
  }
  for (let j = rng.int(0, 8); j > 0; j--) {
    light.push({
      type: "knot",
      x: at.x + rng.normal() * sep * 0.8,
      y: at.y + rng.normal() * sep * 0.8,
      sigma: rng.uniform(2, 4.5),
      amplitude: LIGHT * rng.uniform(2, 6),
      color: YOUNG,
    });
  }
  m.odd = rng.chance(0.85) ? "merger" : "disturbed";
  m.axisRatio = rng.uniform(0.4, 0.9);
  m.bulgeFraction = 0.5;
  m.clarity = rng.uniform(0.6, 1);
  m.armVisibility = 0.3;
  m.arms = 2;
  m.pitchDeg = 40;
  return { morphology: m, light, dust: [], sources: [] };
}

function irregular(rng: Rng, at: Placement): Built {
  const m = baseMorphology("irregular");
  const re = rng.logUniform(13, 24);
  const q = rng.uniform(0.4, 0.9);
  const pa = rng.uniform(0, Math.PI);
  const light: LightComponent[] = [{
    type: "sersic",
    x: at.x + rng.normal() * 3,
    y: at.y + rng.normal() * 3,
    re,
    n: rng.uniform(0.7, 1.3),
    q,
    pa,
    ie: LIGHT * rng.uniform(4, 8),
    color: mix(DISK_OLD, YOUNG, 0.6),
    boxy: false,
  }];
  const disturbed = rng.chance(0.3);
  const clumps = rng.int(8, 24);
  for (let j = 0; j < clumps; j++) {
    const r = re * Math.abs(rng.normal()) * 1.5;
    const phi = rng.uniform(0, 2 * Math.PI);
    light.push({
      type: "knot",
      x: at.x + r * Math.cos(phi),
      y: at.y + r * Math.sin(phi) * (disturbed ? 1 : q),
      sigma: rng.uniform(2, 5),
      amplitude: LIGHT * rng.logUniform(4, 30),
      color: jitterColor(rng, YOUNG, 0.08),
    });
  }
  if (disturbed) {
    // A lopsided one-armed disk around an off-centre core.
    light.push({
      type: "disk",
      x: at.x,
      y: at.y,
      h: re * 0.9,
      q,
      pa,
      i0: LIGHT * rng.uniform(8, 14),
      color: mix(DISK_OLD, YOUNG, 0.5),
      truncation: 4,
      arms: {
        count: 1,
        pitchDeg: rng.uniform(25, 45),
        handedness: rng.chance(0.5) ? 1 : -1,
        strength: 0.8,
        sharpness: 2.5,
        r0: 4,
        phase: rng.uniform(0, 2 * Math.PI),
        lopsidedness: 0.5,
        lopsidedAngle: rng.uniform(0, 2 * Math.PI),
        color: YOUNG,
      },
      bar: null,
      ring: null,
    });
  }
  m.odd = disturbed ? "disturbed" : "irregular";
  m.axisRatio = q;
  m.bulgeFraction = 0.02;
  m.clarity = rng.uniform(0.5, 0.9);
  m.armVisibility = disturbed ? 0.35 : 0.1;
  m.arms = disturbed ? 1 : 0;
  m.pitchDeg = disturbed ? 35 : 0;
  return { morphology: m, light, dust: [], sources: [] };
}

function starOrArtifact(rng: Rng, at: Placement, kind: "star" | "artifact"): Built {
  const m = baseMorphology(kind);
  const light: LightComponent[] = [];
  const sources: PointSource[] = [];
  if (kind === "star") {
    sources.push({
      type: "star",
      x: at.x,
      y: at.y,
      peak: LIGHT * rng.logUniform(400, 6000),
      color: starColor(rng),
      spikes: rng.chance(0.85),
    });
    if (rng.chance(0.25)) {
      // A close pair.
      const d = rng.uniform(8, 25), a = rng.uniform(0, 2 * Math.PI);
      sources.push({
        type: "star",
        x: at.x + d * Math.cos(a),
        y: at.y + d * Math.sin(a),
        peak: LIGHT * rng.logUniform(30, 300),
        color: starColor(rng),
        spikes: false,
      });
    }
  } else {
    sources.push({
      type: "trail",
      x: at.x + rng.normal() * 4,
      y: at.y + rng.normal() * 4,
      angle: rng.uniform(0, Math.PI),
      amplitude: LIGHT * rng.uniform(4, 12),
      bandOffset: rng.uniform(2, 5),
    });
  }
  if (rng.chance(0.35)) {
    // A faint small galaxy the object was catalogued next to.
    light.push({
      type: "sersic",
      x: at.x + rng.normal() * 20,
      y: at.y + rng.normal() * 20,
      re: rng.uniform(5, 11),
      n: rng.uniform(1, 4),
      q: rng.uniform(0.4, 1),
      pa: rng.uniform(0, Math.PI),
      ie: LIGHT * rng.uniform(2, 5),
      color: OLD,
      boxy: false,
    });
  }
  m.clarity = rng.uniform(0.6, 1);
  m.axisRatio = 1;
  return { morphology: m, light, dust: [], sources };
}

/** Adds field stars and faint background galaxies anywhere in the frame. */
function addField(rng: Rng, built: Built): void {
  const stars = rng.pick([0.3, 0.35, 0.2, 0.1, 0.05]);
  for (let j = 0; j < stars; j++) {
    const x = rng.uniform(10, 414), y = rng.uniform(10, 414);
    const peak = LIGHT * rng.logUniform(3, 600);
    const d = Math.hypot(x - CENTRE, y - CENTRE);
    // Keep field stars off the galaxy's core, where a catalogue would not centre a galaxy.
    if (d < 40) continue;
    built.sources.push({
      type: "star",
      x,
      y,
      peak,
      color: starColor(rng),
      spikes: peak > 250 * LIGHT,
    });
    if (peak > 300 * LIGHT && d < 90) built.morphology.brightStarNearby = true;
  }
  const galaxies = rng.pick([0.3, 0.3, 0.2, 0.12, 0.08]);
  for (let j = 0; j < galaxies; j++) {
    const x = rng.uniform(0, 424), y = rng.uniform(0, 424);
    if (Math.hypot(x - CENTRE, y - CENTRE) < 90) continue;
    built.light.push({
      type: "sersic",
      x,
      y,
      re: rng.uniform(2, 7),
      n: rng.uniform(1, 4),
      q: rng.uniform(0.3, 1),
      pa: rng.uniform(0, Math.PI),
      ie: LIGHT * rng.uniform(1, 4),
      color: rng.chance(0.6) ? OLD : mix(DISK_OLD, YOUNG, 0.5),
      boxy: false,
    });
  }
}

/** Draws one cutout's scene: its true morphology, light and field. */
export function sampleScene(rng: Rng, kind?: GalaxyKind): Scene {
  const k = kind ?? KINDS[rng.pick(KINDS.map((x) => KIND_WEIGHTS[x]))];
  const psfSigma = rng.uniform(2.4, 4);
  const at = centre(rng);
  let built: Built;
  switch (k) {
    case "elliptical":
      built = elliptical(rng, at);
      break;
    case "spiral":
      built = diskGalaxy(rng, at, k, {
        psfSigma,
        armed: true,
        barChance: 0.32,
        ringChance: 0.04,
        bulgeRange: [0, 0.7],
        cosIRange: [0.45, 1],
        diskColor: DISK_OLD,
      });
      break;
    case "lenticular":
      built = diskGalaxy(rng, at, k, {
        psfSigma,
        armed: false,
        barChance: 0.45,
        ringChance: 0.18,
        bulgeRange: [0.5, 0.85],
        cosIRange: [0.35, 1],
        diskColor: mix(DISK_OLD, OLD, 0.5),
      });
      break;
    case "edge_on":
      built = edgeOn(rng, at, psfSigma);
      break;
    case "merger":
      built = merger(rng, at);
      break;
    case "irregular":
      built = irregular(rng, at);
      break;
    case "star":
    case "artifact":
      built = starOrArtifact(rng, at, k);
      break;
  }
  addField(rng, built);
  if (built.morphology.odd === "none" && built.morphology.brightStarNearby && rng.chance(0.5)) {
    built.morphology.odd = "other";
  }
  return {
    morphology: built.morphology,
    light: built.light,
    dust: built.dust,
    sources: built.sources,
    psfSigma,
    noise: [rng.uniform(0.9, 1.1), rng.uniform(0.8, 1), rng.uniform(1, 1.3)],
    noiseSeed: rng.nextU32(),
  };
}
