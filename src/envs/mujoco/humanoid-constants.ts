/**
 * The humanoid environments' fixed constants, apart from the physics, so that a config can be completed
 * and a policy shaped without loading the MuJoCo WebAssembly runtime.
 *
 * observationDim 376 (gym's Humanoid v2, unclipped):
 *   qpos[2:]       22  torso height, orientation quaternion, 17 joint angles
 *   qvel           23  root linear and angular velocity, 17 joint velocities
 *   cinert        140  nbody 14 × 10: each body's com-based inertia (6) and mass-weighted offset and mass (4)
 *   cvel           84  nbody 14 × 6: each body's com-based velocity (rotation, translation)
 *   qfrc_actuator  23  actuator forces in joint space
 *   cfrc_ext       84  nbody 14 × 6: external (contact) forces per body (torque, force)
 * The world body's rows are included, as gym's (zeros in cinert and cvel).
 */
export const HUMANOID = Object.freeze({
  modelFile: 'humanoid.xml',
  frameSkip: 5,
  /** The motors' ctrl range [−0.4, 0.4]; the environment clips actions to it. */
  maxAction: 0.4,
  /** Reset: qpos0 + U(−0.01, 0.01), qvel + U(−0.01, 0.01) (gym Humanoid v2's reset_noise_scale). */
  resetNoise: 0.01,
  /**
   * Forward reward weight per second of dt: gym v2 and ProMP write 0.25·Δcom / opt.timestep, which is
   * 1.25·Δcom / dt with dt = 5·timestep.
   */
  forwardRewardWeight: 1.25,
  /** Control cost ctrlCostWeight · ‖clip(a)‖². */
  ctrlCostWeight: 0.1,
  /** Contact (impact) cost min(contactCostWeight · ‖cfrc_ext‖², contactCostMax). */
  contactCostWeight: 5e-7,
  contactCostMax: 10,
  aliveBonus: 5,
  /** Torso height range (qpos[2]) outside which an episode ends. */
  minHeight: 1,
  maxHeight: 2,
  horizon: 200,
  adaptationSteps: 1,
  /** The paper's policy for the humanoid: two hidden layers of 128 units (ProMP App. D.2). */
  hiddenSizes: Object.freeze([128, 128] as const),
  observationDim: 376,
  actionDim: 17,
  nq: 24,
  nv: 23,
  nbody: 14,
});

/** The humanoid distributions' descriptions, by name (shared by the descriptors and the loaded distributions). */
export const HUMANOID_DESCRIPTIONS = Object.freeze({
  'humanoid-fwd-back':
    'humanoid running forward or backward along x (dir ±1); reward 1.25·dir·Δcom_x/dt − 0.1‖a‖² − min(5e-7‖cfrc_ext‖², 10) + 5, done when z leaves [1, 2] (ProMP App. D.2); policy (128, 128)',
  'humanoid-rand-dir':
    'humanoid running in a random planar direction (unit vector); reward 1.25·dir·Δcom_xy/dt − 0.1‖a‖² − min(5e-7‖cfrc_ext‖², 10) + 5, done when z leaves [1, 2] (ProMP App. D.2); policy (128, 128)',
});
