/**
 * The built-in task distributions by command-line name. A constant value, not a mutable registry: a
 * program that needs more distributions builds its own record (e.g. `{ ...taskDistributions, mine }`).
 */
import type { TaskDistribution } from './types.ts';
import { pointCorners } from './point-corners.ts';
import { point1d } from './point-1d.ts';
import { nav2d } from './nav-2d.ts';
import { pointMomentum } from './point-momentum.ts';
import { mujocoDescriptor, mujocoDescriptors } from './mujoco/descriptors.ts';
import type { EnvironmentDescriptor } from './types.ts';

export type { ActionSpace, EnvironmentDescriptor, StepResult, TaskDistribution, Uniform, VectorEnv } from './types.ts';
export { pointCorners, POINT_CORNERS, type PointCornersTask } from './point-corners.ts';
export { point1d, POINT_1D, type Point1dTask } from './point-1d.ts';
export { nav2d, NAV_2D, type Nav2dTask } from './nav-2d.ts';
export { pointMomentum, POINT_MOMENTUM, type PointMomentumTask } from './point-momentum.ts';

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
  'point-momentum': pointMomentum,
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

/** Every environment `magicbox train --env` accepts: the point environments, then the MuJoCo ones. */
export const environmentNames: readonly string[] = Object.freeze([...taskDistributionNames, ...Object.keys(mujocoDescriptors)]);

const unknownEnvironment = (name: string) => new Error(`unknown environment '${name}'; valid: ${environmentNames.join(', ')}`);

/** The descriptor of any known environment (synchronous: nothing is loaded). */
export const environmentDescriptor = (name: string): EnvironmentDescriptor => {
  if (isName(name)) return taskDistributions[name];
  const d = mujocoDescriptor(name);
  if (d === undefined) throw unknownEnvironment(name);
  return d;
};

/** The task distribution of any known environment, loading the MuJoCo runtime when it is one of those. */
export const loadTaskDistribution = async (name: string): Promise<AnyTaskDistribution> => {
  if (isName(name)) return taskDistributions[name];
  if (mujocoDescriptor(name) === undefined) throw unknownEnvironment(name);
  // Imported here, not at the top: the MuJoCo glue is only parsed by runs that use it.
  if (name.startsWith('ant-')) {
    const { antTaskDistributions } = await import('./mujoco/ant.ts');
    const ant = await antTaskDistributions();
    return name === 'ant-fwd-back' ? ant.antFwdBack : name === 'ant-rand-dir' ? ant.antRandDir : ant.antRandGoal;
  }
  if (name.startsWith('walker') || name.startsWith('hopper')) {
    const { walkerTaskDistributions } = await import('./mujoco/walker.ts');
    const w = await walkerTaskDistributions();
    return name === 'walker-fwd-back' ? w.walkerFwdBack : name === 'walker2d-rand-params' ? w.walker2dRandParams : w.hopperRandParams;
  }
  if (name.startsWith('humanoid-')) {
    const { humanoidTaskDistributions } = await import('./mujoco/humanoid.ts');
    const h = await humanoidTaskDistributions();
    return name === 'humanoid-fwd-back' ? h.humanoidFwdBack : h.humanoidRandDir;
  }
  const { mujocoTaskDistributions } = await import('./mujoco/half-cheetah.ts');
  const loaded = await mujocoTaskDistributions();
  return name === 'half-cheetah-fwd-back' ? loaded.halfCheetahFwdBack : loaded.halfCheetahRandVel;
};
