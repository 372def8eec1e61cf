/**
 * The 2D point environment with momentum that the ProMP paper's Figure 5 (pre-update exploration)
 * was run on: `MetaPointEnvMomentum` (jonasrothfuss/ProMP at 2325efc0a3a7,
 * meta_policy_search/envs/point_envs/point_env_2d_momentum.py, used by
 * experiments/exploration_comparison/trpo_run_sweep.py with reward_type 'sparse'), rewritten here.
 *
 * - State: position p and velocity v in the plane; reset draws p uniformly in [−0.2, 0.2]², then v
 *   uniformly in [−0.1, 0.1]² (four `uniform` draws per environment: p_x, p_y, v_x, v_y).
 *   Observation = (p_x, p_y, v_x, v_y).
 * - Task: one of the four corners (±2, ±2), sampled uniformly.
 * - Action a: clipped to [−0.1, 0.1] per coordinate and added to the velocity; then p ← p + v
 *   (the new velocity).
 * - Reward, from the new position: max(2 − ‖p − g‖, 0) — non-zero only within distance 2 of the goal
 *   (the released 'sparse' reward with sparse_reward_radius 2).
 * - Never done; horizon 100 and three inner steps (the released sweep's max_path_length and
 *   num_inner_grad_steps).
 */
import { checkActions, checkTaskCount, clip } from './checks.ts';
import type { StepResult, TaskDistribution, Uniform, VectorEnv } from './types.ts';

export const POINT_MOMENTUM = Object.freeze({
  corner: 2,
  /** reward radius: max(radius − distance, 0) */
  rewardRadius: 2,
  startSpread: 0.2,
  velocitySpread: 0.1,
  maxAction: 0.1,
});

export interface PointMomentumTask {
  /** 0: (−c, −c), 1: (c, −c), 2: (−c, c), 3: (c, c) — the released code's corner order */
  readonly corner: 0 | 1 | 2 | 3;
  readonly goal: readonly [number, number];
}

const NAME = 'point-momentum';

const c = POINT_MOMENTUM.corner;
const CORNER_TASKS: readonly PointMomentumTask[] = Object.freeze(
  ([[-c, -c], [c, -c], [-c, c], [c, c]] as const).map((goal, corner) =>
    Object.freeze({ corner: corner as PointMomentumTask['corner'], goal: Object.freeze([goal[0], goal[1]]) as readonly [number, number] }),
  ),
);

const describe = (task: PointMomentumTask): { corner: number; goal: [number, number] } => ({ corner: task.corner, goal: [task.goal[0], task.goal[1]] });

/** The released sparse reward at position (x, y) for goal g. */
export const pointMomentumReward = (x: number, y: number, goal: readonly [number, number]): number =>
  Math.max(POINT_MOMENTUM.rewardRadius - Math.hypot(x - goal[0], y - goal[1]), 0);

const make = (tasks: readonly PointMomentumTask[]): VectorEnv => {
  const size = tasks.length;
  const { startSpread, velocitySpread, maxAction } = POINT_MOMENTUM;
  tasks.forEach((task, i) => {
    if (!Number.isFinite(task.goal[0]) || !Number.isFinite(task.goal[1])) throw new Error(`${NAME}: task ${i} has a non-finite goal ${JSON.stringify(describe(task))}`);
  });
  /** [size × 4]: p_x, p_y, v_x, v_y */
  const state = new Float32Array(4 * size);
  let t = -1;

  const reset = (uniform: Uniform): Float32Array => {
    for (let i = 0; i < size; i++) {
      state[4 * i] = startSpread * (2 * uniform() - 1);
      state[4 * i + 1] = startSpread * (2 * uniform() - 1);
      state[4 * i + 2] = velocitySpread * (2 * uniform() - 1);
      state[4 * i + 3] = velocitySpread * (2 * uniform() - 1);
    }
    t = 0;
    return state.slice();
  };

  const step = (actions: Float32Array): StepResult => {
    checkActions(NAME, actions, size, 2, t, (row) => describe(tasks[row]!));
    const rewards = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const k = 4 * i;
      state[k + 2] = state[k + 2]! + clip(actions[2 * i]!, maxAction);
      state[k + 3] = state[k + 3]! + clip(actions[2 * i + 1]!, maxAction);
      state[k] = state[k]! + state[k + 2]!;
      state[k + 1] = state[k + 1]! + state[k + 3]!;
      rewards[i] = pointMomentumReward(state[k]!, state[k + 1]!, tasks[i]!.goal);
    }
    t += 1;
    return { observations: state.slice(), rewards, dones: new Uint8Array(size) };
  };

  return { size, reset, step };
};

/** The released momentum point environment of Fig. 5; see the module comment. */
export const pointMomentum: TaskDistribution<PointMomentumTask> = Object.freeze({
  name: NAME,
  description:
    '2D point with momentum (action clipped to [−0.1, 0.1]² added to the velocity) from near the origin to one of the corners (±2, ±2); ' +
    'reward max(2 − distance to the goal, 0) (ProMP Fig. 5, MetaPointEnvMomentum)',
  observationDim: 4,
  action: Object.freeze({ kind: 'continuous', dim: 2, low: -POINT_MOMENTUM.maxAction, high: POINT_MOMENTUM.maxAction }),
  horizon: 100,
  adaptationSteps: 3,
  // The released exploration_comparison scripts wrap MetaPointEnvMomentum in normalize().
  actionNormalization: 'normalized',
  sampleTasks: (uniform: Uniform, count: number): PointMomentumTask[] => {
    checkTaskCount(NAME, count);
    const out: PointMomentumTask[] = [];
    for (let i = 0; i < count; i++) out.push(CORNER_TASKS[Math.min(3, Math.floor(uniform() * 4))]!);
    return out;
  },
  describeTask: describe,
  make,
});
