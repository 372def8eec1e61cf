import test from 'ava';
import { ANT, antContactCost, antTaskDistributions, type AntDir2dTask, type AntDirTask, type AntGoalTask } from '../src/envs/mujoco/ant.ts';
import type { MujocoData } from '../src/envs/mujoco/runtime.ts';
import { createMujocoRuntime } from '../src/envs/mujoco/runtime.ts';
import { environmentDescriptor, loadTaskDistribution } from '../src/envs/index.ts';
import { seededUniform } from '../src/random.ts';
import { checkDeterministicReset, clip, closeTo, replayReset, scriptedActions } from './helpers/mujoco.ts';

const load = createMujocoRuntime();
const distributions = antTaskDistributions(load);

const { frameSkip, observationDim, actionDim } = ANT;

/** Scripted actions: rows × steps, some beyond [−1, 1] to exercise clipping. */
const scripted = (rows: number, steps: number, scale = 1.5): Float32Array[] => scriptedActions(rows, actionDim, steps, scale);

const clip1 = (x: number): number => clip(x, 1);

/** The observation computed from a replica's state: qpos[2:] ++ qvel ++ clip(cfrc_ext, −1, 1). */
const observation = (d: MujocoData): number[] =>
  [...Array.from(d.qpos().subarray(2)), ...Array.from(d.qvel()), ...Array.from(d.cfrcExt(), clip1)].map(Math.fround);

/** The env's reset: qpos += 0.1·U(−1, 1), qvel += 0.1·N(0, 1), contact forces computed. */
const ANT_RESET = { scale: 0.1, velocity: 'normal', contacts: true } as const;

/** One replica step: returns the clipped action's ‖a‖², xy before and after, and the contact cost. */
const replayStep = (d: MujocoData, actions: Float32Array, i: number) => {
  const a = Array.from(actions.subarray(i * actionDim, (i + 1) * actionDim), clip1);
  d.setCtrl(a);
  const x0 = d.qpos()[0]!;
  const y0 = d.qpos()[1]!;
  d.step(frameSkip);
  d.forward();
  d.rnePostConstraint();
  let contact = 0;
  for (const c of d.cfrcExt()) contact += clip1(c) ** 2;
  return { squared: a.reduce((s, v) => s + v * v, 0), x0, y0, x1: d.qpos()[0]!, y1: d.qpos()[1]!, z: d.qpos()[2]!, contact: 0.5e-3 * contact };
};

test('ant model: sizes, timestep, memory, and contact forces appear once the ant stands on the floor', async (t) => {
  const rt = await load();
  const model = rt.loadModel(ANT.modelFile);
  t.is(model.nq, 15);
  t.is(model.nv, 14);
  t.is(model.nu, 8);
  t.is(model.nbody, 14);
  t.is(model.timestep, 0.01);
  t.true(model.bytesPerData > 1 << 20 && model.bytesPerData < 1.2 * (1 << 20), `${model.bytesPerData} bytes per MjData`);
  const d = model.createData();
  d.reset();
  d.forward();
  d.rnePostConstraint();
  t.is(d.cfrcExt().length, 6 * 14);
  t.is(antContactCost(d.cfrcExt()), 0, 'in the air at the start: no contact');
  for (let s = 0; s < 30; s++) {
    d.setCtrl(new Float64Array(8));
    d.step(frameSkip);
  }
  d.forward();
  d.rnePostConstraint();
  const z = d.qpos()[2]!;
  t.true(z > 0.4 && z < 0.7, `resting height ${z}`);
  t.true(antContactCost(d.cfrcExt()) > 0, 'standing: contact forces are read');
  // views survive heap growth
  const others = Array.from({ length: 10 }, () => model.createData());
  t.is(d.cfrcExt().length, 84);
  for (const o of others) o.free();
  d.free();
  model.free();
});

