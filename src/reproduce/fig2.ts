/**
 * Fig. 2 of the ProMP paper: meta-learning curves of ProMP and earlier gradient-based meta-RL, by the
 * released benchmark (experiments/all_envs_eval/{ppo,trpo,vpg}_run_all.py at fb9ce3a): 40 tasks × 20
 * rollouts, γ 0.99, GAE λ 1, normalised advantages, the linear feature baseline refit per task, (64, 64)
 * tanh policy, Adam 1e-3, clip 0.3, η 5e-4, 5 ProMP steps, TRPO max KL 0.01, inner step 0.1, every
 * environment under normalize(), seeds 1, 2, 3.
 *
 * Here on HalfCheetahFwdBack (horizon 100, one inner step) and point-corners (horizon 100, three inner
 * steps), with ProMP, MAML-TRPO, E-MAML-TRPO, LVC-VPG and the released DiCE-VPG (`dice-maml`). Every
 * training run is an ordinary run directory under `<outDir>/runs/` (config.json, progress.csv,
 * checkpoint.json), trained and resumed by src/meta/train.ts and drawn by src/plot/learning-curves.ts:
 * a killed reproduction resumes each run from its last checkpoint.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AlgorithmName } from '../meta/algorithm-names.ts';
import { resolveConfig, type TrainConfig } from '../meta/config.ts';
import { completeConfig } from '../meta/run-config.ts';
import { runFiles, writeFileAtomic } from '../meta/run-directory.ts';
import { train } from '../meta/train.ts';
import { plotLearningCurves, readRun } from '../plot/learning-curves.ts';
import type { Figure, FigureOutcome, FigureRequest, ReproductionScale } from './figure.ts';

export const fig2Algorithms: readonly { readonly label: string; readonly algo: AlgorithmName }[] = [
  { label: 'ProMP', algo: 'promp' },
  { label: 'MAML-TRPO', algo: 'maml-trpo' },
  { label: 'E-MAML-TRPO', algo: 'emaml-trpo' },
  { label: 'LVC-VPG', algo: 'lvc-vpg' },
  { label: 'DiCE-VPG', algo: 'dice-maml' },
];

export const fig2Environments: readonly string[] = ['half-cheetah-fwd-back', 'point-corners'];

export interface Fig2Sizes {
  readonly iterations: number;
  readonly tasks: number;
  readonly trajectories: number;
}

/** The released settings (n_itr 1001), and the small scale. */
export const fig2Sizes: Readonly<Record<ReproductionScale, Fig2Sizes>> = {
  paper: { iterations: 1001, tasks: 40, trajectories: 20 },
  small: { iterations: 10, tasks: 5, trajectories: 5 },
};

/** How many of the last iterations' post-update returns make a run's final number. */
const FINAL_WINDOW = 3;

export const fig2Seeds = (count: number): number[] => Array.from({ length: count }, (_, i) => i + 1);

export const fig2Config = (env: string, algo: AlgorithmName, seed: number, sizes: Fig2Sizes): TrainConfig =>
  completeConfig(
    resolveConfig({
      algo,
      env,
      seed,
      iterations: sizes.iterations,
      tasksPerIteration: sizes.tasks,
      trajectoriesPerTask: sizes.trajectories,
      checkpointEvery: 1,
      actionNormalization: 'normalized',
    }),
  );

const runDirOf = (outDir: string, env: string, algo: string, seed: number) => path.join(outDir, 'runs', `${env}-${algo}-seed${seed}`);

/** A run that stopped with a training failure (e.g. diverged): the message, kept beside its directory so a rerun does not repeat it. */
const failureFile = (runDir: string) => `${runDir}.failed`;
const failureOf = (runDir: string): string | undefined => (fs.existsSync(failureFile(runDir)) ? fs.readFileSync(failureFile(runDir), 'utf8').trim() : undefined);

/** The run's finished iterations (0 when it has not started). */
const finishedIterations = (runDir: string): number => {
  if (!fs.existsSync(runFiles(runDir).csv)) return 0;
  try {
    return readRun(runDir).iterations.length;
  } catch {
    return 0;
  }
};

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: readonly number[]) => {
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
};

const describeScale = (scale: ReproductionScale): string => {
  const s = fig2Sizes[scale];
  const common = 'ProMP, MAML-TRPO, E-MAML-TRPO, LVC-VPG, DiCE-VPG on half-cheetah-fwd-back and point-corners (normalised actions, each environment\'s horizon and inner steps, the released hyperparameters)';
  return scale === 'paper'
    ? `${common}: ${s.tasks} tasks × ${s.trajectories} trajectories, ${s.iterations} iterations, seeds 1-3 (the released settings)`
    : `${common}; scaled down from 40 tasks × 20 trajectories and 1001 iterations to ${s.tasks} tasks × ${s.trajectories} trajectories and ${s.iterations} iterations (3 seeds)`;
};

