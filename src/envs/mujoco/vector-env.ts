/**
 * The vector environment every MuJoCo body shares: one MjData per row (each row's model may differ,
 * e.g. randomised parameters), actions checked and clipped, frame-skipped steps, a row that ends stays
 * done with reward 0 until reset, and MjData (and owned models) freed by `free()` or, for an
 * environment dropped without it, when it is garbage-collected. A body supplies only what differs:
 * its observation, reset noise, reward and termination.
 */
import { checkActions, clip } from '../checks.ts';
import type { StepResult, Uniform, VectorEnv } from '../types.ts';
import type { MujocoData, MujocoModel } from './runtime.ts';

/** A VectorEnv over MjData instances; `free()` releases them now (otherwise they are freed when the env is collected). */
export interface MujocoVectorEnv extends VectorEnv {
  readonly free: () => void;
}

/** What a body contributes to the shared vector environment. */
export interface BodyDynamics {
  readonly frameSkip: number;
  readonly maxAction: number;
  readonly observationDim: number;
  readonly actionDim: number;
  /** Why `model` does not fit this body, or undefined when it does. */
  readonly checkModel: (model: MujocoModel) => string | undefined;
  /** Adds the reset noise to a freshly reset state (mj_forward follows). */
  readonly perturb: (data: MujocoData, uniform: Uniform) => void;
  /** Derived quantities a body's observation or reward reads, after mj_forward or a step (e.g. contact forces). */
  readonly settle?: (data: MujocoData) => void;
  /** Writes row `row`'s observation at `out[offset …]`. */
  readonly observe: (data: MujocoData, out: Float32Array, offset: number) => void;
  /**
   * The reward of a finite step of row `row`, from the root's planar position before it (x0, y0) and the
   * state after; `controlSquared` is ‖clip(a)‖², `dt` the step's duration.
   */
  readonly reward: (row: number, data: MujocoData, x0: number, y0: number, controlSquared: number, dt: number) => number;
  /** Whether a finite state ends the episode. */
  readonly ends: (data: MujocoData) => boolean;
}

/** A standard normal from two uniforms (Box–Muller). */
export const normalFrom = (uniform: Uniform): number => {
  const u1 = 1 - uniform(); // (0, 1]
  const u2 = uniform();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
};

/**
 * gym's reset noise, drawn row by row from the reset's `uniform`: qpos += scale·U(−1, 1), then
 * qvel += scale·U(−1, 1) ('uniform': walker, hopper, humanoid) or scale·N(0, 1) ('normal': half-cheetah, ant).
 */
export const gymResetNoise =
  (scale: number, velocity: 'uniform' | 'normal'): BodyDynamics['perturb'] =>
  (d, uniform) => {
    const qpos = d.qpos();
    for (let k = 0; k < qpos.length; k++) qpos[k] = qpos[k]! + scale * (2 * uniform() - 1);
    const qvel = d.qvel();
    for (let k = 0; k < qvel.length; k++) qvel[k] = qvel[k]! + scale * (velocity === 'uniform' ? 2 * uniform() - 1 : normalFrom(uniform));
  };

/** Frees the MjData (and owned models) of environments dropped without free(). */
const finalizer = new FinalizationRegistry<{ freeAll: () => void }>((held) => held.freeAll());

const finiteState = (d: MujocoData): boolean => {
  for (const x of d.qpos()) if (!Number.isFinite(x)) return false;
  for (const x of d.qvel()) if (!Number.isFinite(x)) return false;
  return true;
};

/**
 * `models[i]` is row i's model (rows may share one); with `ownsModels` they are freed with the
 * environment (and on a failure to create it).
 */
export const mujocoVectorEnv = (
  name: string,
  body: BodyDynamics,
  models: readonly MujocoModel[],
  ownsModels: boolean,
  describeRow: (row: number) => unknown,
): MujocoVectorEnv => {
  const { frameSkip, maxAction, observationDim, actionDim } = body;
  const size = models.length;
  const datas: MujocoData[] = [];
  const holder = {
    freeAll: () => {
      for (const d of datas) d.free();
      if (ownsModels) for (const m of new Set(models)) m.free();
    },
  };
  try {
    for (const m of models) {
      const misfit = body.checkModel(m);
      if (misfit !== undefined) throw new Error(misfit);
      datas.push(m.createData());
    }
  } catch (error) {
    holder.freeAll();
    throw new Error(`${name}: could not create environment ${datas.length} of ${size}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const done = new Uint8Array(size);
  const ctrl = new Float64Array(actionDim);
  let t = -1;
  let freed = false;

  const live = (): void => {
    if (freed) throw new Error(`${name}: environment used after free()`);
  };
  const observe = (out: Float32Array, i: number): void => body.observe(datas[i]!, out, i * observationDim);

  const reset = (uniform: Uniform): Float32Array => {
    live();
    const observations = new Float32Array(size * observationDim);
    for (let i = 0; i < size; i++) {
      const d = datas[i]!;
      d.reset();
      body.perturb(d, uniform);
      d.forward();
      body.settle?.(d);
      observe(observations, i);
    }
    done.fill(0);
    t = 0;
    return observations;
  };

  const step = (actions: Float32Array): StepResult => {
    live();
    checkActions(name, actions, size, actionDim, t, describeRow);
    const observations = new Float32Array(size * observationDim);
    const rewards = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const d = datas[i]!;
      if (done[i]) {
        observe(observations, i);
        continue;
      }
      let squared = 0;
      for (let k = 0; k < actionDim; k++) {
        const a = clip(actions[i * actionDim + k]!, maxAction);
        ctrl[k] = a;
        squared += a * a;
      }
      d.setCtrl(ctrl);
      const before = d.qpos();
      const x0 = before[0]!;
      const y0 = before[1]!;
      d.step(frameSkip);
      if (!finiteState(d)) {
        // A diverged state earns nothing and ends the episode.
        observe(observations, i);
        done[i] = 1;
        continue;
      }
      body.settle?.(d);
      observe(observations, i);
      rewards[i] = body.reward(i, d, x0, y0, squared, frameSkip * models[i]!.timestep);
      if (body.ends(d)) done[i] = 1;
    }
    t += 1;
    return { observations, rewards, dones: done.slice() };
  };

  const env: MujocoVectorEnv = {
    size,
    reset,
    step,
    free: () => {
      if (freed) return;
      freed = true;
      finalizer.unregister(env);
      holder.freeAll();
    },
  };
  finalizer.register(env, holder, env);
  return env;
};
