/**
 * Half-cheetah task distributions of the ProMP paper (Rothfuss et al. 2019, App. D.2), with the rewards
 * of its released code, on the project's own half-cheetah model (src/envs/models/half_cheetah.xml).
 *
 * - Observation (17 numbers, as gym's HalfCheetah): qpos[1:] (rootz, rooty, six joint angles) followed
 *   by qvel (9 velocities), rounded to float32.
 * - Action: 6 torques clipped to [−1, 1] by the environment (the actuators' gears scale them).
 * - One environment step = frame skip 5 physics steps of 0.01 s (dt = 0.05 s).
 * - Forward velocity v = (x_after − x_before) / dt, x = qpos[0] (the root's forward slide), as in
 *   ProMP's code. Control cost 0.05‖a‖² of the clipped action.
 *   - HalfCheetahFwdBack: task dir ∈ {−1, +1} (each with probability ½); reward dir·v − 0.05‖a‖².
 *   - HalfCheetahRandVel: task v* ~ U[0, 3]; reward −|v − v*| − 0.05‖a‖².
 * - Reset (gym's): the model's initial state with qpos += U(−0.1, 0.1) and qvel += 0.1·N(0, 1) per
 *   coordinate, drawn from the `uniform` passed to reset (so a seed gives the same start).
 * - Never done except when the physics state becomes non-finite; such an environment is done from then
 *   on (reward 0, done flag 1) until reset. Horizon 100; one inner adaptation step.
 *
 * Loading the WASM runtime is asynchronous, so the distributions come from an async factory:
 * `const { halfCheetahFwdBack, halfCheetahRandVel } = await mujocoTaskDistributions()`.
 */
import type { FwdBackTask } from '../direction-tasks.ts';
import { checkTaskCount } from '../checks.ts';
import type { TaskDistribution, Uniform } from '../types.ts';

import { HALF_CHEETAH } from './half-cheetah-constants.ts';
import { fwdBackDistribution, mujocoDistribution, type MujocoTaskDistribution } from './descriptors.ts';
import { createMujocoRuntime, type MujocoModel, type MujocoRuntime } from './runtime.ts';
import { gymResetNoise, mujocoVectorEnv, type BodyDynamics, type MujocoVectorEnv } from './vector-env.ts';

export { HALF_CHEETAH };

export type HalfCheetahDirTask = FwdBackTask;
export interface HalfCheetahVelTask {
  readonly velocity: number;
}

export type { MujocoVectorEnv } from './vector-env.ts';

/** A TaskDistribution whose environments can be freed explicitly. */
export type { MujocoTaskDistribution };

export interface MujocoTaskDistributions {
  readonly halfCheetahFwdBack: MujocoTaskDistribution<HalfCheetahDirTask>;
  readonly halfCheetahRandVel: MujocoTaskDistribution<HalfCheetahVelTask>;
  readonly runtime: MujocoRuntime;
}

/**
 * The half-cheetah vector environment; `forwardReward(i, v)` is task i's reward for forward velocity v
 * (before the control cost). Observation: qpos[1:] and qvel (gym's HalfCheetah).
 */
const makeHalfCheetah = (
  name: string,
  model: MujocoModel,
  size: number,
  forwardReward: (row: number, velocity: number) => number,
  describeRow: (row: number) => unknown,
): MujocoVectorEnv => {
  const { frameSkip, ctrlCostWeight, maxAction, resetNoise, observationDim, actionDim } = HALF_CHEETAH;
  const body: BodyDynamics = {
    frameSkip,
    maxAction,
    observationDim,
    actionDim,
    checkModel: (m) =>
      m.nu !== actionDim || m.nq + m.nv - 1 !== observationDim
        ? `model has nq=${m.nq}, nv=${m.nv}, nu=${m.nu}; expected nu=${actionDim} and nq+nv−1=${observationDim}`
        : undefined,
    perturb: gymResetNoise(resetNoise, 'normal'),
    observe: (d, out, o) => {
      const qpos = d.qpos();
      const qvel = d.qvel();
      const nq = qpos.length;
      for (let k = 1; k < nq; k++) out[o + k - 1] = qpos[k]!;
      for (let k = 0; k < qvel.length; k++) out[o + nq - 1 + k] = qvel[k]!;
    },
    reward: (row, d, x0, _y0, squared, dt) => forwardReward(row, (d.qpos()[0]! - x0) / dt) - ctrlCostWeight * squared,
    ends: () => false,
  };
  return mujocoVectorEnv(name, body, Array.from({ length: size }, () => model), false, describeRow);
};

/**
 * Loads the MuJoCo runtime (through `load`, by default a fresh loader) and the half-cheetah model,
 * and returns the half-cheetah task distributions over it.
 */
export const mujocoTaskDistributions = async (load: () => Promise<MujocoRuntime> = createMujocoRuntime()): Promise<MujocoTaskDistributions> => {
  const runtime = await load();
  const model = runtime.loadModel(HALF_CHEETAH.modelFile);

  const halfCheetahFwdBack = fwdBackDistribution('half-cheetah-fwd-back', (directions, describeRow) =>
    makeHalfCheetah('half-cheetah-fwd-back', model, directions.length, (i, v) => directions[i]! * v, describeRow),
  );

  const RAND_VEL = 'half-cheetah-rand-vel';
  const describeVel = (task: HalfCheetahVelTask): { velocity: number } => ({ velocity: task.velocity });
  const halfCheetahRandVel = mujocoDistribution<HalfCheetahVelTask>(RAND_VEL, {
    sampleTasks: (uniform: Uniform, count: number): HalfCheetahVelTask[] => {
      checkTaskCount(RAND_VEL, count);
      const out: HalfCheetahVelTask[] = [];
      for (let i = 0; i < count; i++) out.push(Object.freeze({ velocity: Math.fround(HALF_CHEETAH.maxGoalVelocity * uniform()) }));
      return out;
    },
    describeTask: describeVel,
    make: (tasks: readonly HalfCheetahVelTask[]): MujocoVectorEnv => {
      const targets = tasks.map((task, i) => {
        if (!Number.isFinite(task.velocity)) throw new Error(`${RAND_VEL}: task ${i} has a non-finite velocity ${task.velocity}`);
        return task.velocity;
      });
      return makeHalfCheetah(RAND_VEL, model, tasks.length, (i, v) => -Math.abs(v - targets[i]!), (i) => describeVel(tasks[i]!));
    },
  });

  // both are TaskDistributions as well (checked here, at compile time)
  const asBase: readonly [TaskDistribution<HalfCheetahDirTask>, TaskDistribution<HalfCheetahVelTask>] = [halfCheetahFwdBack, halfCheetahRandVel];
  void asBase;
  return { halfCheetahFwdBack, halfCheetahRandVel, runtime };
};