test('ant-fwd-back: rewards equal dir·v_x − 0.5‖a‖² − contact + 1, observations equal the replayed states', async (t) => {
  const { antFwdBack: dist, runtime } = await distributions;
  const tasks: AntDirTask[] = [{ direction: 1 }, { direction: -1 }];
  const env = dist.make(tasks);
  const model = runtime.loadModel(ANT.modelFile);
  const dt = frameSkip * model.timestep;
  const obs0 = env.reset(seededUniform(3));
  t.is(obs0.length, tasks.length * observationDim);
  const replicas = tasks.map(() => model.createData());
  replayReset(replicas, seededUniform(3), ANT_RESET);
  replicas.forEach((d, i) => t.deepEqual(Array.from(obs0.subarray(i * observationDim, (i + 1) * observationDim)), observation(d)));
  let sawContact = false;
  const ended = tasks.map(() => false);
  for (const actions of scripted(tasks.length, 12, 0.6)) {
    const r = env.step(actions);
    replicas.forEach((d, i) => {
      if (ended[i]) {
        t.is(r.rewards[i], 0);
        t.is(r.dones[i], 1);
        return;
      }
      const s = replayStep(d, actions, i);
      if (s.contact > 0) sawContact = true;
      const expected = (tasks[i]!.direction * (s.x1 - s.x0)) / dt - 0.5 * s.squared - s.contact + 1;
      t.true(closeTo(r.rewards[i]!, expected), `row ${i}: ${r.rewards[i]} vs ${expected}`);
      t.deepEqual(Array.from(r.observations.subarray(i * observationDim, (i + 1) * observationDim)), observation(d));
      ended[i] = !(s.z >= 0.2 && s.z <= 1);
      t.is(r.dones[i], ended[i] ? 1 : 0, `row ${i}: z ${s.z}`);
    });
  }
  t.true(sawContact, 'the contact cost was exercised');
  for (const d of replicas) d.free();
  model.free();
  env.free();
});

test('ant-rand-dir: rewards equal dir·v_xy − 0.5‖a‖² − contact + 1', async (t) => {
  const { antRandDir: dist, runtime } = await distributions;
  const tasks = dist.sampleTasks(seededUniform(4), 3);
  const env = dist.make(tasks);
  const model = runtime.loadModel(ANT.modelFile);
  const dt = frameSkip * model.timestep;
  env.reset(seededUniform(5));
  const replicas = tasks.map(() => model.createData());
  replayReset(replicas, seededUniform(5), ANT_RESET);
  const ended = tasks.map(() => false);
  for (const actions of scripted(tasks.length, 10, 0.6)) {
    const r = env.step(actions);
    replicas.forEach((d, i) => {
      if (ended[i]) {
        t.is(r.rewards[i], 0);
        t.is(r.dones[i], 1);
        return;
      }
      const s = replayStep(d, actions, i);
      const [dx, dy] = tasks[i]!.direction;
      const expected = (dx * (s.x1 - s.x0) + dy * (s.y1 - s.y0)) / dt - 0.5 * s.squared - s.contact + 1;
      t.true(closeTo(r.rewards[i]!, expected), `row ${i}: ${r.rewards[i]} vs ${expected}`);
      t.deepEqual(Array.from(r.observations.subarray(i * observationDim, (i + 1) * observationDim)), observation(d));
      ended[i] = !(s.z >= 0.2 && s.z <= 1);
      t.is(r.dones[i], ended[i] ? 1 : 0, `row ${i}: z ${s.z}`);
    });
  }
  for (const d of replicas) d.free();
  model.free();
  env.free();
});

test('ant-rand-goal: rewards equal −‖xy − g‖₁ − 0.1‖a‖² − contact; horizon 200, 2 adaptation steps, never done', async (t) => {
  const { antRandGoal: dist, runtime } = await distributions;
  t.is(dist.horizon, 200);
  t.is(dist.adaptationSteps, 2);
  const tasks: AntGoalTask[] = [{ goal: [1, -2] }, { goal: [0, 0] }];
  const env = dist.make(tasks);
  const model = runtime.loadModel(ANT.modelFile);
  env.reset(seededUniform(6));
  const replicas = tasks.map(() => model.createData());
  replayReset(replicas, seededUniform(6), ANT_RESET);
  for (const actions of scripted(tasks.length, 10)) {
    const r = env.step(actions);
    replicas.forEach((d, i) => {
      const s = replayStep(d, actions, i);
      const [gx, gy] = tasks[i]!.goal;
      const expected = -(Math.abs(s.x1 - gx) + Math.abs(s.y1 - gy)) - 0.1 * s.squared - s.contact;
      t.true(closeTo(r.rewards[i]!, expected), `row ${i}: ${r.rewards[i]} vs ${expected}`);
      t.is(r.dones[i], 0);
    });
  }
  for (const d of replicas) d.free();
  model.free();
  env.free();
});

