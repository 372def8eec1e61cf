/**
 * Fig. 6 of the ProMP paper: meta-gradient ascent of formulation I (DiCE, through magicbox's compiled
 * meta-objective) and formulation II (E-MAML) on the released 1D environment, by the released
 * protocol (experiments/env_1d/run_1d_exp.py and point_1d_hand_grads.py at 2325efc0a3a7): θ from
 * (0.09, 0.05), per iteration 80 tasks (40 per goal) × 100 trajectories of horizon 5, inner step 0.1
 * on the whole return, no baseline, plain gradient ascent on the meta-gradient with the learning rate
 * swept over {5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1}, 200 iterations; the optimum is plotted at (0, 0).
 *
 * Units: one training run per (formulation, learning rate, seed). The best learning rate of each
 * formulation is the one with the smallest mean over seeds of its mean distance to (0, 0) over all
 * iterations (the area under the distance curve: fast and steady both count); a learning rate at which
 * any seed diverged is not eligible. The released formulas carry an extra α on formulation I's
 * post-update term (see released-1d.ts); both scales follow the code, which drew the paper's figure.
 */
import type { TopLevelSpec } from 'vega-lite';
import * as t from 'io-ts';
import { point1dReleasedTasks } from '../envs/point-1d-released.ts';
import { renderSvg } from '../plot/learning-curves.ts';
import type { Figure, FigureOutcome, FigureRequest, ReproductionScale } from './figure.ts';
import { csv, meanStd, plusMinus, writeOutput } from './outputs.ts';
import { released1dIteration, released1dSetup, type Released1dForm, type Released1dFormulation, type Theta } from './released-1d.ts';
import { runUnit } from './units.ts';

export interface Fig6Settings {
  /** tasks per iteration: `pairs` of goals (−1, +1) */
  readonly pairs: number;
  readonly trajectoriesPerTask: number;
  readonly iterations: number;
  readonly innerStepSize: number;
  readonly learningRates: readonly number[];
  readonly form: Released1dForm;
  readonly start: Theta;
}

const paperSettings: Fig6Settings = {
  pairs: 40,
  trajectoriesPerTask: 100,
  iterations: 200,
  innerStepSize: 0.1,
  learningRates: [5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1],
  form: 'released',
  start: [0.09, 0.05],
};

export const fig6Settings = (scale: ReproductionScale): Fig6Settings =>
  scale === 'paper' ? paperSettings : { ...paperSettings, pairs: 20, trajectoriesPerTask: 50, iterations: 100 };

const formulations: readonly Released1dFormulation[] = ['I', 'II'];
const formulationLabel: Record<Released1dFormulation, string> = { I: 'I (DiCE)', II: 'II (E-MAML)' };

/** One run's result: θ after each iteration (index 0 the start), returns, and where it diverged. */
const RunCodec = t.type({
  thetas: t.array(t.tuple([t.number, t.number])),
  preReturn: t.array(t.number),
  postReturn: t.array(t.number),
  /** the iteration after which θ was no longer finite (or beyond ±1e3), or null */
  divergedAt: t.union([t.number, t.null]),
});
type Run = t.TypeOf<typeof RunCodec>;

/** |θ| beyond this is divergence: the released policy's mean θ₀s² + θ₁ is then far outside the ±2 clip. */
const DIVERGED = 1e3;

