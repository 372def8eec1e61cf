/**
 * What the MuJoCo environment tests share: scripted actions, clipping, a relative comparison, the
 * environments' reset replayed on separate MjData (so a test can recompute rewards from states), and
 * the check that reset is deterministic for a seed.
 */
import type { ExecutionContext } from 'ava';
import type { MujocoData } from '../../src/envs/mujoco/runtime.ts';
import type { MujocoVectorEnv } from '../../src/envs/mujoco/vector-env.ts';
import { seededUniform } from '../../src/random.ts';

/** Actions for `rows` environments of `dim` controls over `steps` steps: scale·sin(…), some beyond the bounds to exercise clipping. */
export const scriptedActions = (rows: number, dim: number, steps: number, scale = 1.5): Float32Array[] =>
  Array.from({ length: steps }, (_, s) => Float32Array.from({ length: rows * dim }, (_, k) => scale * Math.sin(0.7 * s + 1.3 * k)));

export const clip = (x: number, bound: number): number => Math.min(bound, Math.max(-bound, x));

/** Equal to a relative 1e-5 (absolute below 1). */
export const closeTo = (actual: number, expected: number): boolean => Math.abs(actual - expected) <= 1e-5 * Math.max(1, Math.abs(expected));

/**
 * An environment's reset replayed on `replicas`, drawing from `uniform` in the environment's order: per
 * row, qpos += scale·U(−1, 1) for each coordinate, then qvel += scale·U(−1, 1) ('uniform') or
 * scale·N(0, 1) by Box–Muller from two uniforms ('normal'); then mj_forward, and mj_rnePostConstraint
 * for bodies whose observation has contact forces.
 */
export const replayReset = (
  replicas: readonly MujocoData[],
  uniform: () => number,
  noise: { readonly scale: number; readonly velocity: 'uniform' | 'normal'; readonly contacts?: boolean },
): void => {
  for (const d of replicas) {
    d.reset();
    const q = d.qpos();
    for (let k = 0; k < q.length; k++) q[k] = q[k]! + noise.scale * (2 * uniform() - 1);
    const v = d.qvel();
    for (let k = 0; k < v.length; k++) {
      if (noise.velocity === 'uniform') {
        v[k] = v[k]! + noise.scale * (2 * uniform() - 1);
      } else {
        const u1 = 1 - uniform();
        const u2 = uniform();
        v[k] = v[k]! + noise.scale * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
      }
    }
    d.forward();
    if (noise.contacts === true) d.rnePostConstraint();
  }
};

/**
 * Reset with seed 11, then `actions`: the same observations and rewards again with seed 11, a different
 * first observation with seed 12, and the same first observation from a second environment of the same
 * tasks. Frees both environments.
 */
export const checkDeterministicReset = (t: ExecutionContext, make: () => MujocoVectorEnv, actions: readonly Float32Array[]): void => {
  const env = make();
  const run = (seed: number): Float32Array[] => {
    const out = [env.reset(seededUniform(seed))];
    for (const a of actions) {
      const r = env.step(a);
      out.push(r.observations, r.rewards);
    }
    return out;
  };
  const a = run(11);
  t.deepEqual(run(11), a);
  t.notDeepEqual(run(12)[0], a[0]);
  const other = make();
  t.deepEqual(other.reset(seededUniform(11)), a[0]);
  other.free();
  env.free();
};
