/**
 * Walker2d and hopper task distributions of the ProMP paper (Rothfuss et al. 2019, App. D.2), on the
 * project's own models (src/envs/models/walker2d.xml, hopper.xml).
 *
 * - Observation as gym's Walker2d (17) / Hopper (11): qpos[1:] ++ clip(qvel, −10, 10), rounded to float32.
 * - Action: torques clipped to [−1, 1] by the environment (gears 100 walker, 200 hopper).
 * - One environment step = frame skip 4 physics steps of 0.002 s (dt = 0.008 s), as the gym versions.
 *   v_x = (x_after − x_before) / dt with x = qpos[0].
 *   - WalkerFwdBack (ProMP's walker2d_rand_direc): dir ∈ {−1, +1}; reward dir·v_x − 1e-3‖a‖² + 1.
 *   - Walker2DRandParams / HopperRandParams (rand_param_envs): reward as gym's, v_x + 1 − 1e-3‖a‖².
 *     A task holds multiplicative factors, one per element: body_mass (nbody) and body_inertia
 *     (nbody × 3) and geom_friction (ngeom × 3) by 1.5^U(−3,3), dof_damping (nv) by 1.3^U(−3,3); the
 *     world body and the floor geom are included (as rand_param_envs scales whole arrays). The paper's
 *     inner step size 0.05 is a config matter (the descriptor says so).
 * - Parameters live on the MjModel and are shared by every MjData of that model, so `make` of a
 *   rand-params distribution loads one MjModel per distinct task (its parameters = the file's × the task's
 *   factors) and frees them with the environment; WalkerFwdBack shares one model. After scaling, the
 *   model's derived constants (body_subtreemass, dof/body invweight0, which set the constraints'
 *   softness, actuator_acc0, mean inertia, …) are recomputed by mj_setConst through a scratch MjData,
 *   as recompiling the scaled model would.
 * - Done: walker when the height qpos[1] leaves (0.8, 2.0) or |qpos[2]| ≥ 1; hopper unless the state is
 *   finite, |(qpos, qvel)[2:]| < 100, height > 0.7 and |pitch| < 0.2 (gym's). The step that ends an
 *   episode earns its reward; a done environment stays done (reward 0, observation repeated) until
 *   reset; a step whose state becomes non-finite earns reward 0.
 * - Reset (gym's): the model's initial state with qpos and qvel += U(−0.005, 0.005) per coordinate, qpos
 *   first, row by row, drawn from the `uniform` passed to reset.
 */
import type { FwdBackTask } from '../direction-tasks.ts';
import { checkTaskCount, clip } from '../checks.ts';
import type { TaskDistribution, Uniform } from '../types.ts';

import { HOPPER, RAND_PARAMS, WALKER, WALKER_DESCRIPTIONS } from './walker-constants.ts';
import { fwdBackDistribution, mujocoDistribution, type MujocoTaskDistribution } from './descriptors.ts';
import { createMujocoRuntime, type MujocoModel, type MujocoRuntime } from './runtime.ts';
import { gymResetNoise, mujocoVectorEnv, type BodyDynamics, type MujocoVectorEnv } from './vector-env.ts';

export { HOPPER, RAND_PARAMS, WALKER, WALKER_DESCRIPTIONS };

export type WalkerDirTask = FwdBackTask;

/** Multiplicative factors, one per element of the model's arrays. */
export interface RandParamsTask {
  readonly bodyMass: readonly number[];
  readonly bodyInertia: readonly number[];
  readonly geomFriction: readonly number[];
  readonly dofDamping: readonly number[];
}

export interface WalkerTaskDistributions {
  readonly walkerFwdBack: MujocoTaskDistribution<WalkerDirTask>;
  readonly walker2dRandParams: MujocoTaskDistribution<RandParamsTask>;
  readonly hopperRandParams: MujocoTaskDistribution<RandParamsTask>;
  readonly runtime: MujocoRuntime;
}

type Body = typeof WALKER | typeof HOPPER;


/** Whether (qpos, qvel) ends the episode (true) for the given body, gym's rules. */
export const planarDone = (body: Body, qpos: ArrayLike<number>, qvel: ArrayLike<number>): boolean => {
  const height = qpos[1]!;
  const angle = qpos[2]!;
  if (body === WALKER) return !(height > WALKER.minHeight && height < WALKER.maxHeight && angle > -WALKER.maxAngle && angle < WALKER.maxAngle);
  const state = [...Array.from(qpos), ...Array.from(qvel)];
  if (!state.every(Number.isFinite)) return true;
  if (!state.slice(2).every((x) => Math.abs(x) < HOPPER.maxState)) return true;
  return !(height > HOPPER.minHeight && Math.abs(angle) < HOPPER.maxAngle);
};

