import { readFileSync } from 'node:fs';
import test from 'ava';
import {
  HUMANOID,
  humanoidContactCost,
  humanoidTaskDistributions,
  massCentre,
  type HumanoidDir2dTask,
  type HumanoidDirTask,
} from '../src/envs/mujoco/humanoid.ts';
import type { MujocoData, MujocoModel } from '../src/envs/mujoco/runtime.ts';
import { createMujocoRuntime } from '../src/envs/mujoco/runtime.ts';
import { environmentDescriptor, loadTaskDistribution } from '../src/envs/index.ts';
import { seededUniform } from '../src/random.ts';
import { checkDeterministicReset, clip, closeTo, replayReset, scriptedActions } from './helpers/mujoco.ts';

const load = createMujocoRuntime();
const distributions = humanoidTaskDistributions(load);

const { frameSkip, observationDim, actionDim } = HUMANOID;

/** Scripted actions: rows × steps, many beyond [−0.4, 0.4] to exercise clipping. */
const scripted = (rows: number, steps: number, scale = 0.6): Float32Array[] => scriptedActions(rows, actionDim, steps, scale);

const clip4 = (x: number): number => clip(x, 0.4);

/** The 376-number observation assembled from a replica's state (gym's Humanoid v2 layout). */
const observation = (d: MujocoData): number[] =>
  [
    ...Array.from(d.qpos().subarray(2)),
    ...Array.from(d.qvel()),
    ...Array.from(d.cinert()),
    ...Array.from(d.cvel()),
    ...Array.from(d.qfrcActuator()),
    ...Array.from(d.cfrcExt()),
  ].map(Math.fround);

/** The mass centre (x, y), recomputed here: Σ m·xipos / Σ m. */
const centre = (model: MujocoModel, d: MujocoData): [number, number] => {
  const m = Array.from(model.bodyMass());
  const xi = d.xipos();
  const total = m.reduce((s, v) => s + v, 0);
  return [m.reduce((s, v, b) => s + v * xi[3 * b]!, 0) / total, m.reduce((s, v, b) => s + v * xi[3 * b + 1]!, 0) / total];
};

/** The env's reset: qpos and qvel += 0.01·U(−1, 1), contact forces computed. */
const HUMANOID_RESET = { scale: 0.01, velocity: 'uniform', contacts: true } as const;

/** One replica step: the clipped action's ‖a‖², mass centre before and after, the contact cost, the height. */
const replayStep = (model: MujocoModel, d: MujocoData, actions: Float32Array, i: number) => {
  const a = Array.from(actions.subarray(i * actionDim, (i + 1) * actionDim), clip4);
  const [x0, y0] = centre(model, d);
  d.setCtrl(a);
  d.step(frameSkip);
  d.forward();
  d.rnePostConstraint();
  const [x1, y1] = centre(model, d);
  let impact = 0;
  for (const c of d.cfrcExt()) impact += c * c;
  return { squared: a.reduce((s, v) => s + v * v, 0), x0, y0, x1, y1, z: d.qpos()[2]!, contact: Math.min(5e-7 * impact, 10), impact };
};

