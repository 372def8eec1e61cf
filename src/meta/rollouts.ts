/**
 * A trained policy's trajectories at every adaptation level on a few tasks — pre-update (level 0)
 * and after each inner step — as positions in the plane, for drawing (src/plot/rollouts.ts). The
 * adaptation is the trainer's own (its inner estimator, step size and steps), as at meta-test time.
 * For 2D point environments: the first two observation coordinates are the position.
 */
import { seededUniform, mixSeeds } from '../random.ts';
import type { Params } from '../surrogates/batch.ts';
import { disposeParams } from './algorithms.ts';
import { innerStepsOn, type Trainer } from './iteration.ts';
import { averageReturn, type Trajectories } from './sampler.ts';

export interface RolloutTask {
  /** the task as its distribution describes it (JSON) */
  readonly task: unknown;
  /** its goal position, when the description has one (`goal: [x, y]`) */
  readonly goal: readonly [number, number] | null;
  /** paths[level][trajectory]: the positions visited, start first, then after every real step */
  readonly paths: ReadonlyArray<ReadonlyArray<ReadonlyArray<readonly [number, number]>>>;
  /** average return per level */
  readonly returns: readonly number[];
}

export interface Rollouts {
  readonly env: string;
  readonly adaptationSteps: number;
  readonly tasks: readonly RolloutTask[];
}

const goalOf = (description: unknown): readonly [number, number] | null => {
  const goal = (description as { goal?: unknown } | null)?.goal;
  return Array.isArray(goal) && goal.length === 2 && goal.every((g) => typeof g === 'number') ? [goal[0] as number, goal[1] as number] : null;
};

/** Positions of each trajectory: the observation before each real step; the last is the one after the final step is not observed. */
const positions = (tr: Trajectories): Array<Array<[number, number]>> =>
  Array.from({ length: tr.n }, (_, i) => {
    const path: Array<[number, number]> = [];
    for (let t = 0; t < tr.horizon; t++) {
      const row = i * tr.horizon + t;
      if (tr.mask[row] === 0) break;
      path.push([tr.observations[row * tr.observationDim]!, tr.observations[row * tr.observationDim + 1]!]);
    }
    return path;
  });

/**
 * Samples `trajectories` trajectories per task on up to `tasks` distinct tasks (drawn from `seed`;
 * repeats of a task already drawn are skipped), at every adaptation level from `params`.
 */
export const pointRollouts = async (trainer: Trainer, params: Params, options: { readonly tasks: number; readonly trajectories: number; readonly seed: number }): Promise<Rollouts> => {
  const { distribution, horizon, adaptationSteps } = trainer;
  if (distribution.observationDim < 2) throw new Error(`${distribution.name}: observations have ${distribution.observationDim} coordinate(s); a 2D point environment's first two are the position`);
  const candidates = distribution.sampleTasks(seededUniform(mixSeeds(options.seed, 7, 0)), options.tasks * 8);
  const seen = new Set<string>();
  const tasks = candidates.filter((task) => {
    const key = JSON.stringify(distribution.describeTask(task));
    if (seen.has(key) || seen.size >= options.tasks) return false;
    seen.add(key);
    return true;
  });
  const paths: Array<Array<Array<Array<[number, number]>>>> = tasks.map(() => []);
  const returns: number[][] = tasks.map(() => []);
  let current: Params[] = tasks.map(() => params);
  try {
    for (let j = 0; j <= adaptationSteps; j++) {
      const trajectories = await trainer.sampler.sample({ tasks, params: current, perGroup: options.trajectories, horizon, seed: mixSeeds(options.seed, 7, 1 + j) });
      trajectories.forEach((tr, i) => {
        paths[i]!.push(positions(tr));
        returns[i]!.push(averageReturn(tr));
      });
      if (j === adaptationSteps) break;
      const next = innerStepsOn(trainer, current, trajectories);
      if (j > 0) current.forEach(disposeParams);
      current = next;
    }
  } finally {
    if (current[0] !== params) current.forEach(disposeParams);
  }
  return {
    env: distribution.name,
    adaptationSteps,
    tasks: tasks.map((task, i) => {
      const description = distribution.describeTask(task);
      return { task: description, goal: goalOf(description), paths: paths[i]!, returns: returns[i]! };
    }),
  };
};
