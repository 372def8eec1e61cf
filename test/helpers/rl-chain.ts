/** A small RL chain with a categorical policy over discrete states, and random batches for it. */
import * as tf from '@tensorflow/tfjs';
import { lag, scg } from '../../src/scg/builder.ts';
import { lookup } from '../../src/oracle/problems.ts';
import type { Batch } from '../../src/surrogates/batch.ts';
import { seededUniform } from '../../src/random.ts';

export const states = 4;
export const actions = 2;

export const rlChain = () =>
  scg({ name: 'rl-chain' })
    .parameter('theta', { shape: [states, actions] })
    .stochastic('s', { temporal: true, family: { type: 'external' }, parents: [lag('s', 1), lag('a', 1)] })
    .stochastic('a', {
      temporal: true,
      family: { type: 'categorical', categories: actions },
      parents: ['s', 'theta'],
      distribution: ({ s, theta }) => ({ logits: lookup(theta, s) }),
    })
    .cost('r', { temporal: true, parents: ['s', 'a'] })
    .build();

/** N trajectories of T steps with random states, actions and rewards (values are plain arrays, row-major [N][T]). */
export const randomTrajectories = (n: number, horizon: number, seed: number) => {
  const u = seededUniform(seed);
  const s = Array.from({ length: n }, () => Array.from({ length: horizon }, () => Math.floor(u() * states)));
  const a = Array.from({ length: n }, () => Array.from({ length: horizon }, () => Math.floor(u() * actions)));
  const r = Array.from({ length: n }, () => Array.from({ length: horizon }, () => u() * 2 - 1));
  return { s, a, r };
};

export const batchOf = (tr: ReturnType<typeof randomTrajectories>, mask?: number[][]): Batch => ({
  values: { s: tf.tensor2d(tr.s), a: tf.tensor2d(tr.a), r: tf.tensor2d(tr.r) },
  ...(mask ? { mask: tf.tensor2d(mask) } : {}),
});

export const thetaValue = (seed = 5) => {
  const u = seededUniform(seed);
  return tf.tensor2d(Array.from({ length: states }, () => Array.from({ length: actions }, () => u() - 0.5)));
};
