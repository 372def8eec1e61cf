/**
 * The built-in task distributions by command-line name. A constant value, not a mutable registry: a
 * program that needs more distributions builds its own record (e.g. `{ ...taskDistributions, mine }`).
 */
import type { TaskDistribution } from './types.ts';
import { pointCorners } from './point-corners.ts';
import { point1d } from './point-1d.ts';
import { nav2d } from './nav-2d.ts';

export type { ActionSpace, StepResult, TaskDistribution, Uniform, VectorEnv } from './types.ts';
export { pointCorners, POINT_CORNERS, type PointCornersTask } from './point-corners.ts';
export { point1d, POINT_1D, type Point1dTask } from './point-1d.ts';
export { nav2d, NAV_2D, type Nav2dTask } from './nav-2d.ts';

/**
 * A task distribution whose task type the caller does not know (one picked by name): the tasks its
 * sampleTasks returns are only ever passed back to its own make and describeTask. (`unknown` would not
 * do: make and describeTask take tasks as arguments, so TaskDistribution<T> is not a TaskDistribution<unknown>.)
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTaskDistribution = TaskDistribution<any>;

/** The built-in distributions, keyed by their `name`. */
export const taskDistributions = Object.freeze({
  'point-corners': pointCorners,
  'point-1d': point1d,
  'nav-2d': nav2d,
});

export type TaskDistributionName = keyof typeof taskDistributions;

/** The valid names, in registry order. */
export const taskDistributionNames: readonly TaskDistributionName[] = Object.freeze(
  Object.keys(taskDistributions) as TaskDistributionName[],
);

const isName = (name: string): name is TaskDistributionName => Object.prototype.hasOwnProperty.call(taskDistributions, name);

/** The built-in distribution called `name`; throws, listing the valid names, for an unknown one. */
export function taskDistribution<N extends TaskDistributionName>(name: N): (typeof taskDistributions)[N];
export function taskDistribution(name: string): AnyTaskDistribution;
export function taskDistribution(name: string): AnyTaskDistribution {
  if (!isName(name)) throw new Error(`unknown environment '${name}'; valid: ${taskDistributionNames.join(', ')}`);
  return taskDistributions[name];
}
