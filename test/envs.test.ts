import test from 'ava';
import {
  NAV_2D,
  POINT_1D,
  POINT_CORNERS,
  nav2d,
  point1d,
  pointCorners,
  taskDistribution,
  taskDistributionNames,
  taskDistributions,
  type AnyTaskDistribution,
  type Nav2dTask,
  type PointCornersTask,
} from '../src/envs/index.ts';
import { seededUniform } from '../src/random.ts';

const f32 = Math.fround;
const clip = (a: number, bound: number): number => Math.min(bound, Math.max(-bound, a));
const all: readonly AnyTaskDistribution[] = [pointCorners, point1d, nav2d];

/** Steps `env` with `actions` ([steps][rows × dim]) and returns the observations before each step and the results. */
const rollout = (dist: AnyTaskDistribution, tasks: readonly unknown[], actions: readonly (readonly number[])[], seed = 1) => {
  const env = dist.make(tasks);
  const observations = [env.reset(seededUniform(seed))];
  const rewards: Float32Array[] = [];
  const dones: Uint8Array[] = [];
  for (const a of actions) {
    const r = env.step(Float32Array.from(a));
    observations.push(r.observations);
    rewards.push(r.rewards);
    dones.push(r.dones);
  }
  return { observations, rewards, dones };
};

// ---------------------------------------------------------------- registry

test('registry: names, keys and the paper settings', (t) => {
  t.deepEqual([...taskDistributionNames], ['point-corners', 'point-1d', 'nav-2d', 'point-momentum']);
  for (const [key, dist] of Object.entries(taskDistributions)) {
    t.is(dist.name, key);
    t.is(taskDistribution(key), dist);
    t.is(dist.action.kind, 'continuous');
  }
  t.true(Object.isFrozen(taskDistributions));
  t.deepEqual(
    all.map((d) => [d.observationDim, d.horizon, d.adaptationSteps]),
    [
      [2, 100, 3],
      [1, 20, 1],
      [2, 100, 1],
    ],
  );
});

test('registry: an unknown name lists the valid ones', (t) => {
  t.throws(() => taskDistribution('x'), { message: "unknown environment 'x'; valid: point-corners, point-1d, nav-2d, point-momentum" });
  t.throws(() => taskDistribution('toString'), { message: /unknown environment 'toString'/ });
});

// ---------------------------------------------------------------- point-corners

test('point-corners: a scripted rollout follows x ← x + clip(a) and the quadrant-sparse progress reward', (t) => {
  const { corner: c, startRegion, startSpread, maxAction } = POINT_CORNERS;
  const tasks = pointCorners.sampleTasks(seededUniform(3), 64);
  const byCorner = [0, 1, 2, 3].map((k) => tasks.find((task) => task.corner === k)!);
  // rows: toward its goal (c, c) at full speed (clipped from 0.5); toward (c, c) while its goal is (−c, c)
  // (wrong quadrant); idle in the start region; toward its goal (c, −c) slowly
  const goalsRows: PointCornersTask[] = [byCorner[3]!, byCorner[2]!, byCorner[0]!, byCorner[1]!];
  const steps = 30;
  const actions = Array.from({ length: steps }, () => [0.5, 0.5, 0.3, 0.3, 0, 0, 0.05, -0.04]);
  const { observations, rewards, dones } = rollout(pointCorners, goalsRows, actions);
  for (const x of observations[0]!) t.true(Math.abs(x) <= startSpread);
  const corners = [[-c, -c], [c, -c], [-c, c], [c, c]];
  let positive = 0;
  for (let s = 0; s < steps; s++) {
    const before = observations[s]!;
    const after = observations[s + 1]!;
    for (let i = 0; i < 4; i++) {
      for (let k = 0; k < 2; k++) t.is(after[2 * i + k], f32(before[2 * i + k]! + clip(f32(actions[s]![2 * i + k]!), maxAction)));
      const [gx, gy] = goalsRows[i]!.goal;
      const [x, y] = [after[2 * i]!, after[2 * i + 1]!];
      const d = Math.hypot(x - gx, y - gy);
      const nearest = Math.min(...corners.map(([cx, cy]) => Math.hypot(x - cx!, y - cy!)));
      const expected = Math.abs(x) + Math.abs(y) < startRegion || nearest < d ? 0 : Math.hypot(before[2 * i]! - gx, before[2 * i + 1]! - gy) - d;
      if (expected > 0) positive++;
      t.true(Math.abs(rewards[s]![i]! - expected) < 1e-6, `step ${s} row ${i}: ${rewards[s]![i]} vs ${expected}`);
    }
    t.deepEqual([...dones[s]!], [0, 0, 0, 0]);
  }
  t.true(positive > 0, 'the rollout earns progress reward');
  t.true(rewards.every((r) => r[1] === 0 && r[2] === 0), 'wrong quadrant and start region earn nothing');
  t.true(rewards[5]![0]! > 0.2, 'full speed toward the goal earns ≈ 0.28 per step');
});