const makePlanar = (
  name: string,
  body: Body,
  models: readonly MujocoModel[],
  ownsModels: boolean,
  direction: (row: number) => number,
  describeRow: (row: number) => unknown,
): MujocoVectorEnv => {
  const { frameSkip, maxAction, resetNoise, observationDim, actionDim, ctrlCostWeight, aliveBonus, maxVelocity } = body;
  const dynamics: BodyDynamics = {
    frameSkip,
    maxAction,
    observationDim,
    actionDim,
    checkModel: (m) =>
      m.nu !== actionDim || m.nq - 1 + m.nv !== observationDim
        ? `model has nq=${m.nq}, nv=${m.nv}, nu=${m.nu}; expected nu=${actionDim} and nq−1+nv=${observationDim}`
        : undefined,
    perturb: gymResetNoise(resetNoise, 'uniform'),
    observe: (d, out, offset) => {
      const qpos = d.qpos();
      const qvel = d.qvel();
      let o = offset;
      for (let k = 1; k < qpos.length; k++) out[o++] = qpos[k]!;
      for (let k = 0; k < qvel.length; k++) out[o++] = clip(qvel[k]!, maxVelocity);
    },
    reward: (row, d, x0, _y0, squared, dt) => (direction(row) * (d.qpos()[0]! - x0)) / dt - ctrlCostWeight * squared + aliveBonus,
    ends: (d) => planarDone(body, d.qpos(), d.qvel()),
  };
  return mujocoVectorEnv(name, dynamics, models, ownsModels, describeRow);
};

/** Factors base^U(−3, 3), `n` of them. */
const factors = (uniform: Uniform, base: number, n: number): readonly number[] =>
  Object.freeze(Array.from({ length: n }, () => base ** (RAND_PARAMS.logScaleLimit * (2 * uniform() - 1))));

const randParams = (name: 'walker2d-rand-params' | 'hopper-rand-params', body: Body, runtime: MujocoRuntime): MujocoTaskDistribution<RandParamsTask> => {
  const sizes = { bodyMass: body.nbody, bodyInertia: 3 * body.nbody, geomFriction: 3 * body.ngeom, dofDamping: body.nv } as const;
  const describe = (task: RandParamsTask) => ({
    bodyMass: [...task.bodyMass],
    bodyInertia: [...task.bodyInertia],
    geomFriction: [...task.geomFriction],
    dofDamping: [...task.dofDamping],
  });
  return mujocoDistribution<RandParamsTask>(name, {
    sampleTasks: (uniform: Uniform, count: number): RandParamsTask[] => {
      checkTaskCount(name, count);
      const out: RandParamsTask[] = [];
      for (let i = 0; i < count; i++) {
        out.push(
          Object.freeze({
            bodyMass: factors(uniform, RAND_PARAMS.scaleBase, sizes.bodyMass),
            bodyInertia: factors(uniform, RAND_PARAMS.scaleBase, sizes.bodyInertia),
            geomFriction: factors(uniform, RAND_PARAMS.scaleBase, sizes.geomFriction),
            dofDamping: factors(uniform, RAND_PARAMS.dampingBase, sizes.dofDamping),
          }),
        );
      }
      return out;
    },
    describeTask: describe,
    make: (tasks: readonly RandParamsTask[]): MujocoVectorEnv => {
      tasks.forEach((task, i) => {
        for (const key of Object.keys(sizes) as (keyof typeof sizes)[]) {
          const f = task[key];
          if (!Array.isArray(f) || f.length !== sizes[key] || !f.every((x) => Number.isFinite(x) && x > 0)) {
            throw new Error(`${name}: task ${i} has ${key} ${JSON.stringify(f)}, expected ${sizes[key]} positive finite factors`);
          }
        }
      });
      const models: MujocoModel[] = [];
      // Rows given the same task object (several trajectories of one task) share its model.
      const modelOf = new Map<RandParamsTask, MujocoModel>();
      try {
        for (const task of tasks) {
          const shared = modelOf.get(task);
          if (shared !== undefined) {
            models.push(shared);
            continue;
          }
          const m = runtime.loadModel(body.modelFile);
          models.push(m);
          modelOf.set(task, m);
          const scale = (view: Float64Array, f: readonly number[]): void => {
            for (let k = 0; k < view.length; k++) view[k] = view[k]! * f[k]!;
          };
          scale(m.bodyMass(), task.bodyMass);
          scale(m.bodyInertia(), task.bodyInertia);
          scale(m.geomFriction(), task.geomFriction);
          scale(m.dofDamping(), task.dofDamping);
          const scratch = m.createData();
          try {
            scratch.setConst();
          } finally {
            scratch.free();
          }
        }
      } catch (error) {
        for (const m of new Set(models)) m.free();
        throw error;
      }
      return makePlanar(name, body, models, true, () => 1, (i) => describe(tasks[i]!));
    },
  });
};

/** Loads the MuJoCo runtime (through `load`) and returns the walker / hopper task distributions over it. */
export const walkerTaskDistributions = async (load: () => Promise<MujocoRuntime> = createMujocoRuntime()): Promise<WalkerTaskDistributions> => {
  const runtime = await load();
  const walkerModel = runtime.loadModel(WALKER.modelFile);

  const walkerFwdBack = fwdBackDistribution('walker-fwd-back', (directions, describeRow) =>
    makePlanar('walker-fwd-back', WALKER, directions.map(() => walkerModel), false, (i) => directions[i]!, describeRow),
  );

  const walker2dRandParams = randParams('walker2d-rand-params', WALKER, runtime);
  const hopperRandParams = randParams('hopper-rand-params', HOPPER, runtime);

  const asBase: readonly [TaskDistribution<WalkerDirTask>, TaskDistribution<RandParamsTask>] = [walkerFwdBack, hopperRandParams];
  void asBase;
  return { walkerFwdBack, walker2dRandParams, hopperRandParams, runtime };
};
