/**
 * Ant task distributions of the ProMP paper (Rothfuss et al. 2019, App. D.2), with the rewards of its
 * released code, on the project's own ant model (src/envs/models/ant.xml).
 *
 * - Observation (111 numbers, as gym's Ant): qpos[2:] (torso height, orientation quaternion, eight joint
 *   angles; 13), qvel (14), then the external (contact) forces clip(cfrc_ext, −1, 1) of all 14 bodies,
 *   world included (84), rounded to float32.
 * - Action: 8 torques clipped to [−1, 1] by the environment (gear 150).
 * - One environment step = frame skip 5 physics steps of 0.01 s (dt = 0.05 s). After the physics steps
 *   the environment runs mj_forward and mj_rnePostConstraint, so that cfrc_ext (which MuJoCo ≥ 2.2 only
 *   fills in mj_rnePostConstraint) and the positions belong to the state reached. This differs from
 *   mujoco-py's reads after mj_step (derived quantities one physics step stale); the torso position is
 *   read from qpos[0:2] (the free joint), as the half-cheetah reads x from qpos[0].
 * - Contact cost 0.5·10⁻³·Σ clip(cfrc_ext, −1, 1)²; control cost c‖a‖² of the clipped action.
 *   - AntFwdBack: dir ∈ {−1, +1}; reward dir·v_x − 0.5‖a‖² − contact cost + 1.
 *   - AntRandDir: dir a uniform unit vector in the plane; reward dir·v_xy − 0.5‖a‖² − contact cost + 1.
 *     Both end an episode (done) when the state (qpos, qvel) is not finite or the torso height qpos[2]
 *     leaves [0.2, 1.0] (ProMP: notdone = isfinite(state).all() and 0.2 <= z <= 1.0); the step that
 *     leaves the range still earns its reward. Horizon 100, one adaptation step.
 *   - AntRandGoal: goal g uniform in the disc of radius 3; reward −‖xy − g‖₁ − 0.1‖a‖² − contact cost;
 *     never done except for a non-finite state. Horizon 200, two adaptation steps.
 * - A done environment stays done (reward 0, observation repeated, done flag 1) until reset; a step whose
 *   state becomes non-finite earns reward 0.
 * - Reset (gym's): the model's initial state with qpos += U(−0.1, 0.1) and qvel += 0.1·N(0, 1) per
 *   coordinate (quaternion included; MuJoCo normalises it), drawn from the `uniform` passed to reset.
 *
 * `const { antFwdBack, antRandDir, antRandGoal } = await antTaskDistributions()`.
 */
import type { FwdBackTask, PlanarDirectionTask } from '../direction-tasks.ts';
import { checkTaskCount, clip } from '../checks.ts';
import type { TaskDistribution, Uniform } from '../types.ts';

import { ANT, ANT_DESCRIPTIONS } from './ant-constants.ts';
import { fwdBackDistribution, planarDirectionDistribution, mujocoDistribution, type MujocoTaskDistribution } from './descriptors.ts';
import { createMujocoRuntime, type MujocoModel, type MujocoRuntime } from './runtime.ts';
import { gymResetNoise, mujocoVectorEnv, type BodyDynamics, type MujocoVectorEnv } from './vector-env.ts';

export { ANT, ANT_DESCRIPTIONS };

export type AntDirTask = FwdBackTask;
export type AntDir2dTask = PlanarDirectionTask;
export interface AntGoalTask {
  readonly goal: readonly [number, number];
}

export interface AntTaskDistributions {
  readonly antFwdBack: MujocoTaskDistribution<AntDirTask>;
  readonly antRandDir: MujocoTaskDistribution<AntDir2dTask>;
  readonly antRandGoal: MujocoTaskDistribution<AntGoalTask>;
  readonly runtime: MujocoRuntime;
}

/** Contact cost of one state: weight · Σ clip(cfrc_ext, −1, 1)². */
export const antContactCost = (cfrcExt: ArrayLike<number>): number => {
  let sum = 0;
  for (let k = 0; k < cfrcExt.length; k++) {
    const c = clip(cfrcExt[k]!, 1);
    sum += c * c;
  }
  return ANT.contactCostWeight * sum;
};

interface AntRewardSpec {
  /** Task reward of row i from the torso's xy before and after the step (dt given). */
  readonly taskReward: (row: number, x0: number, y0: number, x1: number, y1: number, dt: number) => number;
  readonly ctrlCostWeight: number;
  readonly surviveReward: number;
  /** Whether leaving the height range ends the episode. */
  readonly heightTermination: boolean;
}