test('point-corners: each corner is sampled with frequency ≈ 1/4', (t) => {
  const n = 40_000;
  const tasks = pointCorners.sampleTasks(seededUniform(7), n);
  t.is(tasks.length, n);
  const counts = [0, 0, 0, 0];
  const c = POINT_CORNERS.corner;
  const expectedGoals = [
    [-c, -c],
    [c, -c],
    [-c, c],
    [c, c],
  ];
  for (const task of tasks) {
    counts[task.corner]!++;
    t.deepEqual([...task.goal], expectedGoals[task.corner]);
  }
  // standard error of a frequency: sqrt(0.25·0.75/n) ≈ 0.0022
  for (const k of counts) t.true(Math.abs(k / n - 0.25) < 0.01, `counts ${counts}`);
  t.deepEqual(pointCorners.describeTask(tasks[0]!), { corner: tasks[0]!.corner, goal: [...tasks[0]!.goal] });
  t.deepEqual(JSON.parse(JSON.stringify(pointCorners.describeTask(tasks[0]!))), pointCorners.describeTask(tasks[0]!));
});

// ---------------------------------------------------------------- point-1d

test('point-1d: a scripted rollout from random starts follows x ← x + clip(a) and r = −|x − g|', (t) => {
  const { startLow, startHigh, maxAction } = POINT_1D;
  const tasks = [{ goal: 1 }, { goal: -1 }, { goal: 1 }];
  const steps = 20;
  const actions = Array.from({ length: steps }, (_, s) => [0.7, -0.05 * Math.cos(s), -1e9]);
  const { observations, rewards, dones } = rollout(point1d, tasks, actions, 11);
  for (const x of observations[0]!) t.true(x >= startLow && x <= startHigh);
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < 3; i++) {
      const x = observations[s + 1]![i]!;
      t.is(x, f32(observations[s]![i]! + clip(f32(actions[s]![i]!), maxAction)));
      t.true(Math.abs(rewards[s]![i]! + Math.abs(x - tasks[i]!.goal)) < 1e-6);
    }
    t.deepEqual([...dones[s]!], [0, 0, 0]);
  }
  t.true(Math.abs(observations[steps]![0]! - (observations[0]![0]! + steps * maxAction)) < 1e-5);
});

test('point-1d: goals are only −1 and +1, about half each', (t) => {
  const n = 20_000;
  const goals = point1d.sampleTasks(seededUniform(5), n).map((task) => task.goal);
  t.deepEqual([...new Set(goals)].sort(), [-1, 1]);
  const plus = goals.filter((g) => g === 1).length;
  t.true(Math.abs(plus / n - 0.5) < 0.015, `${plus} of ${n}`);
  t.deepEqual(point1d.describeTask({ goal: -1 }), { goal: -1 });
});

test('point-1d: reset draws starts uniform in [−2, 2] from the uniform it is given', (t) => {
  const n = 20_000;
  const env = point1d.make(Array.from({ length: n }, () => ({ goal: 1 })));
  const x = env.reset(seededUniform(9));
  t.is(x.length, n);
  let mean = 0;
  for (const v of x) {
    t.true(v >= POINT_1D.startLow && v <= POINT_1D.startHigh);
    mean += v / n;
  }
  t.true(Math.abs(mean) < 0.05, `mean ${mean}`); // standard error 4/√12/√n ≈ 0.008
});