test('task sampling: directions uniform on the circle, goals in the disc of radius 3, fwd-back ±1, seeded', async (t) => {
  const { antFwdBack, antRandDir, antRandGoal } = await distributions;
  const n = 4000;
  const dirs = antRandDir.sampleTasks(seededUniform(7), n).map((task) => task.direction);
  t.true(dirs.every(([x, y]) => Math.abs(Math.hypot(x, y) - 1) < 1e-12));
  const meanCos = dirs.reduce((s, [x]) => s + x, 0) / n;
  const meanSin = dirs.reduce((s, [, y]) => s + y, 0) / n;
  // each mean has standard deviation √(½/n) ≈ 0.011: 4σ bound
  t.true(Math.abs(meanCos) < 0.045 && Math.abs(meanSin) < 0.045, `mean cos ${meanCos}, mean sin ${meanSin}`);
  // second moments: E[cos 2θ] = E[sin 2θ] = 0 for a uniform angle
  const meanCos2 = dirs.reduce((s, [x, y]) => s + x * x - y * y, 0) / n;
  const meanSin2 = dirs.reduce((s, [x, y]) => s + 2 * x * y, 0) / n;
  t.true(Math.abs(meanCos2) < 0.045 && Math.abs(meanSin2) < 0.045, `mean cos2θ ${meanCos2}, sin2θ ${meanSin2}`);
  // every quadrant is hit about equally
  const quadrants = [0, 0, 0, 0];
  for (const [x, y] of dirs) quadrants[(x >= 0 ? 0 : 1) + (y >= 0 ? 0 : 2)]! += 1;
  t.true(quadrants.every((q) => Math.abs(q - n / 4) < 150), `quadrants ${quadrants.join(',')}`);

  const goals = antRandGoal.sampleTasks(seededUniform(8), n).map((task) => task.goal);
  const radii = goals.map(([x, y]) => Math.hypot(x, y));
  t.true(radii.every((r) => r <= 3));
  t.true(Math.max(...radii) > 2.9);
  // uniform in the disc: P(r ≤ 1.5) = ¼
  const inner = radii.filter((r) => r <= 1.5).length / n;
  t.true(Math.abs(inner - 0.25) < 0.03, `fraction within 1.5: ${inner}`);
  t.true(Math.abs(goals.reduce((s, [x]) => s + x, 0) / n) < 0.1);
  t.true(Math.abs(goals.reduce((s, [, y]) => s + y, 0) / n) < 0.1);

  const fb = antFwdBack.sampleTasks(seededUniform(9), 200).map((task) => task.direction);
  t.true(fb.every((d) => d === 1 || d === -1));
  const plus = fb.filter((d) => d === 1).length;
  t.true(plus > 60 && plus < 140, `${plus} of 200 forward`);

  t.deepEqual(antRandDir.sampleTasks(seededUniform(10), 5), antRandDir.sampleTasks(seededUniform(10), 5));
  t.deepEqual(antRandGoal.sampleTasks(seededUniform(10), 5), antRandGoal.sampleTasks(seededUniform(10), 5));
  t.deepEqual(antRandGoal.describeTask({ goal: [1, 2] }), { goal: [1, 2] });
  t.throws(() => antRandDir.make([{ direction: [1, 1] } as AntDir2dTask]), { message: /unit vector/ });
  t.throws(() => antRandGoal.make([{ goal: [Number.NaN, 0] }]), { message: /non-finite goal/ });
});

