/**
 * The MuJoCo environments as far as they are known without loading the physics: name, description,
 * spaces, horizon and adaptation steps, from each body's constants. `environmentDescriptor` answers
 * from this table, and each body's task distribution takes these fields from it (`mujocoDistribution`),
 * so that the two cannot disagree; the direction distributions (fwd-back, rand-dir) are built here too.
 */
import {
  describeFwdBack,
  describePlanarDirection,
  fwdBackDirections,
  planarDirections,
  sampleFwdBack,
  samplePlanarDirections,
  type FwdBackTask,
  type PlanarDirectionTask,
} from '../direction-tasks.ts';
import type { EnvironmentDescriptor, TaskDistribution } from '../types.ts';
import type { MujocoVectorEnv } from './vector-env.ts';
import { ANT, ANT_DESCRIPTIONS } from './ant-constants.ts';
import { HALF_CHEETAH, HALF_CHEETAH_DESCRIPTIONS } from './half-cheetah-constants.ts';
import { HUMANOID, HUMANOID_DESCRIPTIONS } from './humanoid-constants.ts';
import { HOPPER, WALKER, WALKER_DESCRIPTIONS } from './walker-constants.ts';

/** A task distribution whose `make` returns a MuJoCo vector environment (with `free()`). */
export type MujocoTaskDistribution<Task> = Omit<TaskDistribution<Task>, 'make'> & {
  readonly make: (tasks: readonly Task[]) => MujocoVectorEnv;
};

interface Body {
  readonly observationDim: number;
  readonly actionDim: number;
  readonly maxAction: number;
}

const describe = (
  name: string,
  description: string,
  body: Body,
  horizon: number,
  adaptationSteps: number,
  policyHidden?: readonly number[],
): EnvironmentDescriptor =>
  Object.freeze({
    name,
    description,
    observationDim: body.observationDim,
    action: Object.freeze({ kind: 'continuous', dim: body.actionDim, low: -body.maxAction, high: body.maxAction } as const),
    horizon,
    adaptationSteps,
    // Every released run script wraps its MuJoCo environment in normalize() (normalized_env.py).
    actionNormalization: 'normalized',
    ...(policyHidden !== undefined ? { policyHidden } : {}),
  });

/** The MuJoCo environments by command-line name, in the order `environmentNames` lists them. */
export const mujocoDescriptors = Object.freeze({
  'half-cheetah-fwd-back': describe('half-cheetah-fwd-back', HALF_CHEETAH_DESCRIPTIONS['half-cheetah-fwd-back'], HALF_CHEETAH, HALF_CHEETAH.horizon, 1),
  'half-cheetah-rand-vel': describe('half-cheetah-rand-vel', HALF_CHEETAH_DESCRIPTIONS['half-cheetah-rand-vel'], HALF_CHEETAH, HALF_CHEETAH.horizon, 1),
  'ant-fwd-back': describe('ant-fwd-back', ANT_DESCRIPTIONS['ant-fwd-back'], ANT, ANT.horizon, 1),
  'ant-rand-dir': describe('ant-rand-dir', ANT_DESCRIPTIONS['ant-rand-dir'], ANT, ANT.horizon, 1),
  'ant-rand-goal': describe('ant-rand-goal', ANT_DESCRIPTIONS['ant-rand-goal'], ANT, ANT.goalHorizon, ANT.goalAdaptationSteps),
  'walker-fwd-back': describe('walker-fwd-back', WALKER_DESCRIPTIONS['walker-fwd-back'], WALKER, WALKER.horizon, 1),
  'walker2d-rand-params': describe('walker2d-rand-params', WALKER_DESCRIPTIONS['walker2d-rand-params'], WALKER, WALKER.horizon, 1),
  'hopper-rand-params': describe('hopper-rand-params', WALKER_DESCRIPTIONS['hopper-rand-params'], HOPPER, HOPPER.horizon, 1),
  'humanoid-fwd-back': describe('humanoid-fwd-back', HUMANOID_DESCRIPTIONS['humanoid-fwd-back'], HUMANOID, HUMANOID.horizon, HUMANOID.adaptationSteps, HUMANOID.hiddenSizes),
  'humanoid-rand-dir': describe('humanoid-rand-dir', HUMANOID_DESCRIPTIONS['humanoid-rand-dir'], HUMANOID, HUMANOID.horizon, HUMANOID.adaptationSteps, HUMANOID.hiddenSizes),
} satisfies Record<string, EnvironmentDescriptor>);

export type MujocoEnvironmentName = keyof typeof mujocoDescriptors;

/** The task distribution `name`: its descriptor's fields plus how it samples, shows and makes tasks. */
export const mujocoDistribution = <Task>(
  name: MujocoEnvironmentName,
  parts: Pick<MujocoTaskDistribution<Task>, 'sampleTasks' | 'describeTask' | 'make'>,
): MujocoTaskDistribution<Task> => {
  const { description, observationDim, action, horizon, adaptationSteps, actionNormalization }: EnvironmentDescriptor = mujocoDescriptors[name];
  return Object.freeze({ name, description, observationDim, action, horizon, adaptationSteps, ...(actionNormalization !== undefined ? { actionNormalization } : {}), ...parts });
};

/** The descriptor of MuJoCo environment `name`, or undefined for any other name. */
export const mujocoDescriptor = (name: string): EnvironmentDescriptor | undefined =>
  Object.prototype.hasOwnProperty.call(mujocoDescriptors, name) ? mujocoDescriptors[name as MujocoEnvironmentName] : undefined;

/** The fwd-back distribution `name`: tasks ±1 along x; `make` gets each row's direction and description. */
export const fwdBackDistribution = (
  name: MujocoEnvironmentName,
  make: (directions: readonly (1 | -1)[], describeRow: (row: number) => unknown) => MujocoVectorEnv,
): MujocoTaskDistribution<FwdBackTask> =>
  mujocoDistribution<FwdBackTask>(name, {
    sampleTasks: (uniform, count) => sampleFwdBack(name, uniform, count),
    describeTask: describeFwdBack,
    make: (tasks) => make(fwdBackDirections(name, tasks), (row) => describeFwdBack(tasks[row]!)),
  });

/** The rand-dir distribution `name`: unit vectors uniform on the circle; `make` gets each row's direction and description. */
export const planarDirectionDistribution = (
  name: MujocoEnvironmentName,
  make: (directions: readonly (readonly [number, number])[], describeRow: (row: number) => unknown) => MujocoVectorEnv,
): MujocoTaskDistribution<PlanarDirectionTask> =>
  mujocoDistribution<PlanarDirectionTask>(name, {
    sampleTasks: (uniform, count) => samplePlanarDirections(name, uniform, count),
    describeTask: describePlanarDirection,
    make: (tasks) => make(planarDirections(name, tasks), (row) => describePlanarDirection(tasks[row]!)),
  });
