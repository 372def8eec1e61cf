/**
 * The three extension points of docs/extending.md: each guide's example runs, and what it relies on
 * holds — a kit-built estimator has the built-in one's numbers, a user's task distribution and policy
 * are trained through `train`, and the wrong uses are refused with one line, nothing written.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import test, { type ExecutionContext } from 'ava';
import { selectBackend } from '../src/backend.ts';
import { resolveConfig } from '../src/meta/config.ts';
import { RunError, train } from '../src/meta/train.ts';
import { nav2d } from '../src/envs/index.ts';
import { BatchError } from '../src/surrogates/batch.ts';
import { compile, GraphError } from '../src/surrogates/compile.ts';
import { estimators, type Baselines, type Estimator } from '../src/surrogates/estimators.ts';
import { batchOf, randomTrajectories, rlChain, thetaValue } from './helpers/rl-chain.ts';

test.before(async () => {
  await selectBackend();
});

const tempDir = (t: ExecutionContext, prefix: string): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

const runExample = async (file: string, ...args: string[]): Promise<string> =>
  (await promisify(execFile)('node', ['--import=tsx', file, ...args], { env: { ...process.env, MAGICBOX_BACKEND: 'wasm' } })).stdout;

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5): boolean => {
  const scale = Math.max(1e-6, ...Array.from(b).map(Math.abs));
  return a.length === b.length && Array.from(a).every((x, i) => Math.abs(x - b[i]!) <= tol * scale);
};

// --- a new estimator ----------------------------------------------------------------------------

test('examples/custom-estimator.ts: its estimator is exact at orders 1–3, and LVC from the kit has LVC\'s numbers', async (t) => {
  const out = await runExample('examples/custom-estimator.ts');
  for (const graph of ['mdp-chain', 'two-cost-dag']) {
    t.regex(out, new RegExp(`${graph}: DiCE \\+ first-order baseline +(\\d\\.\\de-\\d+ exact +){2}\\d\\.\\de-\\d+ exact`), graph);
    const escape = (x: string) => x.replace(/[()+]/g, (c) => `\\${c}`);
    const row = (name: string) => out.match(new RegExp(`^${graph}: ${escape(name)} +(\\d.*)$`, 'm'))?.[1] ?? '';
    t.is(row('LVC (from the kit)'), row('LVC'), graph);
    t.regex(row('LVC'), /biased/);
  }
});

/** The RL chain with behaviour log-probabilities away from the current ones (so ratios are not 1), and a baseline. */
const offPolicyBatch = () => {
  const tr = randomTrajectories(6, 5, 3);
  const base = batchOf(tr);
  return {
    ...base,
    behaviour: { a: tf.tensor2d(tr.a.map((row, i) => row.map((_, j) => -0.9 + 0.1 * ((i + j) % 4)))) },
    baselines: { a: tf.tensor2d(tr.r.map((row) => row.map((x) => 0.3 * x + 0.1))) },
  };
};

const gradientOf = (e: Estimator) =>
  tf.tidy(() => Array.from(tf.grad((theta: tf.Tensor) => compile(rlChain(), e).objective({ theta }, offPolicyBatch()))(thetaValue()).dataSync()));
const valuesOf = (e: Estimator) => tf.tidy(() => Array.from(compile(rlChain(), e).perSample({ theta: thetaValue() }, offPolicyBatch()).dataSync()));

test('a kit-built LVC against the behaviour policy, with a batch baseline, equals the built-in one in value and gradient', (t) => {
  const baselines: Baselines = { a: 'batch' };
  const fromKit = estimators.custom(
    'LVC ratio from the kit',
    (kit) => kit.scored.map((w) => tf.mul(kit.box(w), kit.weight(w)!)),
    { baselines, reference: 'behaviour' },
  );
  const builtin = estimators.lvc(baselines, { reference: 'behaviour' });
  t.true(close(valuesOf(fromKit), valuesOf(builtin)));
  t.true(close(gradientOf(fromKit), gradientOf(builtin)));
  // The reference matters: on-policy the kit's box evaluates to 1 and the values differ.
  t.false(close(valuesOf(estimators.custom('on-policy', (kit) => kit.scored.map((w) => tf.mul(kit.box(w), kit.weight(w)!)), { baselines })), valuesOf(builtin)));
});

