/**
 * The momentum point environment of Fig. 5 against hand-computed values of the released
 * MetaPointEnvMomentum (velocity += clip(a, ±0.1); position += velocity; reward max(2 − ‖p − g‖, 0)),
 * the released action normalisation, and the trajectories `magicbox rollouts` draws.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { selectBackend } from '../src/backend.ts';
import { pointMomentum, pointMomentumReward } from '../src/envs/point-momentum.ts';
import { pointRollouts } from '../src/meta/rollouts.ts';
import { cornersReached, fig5Trainer, fig5Settings } from '../src/reproduce/fig5.ts';
import { environmentActions, policyActionSpace } from '../src/envs/action-normalization.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/temp.ts';

test.before(async () => {
  await selectBackend();
});

const near = (a: number, b: number, tol = 1e-6) => Math.abs(a - b) <= tol;

test('reset: p uniform in [−0.2, 0.2]², then v in [−0.1, 0.1]², four draws per environment in that order', (t) => {
  const env = pointMomentum.make([{ corner: 3, goal: [2, 2] }]);
  const draws = [0, 1 - 1e-9, 0.5, 0.75];
  const obs = env.reset(() => draws.shift()!);
  const expected = [-0.2, 0.2, 0, 0.05];
  obs.forEach((o, k) => t.true(near(o, expected[k]!), `${k}: ${o} vs ${expected[k]}`));
});

test('a step adds the clipped action to the velocity, moves by the new velocity, rewards max(2 − ‖p − g‖, 0)', (t) => {
  const env = pointMomentum.make([{ corner: 3, goal: [2, 2] }, { corner: 0, goal: [-2, -2] }]);
  const draws = [0.5, 0.5, 0.5, 0.5, 0.75, 0.25, 1, 0];
  env.reset(() => draws.shift()!);
  // row 0: p = (0, 0), v = (0, 0); row 1: p = (0.1, −0.1), v = (0.1, −0.1)
  const first = env.step(Float32Array.from([0.05, 0.3, -1, 0.02]));
  // row 0: v = (0.05, 0.1) (0.3 clipped), p = (0.05, 0.1); row 1: v = (0, −0.08), p = (0.1, −0.18)
  const hand = [0.05, 0.1, 0.05, 0.1, 0.1, -0.18, 0, -0.08];
  first.observations.forEach((o, k) => t.true(near(o, hand[k]!), `obs ${k}: ${o} vs ${hand[k]}`));
  const r0 = Math.max(2 - Math.hypot(0.05 - 2, 0.1 - 2), 0);
  const r1 = Math.max(2 - Math.hypot(0.1 + 2, -0.18 + 2), 0);
  t.true(r0 === 0 && r1 === 0, 'far from both goals: no reward');
  t.deepEqual(Array.from(first.rewards), [0, 0]);
  // momentum: with no further action the point keeps moving by its velocity
  const second = env.step(Float32Array.from([0, 0, 0, 0]));
  t.true(near(second.observations[0]!, 0.1) && near(second.observations[1]!, 0.2));
  t.true(near(second.observations[5]!, -0.26));
  // the reward where it is non-zero: hand values
  t.true(near(pointMomentumReward(1.5, 1.5, [2, 2]), 2 - Math.hypot(0.5, 0.5), 1e-12));
  t.is(pointMomentumReward(0, 0, [2, 2]), 0);
  t.true(near(pointMomentumReward(2, 2, [2, 2]), 2, 1e-12));
  t.deepEqual(Array.from(second.dones), [0, 0]);
  t.throws(() => env.step(Float32Array.from([0, NaN, 0, 0])), { message: /point-momentum: action NaN at row 0, coordinate 1/ });
  t.is(pointMomentum.horizon, 100);
  t.is(pointMomentum.adaptationSteps, 3);
  t.is(pointMomentum.observationDim, 4);
});

test('tasks: the four corners in the released order, drawn uniformly', (t) => {
  const draws = [0, 0.3, 0.6, 0.9];
  const tasks = pointMomentum.sampleTasks(() => draws.shift()!, 4);
  t.deepEqual(tasks.map((task) => task.goal), [[-2, -2], [2, -2], [-2, 2], [2, 2]]);
});

test('normalized actions by default (normalization_scale 10): [−10, 10] mapped linearly onto [−0.1, 0.1], then clipped', (t) => {
  t.is(pointMomentum.actionNormalization, 'normalized');
  const policySpace = policyActionSpace(pointMomentum.action, 'normalized');
  t.deepEqual(policySpace, { kind: 'continuous', dim: 2, low: -10, high: 10 });
  const v = pointMomentum.make([{ corner: 3, goal: [2, 2] }]);
  v.reset(() => 0.5);
  // lb + (a + 10)·(ub − lb)/20: a = 5 → 0.05, a = −30 → −0.2 clipped to −0.1
  const obs = v.step(environmentActions(policySpace, pointMomentum.action, Float32Array.from([5, -30]))).observations;
  t.true(near(obs[2]!, 0.05) && near(obs[3]!, -0.1), `${Array.from(obs)}`);
  t.throws(() => v.step(environmentActions(policySpace, pointMomentum.action, Float32Array.from([NaN, 0]))), { message: /action NaN/ });
});

test('rollouts: positions per level from the trainer’s own adaptation; corners reached counted from them', async (t) => {
  const settings = { ...fig5Settings('small'), tasksPerIteration: 2, trajectoriesPerTask: 3, horizon: 7 };
  const trainer = fig5Trainer('maml-trpo', settings, 1);
  const params = trainer.policy.init(1);
  const before = tf.memory().numTensors;
  const r = await pointRollouts(trainer, params, { tasks: 4, trajectories: 3, seed: 5 });
  t.is(tf.memory().numTensors, before);
  t.true(r.tasks.length >= 2 && r.tasks.length <= 4);
  t.is(new Set(r.tasks.map((task) => JSON.stringify(task.goal))).size, r.tasks.length, 'distinct tasks');
  for (const task of r.tasks) {
    t.is(task.paths.length, 4);
    for (const level of task.paths) {
      t.is(level.length, 3);
      // each path starts in the reset box
      for (const path of level) t.true(path.length === 7 && Math.abs(path[0]![0]) <= 0.2 && Math.abs(path[0]![1]) <= 0.2);
    }
  }
  const reached = { ...r, tasks: [{ ...r.tasks[0]!, paths: [[[[0, 0], [1.4, 1.5]], [[-1.5, -1.5]]], [], [], []] }] } as typeof r;
  t.is(cornersReached(reached, 0), 2, '(1.4, 1.5) is within 1 of (2, 2); (−1.5, −1.5) within 1 of (−2, −2)');
  tf.dispose(Object.values(params));
});

test('magicbox rollouts draws a trained nav-2d checkpoint; a non-2D checkpoint and a missing --out folder are one-line errors', async (t) => {
  const dir = tempDir(t);
  const run = path.join(dir, 'nav');
  const trained = await runCli(['train', '--algo', 'maml-vpg', '--env', 'nav-2d', '--iterations', '1', '--tasks', '2', '--trajectories', '2', '--horizon', '5', '--workers', '1', '--progress', 'off', '--out', run]);
  t.is(trained.code, 0, trained.stderr);
  const svg = path.join(dir, 'nav.svg');
  const drawn = await runCli(['rollouts', run, '--out', svg, '--tasks', '3', '--trajectories', '2']);
  t.is(drawn.code, 0, drawn.stderr);
  t.regex(drawn.stdout, /wrote .*nav\.svg: 3 task\(s\) × 2 trajectories; average return pre-update -?\d/);
  t.true(fs.readFileSync(svg, 'utf8').startsWith('<svg'));
  const oneD = path.join(dir, 'oned');
  t.is((await runCli(['train', '--algo', 'maml-vpg', '--env', 'point-1d', '--iterations', '1', '--tasks', '2', '--trajectories', '2', '--horizon', '3', '--workers', '1', '--progress', 'off', '--out', oneD])).code, 0);
  const wrongEnv = await runCli(['rollouts', oneD, '--out', path.join(dir, 'x.svg')]);
  t.is(wrongEnv.code, 1);
  t.regex(wrongEnv.stderr.trim(), /^magicbox rollouts: .*oned was trained on point-1d; rollouts draws the 2D point environments \(point-corners, nav-2d, point-momentum\)$/);
  const noDir = await runCli(['rollouts', run, '--out', path.join(dir, 'missing', 'x.svg')]);
  t.is(noDir.code, 1);
  t.regex(noDir.stderr.trim(), /^magicbox rollouts: --out .*: no such directory/);
  const badTasks = await runCli(['rollouts', run, '--out', svg, '--tasks', 'many']);
  t.is(badTasks.stderr.trim(), 'magicbox rollouts: --tasks: expected a whole number from 1 to 16, got "many"');
  t.false(fs.existsSync(path.join(dir, 'x.svg')));
});