test('humanoid model: sizes, timestep, memory, the arena never fills while flailing', async (t) => {
  const rt = await load();
  const model = rt.loadModel(HUMANOID.modelFile);
  t.is(model.nq, 24);
  t.is(model.nv, 23);
  t.is(model.nu, 17);
  t.is(model.nbody, 14);
  t.is(model.timestep, 0.003);
  t.true(model.bytesPerData > 1 << 20 && model.bytesPerData < 1.2 * (1 << 20), `${model.bytesPerData} bytes per MjData`);
  const d = model.createData();
  d.reset();
  d.forward();
  d.rnePostConstraint();
  t.is(d.qpos()[2], 1.4, 'the torso starts at height 1.4');
  t.is(humanoidContactCost(d.cfrcExt()), 0, 'in the air at the start: no contact');
  for (const [name, view, n] of [['xipos', d.xipos(), 42], ['cinert', d.cinert(), 140], ['cvel', d.cvel(), 84], ['qfrcActuator', d.qfrcActuator(), 23]] as const) {
    t.is(view.length, n, name);
  }
  // the mass centre lies below the torso (legs), and cinert's last entry per body is its mass
  const [cx, cy] = massCentre(model.bodyMass(), d.xipos());
  t.true(Math.abs(cx) < 0.05 && Math.abs(cy) < 1e-9, `mass centre ${cx}, ${cy}`);
  t.deepEqual(Array.from({ length: 14 }, (_, b) => d.cinert()[10 * b + 9]), Array.from(model.bodyMass()));
  // views survive heap growth
  const others = Array.from({ length: 10 }, () => model.createData());
  t.is(d.cinert().length, 140);
  t.is(d.xipos().length, 42);
  for (const o of others) o.free();
  d.free();
  model.free();

  // <size memory="1M"/> is ample: drive the raw model hard (10× the ctrl range is clamped to it by MuJoCo)
  // through falls and self-contacts, and read MuJoCo's own high-water marks and overflow warnings
  const raw = rt.module;
  raw.FS.writeFile('/humanoid-memory-check.xml', readFileSync(new URL('../src/envs/models/humanoid.xml', import.meta.url), 'utf8'));
  const m = raw.MjModel.loadFromXML('/humanoid-memory-check.xml')!;
  const data = new raw.MjData(m);
  const uniform = seededUniform(1);
  for (let episode = 0; episode < 4; episode++) {
    raw.mj_resetData(m, data);
    for (let s = 0; s < 600; s++) {
      const ctrl = data.ctrl as Float64Array;
      for (let k = 0; k < 17; k++) ctrl[k] = 4 * (2 * uniform() - 1);
      raw.mj_step(m, data);
    }
  }
  const warnings = [raw.mjtWarning.mjWARN_CONTACTFULL.value, raw.mjtWarning.mjWARN_CNSTRFULL.value].map((w) => {
    const stat = data.warning.get(w)!;
    const n = stat.number;
    stat.delete();
    return n;
  });
  t.deepEqual(warnings, [0, 0], 'no contact or constraint overflow');
  t.true(data.maxuse_con > 2, `contacts happened: at most ${data.maxuse_con}`);
  t.true(Number(data.maxuse_arena) < Number(m.narena) / 4, `arena high-water mark ${data.maxuse_arena} of ${m.narena}`);
  data.delete();
  m.delete();
});

