/**
 * Fig. 5 of the ProMP paper: the pre-update exploration that each meta-gradient estimator learns, on
 * the released momentum point environment (src/envs/point-momentum.ts), by the released protocol
 * (experiments/exploration_comparison/trpo_run_sweep.py at 2325efc0a3a7): normalize()d actions,
 * (64, 64) tanh Gaussian policy with learned std, 40 tasks × 20 rollouts, horizon 100, γ 0.99, GAE λ 1,
 * normalised advantages, linear feature baseline, 3 inner steps of 0.1, TRPO outer step (max KL
 * 0.01), 501 iterations, seeds 1–5; three arms:
 *
 *   LVC-TRPO     inner_type 'likelihood_ratio', exploration False: formulation I with the LVC inner
 *                step — magicbox has no `lvc-trpo` algorithm name, so this is `lvc-vpg`'s meta-objective
 *                with the TRPO outer step (the same library parts, composed here)
 *   MAML-TRPO    inner_type 'log_likelihood', exploration False: `maml-trpo`
 *   E-MAML-TRPO  inner_type 'log_likelihood', exploration True: `emaml-trpo`
 *
 * The figure: each arm's trajectories in the plane from its final parameters, pre-update and after the
 * three inner steps, with the goal regions (within 2 of a corner: where the reward is non-zero) shaded.
 * Units: chunks of iterations per (arm, seed), each saving the parameters it ended with; then one
 * rollouts unit per (arm, seed).
 */
import * as tf from '@tensorflow/tfjs';
import * as t from 'io-ts';
import { pointMomentum, POINT_MOMENTUM } from '../envs/point-momentum.ts';
import { algorithms, disposeParams } from '../meta/algorithms.ts';
import { tensorsFromJson, tensorsToJson } from '../meta/checkpoint.ts';
import { resolveConfig, type TrainConfig } from '../meta/config.ts';
import { makeTrainer, runIteration, type Trainer } from '../meta/iteration.ts';
import { configPolicy } from '../meta/trainer-setup.ts';
import { pointRollouts, type Rollouts } from '../meta/rollouts.ts';
import { renderRollouts } from '../plot/rollouts.ts';
import type { Figure, FigureOutcome, FigureRequest, ReproductionScale } from './figure.ts';
import { csv, plusMinus, writeOutput } from './outputs.ts';
import { runUnit } from './units.ts';

export type Fig5Arm = 'lvc-trpo' | 'maml-trpo' | 'emaml-trpo';
export const fig5Arms: readonly Fig5Arm[] = ['lvc-trpo', 'maml-trpo', 'emaml-trpo'];
const armLabel: Record<Fig5Arm, string> = { 'lvc-trpo': 'LVC-TRPO', 'maml-trpo': 'MAML-TRPO', 'emaml-trpo': 'E-MAML-TRPO' };

export interface Fig5Settings {
  readonly tasksPerIteration: number;
  readonly trajectoriesPerTask: number;
  readonly horizon: number;
  readonly iterations: number;
  /** iterations per unit (a rerun resumes at a chunk boundary) */
  readonly chunk: number;
  /** trajectories per task drawn in the figure, on the four corners */
  readonly rolloutTrajectories: number;
}

const paperSettings: Fig5Settings = { tasksPerIteration: 40, trajectoriesPerTask: 20, horizon: 100, iterations: 501, chunk: 10, rolloutTrajectories: 20 };

export const fig5Settings = (scale: ReproductionScale): Fig5Settings =>
  scale === 'paper' ? paperSettings : { tasksPerIteration: 10, trajectoriesPerTask: 10, horizon: 100, iterations: 30, chunk: 10, rolloutTrajectories: 10 };

/** The config of one arm's run: the released sweep's settings (the rest are magicbox's paper defaults, the same values). */
export const fig5Config = (arm: Fig5Arm, settings: Fig5Settings, seed: number): TrainConfig =>
  resolveConfig({
    algo: arm === 'lvc-trpo' ? 'lvc-vpg' : arm,
    env: pointMomentum.name,
    seed,
    iterations: settings.iterations,
    tasksPerIteration: settings.tasksPerIteration,
    trajectoriesPerTask: settings.trajectoriesPerTask,
    horizon: settings.horizon,
    adaptationSteps: 3,
    innerStepSize: 0.1,
    discount: 0.99,
    gaeLambda: 1,
    hidden: [64, 64],
    initLogStd: 0,
    maxKl: 0.01,
    // The released scripts wrap the environment in normalize(): the policy acts in [−10, 10].
    actionNormalization: 'normalized',
    // TRPO's Hessian-vector products take a third derivative: the general path.
    engine: 'tfjs',
  });

