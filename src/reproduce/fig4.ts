/**
 * Fig. 4 of the ProMP paper: the meta-gradient variance of LVC and DiCE along training, by the released
 * protocol (experiments/gradient_variance/: run_sweep.py, meta_trainer_gradient_variance.py,
 * vpg_maml_extract_grads.py, vpg_dice_maml_extract_grads.py, gradient_variance_plots.py):
 *
 *   HalfCheetahFwdBack under normalize(), horizon 100, γ 0.99, (64, 64) tanh Gaussian policy with
 *   initial std 1, inner step 0.1, Adam 1e-3. Two arms, each trained along its own trajectory:
 *   "LVC" = `lvc-vpg` (LVC inner step on GAE advantages, VPG outer objective), "DiCE" = `vpg-dice`
 *   (a DiCE inner step on the adjusted rewards γᵗrₜ − b(t), the same VPG outer objective). At every
 *   iteration 10 meta-gradient samples at θ; the metric is the mean over every flattened coordinate (the
 *   log-std included) of std/(|mean| + 1e-8), std over the 10 with ddof 0 (src/meta/variance.ts
 *   `varianceAlongTraining`); drawn as the mean over seeds with a 10-iteration running mean.
 *
 * Each (arm, seed) training run is one resumable unit (units.ts). The paper reports DiCE's relative std
 * ~60% above LVC's on average, and DiCE learning slower.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as t from 'io-ts';
import type { TopLevelSpec } from 'vega-lite';
import { loadTaskDistribution } from '../envs/index.ts';
import type { AlgorithmName } from '../meta/algorithm-names.ts';
import { resolveConfig } from '../meta/config.ts';
import { makeTrainer } from '../meta/iteration.ts';
import { writeFileAtomic } from '../meta/run-directory.ts';
import { completeConfig } from '../meta/run-config.ts';
import { configPolicy } from '../meta/trainer-setup.ts';
import { varianceAlongTraining, type TrainingVariancePoint } from '../meta/variance.ts';
import { renderSvg } from '../plot/learning-curves.ts';
import type { Figure, FigureOutcome, FigureRequest, ReproductionScale } from './figure.ts';
import { readUnit, runUnit } from './units.ts';

/** The two arms: the paper's label and the algorithm that is it. */
export const fig4Arms = [
  { label: 'LVC', algo: 'lvc-vpg' },
  { label: 'DiCE', algo: 'vpg-dice' },
] as const satisfies readonly { label: string; algo: AlgorithmName }[];

/** The released sweep's seeds (run_sweep.py at 6817967), then more for larger --seeds. */
const releasedSeeds = [35, 76, 34, 92];
export const fig4Seeds = (count: number): number[] => Array.from({ length: count }, (_, i) => releasedSeeds[i] ?? 100 + i);

export interface Fig4Sizes {
  readonly iterations: number;
  readonly tasks: number;
  readonly trajectories: number;
  readonly batches: number;
}

/** The released settings, and the small scale (what a 2-core machine does in ~20 minutes). */
export const fig4Sizes: Readonly<Record<ReproductionScale, Fig4Sizes>> = {
  paper: { iterations: 301, tasks: 20, trajectories: 40, batches: 10 },
  small: { iterations: 20, tasks: 4, trajectories: 8, batches: 10 },
};

const RUNNING_MEAN = 10;

const PointCodec = t.type({
  iteration: t.number,
  relativeStd: t.number,
  medianRelativeStd: t.number,
  normRatio: t.number,
  averageReturn: t.array(t.number),
});
const ArmRunCodec = t.type({ algo: t.string, seed: t.number, sizes: t.type({ iterations: t.number, tasks: t.number, trajectories: t.number, batches: t.number }), points: t.array(PointCodec) });
type ArmRun = t.TypeOf<typeof ArmRunCodec>;

const unitKey = (algo: string, seed: number, scale: ReproductionScale) => `fig4-${scale}-${algo}-seed${seed}`;

/** The trailing mean over up to `n` values ending at each index (the first points average what there is). */
export const runningMean = (xs: readonly number[], n: number): number[] =>
  xs.map((_, i) => {
    const window = xs.slice(Math.max(0, i - n + 1), i + 1);
    return window.reduce((a, b) => a + b, 0) / window.length;
  });

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: readonly number[]) => {
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
};