for (const key of ['humanoidFwdBack', 'humanoidRandDir'] as const) {
  test(`${key}: rewards equal 1.25·dir·Δcom/dt − 0.1‖a‖² − min(5e-7‖cfrc_ext‖², 10) + 5, observations the replayed 376-vectors`, async (t) => {
    const all = await distributions;
    const dist = all[key];
    const tasks: readonly (HumanoidDirTask | HumanoidDir2dTask)[] =
      key === 'humanoidFwdBack' ? [{ direction: 1 }, { direction: -1 }] : all.humanoidRandDir.sampleTasks(seededUniform(4), 2);
    const dirOf = (task: HumanoidDirTask | HumanoidDir2dTask): [number, number] =>
      typeof task.direction === 'number' ? [task.direction, 0] : [task.direction[0], task.direction[1]];
    const env = (dist.make as (tasks: readonly unknown[]) => ReturnType<typeof all.humanoidFwdBack.make>)(tasks);
    const model = all.runtime.loadModel(HUMANOID.modelFile);
    const dt = frameSkip * model.timestep;
    const obs0 = env.reset(seededUniform(3));
    t.is(obs0.length, tasks.length * observationDim);
    const replicas = tasks.map(() => model.createData());
    replayReset(replicas, seededUniform(3), HUMANOID_RESET);
    replicas.forEach((d, i) => t.deepEqual(Array.from(obs0.subarray(i * observationDim, (i + 1) * observationDim)), observation(d)));
    let sawContact = false;
    let sawDone = false;
    const ended = tasks.map(() => false);
    for (const actions of scripted(tasks.length, 40)) {
      const r = env.step(actions);
      replicas.forEach((d, i) => {
        if (ended[i]) {
          t.is(r.rewards[i], 0);
          t.is(r.dones[i], 1);
          t.deepEqual(Array.from(r.observations.subarray(i * observationDim, (i + 1) * observationDim)), observation(d), 'observation repeated');
          return;
        }
        const s = replayStep(model, d, actions, i);
        if (s.impact > 0) sawContact = true;
        const [dx, dy] = dirOf(tasks[i]!);
        const expected = (1.25 * (dx * (s.x1 - s.x0) + dy * (s.y1 - s.y0))) / dt - 0.1 * s.squared - s.contact + 5;
        t.true(closeTo(r.rewards[i]!, expected), `row ${i}: ${r.rewards[i]} vs ${expected}`);
        t.deepEqual(Array.from(r.observations.subarray(i * observationDim, (i + 1) * observationDim)), observation(d));
        ended[i] = !(s.z >= 1 && s.z <= 2);
        if (ended[i]) sawDone = true;
        t.is(r.dones[i], ended[i] ? 1 : 0, `row ${i}: z ${s.z}`);
      });
    }
    t.true(sawContact, 'the contact cost was exercised');
    t.true(sawDone, 'a termination was exercised');
    for (const d of replicas) d.free();
    model.free();
    env.free();
  });
}

test('a terminated environment (torso below 1 m) reports done, stays done with reward 0, until reset', async (t) => {
  const { humanoidRandDir: dist } = await distributions;
  const env = dist.make(dist.sampleTasks(seededUniform(2), 2));
  env.reset(seededUniform(3));
  // with no torque the humanoid collapses: its torso falls below 1 m within a few dozen steps
  const firstDone = [-1, -1];
  const frozen: (number[] | undefined)[] = [undefined, undefined];
  for (let s = 0; s < 60; s++) {
    const r = env.step(new Float32Array(2 * actionDim));
    for (let i = 0; i < 2; i++) {
      const obs = Array.from(r.observations.subarray(i * observationDim, (i + 1) * observationDim));
      const z = obs[0]!; // the observation starts with qpos[2], the torso height
      if (firstDone[i]! >= 0) {
        t.is(r.dones[i], 1, `row ${i} stays done at step ${s}`);
        t.is(r.rewards[i], 0);
        t.deepEqual(obs, frozen[i]);
      } else if (r.dones[i] === 1) {
        firstDone[i] = s;
        frozen[i] = obs;
        t.true(z < 1, `row ${i} done at z ${z}`);
        t.not(r.rewards[i], 0, 'the terminating step still earns its reward');
      } else {
        t.true(z >= 1 && z <= 2, `row ${i} not done at z ${z}`);
        t.not(r.rewards[i], 0, 'a live row earns its reward');
      }
    }
  }
  t.true(firstDone.every((s) => s > 0), `terminated at steps ${firstDone.join(', ')}`);
  env.reset(seededUniform(3));
  t.deepEqual(Array.from(env.step(new Float32Array(2 * actionDim)).dones), [0, 0], 'reset clears done');
  env.free();
  t.throws(() => env.reset(seededUniform(1)), { message: /after free/ });
});