// ---------------------------------------------------------------- nav-2d

test('nav-2d: a scripted rollout follows x ← x + clip(a) and r = −‖x − g‖₂', (t) => {
  const { maxAction } = NAV_2D;
  const tasks = nav2d.sampleTasks(seededUniform(21), 3);
  const steps = 12;
  const actions = Array.from({ length: steps }, (_, s) => [0.02, -0.3, -0.2, 0.07, 0.01 * s, 0.01 * (6 - s)]);
  const { observations, rewards } = rollout(nav2d, tasks, actions);
  t.deepEqual([...observations[0]!], [0, 0, 0, 0, 0, 0]);
  for (let s = 0; s < steps; s++) {
    const before = observations[s]!;
    const after = observations[s + 1]!;
    for (let i = 0; i < 3; i++) {
      for (let k = 0; k < 2; k++) t.is(after[2 * i + k], f32(before[2 * i + k]! + clip(f32(actions[s]![2 * i + k]!), maxAction)));
      const [gx, gy] = tasks[i]!.goal;
      const d = Math.hypot(after[2 * i]! - gx, after[2 * i + 1]! - gy);
      t.true(Math.abs(rewards[s]![i]! + d) < 1e-6);
    }
  }
});

test('nav-2d: goals are uniform in [−0.5, 0.5]²', (t) => {
  const n = 20_000;
  const tasks = nav2d.sampleTasks(seededUniform(13), n);
  const r = NAV_2D.goalRange;
  const mean = [0, 0];
  const meanSquare = [0, 0];
  const bins = new Array<number>(10).fill(0);
  for (const { goal } of tasks) {
    for (let k = 0; k < 2; k++) {
      const g = goal[k]!;
      t.true(g >= -r && g <= r);
      t.is(g, f32(g));
      mean[k]! += g / n;
      meanSquare[k]! += (g * g) / n;
      bins[Math.min(9, Math.floor(((g + r) / (2 * r)) * 10))]!++;
    }
  }
  // standard errors: mean 0.29/√n ≈ 0.002, second moment ≈ 0.0005, bin frequency ≈ 0.0015
  for (let k = 0; k < 2; k++) {
    t.true(Math.abs(mean[k]!) < 0.01, `mean ${mean}`);
    t.true(Math.abs(meanSquare[k]! - 1 / 12) < 0.004, `E[g²] ${meanSquare}`);
  }
  for (const b of bins) t.true(Math.abs(b / (2 * n) - 0.1) < 0.01, `bins ${bins}`);
});

test('nav-2d: an environment that reaches its goal is done and stays put with zero reward until reset', (t) => {
  const goal = f32(0.05);
  const tasks: Nav2dTask[] = [{ goal: [goal, 0] }, { goal: [0.45, 0.45] }];
  const env = nav2d.make(tasks);
  env.reset(seededUniform(1));
  const first = env.step(Float32Array.from([0.05, 0, 0.1, 0.1]));
  t.deepEqual([...first.dones], [1, 0]);
  t.is(first.rewards[0], -0); // the arriving step earns −distance (here 0)
  const x1 = first.observations.slice();
  let previous: Float32Array = x1;
  for (let s = 0; s < 3; s++) {
    const r = env.step(Float32Array.from([0.1, -0.1, 0.1, 0.1]));
    t.deepEqual([...r.dones], [1, 0]);
    t.is(r.rewards[0], 0);
    t.is(r.observations[0], x1[0]);
    t.is(r.observations[1], x1[1]);
    // the other row keeps moving and earning −distance
    t.is(r.observations[2], f32(previous[2]! + f32(0.1)));
    t.true(Math.abs(r.rewards[1]! + Math.hypot(r.observations[2]! - f32(0.45), r.observations[3]! - f32(0.45))) < 1e-6);
    previous = r.observations;
  }
  // the caller's copies are not aliased to the environment's state
  t.is(first.dones[0], 1);
  t.is(first.observations[0], x1[0]);
  const restart = env.reset(seededUniform(1));
  t.deepEqual([...restart], [0, 0, 0, 0]);
  const again = env.step(Float32Array.from([0.01, 0, 0, 0]));
  t.deepEqual([...again.dones], [0, 0]);
  t.is(again.observations[0], f32(0.01));
});