export const fig5Trainer = (arm: Fig5Arm, settings: Fig5Settings, seed: number): Trainer => {
  const config = fig5Config(arm, settings, seed);
  const trainer = makeTrainer(config, pointMomentum, configPolicy(config, pointMomentum));
  if (arm !== 'lvc-trpo') return trainer;
  // lvc-vpg's formulation I and LVC estimators, with the TRPO outer step instead of Adam.
  return { ...trainer, algorithm: { ...algorithms['lvc-vpg'], description: 'formulation I with the LVC inner estimator, TRPO outer step', optimizer: 'trpo' } };
};

const TensorJsonCodec = t.type({ shape: t.readonlyArray(t.number), values: t.readonlyArray(t.number) });
const ChunkCodec = t.type({
  params: t.record(t.string, TensorJsonCodec),
  /** per iteration of the chunk: the average return at each adaptation level */
  returns: t.array(t.array(t.number)),
});
const Point = t.readonly(t.tuple([t.number, t.number]));
const RolloutsCodec = t.type({
  env: t.string,
  adaptationSteps: t.number,
  tasks: t.readonlyArray(t.type({ task: t.unknown, goal: t.union([Point, t.null]), paths: t.readonlyArray(t.readonlyArray(t.readonlyArray(Point))), returns: t.readonlyArray(t.number) })),
});

/** Corners reached (a position within 1 of the corner) by some trajectory at `level`. */
export const cornersReached = (rollouts: Rollouts, level: number): number => {
  const c = POINT_MOMENTUM.corner;
  const corners = [[-c, -c], [c, -c], [-c, c], [c, c]] as const;
  return corners.filter(([cx, cy]) => rollouts.tasks.some((task) => task.paths[level]!.some((path) => path.some(([x, y]) => Math.hypot(x - cx, y - cy) <= 1)))).length;
};

// The released sweep ran seeds 1–5; at the small scale one seed is what the time allows.
const seedsAt = (scale: ReproductionScale): number => (scale === 'paper' ? 5 : 1);