export const fig2: Figure = {
  id: 'fig2',
  title: 'Fig. 2: meta-learning curves of ProMP, MAML-TRPO, E-MAML-TRPO, LVC-VPG and DiCE-VPG',
  defaultSeeds: 3,
  describeScale,
  run: async (request: FigureRequest): Promise<FigureOutcome> => {
    const sizes = fig2Sizes[request.scale];
    const seeds = fig2Seeds(request.seeds ?? 3);
    const jobs = fig2Environments.flatMap((env) => fig2Algorithms.flatMap(({ algo }) => seeds.map((seed) => ({ env, algo, seed }))));
    const total = jobs.length * sizes.iterations;
    const doneBefore = (k: number) => jobs.slice(0, k).reduce((a, j) => a + Math.min(sizes.iterations, finishedIterations(runDirOf(request.outDir, j.env, j.algo, j.seed))), 0);
    for (const [k, job] of jobs.entries()) {
      if (request.stopRequested()) return { files: [], summary: [], complete: false };
      const runDir = runDirOf(request.outDir, job.env, job.algo, job.seed);
      const label = `${job.algo} on ${job.env} seed ${job.seed}`;
      const finished = finishedIterations(runDir);
      const base = doneBefore(k);
      if (finished >= sizes.iterations || failureOf(runDir) !== undefined) {
        request.progress(base + sizes.iterations, total, `${label} done`);
        continue;
      }
      const resume = fs.existsSync(runFiles(runDir).config);
      if (resume) request.log(`fig2: resuming ${label} after ${finished} iteration(s)`);
      fs.mkdirSync(path.dirname(runDir), { recursive: true });
      const abort = new AbortController();
      const poll = setInterval(() => {
        if (request.stopRequested()) abort.abort();
      }, 200);
      try {
        const result = await train({
          config: fig2Config(job.env, job.algo, job.seed, sizes),
          runDir,
          resume,
          log: () => {},
          error: (line) => request.log(`fig2 ${label}: ${line}`),
          progress: 'off',
          signal: abort.signal,
          workers: 1,
          onIteration: (row) => request.progress(base + row.iteration + 1, total, `${label} iteration ${row.iteration + 1}/${sizes.iterations}`),
        });
        if (result.outcome === 'interrupted') return { files: [], summary: [], complete: false };
        if (result.outcome === 'failed') {
          // A run that fails (a diverged policy) is a result, reported as such; the others go on.
          writeFileAtomic(failureFile(runDir), `${result.message ?? 'failed'}\n`);
          request.log(`fig2: ${label} failed: ${result.message ?? ''}`);
        }
      } finally {
        clearInterval(poll);
      }
    }

    // The numbers: each run's final post-update return (mean of its last iterations), per algorithm
    // the mean ± std over seeds, and the ordering per environment.
    const perEnv = fig2Environments.map((env) => {
      const algos = fig2Algorithms.map(({ label, algo }) => {
        const finals = seeds.map((seed) => {
          const run = readRun(runDirOf(request.outDir, env, algo, seed));
          return mean(run.post.slice(-FINAL_WINDOW));
        });
        const failures = seeds.flatMap((seed) => {
          const message = failureOf(runDirOf(request.outDir, env, algo, seed));
          return message === undefined ? [] : [{ seed, message }];
        });
        return { label, algo, finalPostReturn: { mean: mean(finals), std: std(finals), perSeed: finals }, failures };
      });
      const ordering = [...algos].sort((a, b) => b.finalPostReturn.mean - a.finalPostReturn.mean).map((a) => a.label);
      return { env, algos, ordering };
    });
    const summary = perEnv.flatMap(({ env, algos, ordering }) => [
      `${env}: final post-update return (mean of the last ${FINAL_WINDOW} iterations, mean ± std over ${seeds.length} seeds): ${algos.map((a) => `${a.label} ${a.finalPostReturn.mean.toFixed(3)} ± ${a.finalPostReturn.std.toFixed(3)}`).join('; ')}`,
      `${env}: ordering ${ordering.join(' > ')} (paper: ProMP first)`,
      ...algos.flatMap((a) => a.failures.map((f) => `${env}: ${a.label} seed ${f.seed} stopped early (its last finished iterations are used): ${f.message}`)),
    ]);
    const dirs = jobs.map((j) => runDirOf(request.outDir, j.env, j.algo, j.seed));
    const plotted = await plotLearningCurves(dirs, { title: `Fig. 2: average post-update return (${request.scale} scale)` });
    if (plotted.svg === undefined) throw new Error(`fig2: no run could be plotted (${plotted.skipped.map((s) => `${s.dir}: ${s.reason}`).join('; ')})`);
    writeFileAtomic(path.join(request.outDir, 'fig2.svg'), plotted.svg);
    const numbers = { figure: 'fig2', scale: request.scale, sizes, seeds, finalWindow: FINAL_WINDOW, environments: perEnv, runs: dirs.map((d) => path.relative(request.outDir, d)) };
    writeFileAtomic(path.join(request.outDir, 'fig2.json'), `${JSON.stringify(numbers, null, 2)}\n`);
    const csv = ['env,label,algo,seed,finalPostReturn'];
    for (const e of perEnv) for (const a of e.algos) a.finalPostReturn.perSeed.forEach((v, i) => csv.push([e.env, a.label, a.algo, seeds[i], v].join(',')));
    writeFileAtomic(path.join(request.outDir, 'fig2.csv'), `${csv.join('\n')}\n`);
    return { files: ['fig2.svg', 'fig2.json', 'fig2.csv'], summary, complete: true };
  },
};