/** The headline: per seed, mean over iterations of DiCE's relative std over LVC's. */
export const fig4Ratios = (runs: readonly ArmRun[], seeds: readonly number[]): number[] =>
  seeds.map((seed) => {
    const of = (algo: string) => mean(runs.find((r) => r.algo === algo && r.seed === seed)!.points.map((p) => p.relativeStd));
    return of('vpg-dice') / of('lvc-vpg');
  });

/** Two panels: the relative std of each arm over iterations, and its post-update return (mean ± std over seeds, running mean). */
export const fig4Spec = (runs: readonly ArmRun[], seeds: readonly number[]): TopLevelSpec => {
  const rows = fig4Arms.flatMap(({ label, algo }) => {
    const mine = seeds.map((seed) => runs.find((r) => r.algo === algo && r.seed === seed)!);
    const iterations = mine[0]!.points.map((p) => p.iteration);
    const series = (pick: (p: TrainingVariancePoint) => number) => {
      const values = iterations.map((_, i) => mine.map((r) => pick(r.points[i]!)));
      return { m: runningMean(values.map(mean), RUNNING_MEAN), s: runningMean(values.map(std), RUNNING_MEAN) };
    };
    const panels = [
      { panel: 'relative std of the meta-gradient', ...series((p) => p.relativeStd) },
      { panel: 'average return (post-update)', ...series((p) => p.averageReturn.at(-1)!) },
    ];
    return panels.flatMap(({ panel, m, s }) => iterations.map((iteration, i) => ({ arm: label, panel, iteration, mean: m[i]!, lo: m[i]! - s[i]!, hi: m[i]! + s[i]! })));
  });
  const chart = (panel: string) => ({
    width: 560,
    height: 240,
    transform: [{ filter: { field: 'panel', equal: panel } }],
    encoding: {
      x: { field: 'iteration', type: 'quantitative', title: 'iteration' },
      color: { field: 'arm', type: 'nominal', title: null, scale: { domain: fig4Arms.map((a) => a.label), range: ['#1f77b4', '#d62728'] } },
    },
    layer: [
      { mark: { type: 'area', opacity: 0.2 }, encoding: { y: { field: 'lo', type: 'quantitative', title: panel, scale: { zero: false } }, y2: { field: 'hi' } } },
      { mark: { type: 'line', strokeWidth: 2 }, encoding: { y: { field: 'mean', type: 'quantitative', title: panel, scale: { zero: false } } } },
    ],
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Fig. 4: meta-gradient variance along training, HalfCheetahFwdBack',
      subtitle: `mean ± std over ${seeds.length} seeds, ${RUNNING_MEAN}-iteration running mean; LVC = lvc-vpg, DiCE = vpg-dice`,
    },
    background: 'white',
    data: { values: rows },
    vconcat: [chart('relative std of the meta-gradient'), chart('average return (post-update)')],
  } as TopLevelSpec;
};

class Stopped extends Error {}

const runArm = async (algo: AlgorithmName, seed: number, sizes: Fig4Sizes, request: FigureRequest, onIteration: (it: number) => void): Promise<ArmRun> => {
  const config = completeConfig(
    resolveConfig({
      algo,
      env: 'half-cheetah-fwd-back',
      seed,
      tasksPerIteration: sizes.tasks,
      trajectoriesPerTask: sizes.trajectories,
      horizon: 100,
      innerStepSize: 0.1,
      outerLearningRate: 1e-3,
      discount: 0.99,
      gaeLambda: 1,
      hidden: [64, 64],
      initLogStd: 0,
      actionNormalization: 'normalized',
    }),
  );
  const distribution = await loadTaskDistribution(config.env);
  const trainer = makeTrainer(config, distribution, configPolicy(config, distribution));
  try {
    const points = await varianceAlongTraining({
      trainer,
      iterations: sizes.iterations,
      batches: sizes.batches,
      onIteration: (p) => onIteration(p.iteration),
      stopRequested: request.stopRequested,
    });
    if (points.length < sizes.iterations) throw new Stopped();
    return { algo, seed, sizes, points: points.map((p) => ({ ...p, averageReturn: [...p.averageReturn] })) };
  } finally {
    await trainer.sampler.close();
  }
};

const describeScale = (scale: ReproductionScale): string => {
  const s = fig4Sizes[scale];
  const common = `HalfCheetahFwdBack (normalised actions), horizon 100, (64, 64) policy, Adam 1e-3, inner step 0.1, ${s.batches} meta-gradient samples per iteration`;
  return scale === 'paper'
    ? `${common}, ${s.tasks} tasks × ${s.trajectories} trajectories, ${s.iterations} iterations, 4 seeds: the released settings`
    : `${common}; scaled down from the released 20 tasks × 40 trajectories, 301 iterations, 4 seeds to ${s.tasks} tasks × ${s.trajectories} trajectories, ${s.iterations} iterations, 3 seeds`;
};