const runWith = (settingsAt: (scale: ReproductionScale) => Fig5Settings) => async (request: FigureRequest): Promise<FigureOutcome> => {
  const settings = settingsAt(request.scale);
  const seeds = Array.from({ length: request.seeds ?? seedsAt(request.scale) }, (_, k) => k + 1);
  const chunks = Math.ceil(settings.iterations / settings.chunk);
  const total = fig5Arms.length * seeds.length * (chunks + 1);
  let done = 0;
  let resumed = 0;
  const history = new Map<string, number[][]>();
  const rollouts = new Map<string, Rollouts>();
  const tick = (out: { resumed: boolean }, label: string) => {
    done++;
    if (out.resumed) resumed++;
    request.progress(done, total, label);
  };
  outer: for (const arm of fig5Arms) {
    for (const seed of seeds) {
      const trainer = fig5Trainer(arm, settings, seed);
      const shapes = trainer.policy.paramShapes;
      let params = trainer.policy.init(seed);
      const returns: number[][] = [];
      try {
        for (let c = 0; c < chunks; c++) {
          if (request.stopRequested()) break outer;
          const from = c * settings.chunk;
          const to = Math.min(settings.iterations, from + settings.chunk);
          const start = params;
          const out = await runUnit(request.outDir, `fig5-${arm}-seed${seed}-it${to}`, ChunkCodec, async () => {
            let current = start;
            const chunkReturns: number[][] = [];
            for (let it = from; it < to; it++) {
              const r = await runIteration(trainer, current, undefined, it);
              if (current !== start) disposeParams(current);
              current = r.params;
              chunkReturns.push([...r.stats.averageReturn]);
            }
            const json = tensorsToJson(current);
            if (current !== start) disposeParams(current);
            return { params: json, returns: chunkReturns };
          });
          disposeParams(params);
          params = tensorsFromJson(out.result.params, shapes, 'params');
          returns.push(...out.result.returns);
          tick(out, `${armLabel[arm]} seed ${seed} iterations ${from + 1}–${to}`);
        }
        if (request.stopRequested()) break outer;
        const final = params;
        const out = await runUnit(request.outDir, `fig5-${arm}-seed${seed}-rollouts`, RolloutsCodec, () =>
          pointRollouts(trainer, final, { tasks: 4, trajectories: settings.rolloutTrajectories, seed: 1000 + seed }),
        );
        rollouts.set(`${arm}-${seed}`, out.result);
        history.set(`${arm}-${seed}`, returns);
        tick(out, `${armLabel[arm]} seed ${seed} rollouts`);
      } finally {
        disposeParams(params);
        await trainer.sampler.close();
      }
    }
  }
  if (resumed > 0) request.log(`resumed ${resumed} finished unit(s) from ${request.outDir}/units`);
  if (done < total) return { files: [], summary: [`stopped after ${done} of ${total} units; run the same command again to continue`], complete: false };
  const panels = fig5Arms.map((arm) => ({ title: `${armLabel[arm]} (seed ${seeds[0]})`, rollouts: rollouts.get(`${arm}-${seeds[0]}`)! }));
  const svg = writeOutput(
    request.outDir,
    'fig5.svg',
    await renderRollouts(panels, { title: `Fig. 5: pre-update (grey) and post-update (coloured) trajectories after ${settings.iterations} iterations`, regionRadius: POINT_MOMENTUM.rewardRadius, extent: 4.5 }),
  );
  const rows = fig5Arms.flatMap((arm) => seeds.flatMap((seed) => history.get(`${arm}-${seed}`)!.map((r, it) => [arm, seed, it, ...r] as const)));
  const table = writeOutput(request.outDir, 'fig5-returns.csv', csv(['arm', 'seed', 'iteration', 'pre_return', 'step1_return', 'step2_return', 'post_return'], rows));
  const tail = Math.max(1, Math.min(5, settings.iterations));
  const numbers = fig5Arms.map((arm) => {
    const last = (level: number) => seeds.map((seed) => {
      const h = history.get(`${arm}-${seed}`)!.slice(-tail);
      return h.reduce((a, r) => a + r[level]!, 0) / h.length;
    });
    const reached = (level: number) => seeds.map((seed) => cornersReached(rollouts.get(`${arm}-${seed}`)!, level));
    return { arm, pre: last(0), post: last(3), preCorners: reached(0), postCorners: reached(3) };
  });
  const summary = numbers.map(
    (n) =>
      `${armLabel[n.arm]}: last ${tail} iterations' average return pre-update ${plusMinus(n.pre, 1)}, post-update ${plusMinus(n.post, 1)}; ` +
      `corners reached (within 1) by the drawn pre-update trajectories ${n.preCorners.join(', ')} of 4, post-update ${n.postCorners.join(', ')} (per seed; ${seeds.length} seed(s))`,
  );
  // The trajectories drawn stay in units/*-rollouts.json (megabytes); the numbers file keeps the numbers.
  const json = writeOutput(request.outDir, 'fig5.json', `${JSON.stringify({ figure: 'fig5', scale: request.scale, settings, seeds, arms: numbers }, null, 1)}\n`);
  return { files: [svg, json, table], summary, complete: true };
};

/** Fig. 5 with the settings of each scale from `settingsAt` (tests pass tiny ones). */
export const makeFig5 = (settingsAt: (scale: ReproductionScale) => Fig5Settings = fig5Settings): Figure => ({
  id: 'fig5',
  title: 'Fig. 5: pre-update exploration of LVC-TRPO, MAML-TRPO and E-MAML-TRPO on the momentum point environment',
  defaultSeeds: 1,
  seedsAt,
  describeScale: (scale) => {
    const s = settingsAt(scale);
    const what = `${s.tasksPerIteration} tasks × ${s.trajectoriesPerTask} trajectories, horizon ${s.horizon}, 3 inner steps of 0.1, TRPO (max KL 0.01), ${s.iterations} iterations`;
    return scale === 'paper' ? `the released protocol: ${what}` : `${what} — cut from the paper's 40 × 20 and 501 iterations (about 15 s per iteration here)`;
  },
  run: runWith(settingsAt),
});

export const fig5: Figure = makeFig5();
