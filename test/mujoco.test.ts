import { readFileSync } from 'node:fs';
import test from 'ava';
import { HALF_CHEETAH, mujocoTaskDistributions, type HalfCheetahDirTask, type HalfCheetahVelTask } from '../src/envs/mujoco/half-cheetah.ts';
import { createMujocoRuntime } from '../src/envs/mujoco/runtime.ts';
import { seededUniform } from '../src/random.ts';
import { resolveConfig } from '../src/meta/config.ts';
import { checkDeterministicReset, replayReset, scriptedActions } from './helpers/mujoco.ts';

const load = createMujocoRuntime();
const distributions = mujocoTaskDistributions(load);

const { frameSkip, ctrlCostWeight, observationDim, actionDim } = HALF_CHEETAH;

/** Scripted actions: rows × steps, some beyond [−1, 1] to exercise clipping. */
const scripted = (rows: number, steps: number): Float32Array[] => scriptedActions(rows, actionDim, steps);

test('runtime: the loader is memoised and the model has the expected sizes', async (t) => {
  t.is(await load(), await load());
  const rt = await load();
  const model = rt.loadModel(HALF_CHEETAH.modelFile);
  t.is(model.nq, 9);
  t.is(model.nv, 9);
  t.is(model.nu, 6);
  t.is(model.timestep, 0.01);
  // <size memory="1M"/>: each MjData reserves about 1 MiB (MuJoCo's default can reserve ~13.6 MB)
  t.true(model.bytesPerData > 1 << 20 && model.bytesPerData < 1.2 * (1 << 20), `${model.bytesPerData} bytes per MjData`);
  const xml = readFileSync(new URL('../src/envs/models/half_cheetah.xml', import.meta.url), 'utf8');
  const withoutSize = rt.loadModelFromXml('no-size', xml.replace(/^ *<size memory="1M"\/>\s*$/m, ''));
  t.true(withoutSize.bytesPerData > 10e6, `without <size>: ${withoutSize.bytesPerData} bytes per MjData`);
  withoutSize.free();
  // views stay usable after the heap grows (creating data grows it)
  const a = model.createData();
  a.reset();
  const before = a.qpos();
  const others = Array.from({ length: 20 }, () => model.createData());
  t.is(a.qpos().length, 9);
  t.true(before.length === 0 || before.length === 9);
  for (const d of others) d.free();
  a.free();
  model.free();
});

test('half-cheetah fwd-back: rewards equal dir·Δx/dt − 0.05‖clip(a)‖² computed from the states', async (t) => {
  const { halfCheetahFwdBack: dist, runtime } = await distributions;
  const tasks: HalfCheetahDirTask[] = [{ direction: 1 }, { direction: -1 }, { direction: 1 }];
  const env = dist.make(tasks);
  const model = runtime.loadModel(HALF_CHEETAH.modelFile);
  const dt = frameSkip * model.timestep;
  t.is(dt, 0.05);
  const obs0 = env.reset(seededUniform(3));
  t.is(obs0.length, tasks.length * observationDim);
  // x is not observed (obs = qpos[1:] ++ qvel); replay the same states in separate data to read x
  const replicas = tasks.map(() => model.createData());
  // the env's reset: qpos += 0.1·U(−1, 1), qvel += 0.1·N(0, 1)
  replayReset(replicas, seededUniform(3), { scale: 0.1, velocity: 'normal' });
  replicas.forEach((d, i) => {
    t.deepEqual(Array.from(obs0.subarray(i * observationDim, (i + 1) * observationDim)), [...Array.from(d.qpos().subarray(1)), ...Array.from(d.qvel())].map(Math.fround));
  });
  for (const actions of scripted(tasks.length, 8)) {
    const r = env.step(actions);
    replicas.forEach((d, i) => {
      const a = Array.from(actions.subarray(i * actionDim, (i + 1) * actionDim), (x) => Math.min(1, Math.max(-1, x)));
      d.setCtrl(a);
      const x0 = d.qpos()[0]!;
      d.step(frameSkip);
      const x1 = d.qpos()[0]!;
      const expected = tasks[i]!.direction * ((x1 - x0) / dt) - ctrlCostWeight * a.reduce((s, v) => s + v * v, 0);
      t.is(r.rewards[i], Math.fround(expected));
      t.deepEqual(Array.from(r.observations.subarray(i * observationDim, (i + 1) * observationDim)), [...Array.from(d.qpos().subarray(1)), ...Array.from(d.qvel())].map(Math.fround));
      t.is(r.dones[i], 0);
    });
  }
  for (const d of replicas) d.free();
  model.free();
  env.free();
});

