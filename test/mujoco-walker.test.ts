import test from 'ava';
import { HOPPER, WALKER, planarDone, walkerTaskDistributions, type RandParamsTask } from '../src/envs/mujoco/walker.ts';
import type { MujocoData, MujocoModel, MujocoRuntime } from '../src/envs/mujoco/runtime.ts';
import { createMujocoRuntime } from '../src/envs/mujoco/runtime.ts';
import { environmentDescriptor, loadTaskDistribution } from '../src/envs/index.ts';
import { seededUniform } from '../src/random.ts';
import { checkDeterministicReset, clip, closeTo, replayReset, scriptedActions } from './helpers/mujoco.ts';

const load = createMujocoRuntime();
const distributions = walkerTaskDistributions(load);

const scripted = scriptedActions;
const observation = (d: MujocoData): number[] =>
  [...Array.from(d.qpos().subarray(1)), ...Array.from(d.qvel(), (v) => clip(v, 10))].map(Math.fround);
/** The env's reset: qpos and qvel += 0.005·U(−1, 1). */
const WALKER_RESET = { scale: 0.005, velocity: 'uniform' } as const;
/** The file's model with a task's factors applied, then (with `setConst`) mj_setConst through a scratch MjData. */
const scaledModel = (runtime: MujocoRuntime, file: string, task: RandParamsTask, setConst: boolean): MujocoModel => {
  const m = runtime.loadModel(file);
  const scale = (v: Float64Array, f: readonly number[]) => v.forEach((x, k) => (v[k] = x * f[k]!));
  scale(m.bodyMass(), task.bodyMass);
  scale(m.bodyInertia(), task.bodyInertia);
  scale(m.geomFriction(), task.geomFriction);
  scale(m.dofDamping(), task.dofDamping);
  if (setConst) {
    const scratch = m.createData();
    scratch.setConst();
    scratch.free();
  }
  return m;
};

test('models: sizes, timestep 0.002, 1M memory', async (t) => {
  const rt = await load();
  for (const [body, nq, nu] of [[WALKER, 9, 6], [HOPPER, 6, 3]] as const) {
    const m = rt.loadModel(body.modelFile);
    t.is(m.nq, nq);
    t.is(m.nv, nq);
    t.is(m.nu, nu);
    t.is(m.nbody, body.nbody);
    t.is(m.ngeom, body.ngeom);
    t.is(m.timestep, 0.002);
    t.true(m.bytesPerData < 1.2 * (1 << 20));
    const d = m.createData();
    d.reset();
    t.is(d.qpos()[1], 1.25, 'qpos[1] is the height');
    d.free();
    m.free();
  }
});

test('walker-fwd-back: rewards equal dir·v_x − 1e-3‖a‖² + 1 from replayed states; done as gym, sticky', async (t) => {
  const { walkerFwdBack: dist, runtime } = await distributions;
  const tasks = [{ direction: 1 }, { direction: -1 }] as const;
  const env = dist.make(tasks);
  const model = runtime.loadModel(WALKER.modelFile);
  const dt = 4 * model.timestep;
  const obs0 = env.reset(seededUniform(3));
  const replicas = tasks.map(() => model.createData());
  replayReset(replicas, seededUniform(3), WALKER_RESET);
  replicas.forEach((d, i) => t.deepEqual(Array.from(obs0.subarray(i * 17, (i + 1) * 17)), observation(d)));
  const ended = [false, false];
  let sawDone = false;
  for (const actions of scripted(2, 6, 120)) {
    const r = env.step(actions);
    replicas.forEach((d, i) => {
      if (ended[i]) {
        t.is(r.rewards[i], 0);
        t.is(r.dones[i], 1);
        return;
      }
      const a = Array.from(actions.subarray(i * 6, (i + 1) * 6), (x) => clip(x, 1));
      d.setCtrl(a);
      const x0 = d.qpos()[0]!;
      d.step(4);
      const expected = (tasks[i]!.direction * (d.qpos()[0]! - x0)) / dt - 1e-3 * a.reduce((s, v) => s + v * v, 0) + 1;
      t.true(closeTo(r.rewards[i]!, expected), `row ${i}: ${r.rewards[i]} vs ${expected}`);
      t.deepEqual(Array.from(r.observations.subarray(i * 17, (i + 1) * 17)), observation(d));
      const [h, ang] = [d.qpos()[1]!, d.qpos()[2]!];
      ended[i] = !(h > 0.8 && h < 2 && ang > -1 && ang < 1);
      if (ended[i]) sawDone = true;
      t.is(r.dones[i], ended[i] ? 1 : 0);
    });
  }
  t.true(sawDone, 'a termination was exercised');
  env.reset(seededUniform(3));
  t.deepEqual(Array.from(env.step(new Float32Array(12)).dones), [0, 0], 'reset clears done');
  for (const d of replicas) d.free();
  model.free();
  env.free();
  t.throws(() => env.reset(seededUniform(1)), { message: /after free/ });
});

