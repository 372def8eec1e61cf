/**
 * Small seeded generators (mulberry32 and Box–Muller), so that fixed tables, evaluation points and
 * synthetic data are reproducible without a global random state.
 */

/** Uniform on [0, 1), fixed by the seed. */
export const seededUniform = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

/** Standard normal draws, fixed by the seed. */
export const seededNormal = (seed: number): (() => number) => {
  const u = seededUniform(seed);
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    const phi = 2 * Math.PI * u();
    spare = r * Math.sin(phi);
    return r * Math.cos(phi);
  };
};

/**
 * A 32-bit seed mixed from three integers (each multiplied by its own odd constant, then xored), e.g.
 * (run seed, iteration, purpose): distinct triples give unrelated generators.
 */
export const mixSeeds = (a: number, b: number, c: number): number =>
  (Math.imul(a + 1, 0x9e3779b1) ^ Math.imul(b + 1, 0x85ebca6b) ^ Math.imul(c + 1, 0xc2b2ae35)) >>> 0;