test('half-cheetah rand-vel: rewards equal −|Δx/dt − v*| − 0.05‖a‖² (checked against fwd-back on the same states)', async (t) => {
  const { halfCheetahRandVel: dist, halfCheetahFwdBack } = await distributions;
  const tasks: HalfCheetahVelTask[] = [{ velocity: 0 }, { velocity: 2.5 }];
  const envVel = dist.make(tasks);
  const envDir = halfCheetahFwdBack.make([{ direction: 1 }, { direction: 1 }]);
  // same start for every row: zero-noise uniform (0.5 → qpos offset 0)
  envVel.reset(() => 0.5);
  envDir.reset(() => 0.5);
  for (const actions of scripted(2, 6)) {
    const rv = envVel.step(actions);
    const rd = envDir.step(actions);
    t.deepEqual(rv.observations, rd.observations);
    for (let i = 0; i < 2; i++) {
      const a = Array.from(actions.subarray(i * actionDim, (i + 1) * actionDim), (x) => Math.min(1, Math.max(-1, x)));
      const cost = ctrlCostWeight * a.reduce((s, v) => s + v * v, 0);
      const velocity = rd.rewards[i]! + cost; // dir = +1: forward reward = v
      t.true(Math.abs(rv.rewards[i]! - (-Math.abs(velocity - tasks[i]!.velocity) - cost)) < 1e-4);
    }
  }
  envVel.free();
  envDir.free();
});

test('task sampling: directions ±1 both present, velocities within [0, 3], seeded', async (t) => {
  const { halfCheetahFwdBack, halfCheetahRandVel } = await distributions;
  const dirs = halfCheetahFwdBack.sampleTasks(seededUniform(7), 200).map((task) => task.direction);
  t.true(dirs.every((d) => d === 1 || d === -1));
  const plus = dirs.filter((d) => d === 1).length;
  t.true(plus > 60 && plus < 140, `${plus} of 200 forward`);
  const vels = halfCheetahRandVel.sampleTasks(seededUniform(7), 500).map((task) => task.velocity);
  t.true(vels.every((v) => v >= 0 && v <= 3));
  t.true(Math.min(...vels) < 0.1 && Math.max(...vels) > 2.9);
  t.deepEqual(halfCheetahRandVel.sampleTasks(seededUniform(9), 5), halfCheetahRandVel.sampleTasks(seededUniform(9), 5));
  t.deepEqual(halfCheetahRandVel.describeTask({ velocity: 1.5 }), { velocity: 1.5 });
  t.is(halfCheetahFwdBack.observationDim, 17);
  t.deepEqual(halfCheetahFwdBack.action, { kind: 'continuous', dim: 6, low: -1, high: 1 });
  t.is(halfCheetahFwdBack.horizon, 100);
});

test('reset is deterministic for a seed, and differs across seeds', async (t) => {
  const { halfCheetahFwdBack: dist } = await distributions;
  const tasks = dist.sampleTasks(seededUniform(1), 4);
  checkDeterministicReset(t, () => dist.make(tasks), scripted(4, 5));
});

test('a NaN action is refused, naming the environment, row and step', async (t) => {
  const { halfCheetahFwdBack: dist } = await distributions;
  const env = dist.make([{ direction: 1 }, { direction: -1 }]);
  t.throws(() => env.step(new Float32Array(12)), { message: /before reset/ });
  env.reset(seededUniform(1));
  env.step(new Float32Array(12));
  const bad = new Float32Array(12);
  bad[8] = Number.NaN;
  t.throws(() => env.step(bad), { message: /half-cheetah-fwd-back: action NaN at row 1, coordinate 2 .*direction.*-1.* on step 1/ });
  t.throws(() => env.step(new Float32Array(5)), { message: /expected 12 action values/ });
  env.free();
  t.throws(() => env.reset(seededUniform(1)), { message: /after free/ });
  t.throws(() => dist.make([{ direction: 0 as unknown as 1 }]), { message: /direction/ });
});