const trainRun = async (settings: Fig6Settings, formulation: Released1dFormulation, learningRate: number, seed: number): Promise<Run> => {
  const setup = released1dSetup(settings.innerStepSize);
  const tasks = point1dReleasedTasks(settings.pairs);
  let theta: Theta = settings.start;
  const run: { thetas: [number, number][]; preReturn: number[]; postReturn: number[]; divergedAt: number | null } = {
    thetas: [[theta[0], theta[1]]],
    preReturn: [],
    postReturn: [],
    divergedAt: null,
  };
  for (let iteration = 0; iteration < settings.iterations; iteration++) {
    let step;
    try {
      step = released1dIteration(theta, { setup, formulation, form: settings.form, tasks, trajectoriesPerTask: settings.trajectoriesPerTask, learningRate, seed, iteration });
    } catch (e) {
      // A diverged θ makes non-finite actions or gradients; record it as the divergence it is.
      if (e instanceof Error && /NaN|Infinity|non-finite/.test(e.message)) {
        run.divergedAt = iteration;
        break;
      }
      throw e;
    }
    if (!step.theta.every((x) => Number.isFinite(x) && Math.abs(x) < DIVERGED)) {
      run.divergedAt = iteration;
      break;
    }
    theta = step.theta;
    run.thetas.push([theta[0], theta[1]]);
    run.preReturn.push(step.preReturn);
    run.postReturn.push(step.postReturn);
    // Let a pending Ctrl-C (a signal handler) run between iterations.
    if (iteration % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
  }
  return run;
};

const distances = (run: Run): number[] => run.thetas.map(([a, b]) => Math.hypot(a, b));
const meanOf = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const unitKey = (formulation: Released1dFormulation, lr: number, seed: number) => `fig6-${formulation}-lr${lr}-seed${seed}`;

export interface Fig6Choice {
  readonly formulation: Released1dFormulation;
  readonly learningRate: number;
  /** per learning rate: mean over seeds of the mean distance over iterations (Infinity: a seed diverged) */
  readonly scores: ReadonlyArray<{ readonly learningRate: number; readonly score: number; readonly diverged: number }>;
}

/** The best learning rate of a formulation (see the module comment). */
export const chooseLearningRate = (
  formulation: Released1dFormulation,
  learningRates: readonly number[],
  runsAt: (lr: number) => readonly Run[],
): Fig6Choice => {
  const scores = learningRates.map((learningRate) => {
    const runs = runsAt(learningRate);
    const diverged = runs.filter((r) => r.divergedAt !== null).length;
    return { learningRate, diverged, score: diverged > 0 ? Infinity : meanOf(runs.map((r) => meanOf(distances(r).slice(1)))) };
  });
  const best = scores.reduce((a, b) => (b.score < a.score ? b : a));
  return { formulation, learningRate: best.learningRate, scores };
};

const spec = (chosen: ReadonlyArray<{ label: string; runs: readonly Run[] }>, start: Theta, iterations: number): TopLevelSpec => {
  const paths = chosen.flatMap(({ label, runs }) => runs.flatMap((r, s) => r.thetas.map(([a, b], it) => ({ label, seed: s + 1, iteration: it, theta0: a, theta1: b }))));
  // Means over the runs still going at each iteration (every run, unless the chosen rate diverged somewhere).
  const alive = (runs: readonly Run[], it: number) => runs.filter((r) => r.thetas.length > it);
  const iterationsOf = (runs: readonly Run[]) => Array.from({ length: Math.max(...runs.map((r) => r.thetas.length)) }, (_, it) => it);
  const meanPaths = chosen.flatMap(({ label, runs }) =>
    iterationsOf(runs).map((it) => ({ label, iteration: it, theta0: meanOf(alive(runs, it).map((r) => r.thetas[it]![0])), theta1: meanOf(alive(runs, it).map((r) => r.thetas[it]![1])) })),
  );
  const curves = chosen.flatMap(({ label, runs }) =>
    iterationsOf(runs).map((it) => {
      const { mean, std } = meanStd(alive(runs, it).map((r) => distances(r)[it]!));
      return { label, iteration: it, mean, lo: mean - std, hi: mean + std };
    }),
  );
  const color = { field: 'label', type: 'nominal', title: 'formulation (best learning rate)', scale: { range: ['#d62728', '#2ca02c'] }, legend: { orient: 'bottom', labelLimit: 400, titleLimit: 400 } } as const;
  const x0 = { field: 'theta0', type: 'quantitative', title: 'θ₀', scale: { zero: false } } as const;
  const x1 = { field: 'theta1', type: 'quantitative', title: 'θ₁', scale: { zero: false } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Fig. 6: formulation I vs II on the released 1D environment', subtitle: `thin: each seed; thick: mean over ${chosen[0]!.runs.length} seeds; ◆ the optimum (0, 0) as the released plot marks it; ● the start` },
    background: 'white',
    hconcat: [
      {
        width: 380,
        height: 380,
        title: 'paths in the (θ₀, θ₁) plane',
        layer: [
          { data: { values: paths }, mark: { type: 'line', strokeWidth: 0.8, opacity: 0.35 }, encoding: { x: x0, y: x1, color, detail: { field: 'seed' }, order: { field: 'iteration' } } },
          { data: { values: meanPaths }, mark: { type: 'line', strokeWidth: 2.5 }, encoding: { x: x0, y: x1, color, order: { field: 'iteration' } } },
          { data: { values: [{ theta0: 0, theta1: 0 }] }, mark: { type: 'point', shape: 'diamond', size: 220, filled: true, color: 'black' }, encoding: { x: x0, y: x1 } },
          { data: { values: [{ theta0: start[0], theta1: start[1] }] }, mark: { type: 'circle', size: 90, color: '#555' }, encoding: { x: x0, y: x1 } },
        ],
      },
      {
        width: 380,
        height: 380,
        title: `distance to the optimum, mean ± std over seeds (${iterations} iterations)`,
        data: { values: curves },
        encoding: { x: { field: 'iteration', type: 'quantitative', title: 'iteration' }, color },
        layer: [
          { mark: { type: 'area', opacity: 0.18 }, encoding: { y: { field: 'lo', type: 'quantitative', title: '‖θ − (0, 0)‖' }, y2: { field: 'hi' } } },
          { mark: { type: 'line', strokeWidth: 2 }, encoding: { y: { field: 'mean', type: 'quantitative' } } },
        ],
      },
    ],
  } as unknown as TopLevelSpec;
};

const runWith = (settingsAt: (scale: ReproductionScale) => Fig6Settings) => async (request: FigureRequest): Promise<FigureOutcome> => {
  const settings = settingsAt(request.scale);
  const seeds = Array.from({ length: request.seeds ?? DEFAULT_SEEDS }, (_, k) => k + 1);
  const units = formulations.flatMap((f) => settings.learningRates.flatMap((lr) => seeds.map((seed) => ({ f, lr, seed }))));
  const results = new Map<string, Run>();
  let done = 0;
  let resumed = 0;
  for (const u of units) {
    if (request.stopRequested()) break;
    const key = unitKey(u.f, u.lr, u.seed);
    const out = await runUnit(request.outDir, key, RunCodec, () => trainRun(settings, u.f, u.lr, u.seed));
    results.set(key, out.result);
    if (out.resumed) resumed++;
    done++;
    request.progress(done, units.length, `${formulationLabel[u.f]} lr ${u.lr} seed ${u.seed}`);
  }
  if (resumed > 0) request.log(`resumed ${resumed} finished run(s) from ${request.outDir}/units`);
  if (done < units.length) {
    return { files: [], summary: [`stopped after ${done} of ${units.length} runs; run the same command again to continue`], complete: false };
  }
  const runsAt = (f: Released1dFormulation) => (lr: number) => seeds.map((seed) => results.get(unitKey(f, lr, seed))!);
  const choices = formulations.map((f) => chooseLearningRate(f, settings.learningRates, runsAt(f)));
  const chosen = choices.map((c) => ({ label: `${formulationLabel[c.formulation]}, lr ${c.learningRate}`, runs: runsAt(c.formulation)(c.learningRate) }));
  const svg = writeOutput(request.outDir, 'fig6.svg', await renderSvg(spec(chosen, settings.start, settings.iterations)));
  const rows = formulations.flatMap((f) =>
    settings.learningRates.flatMap((lr) =>
      runsAt(f)(lr).flatMap((r, s) => r.thetas.map(([a, b], it) => [f, lr, seeds[s]!, it, a, b, Math.hypot(a, b), it > 0 ? r.postReturn[it - 1]! : null] as const)),
    ),
  );
  const table = writeOutput(request.outDir, 'fig6-runs.csv', csv(['formulation', 'learning_rate', 'seed', 'iteration', 'theta0', 'theta1', 'distance', 'post_return'], rows));
  const summary: string[] = [];
  const numbers = choices.map((c) => {
    const runs = runsAt(c.formulation)(c.learningRate);
    const d = runs.map(distances);
    // A run that diverged counts with the distances it reached before (said in the sweep line).
    const final = d.map((x) => meanOf(x.slice(-10)));
    const area = d.map((x) => meanOf(x.slice(1)));
    const tenth = Math.max(1, Math.round(settings.iterations / 10));
    const early = d.map((x) => x[Math.min(tenth, x.length - 1)]!);
    summary.push(
      `${formulationLabel[c.formulation]}: best lr ${c.learningRate}; distance to (0, 0) mean over iterations ${plusMinus(area)}, ` +
        `at iteration ${tenth} ${plusMinus(early)}, last 10 iterations ${plusMinus(final)} (mean ± std over ${seeds.length} seeds)`,
    );
    summary.push(`  sweep (mean distance over iterations; ∞: a seed diverged): ${c.scores.map((s) => `${s.learningRate}: ${Number.isFinite(s.score) ? s.score.toFixed(3) : `∞ (${s.diverged} diverged)`}`).join(', ')}`);
    return { formulation: c.formulation, learningRate: c.learningRate, scores: c.scores.map((s) => ({ ...s, score: Number.isFinite(s.score) ? s.score : null })), meanDistance: area, distanceAtTenth: early, finalDistance: final, meanCurve: Array.from({ length: Math.max(...d.map((x) => x.length)) }, (_, it) => meanStd(d.filter((x) => x.length > it).map((x) => x[it]!)).mean) };
  });
  const json = writeOutput(request.outDir, 'fig6.json', `${JSON.stringify({ figure: 'fig6', scale: request.scale, settings, seeds, choices: numbers }, null, 1)}\n`);
  return { files: [svg, json, table], summary, complete: true };
};

const DEFAULT_SEEDS = 5;

/** Fig. 6 with the settings of each scale from `settingsAt` (tests pass tiny ones). */
export const makeFig6 = (settingsAt: (scale: ReproductionScale) => Fig6Settings = fig6Settings): Figure => ({
  id: 'fig6',
  title: 'Fig. 6: formulation I (DiCE) vs II (E-MAML) on the released 1D environment',
  defaultSeeds: DEFAULT_SEEDS,
  describeScale: (scale) => {
    const s = settingsAt(scale);
    const what = `${2 * s.pairs} tasks × ${s.trajectoriesPerTask} trajectories (horizon 5), ${s.iterations} iterations, α ${s.innerStepSize}, plain ascent with lr ∈ {${s.learningRates.join(', ')}}, the released formulas (extra α on I's post-update term)`;
    return scale === 'paper' ? `the released protocol: ${what}` : `${what} — cut from the paper's 80 tasks × 100 trajectories and 200 iterations`;
  },
  run: runWith(settingsAt),
});

export const fig6: Figure = makeFig6();