test('task sampling: fwd-back ±1 balanced; rand-dir unit vectors with angles uniform on the circle; seeded', async (t) => {
  const { humanoidFwdBack, humanoidRandDir } = await distributions;
  const fb = humanoidFwdBack.sampleTasks(seededUniform(9), 400).map((task) => task.direction);
  t.true(fb.every((d) => d === 1 || d === -1));
  const plus = fb.filter((d) => d === 1).length;
  // binomial(400, ½): standard deviation 10, 4σ bound
  t.true(Math.abs(plus - 200) < 40, `${plus} of 400 forward`);

  const n = 2000;
  const dirs = humanoidRandDir.sampleTasks(seededUniform(7), n).map((task) => task.direction);
  t.true(dirs.every(([x, y]) => Math.abs(Math.hypot(x, y) - 1) < 1e-12));
  const angles = dirs.map(([x, y]) => (Math.atan2(y, x) + 2 * Math.PI) % (2 * Math.PI)).sort((a, b) => a - b);
  // Kolmogorov–Smirnov against U[0, 2π): D < 1.95/√n is the 0.1 % critical value
  let ks = 0;
  angles.forEach((a, k) => {
    const f = a / (2 * Math.PI);
    ks = Math.max(ks, Math.abs((k + 1) / n - f), Math.abs(k / n - f));
  });
  t.true(ks < 1.95 / Math.sqrt(n), `KS statistic ${ks}`);
  // eight equal sectors: χ² with 7 degrees of freedom below its 0.1 % critical value 24.3
  const bins = new Array<number>(8).fill(0);
  for (const a of angles) bins[Math.min(7, Math.floor((a / (2 * Math.PI)) * 8))]! += 1;
  const chi2 = bins.reduce((s, c) => s + (c - n / 8) ** 2 / (n / 8), 0);
  t.true(chi2 < 24.3, `sector counts ${bins.join(',')}: χ² ${chi2}`);

  t.deepEqual(humanoidRandDir.sampleTasks(seededUniform(10), 5), humanoidRandDir.sampleTasks(seededUniform(10), 5));
  t.deepEqual(humanoidRandDir.describeTask({ direction: [0, 1] }), { direction: [0, 1] });
  t.throws(() => humanoidRandDir.make([{ direction: [1, 1] }]), { message: /humanoid-rand-dir: task 0 .* unit vector/ });
  t.throws(() => humanoidFwdBack.make([{ direction: 2 as 1 }]), { message: /humanoid-fwd-back: task 0 .* expected 1 or −1/ });
  t.is(humanoidContactCost([1e4, 0, 0]), 10, 'the contact cost is capped at 10');
  t.true(closeTo(humanoidContactCost([1000, 0, 2000]), 5e-7 * 5e6));
});

test('reset is deterministic for a seed, and differs across seeds', async (t) => {
  const { humanoidFwdBack: dist } = await distributions;
  const tasks = dist.sampleTasks(seededUniform(1), 2);
  checkDeterministicReset(t, () => dist.make(tasks), scripted(2, 5));
});

test('the humanoid environments are wired into the environment list and load by name', async (t) => {
  for (const name of ['humanoid-fwd-back', 'humanoid-rand-dir']) {
    const d = environmentDescriptor(name);
    t.is(d.observationDim, 376);
    t.deepEqual(d.action, { kind: 'continuous', dim: 17, low: -0.4, high: 0.4 });
    t.is(d.horizon, 200);
    t.is(d.adaptationSteps, 1);
  }
  t.deepEqual([...HUMANOID.hiddenSizes], [128, 128]);
  const dist = await loadTaskDistribution('humanoid-rand-dir');
  t.is(dist.name, 'humanoid-rand-dir');
  t.is(dist.observationDim, 376);
  t.is(dist.description, environmentDescriptor('humanoid-rand-dir').description);
  const env = dist.make(dist.sampleTasks(seededUniform(1), 1));
  t.is(env.reset(seededUniform(1)).length, 376);
  (env as { free?: () => void }).free?.();
});

test('a NaN action is refused, naming the environment, row and step', async (t) => {
  const { humanoidRandDir: dist } = await distributions;
  const env = dist.make(dist.sampleTasks(seededUniform(1), 2));
  env.reset(seededUniform(1));
  env.step(new Float32Array(2 * actionDim));
  const bad = new Float32Array(2 * actionDim);
  bad[actionDim + 3] = Number.NaN;
  t.throws(() => env.step(bad), { message: /humanoid-rand-dir: action NaN at row 1, coordinate 3 .* on step 1/ });
  env.free();
});