for (const [key, body, modelName] of [
  ['walker2dRandParams', WALKER, 'walker2d-rand-params'],
  ['hopperRandParams', HOPPER, 'hopper-rand-params'],
] as const) {
  test(`${modelName}: rewards equal v_x + 1 − 1e-3‖a‖² on the scaled model; done as gym, sticky`, async (t) => {
    const all = await distributions;
    const dist = all[key];
    const tasks = dist.sampleTasks(seededUniform(5), 2);
    const env = dist.make(tasks);
    const n = body.actionDim;
    const od = body.observationDim;
    // replicas: the file's model with the same factors applied and its derived constants recomputed
    const models = tasks.map((task) => scaledModel(all.runtime, body.modelFile, task, true));
    const replicas = models.map((m) => m.createData());
    env.reset(seededUniform(6));
    replayReset(replicas, seededUniform(6), WALKER_RESET);
    const ended = [false, false];
    let sawDone = false;
    for (const actions of scripted(2, n, 80)) {
      const r = env.step(actions);
      replicas.forEach((d, i) => {
        if (ended[i]) {
          t.is(r.rewards[i], 0);
          t.is(r.dones[i], 1);
          t.deepEqual(Array.from(r.observations.subarray(i * od, (i + 1) * od)), observation(d), 'observation repeated');
          return;
        }
        const a = Array.from(actions.subarray(i * n, (i + 1) * n), (x) => clip(x, 1));
        d.setCtrl(a);
        const x0 = d.qpos()[0]!;
        d.step(4);
        const expected = (d.qpos()[0]! - x0) / 0.008 - 1e-3 * a.reduce((s, v) => s + v * v, 0) + 1;
        t.true(closeTo(r.rewards[i]!, expected), `row ${i}: ${r.rewards[i]} vs ${expected}`);
        t.deepEqual(Array.from(r.observations.subarray(i * od, (i + 1) * od)), observation(d));
        ended[i] = planarDone(body, d.qpos(), d.qvel());
        if (ended[i]) sawDone = true;
        t.is(r.dones[i], ended[i] ? 1 : 0);
      });
    }
    t.true(sawDone, 'a termination was exercised');
    for (const d of replicas) d.free();
    for (const m of models) m.free();
    env.free();
  });
}

test('rand-params task sampling: factors in [1.5^−3, 1.5^3] and [1.3^−3, 1.3^3], both sides present, sizes, seeded', async (t) => {
  const { walker2dRandParams, hopperRandParams } = await distributions;
  for (const [dist, body] of [[walker2dRandParams, WALKER], [hopperRandParams, HOPPER]] as const) {
    const tasks = dist.sampleTasks(seededUniform(7), 200);
    const check = (values: number[], base: number) => {
      t.true(values.every((f) => f >= base ** -3 && f <= base ** 3));
      t.true(values.some((f) => f < base ** -2.5) && values.some((f) => f > base ** 2.5), 'both extremes reached');
      const meanLog = values.reduce((s, f) => s + Math.log(f) / Math.log(base), 0) / values.length;
      t.true(Math.abs(meanLog) < 0.2, `mean exponent ${meanLog}`);
    };
    t.true(tasks.every((task) => task.bodyMass.length === body.nbody && task.bodyInertia.length === 3 * body.nbody));
    t.true(tasks.every((task) => task.geomFriction.length === 3 * body.ngeom && task.dofDamping.length === body.nv));
    check(tasks.flatMap((task) => [...task.bodyMass, ...task.bodyInertia, ...task.geomFriction]), 1.5);
    check(tasks.flatMap((task) => [...task.dofDamping]), 1.3);
    t.deepEqual(dist.sampleTasks(seededUniform(8), 3), dist.sampleTasks(seededUniform(8), 3));
    t.throws(() => dist.make([{ ...tasks[0]!, bodyMass: [1] } as RandParamsTask]), { message: /bodyMass/ });
  }
});

test('reset is deterministic for a seed and differs across seeds', async (t) => {
  const { hopperRandParams: dist, walkerFwdBack } = await distributions;
  const tasks = dist.sampleTasks(seededUniform(1), 2);
  checkDeterministicReset(t, () => dist.make(tasks), scripted(2, 3, 5));
  const w = walkerFwdBack.make([{ direction: 1 }]);
  t.deepEqual(w.reset(seededUniform(4)), w.reset(seededUniform(4)));
  w.free();
});