test('DiCE + first-order baseline has DiCE + baseline\'s first derivative per sample (the identity of concepts.md §3)', (t) => {
  const baselines: Baselines = { a: 'batch' };
  const custom = estimators.custom(
    'DiCE + first-order baseline',
    (kit) => [...kit.costs.map((c) => tf.mul(kit.boxCredit(c)!, kit.cost(c))), ...kit.scored.map((w) => tf.mul(tf.sub(1, kit.box(w)), kit.baseline(w)!))],
    { baselines },
  );
  // On-policy: drop the behaviour record so that □ is exp(x − ⊥x).
  const onPolicy = (e: Estimator) =>
    tf.tidy(() => {
      const { behaviour: _, ...batch } = offPolicyBatch();
      return Array.from(tf.grad((theta: tf.Tensor) => compile(rlChain(), e).objective({ theta }, batch))(thetaValue()).dataSync());
    });
  t.true(close(onPolicy(custom), onPolicy(estimators.diceBaseline(baselines))));
  t.false(close(onPolicy(custom), onPolicy(estimators.dice())), 'the baseline changes the sample gradient');
});

test('a custom estimator that names a node the graph does not score, or returns a wrong shape, gets a one-line error', (t) => {
  const batch = () => batchOf(randomTrajectories(3, 4, 1));
  const unknown = estimators.custom('typo', (kit) => [kit.logProb('action')]);
  const e1 = t.throws(() => tf.tidy(() => compile(rlChain(), unknown).objective({ theta: thetaValue() }, batch())), { instanceOf: GraphError });
  t.is(e1?.message, "custom estimator 'typo': 'action' is not a scored stochastic node (scored: a)");
  const wide = estimators.custom('wide', (kit) => [tf.expandDims(kit.logProb('a'), -1)]);
  const e2 = t.throws(() => tf.tidy(() => compile(rlChain(), wide).objective({ theta: thetaValue() }, batch())), { instanceOf: BatchError });
  t.is(e2?.message, "custom estimator 'wide': term 0 has shape [3, 4, 1]; a term is [B] or [B, T] = [3] or [3, 4]");
  t.throws(() => estimators.custom('', () => []), { message: 'a custom estimator needs a non-empty name' });
});

// --- a new environment and a custom policy through train ------------------------------------------

test('examples/custom-environment.ts trains ProMP on a distribution the catalogue does not have', async (t) => {
  const dir = tempDir(t, 'magicbox-ring-');
  const out = await runExample('examples/custom-environment.ts', join(dir, 'run'));
  t.regex(out, /training promp on point-ring: iterations 1-2, 4 tasks × 4 trajectories × horizon 20, 1 adaptation step\(s\), sampling in this thread/);
  t.regex(out, /point-ring: training completed, 2 iterations/);
  t.is(JSON.parse(readFileSync(join(dir, 'run', 'config.json'), 'utf8')).env, 'point-ring');
  t.true(existsSync(join(dir, 'run', 'checkpoint.json')));
});

test('examples/custom-policy.ts trains ProMP with a user-written policy', async (t) => {
  const dir = tempDir(t, 'magicbox-policy-');
  const out = await runExample('examples/custom-policy.ts', join(dir, 'run'));
  t.regex(out, /custom policy: training completed, 2 iterations, parameters W, b, logStd/);
  const checkpoint = JSON.parse(readFileSync(join(dir, 'run', 'checkpoint.json'), 'utf8'));
  t.deepEqual(Object.keys(checkpoint.payload.params).sort(), ['W', 'b', 'logStd']);
});

test('train refuses a user distribution under another name, on worker threads, or resumed; nothing is written', async (t) => {
  const dir = tempDir(t, 'magicbox-parts-');
  const mine = { ...nav2d, name: 'my-nav' };
  const config = resolveConfig({ algo: 'promp', env: 'my-nav', iterations: 1, tasksPerIteration: 2, trajectoriesPerTask: 2, hidden: [4] });
  const options = { config, distribution: mine, runDir: join(dir, 'run'), log: () => {}, progress: 'off' as const };
  await t.throwsAsync(train({ ...options, workers: 2 }), {
    instanceOf: RunError,
    message: 'a task distribution or policy of your own is sampled in this thread (worker threads rebuild only built-in ones): use workers 1, got 2',
  });
  await t.throwsAsync(train({ ...options, resume: true }), { instanceOf: RunError, message: /cannot be resumed/ });
  await t.throwsAsync(train({ ...options, config: { ...config, env: 'nav-2d' } }), {
    instanceOf: RunError,
    message: "invalid configuration: the task distribution is named 'my-nav' but config.env is 'nav-2d'",
  });
  t.false(existsSync(join(dir, 'run')));
});
