/**
 * The walker2d and hopper environments' fixed constants, apart from the physics, so that a config can be
 * completed and a policy shaped without loading the MuJoCo WebAssembly runtime.
 *
 * Observations as gym's Walker2d / Hopper: qpos[1:] (height, pitch, joint angles) ++ clip(qvel, −10, 10):
 * walker2d 8 + 9 = 17, hopper 5 + 6 = 11.
 */
export const WALKER = Object.freeze({
  modelFile: 'walker2d.xml',
  frameSkip: 4,
  maxAction: 1,
  resetNoise: 0.005,
  ctrlCostWeight: 1e-3,
  aliveBonus: 1,
  maxVelocity: 10,
  /** Done when the height leaves (0.8, 2.0) or |pitch| ≥ 1 (gym's Walker2d). */
  minHeight: 0.8,
  maxHeight: 2,
  maxAngle: 1,
  horizon: 200,
  observationDim: 17,
  actionDim: 6,
  nbody: 8,
  ngeom: 8,
  nv: 9,
});

export const HOPPER = Object.freeze({
  modelFile: 'hopper.xml',
  frameSkip: 4,
  maxAction: 1,
  resetNoise: 0.005,
  ctrlCostWeight: 1e-3,
  aliveBonus: 1,
  maxVelocity: 10,
  /** Done unless the state is finite, |state[2:]| < 100, height > 0.7 and |pitch| < 0.2 (gym's Hopper). */
  minHeight: 0.7,
  maxAngle: 0.2,
  maxState: 100,
  horizon: 200,
  observationDim: 11,
  actionDim: 3,
  nbody: 5,
  ngeom: 5,
  nv: 6,
});

/** Randomised-parameter ranges (rand_param_envs, ProMP App. D.2): factor = base^U(−3, 3). */
export const RAND_PARAMS = Object.freeze({ scaleBase: 1.5, dampingBase: 1.3, logScaleLimit: 3 });

/** The walker / hopper distributions' descriptions, by name (shared by the descriptors and the loaded distributions). */
export const WALKER_DESCRIPTIONS = Object.freeze({
  'walker-fwd-back':
    'walker2d walking forward or backward (dir ±1); reward dir·v_x − 1e-3‖a‖² + 1, done when the height leaves (0.8, 2) or |pitch| ≥ 1 (ProMP App. D.2); horizon 200',
  'walker2d-rand-params':
    'walker2d with body masses, inertias and geom frictions scaled by 1.5^U(−3,3) and dof damping by 1.3^U(−3,3) per element; reward v_x + 1 − 1e-3‖a‖² (gym), done as gym Walker2d (ProMP App. D.2; the paper uses inner step size 0.05: set it in the config); horizon 200',
  'hopper-rand-params':
    'hopper with body masses, inertias and geom frictions scaled by 1.5^U(−3,3) and dof damping by 1.3^U(−3,3) per element; reward v_x + 1 − 1e-3‖a‖² (gym), done as gym Hopper (ProMP App. D.2; the paper uses inner step size 0.05: set it in the config); horizon 200',
});
