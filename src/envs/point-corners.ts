/**
 * The sparse-reward corner-reaching point environment of the ProMP paper (Sec. 7.3, App. D.2
 * "PointEnv"), used there to visualise the exploration that the pre-update policy learns.
 *
 * - State: a 2D point, starting at the origin. Observation = the position (2 numbers).
 * - Task: one of the four corners (±c, ±c) with c = 2, sampled uniformly (the four corners of the
 *   released ProMP code's corner environment).
 * - Action: a 2D displacement, clipped to [−0.1, 0.1] per coordinate; dynamics x ← x + clip(a).
 *   The diagonal corner is 2√2 ≈ 2.83 away, at least 20 steps at full speed: the 100-step horizon
 *   leaves time to explore more than one corner region.
 * - Reward (after the move, from the new position x, goal g, d = ‖x − g‖₂, radius ρ = 1):
 *   r = −d if d < ρ, and r = −ρ otherwise. The paper says "the agent only experiences a reward when
 *   within a certain radius of the goal, and the magnitude of the reward is equal to the distance to
 *   the goal". Read literally (r = −d inside, 0 outside) that would *punish* entering the region, so
 *   the constant outside is −ρ instead: outside it carries no information (the sparsity the paper
 *   studies — the task can only be identified by visiting the right corner), it is continuous at the
 *   boundary, and inside it strictly increases as the agent approaches the goal, up to 0 at the goal.
 *   ρ = 1 < c keeps the four regions disjoint (adjacent corners are 2c = 4 apart) and away from the
 *   start (the origin is 2√2 − 1 ≈ 1.83 from the nearest region edge).
 * - Never done: episodes run for the horizon the sampler uses (100, the paper's trajectory length).
 *   Three inner adaptation steps, as in the paper.
 */
import type { StepResult, TaskDistribution, Uniform, VectorEnv } from './types.ts';

/** The fixed constants of the environment. */
export const POINT_CORNERS = Object.freeze({
  /** corners at (±corner, ±corner) */
  corner: 2,
  /** reward radius ρ around the goal */
  radius: 1,
  /** per-coordinate action bound */
  maxAction: 0.1,
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

const checkCount = (count: number): void => {
  if (!Number.isInteger(count) || count < 0) throw new Error(`${NAME}: task count must be a non-negative integer, got ${count}`);
};

const make = (tasks: readonly PointCornersTask[]): VectorEnv => {
  const size = tasks.length;
  const { radius, maxAction } = POINT_CORNERS;
  const goals = new Float32Array(2 * size);
  tasks.forEach((task, i) => {
    const [gx, gy] = task.goal;
    if (!Number.isFinite(gx) || !Number.isFinite(gy)) throw new Error(`${NAME}: task ${i} has a non-finite goal ${JSON.stringify(describe(task))}`);
    goals[2 * i] = gx;
    goals[2 * i + 1] = gy;
  });
  const positions = new Float32Array(2 * size);
  /** steps taken since the last reset; −1 before the first reset */
  let t = -1;

  const reset = (_uniform: Uniform): Float32Array => {
    positions.fill(0);
    t = 0;
    return positions.slice();
  };

  const step = (actions: Float32Array): StepResult => {
    if (t < 0) throw new Error(`${NAME}: step() called before reset()`);
    if (actions.length !== 2 * size) {
      throw new Error(`${NAME}: expected ${2 * size} action values ([${size} × 2], row-major), got ${actions.length}`);
    }
    for (let k = 0; k < actions.length; k++) {
      const a = actions[k]!;
      if (!Number.isFinite(a)) {
        const row = k >> 1;
        throw new Error(
          `${NAME}: action ${a} at row ${row}, coordinate ${k & 1} (task ${JSON.stringify(describe(tasks[row]!))}) on step ${t} since reset`,
        );
      }
    }
    const rewards = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const ix = 2 * i;
      const iy = ix + 1;
      positions[ix] = positions[ix]! + Math.min(maxAction, Math.max(-maxAction, actions[ix]!));
      positions[iy] = positions[iy]! + Math.min(maxAction, Math.max(-maxAction, actions[iy]!));
      // the reward is computed from the stored (float32) position, the one the agent observes
      const d = Math.hypot(positions[ix]! - goals[ix]!, positions[iy]! - goals[iy]!);
      rewards[i] = d < radius ? -d : -radius;
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
    '2D point mass from the origin to one of the corners (±2, ±2); actions clipped to [−0.1, 0.1]²; ' +
    'sparse reward −distance within radius 1 of the goal, −1 outside (ProMP Sec. 7.3)',
  observationDim: 2,
  action: Object.freeze({ kind: 'continuous', dim: 2, low: -POINT_CORNERS.maxAction, high: POINT_CORNERS.maxAction }),
  horizon: 100,
  adaptationSteps: 3,
  sampleTasks: (uniform: Uniform, count: number): PointCornersTask[] => {
    checkCount(count);
    const out: PointCornersTask[] = [];
    for (let i = 0; i < count; i++) out.push(CORNER_TASKS[Math.min(3, Math.floor(uniform() * 4))]!);
    return out;
  },
  describeTask: describe,
  make,
});
