/**
 * The half-cheetah environments' fixed constants, apart from the physics, so that a config can be
 * completed and a policy shaped without loading the MuJoCo WebAssembly runtime.
 */
export const HALF_CHEETAH = Object.freeze({
  modelFile: 'half_cheetah.xml',
  frameSkip: 5,
  ctrlCostWeight: 0.05,
  maxAction: 1,
  maxGoalVelocity: 3,
  resetNoise: 0.1,
  horizon: 100,
  observationDim: 17,
  actionDim: 6,
});

/** The half-cheetah distributions' descriptions, by name. */
export const HALF_CHEETAH_DESCRIPTIONS = Object.freeze({
  'half-cheetah-fwd-back': 'half-cheetah running forward or backward (dir ±1); reward dir·v − 0.05‖a‖² (ProMP App. D.2)',
  'half-cheetah-rand-vel': 'half-cheetah reaching a target forward velocity v* ~ U[0, 3]; reward −|v − v*| − 0.05‖a‖² (ProMP App. D.2)',
});
