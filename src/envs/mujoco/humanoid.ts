/**
 * Humanoid task distributions of the ProMP paper (Rothfuss et al. 2019, App. D.2), with the rewards of
 * its released code (humanoid_rand_direc, humanoid_rand_direc_2d, on gym's Humanoid v2), on the
 * project's own humanoid model (src/envs/models/humanoid.xml).
 *
 * - Observation (376 numbers, as gym's Humanoid v2): qpos[2:] (22), qvel (23), cinert (14 × 10), cvel
 *   (14 × 6), qfrc_actuator (23), cfrc_ext (14 × 6), unclipped, rounded to float32 (the layout is in
 *   humanoid-constants.ts).
 * - Action: 17 torques clipped to the motors' ctrl range [−0.4, 0.4] by the environment.
 * - One environment step = frame skip 5 physics steps of 0.003 s (dt = 0.015 s). After the physics steps
 *   the environment runs mj_forward and mj_rnePostConstraint, so that every derived quantity (xipos,
 *   cinert, cvel, qfrc_actuator, and cfrc_ext, which MuJoCo ≥ 2.2 only fills in mj_rnePostConstraint)
 *   belongs to the state reached (as the ant; mujoco-py read them one physics step stale).
 * - Mass centre c = Σ body_mass·xipos / Σ body_mass (its xy), of the state before and after the step.
 *   Reward 1.25·dir·(c_after − c_before)/dt − 0.1‖a‖² − min(5·10⁻⁷‖cfrc_ext‖², 10) + 5 with a the
 *   clipped action (ProMP / gym v2 write 0.25·Δc / opt.timestep: the same number).
 *   - HumanoidFwdBack (humanoid_rand_direc): dir ∈ {−1, +1} along x.
 *   - HumanoidRandDir (humanoid_rand_direc_2d): dir a uniform unit vector in the plane.
 * - Done when the torso height qpos[2] leaves [1, 2] (ProMP: done = z < 1.0 or z > 2.0); the step that
 *   leaves the range still earns its reward. A done environment stays done (reward 0, observation
 *   repeated, done flag 1) until reset; a step whose state becomes non-finite earns reward 0 and ends.
 *   Horizon 200, one adaptation step; the paper's policy has two hidden layers of 128 units
 *   (`HUMANOID.hiddenSizes`).
 * - Reset (gym v2's): the model's initial state with qpos and qvel += U(−0.01, 0.01) per coordinate
 *   (quaternion included; MuJoCo normalises it), qpos first, row by row, drawn from the `uniform` passed
 *   to reset.
 *
 * `const { humanoidFwdBack, humanoidRandDir } = await humanoidTaskDistributions()`.
 */
import type { FwdBackTask, PlanarDirectionTask } from '../direction-tasks.ts';
import type { TaskDistribution } from '../types.ts';
import { HUMANOID, HUMANOID_DESCRIPTIONS } from './humanoid-constants.ts';
import { fwdBackDistribution, planarDirectionDistribution, type MujocoTaskDistribution } from './descriptors.ts';
import { createMujocoRuntime, type MujocoData, type MujocoModel, type MujocoRuntime } from './runtime.ts';
import { gymResetNoise, mujocoVectorEnv, type BodyDynamics, type MujocoVectorEnv } from './vector-env.ts';

export { HUMANOID, HUMANOID_DESCRIPTIONS };

export type HumanoidDirTask = FwdBackTask;
export type HumanoidDir2dTask = PlanarDirectionTask;

export interface HumanoidTaskDistributions {
  readonly humanoidFwdBack: MujocoTaskDistribution<HumanoidDirTask>;
  readonly humanoidRandDir: MujocoTaskDistribution<HumanoidDir2dTask>;
  readonly runtime: MujocoRuntime;
}

/** Contact cost of one state: min(5·10⁻⁷ · Σ cfrc_ext², 10). */
export const humanoidContactCost = (cfrcExt: ArrayLike<number>): number => {
  let sum = 0;
  for (let k = 0; k < cfrcExt.length; k++) sum += cfrcExt[k]! * cfrcExt[k]!;
  return Math.min(HUMANOID.contactCostWeight * sum, HUMANOID.contactCostMax);
};

/** The mass centre's (x, y): Σ mass·xipos / Σ mass over all bodies (`mass` = body_mass, nbody). */
export const massCentre = (mass: ArrayLike<number>, xipos: ArrayLike<number>): [number, number] => {
  let total = 0;
  let x = 0;
  let y = 0;
  for (let b = 0; b < mass.length; b++) {
    const m = mass[b]!;
    total += m;
    x += m * xipos[3 * b]!;
    y += m * xipos[3 * b + 1]!;
  }
  return [x / total, y / total];
};