const makeAnt = (name: string, model: MujocoModel, size: number, spec: AntRewardSpec, describeRow: (row: number) => unknown): MujocoVectorEnv => {
  const { frameSkip, maxAction, resetNoise, observationDim, actionDim, minHeight, maxHeight } = ANT;
  const body: BodyDynamics = {
    frameSkip,
    maxAction,
    observationDim,
    actionDim,
    checkModel: (m) =>
      m.nu !== actionDim || m.nq - 2 + m.nv + 6 * m.nbody !== observationDim
        ? `model has nq=${m.nq}, nv=${m.nv}, nu=${m.nu}, nbody=${m.nbody}; expected nu=${actionDim} and nq−2+nv+6·nbody=${observationDim}`
        : undefined,
    perturb: gymResetNoise(resetNoise, 'normal'),
    // mj_forward + mj_rnePostConstraint: derived quantities and cfrc_ext of the current state.
    settle: (d) => {
      d.forward();
      d.rnePostConstraint();
    },
    observe: (d, out, offset) => {
      const qpos = d.qpos();
      const qvel = d.qvel();
      const cfrc = d.cfrcExt();
      let o = offset;
      for (let k = 2; k < qpos.length; k++) out[o++] = qpos[k]!;
      for (let k = 0; k < qvel.length; k++) out[o++] = qvel[k]!;
      for (let k = 0; k < cfrc.length; k++) out[o++] = clip(cfrc[k]!, 1);
    },
    reward: (row, d, x0, y0, squared, dt) => {
      const after = d.qpos();
      return spec.taskReward(row, x0, y0, after[0]!, after[1]!, dt) - spec.ctrlCostWeight * squared - antContactCost(d.cfrcExt()) + spec.surviveReward;
    },
    ends: (d) => {
      const z = d.qpos()[2]!;
      return spec.heightTermination && !(z >= minHeight && z <= maxHeight);
    },
  };
  return mujocoVectorEnv(name, body, Array.from({ length: size }, () => model), false, describeRow);
};

/**
 * Loads the MuJoCo runtime (through `load`, by default a fresh loader) and the ant model, and returns
 * the ant task distributions over it.
 */
export const antTaskDistributions = async (load: () => Promise<MujocoRuntime> = createMujocoRuntime()): Promise<AntTaskDistributions> => {
  const runtime = await load();
  const model = runtime.loadModel(ANT.modelFile);

  // Fwd-back is the planar direction (±1, 0): one reward for both.
  const directionSpec = (directions: readonly (readonly [number, number])[]): AntRewardSpec => ({
    taskReward: (i, x0, y0, x1, y1, dt) => {
      const [dx, dy] = directions[i]!;
      return (dx * (x1 - x0) + dy * (y1 - y0)) / dt;
    },
    ctrlCostWeight: ANT.ctrlCostWeightDirection,
    surviveReward: ANT.surviveReward,
    heightTermination: true,
  });
  const antFwdBack = fwdBackDistribution('ant-fwd-back', (directions, describeRow) =>
    makeAnt('ant-fwd-back', model, directions.length, directionSpec(directions.map((d) => [d, 0] as const)), describeRow),
  );
  const antRandDir = planarDirectionDistribution('ant-rand-dir', (directions, describeRow) =>
    makeAnt('ant-rand-dir', model, directions.length, directionSpec(directions), describeRow),
  );

  const RAND_GOAL = 'ant-rand-goal';
  const describeGoal = (task: AntGoalTask): { goal: [number, number] } => ({ goal: [task.goal[0], task.goal[1]] });
  const antRandGoal = mujocoDistribution<AntGoalTask>(RAND_GOAL, {
    sampleTasks: (uniform: Uniform, count: number): AntGoalTask[] => {
      checkTaskCount(RAND_GOAL, count);
      const out: AntGoalTask[] = [];
      for (let i = 0; i < count; i++) {
        // ProMP: angle ~ U[0, 2π), radius = 3·√U (uniform in the disc)
        const angle = 2 * Math.PI * uniform();
        const radius = ANT.goalRadius * Math.sqrt(uniform());
        out.push(Object.freeze({ goal: Object.freeze([radius * Math.cos(angle), radius * Math.sin(angle)] as const) }));
      }
      return out;
    },
    describeTask: describeGoal,
    make: (tasks: readonly AntGoalTask[]): MujocoVectorEnv => {
      const goals = tasks.map((task, i) => {
        const [gx, gy] = task.goal;
        if (!Number.isFinite(gx) || !Number.isFinite(gy)) throw new Error(`${RAND_GOAL}: task ${i} has a non-finite goal ${JSON.stringify(task.goal)}`);
        return [gx, gy] as const;
      });
      const spec: AntRewardSpec = {
        taskReward: (i, _x0, _y0, x1, y1) => {
          const [gx, gy] = goals[i]!;
          return -(Math.abs(x1 - gx) + Math.abs(y1 - gy));
        },
        ctrlCostWeight: ANT.ctrlCostWeightGoal,
        surviveReward: 0,
        heightTermination: false,
      };
      return makeAnt(RAND_GOAL, model, tasks.length, spec, (i) => describeGoal(tasks[i]!));
    },
  });

  // all three are TaskDistributions as well (checked here, at compile time)
  const asBase: readonly [TaskDistribution<AntDirTask>, TaskDistribution<AntDir2dTask>, TaskDistribution<AntGoalTask>] = [antFwdBack, antRandDir, antRandGoal];
  void asBase;
  return { antFwdBack, antRandDir, antRandGoal, runtime };
};
