/**
 * This tree's ProMP outer step against another checkout's, side by side in one process: the way to
 * measure an engine change on a shared, noisy machine, where two separate runs differ by more than
 * the change. Both trees' modules are loaded into the same Node process on the same tfjs (the other
 * checkout must resolve `@tensorflow/tfjs` to this tree's files: link its node_modules here), each builds
 * its trainer and samples the same iteration-0 batch (same seeds), then rounds alternate A, B, B, A, …
 *
 *   --other=PATH    the other checkout (A; this tree is B), e.g. made by
 *                   `git worktree add ../before COMMIT && ln -s "$PWD/node_modules" ../before/`
 *   --mode=terms    (default) one task's outer-loss term and gradient (outerTaskTerms) at parameters
 *                   moved off θo, every task; the CPU seconds per task term
 *   --mode=iteration  a whole runIteration with the library's defaults (what a user's run does); its
 *                   outer-step seconds
 *   --tasks=N (default 4) --rounds=R (default 10; the first is discarded)
 *   --kl=pre-update|every-level   ProMP's KL levels (default: the library's, every-level)
 *
 * Reported: each side's median and best, the median over rounds of B ÷ A (below 1: this tree is
 * faster) with every round's ratio, the largest relative difference between the two sides' numbers
 * (terms mode: the loss and gradients; float32 rounding differences are expected where kernels changed),
 * and the load average before and after.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BenchUsageError, benchArgs } from './_options.ts';

const here = resolve(fileURLToPath(new URL('..', import.meta.url)));
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const round = (x: number, digits: number): number => Number(x.toFixed(digits));

/** One side: a function running one round and returning its seconds and its numbers. */
type Side = () => Promise<{ seconds: number; values: Float32Array[] }>;

const sideOf = async (root: string, mode: string, tasks: number, kl: string | undefined): Promise<Side> => {
  const load = async <T>(path: string): Promise<T> => (await import(pathToFileURL(join(root, path)).href)) as T;
  /* eslint-disable @typescript-eslint/no-explicit-any -- the other tree's modules are typed by their own sources */
  const { taskDistribution } = await load<any>('src/envs/index.ts');
  const { resolveConfig } = await load<any>('src/meta/config.ts');
  const { makeTrainer, outerTaskTerms, runIteration, sampleLevels } = await load<any>('src/meta/iteration.ts');
  const { mlpPolicyFor } = await load<any>('src/meta/policy.ts');
  const { disposeParams } = await load<any>('src/meta/algorithms.ts');
  const { adam } = await load<any>('src/meta/optimizers.ts');
  const patch: Record<string, unknown> = { algo: 'promp', env: 'point-corners', seed: 1, tasksPerIteration: tasks, workers: 1, ...(kl === undefined ? {} : { prompKlLevels: kl }) };
  if (mode === 'terms') Object.assign(patch, { trajectoriesPerTask: 20, horizon: 100, adaptationSteps: 3, engine: 'fused', actionNormalization: 'raw' });
  const config = resolveConfig(patch);
  const distribution = taskDistribution(config.env);
  const policy = mlpPolicyFor(distribution.observationDim, distribution.action, { hidden: config.hidden, initLogStd: config.initLogStd });
  const trainer = makeTrainer(config, distribution, policy);
  const params = policy.init(1) as Record<string, tf.Tensor>;
  if (mode === 'iteration') {
    return async () => {
      const r = await runIteration(trainer, params, undefined, 0);
      disposeParams(r.params);
      if (r.optimizerState !== undefined) adam().dispose(r.optimizerState);
      return { seconds: r.stats.outerSeconds as number, values: [] };
    };
  }
  const moved = tf.tidy(() => Object.fromEntries(Object.entries(params).map(([n, v], k) => [n, tf.keep(tf.add(v, tf.mul(0.01, tf.randomNormal(v.shape, 0, 1, 'float32', 3 + k))))])));
  const sampled = await sampleLevels(trainer, params, 0);
  const K = trainer.adaptationSteps as number;
  return async () => {
    const c = process.cpuUsage();
    const values = Array.from({ length: tasks }, (_, i) => outerTaskTerms(trainer, params, sampled.levels.slice(0, K).map((l: unknown[]) => l[i]), sampled.levels[K][i], moved) as Float32Array[]).flat();
    const d = process.cpuUsage(c);
    return { seconds: (d.user + d.system) / 1e6 / tasks, values };
  };
  /* eslint-enable @typescript-eslint/no-explicit-any */
};

export const run = async (args: readonly string[] = []): Promise<Record<string, unknown>> => {
  const { raw, value } = benchArgs('outer-ab', args, ['other', 'mode', 'tasks', 'rounds', 'kl']);
  const other = raw('other');
  if (other === undefined) throw new BenchUsageError('outer-ab needs --other=PATH: a checkout of magicbox to compare this tree with');
  const otherRoot = resolve(other);
  if (!existsSync(join(otherRoot, 'src', 'meta', 'iteration.ts'))) throw new BenchUsageError(`--other=${other}: no magicbox checkout there (src/meta/iteration.ts missing)`);
  const mode = raw('mode') ?? 'terms';
  if (mode !== 'terms' && mode !== 'iteration') throw new BenchUsageError(`--mode must be terms or iteration, got '${mode}'`);
  const kl = raw('kl');
  if (kl !== undefined && kl !== 'pre-update' && kl !== 'every-level') throw new BenchUsageError(`--kl must be pre-update or every-level, got '${kl}'`);
  const tasks = value('tasks') ?? 4;
  const rounds = value('rounds', 2) ?? 10;
  const loadBefore = loadavg();
  const sides = { A: await sideOf(otherRoot, mode, tasks, kl), B: await sideOf(here, mode, tasks, kl) };
  const seconds: Record<'A' | 'B', number[]> = { A: [], B: [] };
  const values: Partial<Record<'A' | 'B', Float32Array[]>> = {};
  for (let r = 0; r < rounds; r++) {
    for (const k of r % 2 === 0 ? (['A', 'B'] as const) : (['B', 'A'] as const)) {
      const out = await sides[k]();
      values[k] = out.values;
      if (r > 0) seconds[k].push(out.seconds);
    }
    process.stderr.write(`[outer-ab] round ${r + 1}/${rounds}${r === 0 ? ' (discarded)' : `: A ${seconds.A.at(-1)!.toFixed(3)} s, B ${seconds.B.at(-1)!.toFixed(3)} s`}\n`);
  }
  let diff = 0;
  let scale = 0;
  values.A!.forEach((a, k) => a.forEach((x, j) => ((diff = Math.max(diff, Math.abs(x - values.B![k]![j]!))), (scale = Math.max(scale, Math.abs(x))))));
  const ratios = seconds.A.map((a, k) => seconds.B[k]! / a);
  return {
    a: otherRoot,
    b: here,
    mode,
    unit: mode === 'terms' ? 'CPU seconds per task term' : 'outer-step seconds of one iteration',
    tasks,
    rounds: rounds - 1,
    A: { median: round(median(seconds.A), 4), best: round(Math.min(...seconds.A), 4) },
    B: { median: round(median(seconds.B), 4), best: round(Math.min(...seconds.B), 4) },
    ratioBoverA: round(median(ratios), 3),
    ratios: ratios.map((x) => round(x, 3)),
    ...(mode === 'terms' ? { largestRelativeDifference: Number((scale > 0 ? diff / scale : 0).toPrecision(3)) } : {}),
    loadAverage: { before: loadBefore.map((x) => round(x, 2)), after: loadavg().map((x) => round(x, 2)) },
  };
};
