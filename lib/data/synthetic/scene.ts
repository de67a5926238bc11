/**
 * The description of one generated cutout: the galaxy's true morphology
 * (what simulated volunteers respond to) and the light components the
 * renderer draws. Lengths are in pixels of the 424x424 image, intensities in
 * units of the sky noise's standard deviation.
 *
 * @module
 */

/** Linear flux weights of a component in the red, green and blue channels (i, r, g bands). */
export type Rgb = readonly [number, number, number];

/** The kinds of object the generator draws. */
export const GALAXY_KINDS = [
  "elliptical",
  "spiral",
  "lenticular",
  "edge_on",
  "merger",
  "irregular",
  "star",
  "artifact",
] as const;

/** One kind of generated object. */
export type GalaxyKind = typeof GALAXY_KINDS[number];

/** Answers of Q8 ("what is the odd feature?"), in column order Class8.1 ... Class8.7. */
export const ODD_FEATURES = [
  "ring",
  "lens",
  "disturbed",
  "irregular",
  "other",
  "merger",
  "dust_lane",
] as const;

/** The odd feature a galaxy really has, or `"none"`. */
export type OddFeature = typeof ODD_FEATURES[number] | "none";

/** Answers of Q9 (bulge of an edge-on disk), in column order Class9.1 ... Class9.3. */
export type BulgeShape = "rounded" | "boxy" | "none";

/** The true morphology of a generated object: the inputs of the volunteer model. */
export interface Morphology {
  kind: GalaxyKind;
  /** Apparent minor/major axis ratio of the main body (edge-on disks: of the thin disk). */
  axisRatio: number;
  /** Bulge-to-total light ratio (0 for bulgeless disks, 1 for ellipticals). */
  bulgeFraction: number;
  /** Shape of the bulge of an edge-on disk. */
  bulgeShape: BulgeShape;
  /** Number of spiral arms, 0 when there are none. */
  arms: number;
  /** Pitch angle of the arms in degrees (small is tightly wound), 0 without arms. */
  pitchDeg: number;
  /** How plainly the arms show, 0..1 (contrast times surface brightness). */
  armVisibility: number;
  /** How plainly a bar shows, 0 (none) .. 1. */
  barVisibility: number;
  /** The odd feature it really has. */
  odd: OddFeature;
  /** How easy the image is to read, 0..1 (bright and large is clear). */
  clarity: number;
  /** A bright foreground star overlaps the galaxy (volunteers then call it odd more often). */
  brightStarNearby: boolean;
}

/** A Sersic profile: ellipticals, bulges, compact background galaxies, irregular envelopes. */
export interface SersicComponent {
  type: "sersic";
  x: number;
  y: number;
  /** Effective (half-light) radius along the major axis. */
  re: number;
  /** Sersic index: ~4 for ellipticals, ~1 for disks. */
  n: number;
  /** Axis ratio b/a. */
  q: number;
  /** Position angle of the major axis, radians. */
  pa: number;
  /** Intensity at `re`. */
  ie: number;
  color: Rgb;
  /** Boxy (generalised-ellipse) isophotes, for boxy/peanut bulges. */
  boxy: boolean;
}

/** Logarithmic spiral arms laid on a disk. */
export interface SpiralArms {
  count: number;
  pitchDeg: number;
  /** +1 or -1: which way the arms wind on the sky. */
  handedness: number;
  /** Fraction of the disk light put into the arms, 0..1. */
  strength: number;
  /** Exponent of the azimuthal arm profile: higher is narrower arms. */
  sharpness: number;
  /** Radius (disk plane) where the arms start. */
  r0: number;
  /** Rotation of the arm pattern, radians. */
  phase: number;
  /** Brightness asymmetry between the two sides of the disk, 0..0.5. */
  lopsidedness: number;
  /** Direction of the brighter side, radians in the disk plane. */
  lopsidedAngle: number;
  color: Rgb;
}

/** A bar in the plane of a disk. */
export interface Bar {
  /** Semi-length. */
  length: number;
  q: number;
  /** Angle in the disk plane, radians. */
  angle: number;
  amplitude: number;
  color: Rgb;
}

/** A ring in the plane of a disk. */
export interface Ring {
  radius: number;
  width: number;
  amplitude: number;
  color: Rgb;
}

/** An inclined exponential disk with optional arms, bar and ring. */
export interface DiskComponent {
  type: "disk";
  x: number;
  y: number;
  /** Exponential scale length. */
  h: number;
  /** Apparent axis ratio (cosine of the inclination, with thickness). */
  q: number;
  pa: number;
  /** Central intensity. */
  i0: number;
  color: Rgb;
  /** Radius beyond which the disk fades out (in scale lengths). */
  truncation: number;
  arms: SpiralArms | null;
  bar: Bar | null;
  ring: Ring | null;
}

/** A disk seen exactly edge-on: exponential along the plane, sech^2 across it. */
export interface EdgeOnComponent {
  type: "edge_on";
  x: number;
  y: number;
  h: number;
  /** Vertical scale height. */
  z0: number;
  pa: number;
  i0: number;
  color: Rgb;
  truncation: number;
}

/** A compact Gaussian clump: star-forming knots, tidal debris. */
export interface KnotComponent {
  type: "knot";
  x: number;
  y: number;
  sigma: number;
  amplitude: number;
  color: Rgb;
}

/** A thin arc (lensed image or shell). */
export interface ArcComponent {
  type: "arc";
  /** Centre of curvature. */
  x: number;
  y: number;
  radius: number;
  width: number;
  /** Angular centre and half-extent, radians. */
  angle: number;
  halfSpan: number;
  amplitude: number;
  color: Rgb;
}

/** Light that the seeing (PSF) blurs. */
export type LightComponent =
  | SersicComponent
  | DiskComponent
  | EdgeOnComponent
  | KnotComponent
  | ArcComponent;

/** A dust lane along the mid-plane of an edge-on disk: absorbs, bluer light more. */
export interface DustLane {
  x: number;
  y: number;
  pa: number;
  /** Half-length along the plane. */
  length: number;
  /** Gaussian half-width across the plane. */
  width: number;
  /** Offset of the lane from the mid-plane. */
  offset: number;
  /** Fraction of blue light absorbed at the lane's centre. */
  tau: number;
}

/** A point source drawn with the PSF, optionally with diffraction spikes. */
export interface StarSource {
  type: "star";
  x: number;
  y: number;
  /** Peak intensity. */
  peak: number;
  color: Rgb;
  spikes: boolean;
}

/** A satellite trail: the g, r and i exposures each leave a line, offset from each other. */
export interface TrailSource {
  type: "trail";
  x: number;
  y: number;
  angle: number;
  amplitude: number;
  /** Separation between the per-band lines. */
  bandOffset: number;
}

/** Sources drawn after the blur (they carry the PSF themselves). */
export type PointSource = StarSource | TrailSource;

/** Everything needed to render one cutout and to simulate its votes. */
export interface Scene {
  morphology: Morphology;
  light: LightComponent[];
  dust: DustLane[];
  sources: PointSource[];
  /** Gaussian sigma of the PSF. */
  psfSigma: number;
  /** Sky noise per channel (red, green, blue), in the same units as the intensities. */
  noise: Rgb;
  /** Seed of the sky-noise pattern. */
  noiseSeed: number;
}