test('two tasks with different masses give different dynamics for the same actions; equal tasks the same', async (t) => {
  const { walker2dRandParams: dist } = await distributions;
  const ones = (n: number) => Array.from({ length: n }, () => 1);
  const base: RandParamsTask = { bodyMass: ones(8), bodyInertia: ones(24), geomFriction: ones(24), dofDamping: ones(9) };
  const heavy: RandParamsTask = { ...base, bodyMass: [1, 3, 3, 3, 3, 3, 3, 3] };
  // one-row environments reset with the same seed start from the same state
  const rollout = (task: RandParamsTask): number[] => {
    const env = dist.make([task]);
    env.reset(seededUniform(2));
    let obs: Float32Array = new Float32Array(17);
    for (const a of scripted(1, 6, 10, 0.8)) obs = env.step(a).observations;
    env.free();
    return Array.from(obs);
  };
  const a = rollout(base);
  const b = rollout(heavy);
  t.true(Math.abs(a[0]! - b[0]!) > 1e-4 || a.some((x, k) => Math.abs(x - b[k]!) > 1e-3), 'heavier bodies move differently');
  t.deepEqual(rollout(base), a, 'equal tasks, same dynamics');
});

test('rand-params make recomputes the derived constants (mj_setConst): the rollout is the recompiled model\'s, not the stale one\'s', async (t) => {
  const { walker2dRandParams: dist, runtime } = await distributions;
  const [task] = dist.sampleTasks(seededUniform(13), 1);
  // body_subtreemass is derived from body_mass: stale after scaling until setConst
  const stale = scaledModel(runtime, WALKER.modelFile, task!, false);
  const fresh = scaledModel(runtime, WALKER.modelFile, task!, true);
  const masses = Array.from(fresh.bodyMass());
  t.true(closeTo(fresh.bodySubtreeMass()[0]!, masses.reduce((s, m) => s + m, 0)), 'world subtree mass = total scaled mass');
  t.false(closeTo(stale.bodySubtreeMass()[0]!, fresh.bodySubtreeMass()[0]!), 'stale without setConst');
  // the environment's dynamics are the recomputed model's (contact softness depends on body_invweight0):
  // compare the observations of every step before the episode ends
  const env = dist.make([task!]);
  env.reset(seededUniform(2));
  const trace: number[][] = [];
  for (const a of scripted(1, 6, 40, 0.8)) {
    const r = env.step(a);
    if (r.dones[0] === 1) break;
    trace.push(Array.from(r.observations));
  }
  env.free();
  t.true(trace.length >= 10, `${trace.length} steps before done`);
  const rollout = (m: MujocoModel): number[][] => {
    const d = m.createData();
    replayReset([d], seededUniform(2), WALKER_RESET);
    const out = scripted(1, 6, trace.length, 0.8).map((a) => {
      d.setCtrl(Array.from(a, (x) => clip(x, 1)));
      d.step(4);
      return observation(d);
    });
    d.free();
    return out;
  };
  t.deepEqual(trace, rollout(fresh));
  t.notDeepEqual(trace, rollout(stale));
  stale.free();
  fresh.free();
});

test('walker environments are wired into the environment list and load by name', async (t) => {
  t.is(environmentDescriptor('walker-fwd-back').observationDim, 17);
  t.is(environmentDescriptor('hopper-rand-params').observationDim, 11);
  t.deepEqual(environmentDescriptor('hopper-rand-params').action, { kind: 'continuous', dim: 3, low: -1, high: 1 });
  t.regex(environmentDescriptor('walker2d-rand-params').description, /inner step size 0\.05/);
  for (const name of ['walker-fwd-back', 'walker2d-rand-params', 'hopper-rand-params']) {
    const dist = await loadTaskDistribution(name);
    t.is(dist.name, name);
    t.is(dist.horizon, 200);
    t.is(dist.adaptationSteps, 1);
    t.is(dist.description, environmentDescriptor(name).description);
  }
});

test('a NaN action is refused, naming the environment, row and step', async (t) => {
  const { walkerFwdBack: dist } = await distributions;
  const env = dist.make([{ direction: 1 }, { direction: -1 }]);
  env.reset(seededUniform(1));
  const bad = new Float32Array(12);
  bad[7] = Number.NaN;
  t.throws(() => env.step(bad), { message: /walker-fwd-back: action NaN at row 1, coordinate 1 .* on step 0/ });
  env.free();
});