export const fig4: Figure = {
  id: 'fig4',
  title: 'Fig. 4: meta-gradient variance of LVC and DiCE along training (HalfCheetahFwdBack)',
  defaultSeeds: 3,
  describeScale,
  run: async (request: FigureRequest): Promise<FigureOutcome> => {
    const sizes = fig4Sizes[request.scale];
    const seeds = fig4Seeds(request.seeds ?? (request.scale === 'paper' ? 4 : 3));
    const total = seeds.length * fig4Arms.length * sizes.iterations;
    let done = 0;
    const runs: ArmRun[] = [];
    for (const seed of seeds) {
      for (const { algo } of fig4Arms) {
        if (request.stopRequested()) return { files: [], summary: [], complete: false };
        const key = unitKey(algo, seed, request.scale);
        const found = readUnit(request.outDir, key, ArmRunCodec);
        if (found !== undefined) request.log(`fig4: ${algo} seed ${seed} found finished in ${request.outDir}`);
        try {
          const { result } = await runUnit(request.outDir, key, ArmRunCodec, () =>
            runArm(algo, seed, sizes, request, (it) => request.progress(done + it + 1, total, `${algo} seed ${seed} iteration ${it + 1}/${sizes.iterations}`)),
          );
          runs.push(result);
        } catch (e) {
          if (e instanceof Stopped) return { files: [], summary: [], complete: false };
          throw e;
        }
        done += sizes.iterations;
        request.progress(done, total, `${algo} seed ${seed} done`);
      }
    }
    const ratios = fig4Ratios(runs, seeds);
    const perArm = fig4Arms.map(({ label, algo }) => {
      const mine = runs.filter((r) => r.algo === algo);
      const relStd = mine.map((r) => mean(r.points.map((p) => p.relativeStd)));
      const finalReturn = mine.map((r) => mean(r.points.slice(-RUNNING_MEAN).map((p) => p.averageReturn.at(-1)!)));
      return { label, algo, meanRelativeStd: { mean: mean(relStd), std: std(relStd), perSeed: relStd }, finalPostReturn: { mean: mean(finalReturn), std: std(finalReturn), perSeed: finalReturn } };
    });
    const summary = [
      `DiCE/LVC relative std (mean over ${sizes.iterations} iterations, per seed): ${ratios.map((r) => r.toFixed(3)).join(', ')} → mean ${mean(ratios).toFixed(3)} ± ${std(ratios).toFixed(3)} (std over ${seeds.length} seeds; paper: ~1.6)`,
      ...perArm.map(
        (a) =>
          `${a.label} (${a.algo}): relative std ${a.meanRelativeStd.mean.toFixed(2)} ± ${a.meanRelativeStd.std.toFixed(2)}; post-update return over the last ${Math.min(RUNNING_MEAN, sizes.iterations)} iterations ${a.finalPostReturn.mean.toFixed(2)} ± ${a.finalPostReturn.std.toFixed(2)}`,
      ),
    ];
    fs.mkdirSync(request.outDir, { recursive: true });
    const svg = await renderSvg(fig4Spec(runs, seeds));
    writeFileAtomic(path.join(request.outDir, 'fig4.svg'), svg);
    const numbers = { figure: 'fig4', scale: request.scale, sizes, seeds, ratios, ratioMean: mean(ratios), ratioStd: std(ratios), arms: perArm, runs };
    writeFileAtomic(path.join(request.outDir, 'fig4.json'), `${JSON.stringify(numbers, null, 2)}\n`);
    const csv = ['arm,algo,seed,iteration,relativeStd,medianRelativeStd,normRatio,preReturn,postReturn'];
    for (const r of runs) {
      const label = fig4Arms.find((a) => a.algo === r.algo)!.label;
      for (const p of r.points) csv.push([label, r.algo, r.seed, p.iteration, p.relativeStd, p.medianRelativeStd, p.normRatio, p.averageReturn[0], p.averageReturn.at(-1)].join(','));
    }
    writeFileAtomic(path.join(request.outDir, 'fig4.csv'), `${csv.join('\n')}\n`);
    return { files: ['fig4.svg', 'fig4.json', 'fig4.csv'], summary, complete: true };
  },
};
