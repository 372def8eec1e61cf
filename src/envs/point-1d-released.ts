/**
 * The 1D environment of the ProMP paper's Figure 6 exactly as the released code builds it
 * (jonasrothfuss/ProMP at 2325efc0a3a7, experiments/env_1d/point_1d_hand_grads.py: `collect_samples`
 * and `FeaturePolicy.get_actions`), rewritten here. It is not `point-1d`, which is a different,
 * magicbox-own 1D task (displacement actions, reward −|x − g|, horizon 20).
 *
 * - State s on the real line; reset draws s₀ uniformly in [−2, 2] (one `uniform` draw per environment,
 *   in row order). Observation = s.
 * - Task: the goal g ∈ {−1, +1}. The released script runs a fixed 40 + 40 tasks per iteration
 *   ([−1, +1] × 40); `sampleTasks` draws each goal with probability ½ for other uses.
 * - Action a, clipped to [−2, 2]; the next state is the clipped action, s′ = clip(a) (not s + a).
 * - Reward r = exp(−0.1·(clip(a) − g)²), from the clipped action.
 * - Horizon 5, one inner adaptation step; never done.
 *
 * The released policy clips its draw before storing it, so its log-probability is evaluated at the
 * clipped action; the policy of src/reproduce/squared-feature-policy.ts does the same.
 */
import { checkActions, checkTaskCount, clip } from './checks.ts';
import type { StepResult, TaskDistribution, Uniform, VectorEnv } from './types.ts';

/** The fixed constants of the released environment. */
export const POINT_1D_RELEASED = Object.freeze({
  /** s₀ is uniform in [−startBound, startBound] */
  startBound: 2,
  /** actions (and so states) are clipped to [−maxAction, maxAction] */
  maxAction: 2,
  /** r = exp(−rewardScale·(a − g)²) */
  rewardScale: 0.1,
  horizon: 5,
});

export interface Point1dReleasedTask {
  /** −1 or +1 when sampled; any finite goal is accepted by make */
  readonly goal: number;
}

const NAME = 'point-1d-released';

const TASKS: readonly Point1dReleasedTask[] = Object.freeze([Object.freeze({ goal: -1 }), Object.freeze({ goal: 1 })]);

const describe = (task: Point1dReleasedTask): { goal: number } => ({ goal: task.goal });

/** The released reward of a (clipped) action for goal g. */
export const point1dReleasedReward = (action: number, goal: number): number => Math.exp(-POINT_1D_RELEASED.rewardScale * (action - goal) ** 2);

const make = (tasks: readonly Point1dReleasedTask[]): VectorEnv => {
  const size = tasks.length;
  const { startBound, maxAction } = POINT_1D_RELEASED;
  const goals = new Float64Array(size);
  tasks.forEach((task, i) => {
    if (!Number.isFinite(task.goal)) throw new Error(`${NAME}: task ${i} has a non-finite goal ${JSON.stringify(describe(task))}`);
    goals[i] = task.goal;
  });
  const states = new Float32Array(size);
  /** steps taken since the last reset; −1 before the first reset */
  let t = -1;

  const reset = (uniform: Uniform): Float32Array => {
    for (let i = 0; i < size; i++) states[i] = -startBound + 2 * startBound * uniform();
    t = 0;
    return states.slice();
  };

  const step = (actions: Float32Array): StepResult => {
    checkActions(NAME, actions, size, 1, t, (row) => describe(tasks[row]!));
    const rewards = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const a = clip(actions[i]!, maxAction);
      rewards[i] = point1dReleasedReward(a, goals[i]!);
      states[i] = a;
    }
    t += 1;
    return { observations: states.slice(), rewards, dones: new Uint8Array(size) };
  };

  return { size, reset, step };
};

/** The released Figure 6 environment; see the module comment. */
export const point1dReleased: TaskDistribution<Point1dReleasedTask> = Object.freeze({
  name: NAME,
  description:
    'the ProMP Figure 6 1D environment as released: s₀ uniform in [−2, 2], goal ±1, action clipped to [−2, 2] ' +
    'becomes the next state, reward exp(−0.1·(a − goal)²), horizon 5',
  observationDim: 1,
  action: Object.freeze({ kind: 'continuous', dim: 1, low: -POINT_1D_RELEASED.maxAction, high: POINT_1D_RELEASED.maxAction }),
  horizon: POINT_1D_RELEASED.horizon,
  adaptationSteps: 1,
  sampleTasks: (uniform: Uniform, count: number): Point1dReleasedTask[] => {
    checkTaskCount(NAME, count);
    const out: Point1dReleasedTask[] = [];
    for (let i = 0; i < count; i++) out.push(TASKS[uniform() < 0.5 ? 0 : 1]!);
    return out;
  },
  describeTask: describe,
  make,
});

/** The released script's tasks of one iteration: [−1, +1] repeated `pairs` times (40 pairs: 80 tasks). */
export const point1dReleasedTasks = (pairs: number): Point1dReleasedTask[] => {
  checkTaskCount(NAME, pairs);
  return Array.from({ length: 2 * pairs }, (_, k) => TASKS[k % 2]!);
};