test('reset is deterministic for a seed, and differs across seeds', async (t) => {
  const { antRandGoal: dist } = await distributions;
  const tasks = dist.sampleTasks(seededUniform(1), 3);
  checkDeterministicReset(t, () => dist.make(tasks), scripted(3, 5));
});

test('a terminated environment (torso height out of [0.2, 1]) reports done, stays done with reward 0, until reset', async (t) => {
  const { antFwdBack, antRandDir, antRandGoal } = await distributions;
  // full-torque sinusoidal actions make the ant hop: its torso rises above 1 m within a few steps
  for (const dist of [antFwdBack, antRandDir] as const) {
    const tasks = dist.sampleTasks(seededUniform(2), 2);
    const env = (dist.make as (tasks: readonly unknown[]) => ReturnType<typeof antFwdBack.make>)(tasks);
    env.reset(seededUniform(3));
    const firstDone = [-1, -1];
    const frozen: (number[] | undefined)[] = [undefined, undefined];
    for (const [s, actions] of scripted(2, 40).entries()) {
      const r = env.step(actions);
      for (let i = 0; i < 2; i++) {
        const obs = Array.from(r.observations.subarray(i * observationDim, (i + 1) * observationDim));
        if (firstDone[i]! >= 0) {
          t.is(r.dones[i], 1, `${dist.name} row ${i} stays done at step ${s}`);
          t.is(r.rewards[i], 0);
          t.deepEqual(obs, frozen[i]);
        } else if (r.dones[i] === 1) {
          firstDone[i] = s;
          frozen[i] = obs;
          const z = obs[0]!; // observation starts with qpos[2], the torso height
          t.true(z < 0.2 || z > 1, `${dist.name} row ${i} done at z ${z}`);
          t.not(r.rewards[i], 0, 'the terminating step still earns its reward');
        } else {
          const z = obs[0]!;
          t.true(z >= 0.2 && z <= 1, `${dist.name} row ${i} not done at z ${z}`);
        }
      }
    }
    t.true(firstDone.every((s) => s >= 0), `${dist.name}: terminated at steps ${firstDone.join(', ')}`);
    // reset clears the flags
    env.reset(seededUniform(3));
    const r = env.step(new Float32Array(2 * actionDim));
    t.deepEqual(Array.from(r.dones), [0, 0]);
    env.free();
  }
  // the goal task has no height termination
  const env = antRandGoal.make(antRandGoal.sampleTasks(seededUniform(2), 2));
  env.reset(seededUniform(3));
  for (const actions of scripted(2, 40)) t.deepEqual(Array.from(env.step(actions).dones), [0, 0]);
  env.free();
});

test('the ant environments are wired into the environment list and load by name', async (t) => {
  const d = environmentDescriptor('ant-rand-goal');
  t.is(d.observationDim, 111);
  t.is(d.horizon, 200);
  t.is(d.adaptationSteps, 2);
  t.deepEqual(environmentDescriptor('ant-fwd-back').action, { kind: 'continuous', dim: 8, low: -1, high: 1 });
  t.is(environmentDescriptor('ant-rand-dir').horizon, 100);
  for (const name of ['ant-fwd-back', 'ant-rand-dir', 'ant-rand-goal']) {
    const dist = await loadTaskDistribution(name);
    t.is(dist.name, name);
    t.is(dist.description, environmentDescriptor(name).description);
    t.is(dist.horizon, environmentDescriptor(name).horizon);
  }
});

test('a NaN action is refused, naming the environment, row and step', async (t) => {
  const { antRandGoal: dist } = await distributions;
  const env = dist.make([{ goal: [0, 1] }, { goal: [1, 0] }]);
  env.reset(seededUniform(1));
  const bad = new Float32Array(16);
  bad[9] = Number.NaN;
  t.throws(() => env.step(bad), { message: /ant-rand-goal: action NaN at row 1, coordinate 1 .* on step 0/ });
  env.free();
  t.throws(() => env.reset(seededUniform(1)), { message: /after free/ });
});