/** Writes the 376-number observation of `d` (derived quantities current) at `out[offset …]`. */
const observeHumanoid = (d: MujocoData, out: Float32Array, offset: number): void => {
  let o = offset;
  const qpos = d.qpos();
  for (let k = 2; k < qpos.length; k++) out[o++] = qpos[k]!;
  for (const view of [d.qvel(), d.cinert(), d.cvel(), d.qfrcActuator(), d.cfrcExt()]) {
    for (let k = 0; k < view.length; k++) out[o++] = view[k]!;
  }
};

/**
 * The humanoid vector environment; row i runs in direction `directions[i]` (a unit vector in the plane;
 * [±1, 0] for fwd-back).
 */
const makeHumanoid = (
  name: string,
  model: MujocoModel,
  directions: readonly (readonly [number, number])[],
  describeRow: (row: number) => unknown,
): MujocoVectorEnv => {
  const { frameSkip, maxAction, resetNoise, observationDim, actionDim, forwardRewardWeight, ctrlCostWeight, aliveBonus, minHeight, maxHeight } = HUMANOID;
  const mass = Float64Array.from(model.bodyMass());
  // Each row's mass centre (x, y) before and after its latest step, kept per MjData: `settle` runs
  // exactly once after every reset and every finite step, before `reward` reads them.
  const centres = new WeakMap<MujocoData, Float64Array>();
  const body: BodyDynamics = {
    frameSkip,
    maxAction,
    observationDim,
    actionDim,
    checkModel: (m) =>
      m.nu !== actionDim || m.nbody !== mass.length || m.nq - 2 + 2 * m.nv + 22 * m.nbody !== observationDim
        ? `model has nq=${m.nq}, nv=${m.nv}, nu=${m.nu}, nbody=${m.nbody}; expected nu=${actionDim}, nbody=${mass.length} and nq−2+2·nv+22·nbody=${observationDim}`
        : undefined,
    perturb: gymResetNoise(resetNoise, 'uniform'),
    // mj_forward + mj_rnePostConstraint: derived quantities and cfrc_ext of the current state; then the
    // mass centre of this state becomes the row's "after", the previous one its "before".
    settle: (d) => {
      d.forward();
      d.rnePostConstraint();
      let c = centres.get(d);
      if (c === undefined) {
        c = new Float64Array(4);
        centres.set(d, c);
      }
      const [x, y] = massCentre(mass, d.xipos());
      c[0] = c[2]!;
      c[1] = c[3]!;
      c[2] = x;
      c[3] = y;
    },
    observe: observeHumanoid,
    reward: (row, d, _x0, _y0, squared, dt) => {
      const c = centres.get(d)!;
      const [dx, dy] = directions[row]!;
      const forward = (forwardRewardWeight * (dx * (c[2]! - c[0]!) + dy * (c[3]! - c[1]!))) / dt;
      return forward - ctrlCostWeight * squared - humanoidContactCost(d.cfrcExt()) + aliveBonus;
    },
    ends: (d) => {
      const z = d.qpos()[2]!;
      return !(z >= minHeight && z <= maxHeight);
    },
  };
  return mujocoVectorEnv(name, body, directions.map(() => model), false, describeRow);
};

/**
 * Loads the MuJoCo runtime (through `load`, by default a fresh loader) and the humanoid model, and
 * returns the humanoid task distributions over it.
 */
export const humanoidTaskDistributions = async (load: () => Promise<MujocoRuntime> = createMujocoRuntime()): Promise<HumanoidTaskDistributions> => {
  const runtime = await load();
  const model = runtime.loadModel(HUMANOID.modelFile);

  const humanoidFwdBack = fwdBackDistribution('humanoid-fwd-back', (directions, describeRow) =>
    makeHumanoid('humanoid-fwd-back', model, directions.map((d) => [d, 0] as const), describeRow),
  );
  const humanoidRandDir = planarDirectionDistribution('humanoid-rand-dir', (directions, describeRow) =>
    makeHumanoid('humanoid-rand-dir', model, directions, describeRow),
  );

  // both are TaskDistributions as well (checked here, at compile time)
  const asBase: readonly [TaskDistribution<HumanoidDirTask>, TaskDistribution<HumanoidDir2dTask>] = [humanoidFwdBack, humanoidRandDir];
  void asBase;
  return { humanoidFwdBack, humanoidRandDir, runtime };
};
