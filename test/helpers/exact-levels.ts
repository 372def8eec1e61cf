/** Exact-expectation helpers for meta-objective tests on enumerable graphs. */
import * as tf from '@tensorflow/tfjs';
import { trajectoryLogProb, type LevelData } from '../../src/meta/meta-objective.ts';
import { exp } from '../../src/ops/index.ts';
import type { Oracle } from '../../src/oracle/oracle.ts';
import type { BuiltinProblem } from '../../src/oracle/problems.ts';
import type { Batch, Params } from '../../src/surrogates/batch.ts';

/** All outcomes, each weighted by its exact probability under the parameters that sample it. */
export const exactLevel = (p: BuiltinProblem, o: Oracle): LevelData => ({
  batch: o.enumeration.batch,
  weights: (params: Params) => exp(trajectoryLogProb(p.graph, params, o.enumeration.batch)),
});

/** ∇f at θ, as numbers. */
export const gradientAt = (f: (theta: tf.Tensor) => tf.Scalar, theta: readonly number[]): number[] =>
  tf.tidy(() => Array.from(tf.grad(f)(tf.tensor1d([...theta])).dataSync()));

/** Sample i of a batch, as a batch of one. */
export const row = (batch: Batch, i: number): Batch => ({
  values: Object.fromEntries(
    Object.entries(batch.values).map(([k, v]) => [k, tf.slice(v, [i, ...v.shape.slice(1).map(() => 0)], [1, ...v.shape.slice(1)])]),
  ),
});
