/**
 * Tasks that are a direction to move in, shared by the bodies whose task distributions differ only in
 * that: fwd-back (±1 along x, each with probability ½) and rand-dir (a unit vector uniform on the
 * circle). Sampling, the check `make` applies to a task it is given, and the JSON a task is shown as.
 */
import { checkTaskCount } from './checks.ts';
import type { Uniform } from './types.ts';

export interface FwdBackTask {
  readonly direction: 1 | -1;
}

export interface PlanarDirectionTask {
  /** A unit vector in the xy-plane. */
  readonly direction: readonly [number, number];
}

/** `count` fwd-back tasks: direction −1 when uniform() < ½, +1 otherwise. */
export const sampleFwdBack = (name: string, uniform: Uniform, count: number): FwdBackTask[] => {
  checkTaskCount(name, count);
  return Array.from({ length: count }, () => Object.freeze({ direction: uniform() < 0.5 ? -1 : 1 }) as FwdBackTask);
};

/** Each task's direction; an error naming the environment and the task for anything but ±1. */
export const fwdBackDirections = (name: string, tasks: readonly FwdBackTask[]): Array<1 | -1> =>
  tasks.map((task, i) => {
    if (task.direction !== 1 && task.direction !== -1) throw new Error(`${name}: task ${i} has direction ${JSON.stringify(task.direction)}, expected 1 or −1`);
    return task.direction;
  });

export const describeFwdBack = (task: FwdBackTask): { direction: number } => ({ direction: task.direction });

/** `count` rand-dir tasks: (cos φ, sin φ) with φ = 2π·uniform(). */
export const samplePlanarDirections = (name: string, uniform: Uniform, count: number): PlanarDirectionTask[] => {
  checkTaskCount(name, count);
  return Array.from({ length: count }, () => {
    const angle = 2 * Math.PI * uniform();
    return Object.freeze({ direction: Object.freeze([Math.cos(angle), Math.sin(angle)] as const) });
  });
};

/** Each task's direction; an error naming the environment and the task for anything but a unit vector. */
export const planarDirections = (name: string, tasks: readonly PlanarDirectionTask[]): Array<readonly [number, number]> =>
  tasks.map((task, i) => {
    const [dx, dy] = task.direction;
    if (!Number.isFinite(dx) || !Number.isFinite(dy) || Math.abs(Math.hypot(dx, dy) - 1) > 1e-6) {
      throw new Error(`${name}: task ${i} has direction ${JSON.stringify(task.direction)}, expected a unit vector`);
    }
    return [dx, dy] as const;
  });

export const describePlanarDirection = (task: PlanarDirectionTask): { direction: [number, number] } => ({ direction: [task.direction[0], task.direction[1]] });