test("a malformed model reports MuJoCo's own message", async (t) => {
  const rt = await load();
  t.throws(() => rt.loadModelFromXml('broken', '<mujoco><worldbody><body></worldbody></mujoco>'), {
    message: /broken failed to load: .*XML parse error/s,
  });
  t.throws(() => rt.loadModelFromXml('bad-attr', '<mujoco><worldbody><body><geom type="box" size="a b"/></body></worldbody></mujoco>'), {
    message: /bad-attr failed to load: XML Error: bad format in attribute 'size'/,
  });
  t.throws(() => rt.loadModel('no_such_model.xml'), { message: /no_such_model/ });
  // the runtime still works afterwards
  const m = rt.loadModel(HALF_CHEETAH.modelFile);
  t.is(m.nu, 6);
  m.free();
});

test('memory: 200 environments fit (size memory="1M") and step', async (t) => {
  const { halfCheetahRandVel: dist } = await distributions;
  const tasks = dist.sampleTasks(seededUniform(5), 200);
  const env = dist.make(tasks);
  const obs = env.reset(seededUniform(5));
  t.is(obs.length, 200 * observationDim);
  const actions = Float32Array.from({ length: 200 * actionDim }, (_, k) => Math.sin(k));
  for (let s = 0; s < 3; s++) {
    const r = env.step(actions);
    t.true(r.rewards.every(Number.isFinite));
    t.true(r.observations.every(Number.isFinite));
  }
  env.free();
  // a second batch after freeing reuses the memory
  const again = dist.make(tasks);
  again.reset(seededUniform(5));
  again.free();
  t.pass();
});

test('ProMP trains on half-cheetah-fwd-back through train(): the MuJoCo runtime loads on demand', async (t) => {
  const { train } = await import('../src/meta/train.ts');
  const { resolveConfig } = await import('../src/meta/config.ts');
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const parent = mkdtempSync(join(tmpdir(), 'magicbox-cheetah-'));
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  const runDir = join(parent, 'run');
  const lines: string[] = [];
  const result = await train({
    config: resolveConfig({ algo: 'promp', env: 'half-cheetah-fwd-back', iterations: 2, tasksPerIteration: 2, trajectoriesPerTask: 2, horizon: 10, hidden: [8] }),
    runDir,
    log: (line) => lines.push(line),
    progress: 'lines',
  });
  t.is(result.outcome, 'completed', result.message);
  const rows = readFileSync(join(runDir, 'progress.csv'), 'utf8').trim().split('\n');
  t.is(rows.length, 3, 'a header and two iterations');
  t.regex(rows[0]!, /^iteration,timesteps,return_0,return_1,/);
  t.true(lines.some((l) => /training promp on half-cheetah-fwd-back/.test(l)));
});

test('the environment list names the MuJoCo environments, and an unknown name lists them all', async (t) => {
  const { environmentNames, loadTaskDistribution, environmentDescriptor } = await import('../src/envs/index.ts');
  t.deepEqual(environmentNames, ['point-corners', 'point-1d', 'nav-2d', 'point-momentum', 'half-cheetah-fwd-back', 'half-cheetah-rand-vel', 'ant-fwd-back', 'ant-rand-dir', 'ant-rand-goal', 'walker-fwd-back', 'walker2d-rand-params', 'hopper-rand-params', 'humanoid-fwd-back', 'humanoid-rand-dir']);
  t.is(environmentDescriptor('half-cheetah-rand-vel').observationDim, 17);
  await t.throwsAsync(loadTaskDistribution('humanoid-nope'), { message: /unknown environment 'humanoid-nope'; valid: point-corners, point-1d, nav-2d, point-momentum, half-cheetah-fwd-back, half-cheetah-rand-vel, ant-fwd-back, ant-rand-dir, ant-rand-goal, walker-fwd-back, walker2d-rand-params, hopper-rand-params, humanoid-fwd-back, humanoid-rand-dir$/ });
  // The humanoid's paper policy is (128, 128); the others keep (64, 64) unless the config says otherwise.
  t.deepEqual(resolveConfig({ env: 'humanoid-rand-dir' }).hidden, [128, 128]);
  t.deepEqual(resolveConfig({ env: 'humanoid-rand-dir' }, { hidden: [32] }).hidden, [32]);
  t.deepEqual(resolveConfig({ env: 'half-cheetah-fwd-back' }).hidden, [64, 64]);
});
