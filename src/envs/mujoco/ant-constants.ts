/**
 * The ant environments' fixed constants, apart from the physics, so that a config can be completed and
 * a policy shaped without loading the MuJoCo WebAssembly runtime.
 *
 * observationDim 111 = qpos[2:] (13: z, quaternion, 8 joint angles) + qvel (14) + clip(cfrc_ext, −1, 1)
 * (nbody 14 × 6 = 84, the world body's row included, as gym's Ant).
 */
export const ANT = Object.freeze({
  modelFile: 'ant.xml',
  frameSkip: 5,
  maxAction: 1,
  resetNoise: 0.1,
  /** Control cost weights: ‖a‖² × 0.5 for the direction tasks, × 0.1 for the goal task (ProMP's code). */
  ctrlCostWeightDirection: 0.5,
  ctrlCostWeightGoal: 0.1,
  /** Contact cost: contactCostWeight · Σ clip(cfrc_ext, −1, 1)². */
  contactCostWeight: 0.5e-3,
  surviveReward: 1,
  /** Torso height range outside which the direction tasks terminate. */
  minHeight: 0.2,
  maxHeight: 1,
  goalRadius: 3,
  horizon: 100,
  goalHorizon: 200,
  goalAdaptationSteps: 2,
  observationDim: 111,
  actionDim: 8,
  nbody: 14,
});

/** The ant distributions' descriptions, by name (shared by the descriptors and the loaded distributions). */
export const ANT_DESCRIPTIONS = Object.freeze({
  'ant-fwd-back': 'ant running forward or backward along x (dir ±1); reward dir·v_x − 0.5‖a‖² − contact cost + 1, done when z leaves [0.2, 1] (ProMP App. D.2)',
  'ant-rand-dir': 'ant running in a random planar direction (unit vector); reward dir·v_xy − 0.5‖a‖² − contact cost + 1, done when z leaves [0.2, 1] (ProMP App. D.2)',
  'ant-rand-goal': 'ant reaching a goal uniform in the disc of radius 3; reward −‖xy − g‖₁ − 0.1‖a‖² − contact cost (ProMP App. D.2)',
});
