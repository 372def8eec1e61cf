/**
 * The sparse-reward corner-reaching point environment of the ProMP paper (Sec. 7.3, App. D.2
 * "PointEnv"), used there to visualise the exploration that the pre-update policy learns. Dynamics
 * and reward follow the environment released with the paper (rewritten here, not copied):
 *
 * - State: a 2D point, starting uniformly in [−0.2, 0.2]². Observation = the position.
 * - Task: one of the four corners (±2, ±2), sampled uniformly.
 * - Action: a 2D displacement, clipped to [−0.2, 0.2] per coordinate; dynamics x ← x + clip(a).
 * - Reward, from the position before (x) and after (x′) the move, goal g:
 *     0                       while ‖x′‖₁ < 0.5 (the start region: no information there);
 *     ‖x − g‖ − ‖x′ − g‖      when g is the corner nearest to x′ (progress toward the goal, earned
 *                             only in the goal's own quadrant);
 *     0                       otherwise.
 *   So the task can only be identified by going into the right quadrant — the sparsity the paper
 *   studies — and once there the reward says how fast the agent approaches.
 * - Never done: episodes run for the horizon the sampler uses (100). Three inner adaptation steps.
 */
import { checkActions, checkTaskCount, clip } from './checks.ts';
import type { StepResult, TaskDistribution, Uniform, VectorEnv } from './types.ts';

/** The fixed constants of the environment. */
export const POINT_CORNERS = Object.freeze({
  /** corners at (±corner, ±corner) */
  corner: 2,
  /** no reward while ‖x‖₁ is below this (the start region) */
  startRegion: 0.5,
  /** start positions are uniform in [−startSpread, startSpread]² */
  startSpread: 0.2,
  /** per-coordinate action bound */
  maxAction: 0.2,
});

export interface PointCornersTask {
  /** 0: (−c, −c), 1: (c, −c), 2: (−c, c), 3: (c, c) */
  readonly corner: 0 | 1 | 2 | 3;
  readonly goal: readonly [number, number];
}

const NAME = 'point-corners';

const c = POINT_CORNERS.corner;
const CORNER_TASKS: readonly PointCornersTask[] = Object.freeze(
  ([[-c, -c], [c, -c], [-c, c], [c, c]] as const).map((goal, corner) =>
    Object.freeze({ corner: corner as PointCornersTask['corner'], goal: Object.freeze([goal[0], goal[1]]) as readonly [number, number] }),
  ),
);

const describe = (task: PointCornersTask): { corner: number; goal: [number, number] } => ({
  corner: task.corner,
  goal: [task.goal[0], task.goal[1]],
});


const make = (tasks: readonly PointCornersTask[]): VectorEnv => {
  const size = tasks.length;
  const { startRegion, startSpread, maxAction } = POINT_CORNERS;
  const goals = new Float32Array(2 * size);
  tasks.forEach((task, i) => {
    const [gx, gy] = task.goal;
    if (!Number.isFinite(gx) || !Number.isFinite(gy)) throw new Error(`${NAME}: task ${i} has a non-finite goal ${JSON.stringify(describe(task))}`);
    goals[2 * i] = gx;
    goals[2 * i + 1] = gy;
  });
  const positions = new Float32Array(2 * size);
  /**
   * ‖x − g‖ at each row's stored position: a step's distance before the move is the previous step's
   * after it (the same float32 position, so the same number), computed once.
   */
  const distances = new Float64Array(size);
  const distanceToGoal = (i: number, x: number, y: number): number => Math.hypot(x - goals[2 * i]!, y - goals[2 * i + 1]!);
  /** steps taken since the last reset; −1 before the first reset */
  let t = -1;

  const reset = (uniform: Uniform): Float32Array => {
    for (let k = 0; k < positions.length; k++) positions[k] = startSpread * (2 * uniform() - 1);
    for (let i = 0; i < size; i++) distances[i] = distanceToGoal(i, positions[2 * i]!, positions[2 * i + 1]!);
    t = 0;
    return positions.slice();
  };

  const step = (actions: Float32Array): StepResult => {
    checkActions(NAME, actions, size, 2, t, (row) => describe(tasks[row]!));
    const rewards = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const ix = 2 * i;
      const iy = ix + 1;
      const before = distances[i]!;
      positions[ix] = positions[ix]! + clip(actions[ix]!, maxAction);
      positions[iy] = positions[iy]! + clip(actions[iy]!, maxAction);
      // the reward is computed from the stored (float32) position, the one the agent observes
      const x = positions[ix]!;
      const y = positions[iy]!;
      const after = distanceToGoal(i, x, y);
      distances[i] = after;
      // Whether no corner is nearer than the goal; the goal's own corner is `after` away (the same
      // arguments), so it is not measured again.
      let nearestIsGoal = true;
      for (const { goal } of CORNER_TASKS) {
        if (goal[0] === goals[ix] && goal[1] === goals[iy]) continue;
        if (!(Math.hypot(x - goal[0], y - goal[1]) >= after)) {
          nearestIsGoal = false;
          break;
        }
      }
      rewards[i] = Math.abs(x) + Math.abs(y) < startRegion || !nearestIsGoal ? 0 : before - after;
    }
    t += 1;
    return { observations: positions.slice(), rewards, dones: new Uint8Array(size) };
  };

  return { size, reset, step };
};

/** The four-corner sparse-reward point environment (ProMP Sec. 7.3); see the module comment. */
export const pointCorners: TaskDistribution<PointCornersTask> = Object.freeze({
  name: NAME,
  description:
    '2D point mass from near the origin to one of the corners (±2, ±2); actions clipped to [−0.2, 0.2]²; ' +
    'sparse reward: progress toward the goal, only in its quadrant and outside the start region (ProMP Sec. 7.3)',
  observationDim: 2,
  action: Object.freeze({ kind: 'continuous', dim: 2, low: -POINT_CORNERS.maxAction, high: POINT_CORNERS.maxAction }),
  horizon: 100,
  adaptationSteps: 3,
  // The released run scripts wrap MetaPointEnvCorner in normalize(): the clip ±0.2 becomes 0.02·a.
  actionNormalization: 'normalized',
  sampleTasks: (uniform: Uniform, count: number): PointCornersTask[] => {
    checkTaskCount(NAME, count);
    const out: PointCornersTask[] = [];
    for (let i = 0; i < count; i++) out.push(CORNER_TASKS[Math.min(3, Math.floor(uniform() * 4))]!);
    return out;
  },
  describeTask: describe,
  make,
});
