/**
 * The 1D environment of the ProMP paper (Sec. 7.4, Figure 6), where a two-parameter policy makes the
 * meta-gradient of formulations I and II visible as a path in the plane.
 *
 * - State: a position x on the real line, drawn uniformly in [−2, 2] at every reset (from the
 *   `uniform` passed to reset, one draw per environment in row order). Observation = x (1 number).
 * - Task: the goal g ∈ {−1, +1}, each with probability 1/2.
 * - Action: a real displacement clipped to [−0.2, 0.2]; dynamics x ← x + clip(a).
 * - Reward (after the move): r = −|x − g|. Dense, so the short horizon suffices.
 * - Horizon 20, one inner adaptation step. The bound 0.2 (rather than 0.1) makes every goal reachable
 *   within the horizon from every start: |x₀ − g| ≤ 3 ≤ 20 · 0.2.
 * - Never done: episodes run for the horizon the sampler uses.
 */
import { checkActions, checkTaskCount, clip } from './checks.ts';
import type { StepResult, TaskDistribution, Uniform, VectorEnv } from './types.ts';

/** The fixed constants of the environment. */
export const POINT_1D = Object.freeze({
  /** the start is uniform in [startLow, startHigh] */
  startLow: -2,
  startHigh: 2,
  /** action bound */
  maxAction: 0.2,
});

export interface Point1dTask {
  /** −1 or +1 when sampled; any finite goal is accepted by make */
  readonly goal: number;
}

const NAME = 'point-1d';

const TASKS: readonly Point1dTask[] = Object.freeze([Object.freeze({ goal: -1 }), Object.freeze({ goal: 1 })]);

const describe = (task: Point1dTask): { goal: number } => ({ goal: task.goal });

const make = (tasks: readonly Point1dTask[]): VectorEnv => {
  const size = tasks.length;
  const { startLow, startHigh, maxAction } = POINT_1D;
  const goals = new Float32Array(size);
  tasks.forEach((task, i) => {
    if (!Number.isFinite(task.goal)) throw new Error(`${NAME}: task ${i} has a non-finite goal ${JSON.stringify(describe(task))}`);
    goals[i] = task.goal;
  });
  const positions = new Float32Array(size);
  /** steps taken since the last reset; −1 before the first reset */
  let t = -1;

  const reset = (uniform: Uniform): Float32Array => {
    for (let i = 0; i < size; i++) positions[i] = startLow + (startHigh - startLow) * uniform();
    t = 0;
    return positions.slice();
  };

  const step = (actions: Float32Array): StepResult => {
    checkActions(NAME, actions, size, 1, t, (row) => describe(tasks[row]!));
    const rewards = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      positions[i] = positions[i]! + clip(actions[i]!, maxAction);
      // the reward is computed from the stored (float32) position, the one the agent observes
      rewards[i] = -Math.abs(positions[i]! - goals[i]!);
    }
    t += 1;
    return { observations: positions.slice(), rewards, dones: new Uint8Array(size) };
  };

  return { size, reset, step };
};

/** The 1D goal-at-±1 environment (ProMP Sec. 7.4); see the module comment. */
export const point1d: TaskDistribution<Point1dTask> = Object.freeze({
  name: NAME,
  description:
    '1D point from a uniform start in [−2, 2] to a goal at −1 or +1; actions clipped to [−0.2, 0.2]; ' +
    'reward −|x − goal| (ProMP Sec. 7.4)',
  observationDim: 1,
  action: Object.freeze({ kind: 'continuous', dim: 1, low: -POINT_1D.maxAction, high: POINT_1D.maxAction }),
  horizon: 20,
  adaptationSteps: 1,
  sampleTasks: (uniform: Uniform, count: number): Point1dTask[] => {
    checkTaskCount(NAME, count);
    const out: Point1dTask[] = [];
    for (let i = 0; i < count; i++) out.push(TASKS[uniform() < 0.5 ? 0 : 1]!);
    return out;
  },
  describeTask: describe,
  make,
});
