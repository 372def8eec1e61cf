/**
 * 2D navigation, the point-robot benchmark of the MAML paper (Finn et al. 2017, Sec. 5.2).
 *
 * - State: a 2D point, starting at the origin. Observation = the position (2 numbers).
 * - Task: a goal g drawn uniformly in [−0.5, 0.5]² (each coordinate rounded to float32, so the task
 *   logged is exactly the goal the environment uses).
 * - Action: a 2D velocity command clipped to [−0.1, 0.1] per coordinate; dynamics x ← x + clip(a).
 * - Reward (after the move, from the new position): r = −‖x − g‖₂. The MAML paper's text says
 *   "negative squared distance"; the distance itself is what its reference implementation returns and
 *   what later work (ProMP's code base included) uses.
 * - Done when ‖x − g‖₂ < 0.01 after a move (the step that arrives still earns −‖x − g‖₂). A done
 *   environment stays done until reset: it no longer moves, its reward is 0 and its done flag stays 1.
 * - Horizon 100, one inner adaptation step, as in the MAML paper.
 */
import { checkActions, checkTaskCount, clip } from './checks.ts';
import type { StepResult, TaskDistribution, Uniform, VectorEnv } from './types.ts';

/** The fixed constants of the environment. */
export const NAV_2D = Object.freeze({
  /** goals are uniform in [−goalRange, goalRange]² */
  goalRange: 0.5,
  /** per-coordinate action bound */
  maxAction: 0.1,
  /** the episode ends when the distance to the goal falls below this */
  goalTolerance: 0.01,
});

export interface Nav2dTask {
  readonly goal: readonly [number, number];
}

const NAME = 'nav-2d';

const describe = (task: Nav2dTask): { goal: [number, number] } => ({ goal: [task.goal[0], task.goal[1]] });

const make = (tasks: readonly Nav2dTask[]): VectorEnv => {
  const size = tasks.length;
  const { maxAction, goalTolerance } = NAV_2D;
  const goals = new Float32Array(2 * size);
  tasks.forEach((task, i) => {
    const [gx, gy] = task.goal;
    if (!Number.isFinite(gx) || !Number.isFinite(gy)) throw new Error(`${NAME}: task ${i} has a non-finite goal ${JSON.stringify(describe(task))}`);
    goals[2 * i] = gx;
    goals[2 * i + 1] = gy;
  });
  const positions = new Float32Array(2 * size);
  const done = new Uint8Array(size);
  /** steps taken since the last reset; −1 before the first reset */
  let t = -1;

  const reset = (_uniform: Uniform): Float32Array => {
    positions.fill(0);
    done.fill(0);
    t = 0;
    return positions.slice();
  };

  const step = (actions: Float32Array): StepResult => {
    checkActions(NAME, actions, size, 2, t, (row) => describe(tasks[row]!));
    const rewards = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      if (done[i]) continue; // stays put, reward 0
      const ix = 2 * i;
      const iy = ix + 1;
      positions[ix] = positions[ix]! + clip(actions[ix]!, maxAction);
      positions[iy] = positions[iy]! + clip(actions[iy]!, maxAction);
      // the reward is computed from the stored (float32) position, the one the agent observes
      const d = Math.hypot(positions[ix]! - goals[ix]!, positions[iy]! - goals[iy]!);
      rewards[i] = -d;
      if (d < goalTolerance) done[i] = 1;
    }
    t += 1;
    return { observations: positions.slice(), rewards, dones: done.slice() };
  };

  return { size, reset, step };
};

/** MAML's 2D navigation task distribution; see the module comment. */
export const nav2d: TaskDistribution<Nav2dTask> = Object.freeze({
  name: NAME,
  description:
    '2D point from the origin to a goal uniform in [−0.5, 0.5]²; actions clipped to [−0.1, 0.1]²; ' +
    'reward −distance; done within 0.01 of the goal (MAML Sec. 5.2)',
  observationDim: 2,
  action: Object.freeze({ kind: 'continuous', dim: 2, low: -NAV_2D.maxAction, high: NAV_2D.maxAction }),
  horizon: 100,
  adaptationSteps: 1,
  sampleTasks: (uniform: Uniform, count: number): Nav2dTask[] => {
    checkTaskCount(NAME, count);
    const r = NAV_2D.goalRange;
    const out: Nav2dTask[] = [];
    for (let i = 0; i < count; i++) {
      const gx = Math.fround(-r + 2 * r * uniform());
      const gy = Math.fround(-r + 2 * r * uniform());
      out.push(Object.freeze({ goal: Object.freeze([gx, gy]) as readonly [number, number] }));
    }
    return out;
  },
  describeTask: describe,
  make,
});