// ---------------------------------------------------------------- all environments

test('same seed, same tasks and reset states; another seed, others', (t) => {
  for (const dist of all) {
    const tasksA = dist.sampleTasks(seededUniform(42), 16);
    const tasksB = dist.sampleTasks(seededUniform(42), 16);
    t.deepEqual(tasksA.map(dist.describeTask), tasksB.map(dist.describeTask), dist.name);
    const other = dist.sampleTasks(seededUniform(43), 16);
    t.notDeepEqual(tasksA.map(dist.describeTask), other.map(dist.describeTask), dist.name);
    const envA = dist.make(tasksA);
    const envB = dist.make(tasksB);
    const x0 = envA.reset(seededUniform(99));
    t.is(x0.length, 16 * dist.observationDim);
    t.deepEqual(x0, envB.reset(seededUniform(99)), dist.name);
    const dim = dist.action.kind === 'continuous' ? dist.action.dim : 1;
    const actions = Float32Array.from({ length: 16 * dim }, (_, k) => Math.sin(k));
    t.deepEqual(envA.step(actions), envB.step(actions), dist.name);
  }
  // point-1d's starts depend on the reset seed
  const env = point1d.make([{ goal: 1 }, { goal: -1 }]);
  t.notDeepEqual(env.reset(seededUniform(1)), env.reset(seededUniform(2)));
});

test('a NaN or infinite action is refused with the environment, row, task and step named; the state is untouched', (t) => {
  for (const dist of all) {
    const tasks = dist.sampleTasks(seededUniform(8), 3);
    const env = dist.make(tasks);
    const x0 = env.reset(seededUniform(8));
    const dim = dist.action.kind === 'continuous' ? dist.action.dim : 1;
    const ok = new Float32Array(3 * dim).fill(0.01);
    env.step(ok);
    env.step(ok);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const actions = ok.slice();
      actions[2 * dim] = bad; // row 2
      const error = t.throws(() => env.step(actions), undefined, dist.name);
      t.true(error!.message.startsWith(`${dist.name}: action ${bad} at row 2`), error!.message);
      t.true(error!.message.includes(JSON.stringify(dist.describeTask(tasks[2]))), error!.message);
      t.true(error!.message.includes('step 2'), error!.message);
    }
    // the refused steps neither moved anything nor counted
    const next = env.step(ok);
    for (let k = 0; k < x0.length; k++) t.true(Math.abs(next.observations[k]! - (x0[k]! + 0.03)) < 1e-6, dist.name);
    const nan = ok.slice();
    nan[0] = Number.NaN;
    t.throws(() => env.step(nan), { message: /row 0.* step 3 / });
  }
});

test('wrong action length, stepping before reset and bad task counts are clear errors', (t) => {
  for (const dist of all) {
    const env = dist.make(dist.sampleTasks(seededUniform(4), 2));
    const dim = dist.action.kind === 'continuous' ? dist.action.dim : 1;
    t.throws(() => env.step(new Float32Array(2 * dim)), { message: `${dist.name}: step() called before reset()` });
    env.reset(seededUniform(4));
    t.throws(() => env.step(new Float32Array(2 * dim + 1)), {
      message: new RegExp(`^${dist.name}: expected ${2 * dim} action values \\(\\[2 × ${dim}\\].*got ${2 * dim + 1}$`),
    });
    t.throws(() => env.step(new Float32Array(0)), { message: /expected .* got 0$/ });
    t.throws(() => dist.sampleTasks(seededUniform(4), -1), { message: new RegExp(`^${dist.name}: task count`) });
    t.throws(() => dist.sampleTasks(seededUniform(4), 1.5), { message: new RegExp(`^${dist.name}: task count`) });
    t.deepEqual(dist.sampleTasks(seededUniform(4), 0), []);
  }
  t.throws(() => nav2d.make([{ goal: [Number.NaN, 0] }]), { message: /nav-2d: task 0 has a non-finite goal/ });
});
