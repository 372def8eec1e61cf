/**
 * The training run: run directory, progress logs, checkpoints and exact resume, failures, tensor
 * hygiene, and the `train` / `eval` commands. Tiny configs (point-1d / nav-2d, 2 tasks × 2
 * trajectories, horizon 10, hidden [8]) keep the whole file fast.
 */
import * as fs from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import test, { type ExecutionContext } from 'ava';
import { selectBackend, type BackendReport } from '../src/backend.ts';
import { resolveConfig, type TrainConfig, type TrainConfigPatch } from '../src/meta/config.ts';
import { runIteration, TrainingError } from '../src/meta/iteration.ts';
import {
  CheckpointError,
  completeConfig,
  csvColumns,
  evaluateCheckpoint,
  readCheckpoint,
  ResumeConflictError,
  RunError,
  runFiles,
  train,
  type ProgressRow,
  type TrainOptions,
} from '../src/meta/train.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/temp.ts';

let backend: BackendReport;
test.before(async () => {
  backend = await selectBackend('wasm');
});

const tiny = (patch: TrainConfigPatch = {}): TrainConfig =>
  resolveConfig({ algo: 'promp', env: 'point-1d', iterations: 4, tasksPerIteration: 2, trajectoriesPerTask: 2, horizon: 10, hidden: [8], checkpointEvery: 1, ...patch });

const newDir = async (t: ExecutionContext) => join(tempDir(t, 'magicbox-train-'), 'run');

const quiet = () => {
  const lines: string[] = [];
  return { lines, log: (line: string) => lines.push(line) };
};

const run = async (config: TrainConfig, runDir: string, more: Partial<TrainOptions> = {}) => {
  const out = quiet();
  // Sampling in this thread unless a test asks for workers (starting them costs ~1 s each).
  const result = await train({ config, runDir, log: out.log, progress: 'lines', backend, workers: 1, ...more });
  return { result, lines: out.lines };
};

const jsonlRows = (runDir: string): ProgressRow[] =>
  fs
    .readFileSync(runFiles(runDir).jsonl, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as ProgressRow);

const csvRows = (runDir: string): { header: string[]; rows: string[][] } => {
  const [header, ...rows] = fs.readFileSync(runFiles(runDir).csv, 'utf8').split('\n').filter((l) => l !== '');
  // The tests' fields hold no commas or quotes except lineSearch strings, which have none either.
  return { header: header!.split(','), rows: rows.map((r) => r.split(',')) };
};

/** The numbers a resumed run must reproduce exactly (timings and wall time excluded). */
const numbers = (rows: readonly ProgressRow[]) =>
  rows.map((r) => ({ iteration: r.iteration, timesteps: r.timesteps, averageReturn: r.averageReturn, objective: r.objective, kl: r.kl, lineSearch: r.lineSearch }));

// One uninterrupted 4-iteration ProMP run that several tests compare against.
let referenceDir: string | undefined;
test.after.always(() => {
  if (referenceDir !== undefined) fs.rmSync(referenceDir, { recursive: true, force: true });
});
let reference: Promise<{ runDir: string; rows: ProgressRow[] }> | undefined;
const referenceRun = () =>
  (reference ??= (async () => {
    referenceDir = fs.mkdtempSync(join(tmpdir(), 'magicbox-train-reference-'));
    const runDir = join(referenceDir, 'run');
    const { result } = await run(tiny(), runDir);
    if (result.outcome !== 'completed') throw new Error(`reference run ${result.outcome}: ${result.message}`);
    return { runDir, rows: jsonlRows(runDir) };
  })());

test.serial('a run directory holds the full config, agreeing CSV and JSONL rows, and a checkpoint', async (t) => {
  const { runDir, rows } = await referenceRun();
  t.deepEqual(fs.readdirSync(runDir).sort(), ['checkpoint.json', 'config.json', 'progress.csv', 'progress.jsonl'], 'no temp files left behind');
  const config = JSON.parse(fs.readFileSync(runFiles(runDir).config, 'utf8')) as TrainConfig;
  t.deepEqual(config, completeConfig(tiny()));
  t.is(config.horizon, 10);
  t.is(config.adaptationSteps, 1, 'the environment default is written out');

  t.deepEqual(rows.map((r) => r.iteration), [0, 1, 2, 3]);
  const perIteration = 2 * 2 * 10 * 2; // tasks × trajectories × horizon × levels
  t.deepEqual(rows.map((r) => r.timesteps), [1, 2, 3, 4].map((k) => k * perIteration), 'timesteps are cumulative');
  for (const r of rows) {
    t.is(r.averageReturn.length, 2);
    t.true(r.averageReturn.every(Number.isFinite) && Number.isFinite(r.objective));
    t.is(r.backend, 'wasm');
    // ProMP logs its step: the penalty's KL and the clip fraction after the outer steps.
    t.true(r.kl !== null && r.kl > 0, `kl ${r.kl}`);
    t.true(r.clipFraction !== undefined && r.clipFraction >= 0 && r.clipFraction <= 1, `clip fraction ${r.clipFraction}`);
  }
  t.true(rows.every((r, i) => i === 0 || r.wallSeconds >= rows[i - 1]!.wallSeconds));

  const csv = csvRows(runDir);
  t.deepEqual(csv.header, csvColumns(2));
  t.is(csv.rows.length, rows.length);
  csv.rows.forEach((cells, i) => {
    const r = rows[i]!;
    const fromCsv = Object.fromEntries(csv.header.map((h, k) => [h, cells[k]!]));
    t.is(Number(fromCsv['iteration']), r.iteration);
    t.is(Number(fromCsv['timesteps']), r.timesteps);
    t.is(Number(fromCsv['return_0']), r.averageReturn[0]!);
    t.is(Number(fromCsv['return_1']), r.averageReturn[1]!);
    for (const k of ['samplingSeconds', 'adaptationSeconds', 'outerSeconds', 'objective', 'wallSeconds'] as const) t.is(Number(fromCsv[k]), r[k], k);
    t.is(Number(fromCsv['kl']), r.kl!);
    t.is(fromCsv['lineSearch'], '');
    t.is(fromCsv['backend'], r.backend);
  });

  const checkpoint = readCheckpoint(runDir);
  t.is(checkpoint.nextIteration, 4);
  t.is(checkpoint.timesteps, 4 * perIteration);
  t.deepEqual(checkpoint.config, completeConfig(tiny()));
  t.deepEqual(Object.keys(checkpoint.params), ['W0', 'b0', 'W1', 'b1', 'logStd']);
  t.is(checkpoint.optimizer?.step, 4 * 5, 'Adam state after 5 ProMP steps per iteration');
});

test.serial('a run killed after a checkpoint and resumed writes exactly the numbers of the uninterrupted run', async (t) => {
  const { runDir: referenceDir, rows: expected } = await referenceRun();
  const runDir = await newDir(t);
  // Checkpoints after iterations 2 and 4; "killed" after iteration 3's row was written, before its checkpoint.
  const crash = new Error('killed');
  const killed = run(tiny({ checkpointEvery: 2 }), runDir, {
    onIteration: (row) => {
      if (row.iteration === 2) throw crash;
    },
  });
  await t.throwsAsync(killed, { is: crash });
  t.is(jsonlRows(runDir).length, 3, 'a row of lost work after the checkpoint');
  t.is(readCheckpoint(runDir).nextIteration, 2);

  // Resumed with two sampler workers: the numbers do not depend on where trajectories are sampled.
  const { result, lines } = await run(tiny({ checkpointEvery: 2 }), runDir, { resume: true, workers: 2 });
  t.is(result.outcome, 'completed');
  t.true(lines.some((l) => /resuming .* after 2 iteration/.test(l)));
  t.true(lines.some((l) => /sampling on 2 worker threads/.test(l)));
  t.deepEqual(numbers(jsonlRows(runDir)), numbers(expected));
  t.is(csvRows(runDir).rows.length, 4, 'the lost row was dropped from the CSV too');
  t.deepEqual(readCheckpoint(runDir).params, readCheckpoint(referenceDir).params, 'the same final parameters, bit for bit');
  t.deepEqual(readCheckpoint(runDir).optimizer, readCheckpoint(referenceDir).optimizer);
});

test.serial('resume may raise iterations: 2 + 2 TRPO iterations equal 4 uninterrupted ones (kl and line search included)', async (t) => {
  const config = tiny({ algo: 'maml-trpo', env: 'nav-2d' });
  const whole = await newDir(t);
  await run(config, whole);
  const split = await newDir(t);
  const first = await run({ ...config, iterations: 2 }, split);
  t.is(first.result.checkpointIteration, 2);
  const second = await run(config, split, { resume: true });
  t.is(second.result.outcome, 'completed');
  t.true(second.lines.some((l) => l.includes('iterations 2 → 4')));
  const rows = jsonlRows(split);
  t.deepEqual(numbers(rows), numbers(jsonlRows(whole)));
  t.true(rows.every((r) => typeof r.kl === 'number' && typeof r.lineSearch === 'string'));
  const csv = csvRows(split);
  csv.rows.forEach((cells, i) => {
    t.is(Number(cells[csv.header.indexOf('kl')]), rows[i]!.kl!);
    t.is(cells[csv.header.indexOf('lineSearch')], rows[i]!.lineSearch!);
  });
  t.is(JSON.parse(fs.readFileSync(runFiles(split).config, 'utf8')).iterations, 4, 'config.json records the new length');
  t.is(readCheckpoint(split).optimizer, null);
});

test.serial('resume with a config that contradicts the checkpoint is refused, showing the differences, and changes nothing', async (t) => {
  const runDir = await newDir(t);
  await run(tiny({ iterations: 3 }), runDir);
  const before = fs.readdirSync(runDir).map((f) => fs.readFileSync(join(runDir, f), 'utf8'));
  const error = await t.throwsAsync(run(tiny({ iterations: 3, seed: 2, hidden: [16], checkpointEvery: 5 }), runDir, { resume: true }), { instanceOf: ResumeConflictError });
  t.regex(error!.message, /seed 1 → 2 is not allowed/);
  t.regex(error!.message, /hidden \[8\] → \[16\] is not allowed/);
  t.notRegex(error!.message, /checkpointEvery \d/, 'an allowed change is not listed as a problem');
  t.deepEqual(error!.differences.map((d) => [d.field, d.allowed]), [
    ['seed', false],
    ['hidden', false],
    ['checkpointEvery', true],
  ]);
  const shorter = await t.throwsAsync(run(tiny({ iterations: 2 }), runDir, { resume: true }), { instanceOf: ResumeConflictError });
  t.regex(shorter!.message, /iterations 3 → 2 is below the 3 iterations already done/);
  t.deepEqual(fs.readdirSync(runDir).map((f) => fs.readFileSync(join(runDir, f), 'utf8')), before);
  // The same config again: nothing left to do.
  const again = await run(tiny({ iterations: 3 }), runDir, { resume: true });
  t.is(again.result.outcome, 'completed');
  t.is(jsonlRows(runDir).length, 3);
});

test.serial('a truncated checkpoint, and one with any byte flipped, are reported clearly', async (t) => {
  const { runDir } = await referenceRun();
  const text = fs.readFileSync(runFiles(runDir).checkpoint, 'utf8');
  const original = readCheckpoint(runDir);
  const dir = tempDir(t, 'magicbox-ckpt-');
  const file = join(dir, 'checkpoint.json');

  for (const keep of [0, 10, Math.floor(text.length / 2), text.length - 3]) {
    fs.writeFileSync(file, text.slice(0, keep));
    const e = t.throws(() => readCheckpoint(file), { instanceOf: CheckpointError });
    t.regex(e!.message, new RegExp(`^checkpoint ${file.replaceAll('.', '\\.')}: truncated or corrupt \\(`), `cut at ${keep}`);
  }
  // Flip one bit at positions spread over the whole file: each is detected, or the value is unchanged
  // (e.g. 'e' → 'E' in an exponent).
  let detected = 0;
  const bytes = Buffer.from(text, 'utf8');
  for (let k = 0; k < 200; k++) {
    const at = Math.floor((k * (bytes.length - 1)) / 199);
    const flipped = Buffer.from(bytes);
    flipped[at] = flipped[at]! ^ (1 << k % 7);
    fs.writeFileSync(file, flipped);
    try {
      t.deepEqual(readCheckpoint(file), original, `flip at ${at} went unnoticed`);
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      t.regex(e.message, /^checkpoint .*: (truncated or corrupt \(|not a magicbox checkpoint|format version)/);
      detected++;
    }
  }
  t.true(detected > 190, `${detected} of 200 flips detected`);
  // A flipped digit in a parameter value: the checksum catches it.
  const digit = text.indexOf('"values":[') + 12;
  const changed = text.slice(0, digit) + (text[digit] === '1' ? '2' : '1') + text.slice(digit + 1);
  fs.writeFileSync(file, changed);
  t.throws(() => readCheckpoint(file), { instanceOf: CheckpointError, message: /truncated or corrupt \(checksum mismatch/ });

  // Resuming from a corrupt checkpoint, and evaluating one, fail with the same message.
  const copy = await newDir(t);
  fs.cpSync(runDir, copy, { recursive: true });
  fs.writeFileSync(runFiles(copy).checkpoint, text.slice(0, 1000));
  await t.throwsAsync(run(tiny(), copy, { resume: true }), { instanceOf: CheckpointError, message: /truncated or corrupt/ });
  await t.throwsAsync(evaluateCheckpoint(copy), { instanceOf: CheckpointError, message: /truncated or corrupt/ });
  t.throws(() => readCheckpoint(join(dir, 'missing.json')), { instanceOf: CheckpointError, message: /missing\.json: no such file/ });
});

test.serial('a diverging run stops naming the iteration; the checkpoint left is the last good one, the rows end with it', async (t) => {
  // A huge outer learning rate sends the parameters to ~1e30 within the first iteration or two: the
  // meta-gradient, or the actions sampled from them, stop being finite.
  for (const algo of ['promp', 'maml-vpg'] as const) {
    const runDir = await newDir(t);
    const { result, lines } = await run(tiny({ algo, outerLearningRate: 1e30, iterations: 6 }), runDir);
    t.is(result.outcome, 'failed', algo);
    t.is(result.exitCode, 1);
    const failed = Number(/^training stopped: iteration (\d+): /.exec(result.message ?? '')?.[1]);
    t.true(Number.isInteger(failed), result.message);
    t.regex(result.message!, /NaN|Infinity/);
    t.true(lines.includes(result.message!), 'the message is logged');
    t.is(jsonlRows(runDir).length, failed, 'a row for each iteration that succeeded');
    t.is(csvRows(runDir).rows.length, failed);
    // A run checkpoints before its first iteration, so there is always a last good checkpoint.
    t.regex(result.message!, new RegExp(`the last good checkpoint \\(after ${failed} iteration\\(s\\)\\) is kept`));
    const checkpoint = readCheckpoint(runDir);
    t.is(checkpoint.nextIteration, failed);
    t.true(Object.values(checkpoint.params).every((p) => p.values.every(Number.isFinite)));
  }
});

test.serial('a failure in a later iteration keeps the last good checkpoint, which resumes to the uninterrupted numbers', async (t) => {
  const { rows: expected } = await referenceRun();
  const runDir = await newDir(t);
  let saved = '';
  const { result } = await run(tiny(), runDir, {
    onIteration: (row) => {
      if (row.iteration === 1) saved = fs.readFileSync(runFiles(runDir).checkpoint, 'utf8');
    },
    iterate: (trainer, params, state, iteration) => {
      if (iteration === 2) throw new TrainingError(`iteration ${iteration}: the meta-objective is NaN (entry 0); stopping before it reaches the parameters`);
      return runIteration(trainer, params, state, iteration);
    },
  });
  t.is(result.outcome, 'failed');
  t.is(result.exitCode, 1);
  t.is(result.checkpointIteration, 2);
  t.regex(result.message!, /^training stopped: iteration 2: the meta-objective is NaN .*the last good checkpoint \(after 2 iteration\(s\)\) is kept/);
  t.is(fs.readFileSync(runFiles(runDir).checkpoint, 'utf8'), saved, 'the checkpoint is untouched');
  t.is(jsonlRows(runDir).length, 2);

  const resumed = await run(tiny(), runDir, { resume: true });
  t.is(resumed.result.outcome, 'completed');
  t.deepEqual(numbers(jsonlRows(runDir)), numbers(expected));
});

test.serial('tensors: the count stays flat across iterations and returns to where it was after the run (fresh and resumed)', async (t) => {
  for (const algo of ['promp', 'maml-trpo', 'dice-vpg'] as const) {
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    const runDir = await newDir(t);
    const config = tiny({ algo, env: 'nav-2d', checkpointEvery: 2 });
    await run({ ...config, iterations: 2 }, runDir, { onIteration: () => counts.push(tf.memory().numTensors) });
    await run(config, runDir, { resume: true, onIteration: () => counts.push(tf.memory().numTensors) });
    t.is(counts.length, 4);
    t.true(counts.every((c) => c === counts[0]), `${algo}: ${counts.join(', ')}`);
    t.is(tf.memory().numTensors, before, algo);
  }
});

test.serial('an abort stops after the iteration in progress with a checkpoint, exit code 130', async (t) => {
  const runDir = await newDir(t);
  const controller = new AbortController();
  const { result } = await run(tiny({ checkpointEvery: 10 }), runDir, {
    signal: controller.signal,
    onIteration: (row) => {
      if (row.iteration === 1) controller.abort();
    },
  });
  t.is(result.outcome, 'interrupted');
  t.is(result.exitCode, 130);
  t.is(readCheckpoint(runDir).nextIteration, 2);
  t.regex(result.message!, /--resume/);
});

test.serial('a fresh run refuses a non-empty directory and writes nothing', async (t) => {
  const runDir = await newDir(t);
  fs.mkdirSync(runDir);
  fs.writeFileSync(join(runDir, 'notes.txt'), 'mine');
  await t.throwsAsync(run(tiny(), runDir), { instanceOf: RunError, message: /already exists and is not empty; nothing was written/ });
  t.deepEqual(fs.readdirSync(runDir), ['notes.txt']);
});

test.serial('evaluateCheckpoint: per-level returns on fresh tasks, the same for the same seed', async (t) => {
  const { runDir } = await referenceRun();
  const before = tf.memory().numTensors;
  const a = await evaluateCheckpoint(runFiles(runDir).checkpoint, { tasks: 3, seed: 7 });
  t.is(tf.memory().numTensors, before, 'no tensor left behind');
  const b = await evaluateCheckpoint(runDir, { tasks: 3, seed: 7 });
  t.is(a.averageReturn.length, 2);
  t.true(a.averageReturn.every(Number.isFinite));
  t.deepEqual(a.averageReturn, b.averageReturn);
  t.is(a.iterations, 4);
  t.notDeepEqual((await evaluateCheckpoint(runDir, { tasks: 3, seed: 8 })).averageReturn, a.averageReturn);
});

// ---------------------------------------------------------------------------------------------------
// The commands, as a user runs them

const cli = (...args: string[]) => runCli(args);

const noStack = /\n\s+at /;

test('train: an unknown --algo or --env lists the valid names', async (t) => {
  const algo = await cli('train', '--algo', 'reptile', '--env', 'point-1d', '--out', await newDir(t));
  t.is(algo.code, 1);
  t.regex(algo.stderr, /--algo: unknown algorithm "reptile"; valid: promp, maml-trpo, maml-vpg, emaml-trpo, emaml-vpg, lvc-vpg, dice-vpg, tmaml/);
  t.notRegex(algo.stderr, noStack);
  const env = await cli('train', '--algo', 'promp', '--env', 'half-cheetah', '--iterations', '0');
  t.is(env.code, 1);
  t.regex(env.stderr, /--env: unknown environment "half-cheetah"; valid: point-corners, point-1d, nav-2d/);
  t.regex(env.stderr, /--iterations: expected a whole number ≥ 1 \(at most 2\^53 − 1\), got 0/);
  const workers = await cli('train', '--algo', 'promp', '--env', 'point-1d', '--workers', '0', '--out', await newDir(t));
  t.is(workers.code, 1);
  t.regex(workers.stderr, /--workers: expected a whole number ≥ 1, got "0"/);
});

test('train: an invalid config file names the bad field; an existing --out is refused untouched', async (t) => {
  const dir = tempDir(t, 'magicbox-cli-');
  const file = join(dir, 'config.json');
  await writeFile(file, JSON.stringify({ algo: 'promp', innerStepSize: -1, hidden: [8, 0], tasks: 3 }));
  const bad = await cli('train', '--config', file, '--out', join(dir, 'run'));
  t.is(bad.code, 1);
  t.regex(bad.stderr, new RegExp(`${file.replaceAll('.', '\\.')}: innerStepSize: expected a positive number, got -1`));
  t.regex(bad.stderr, /config\.json: hidden\[1\]: expected a whole number from 1 to 65536, got 0/);
  t.regex(bad.stderr, /config\.json: tasks: unknown field/);
  t.false(fs.existsSync(join(dir, 'run')));

  const out = join(dir, 'existing');
  fs.mkdirSync(out);
  fs.writeFileSync(join(out, 'keep.txt'), 'mine');
  const refused = await cli('train', '--algo', 'promp', '--env', 'point-1d', '--out', out);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /already exists and is not empty; nothing was written/);
  t.deepEqual(fs.readdirSync(out), ['keep.txt']);
  t.is(fs.readFileSync(join(out, 'keep.txt'), 'utf8'), 'mine');
});

test('train, resume and eval end to end', async (t) => {
  const dir = tempDir(t, 'magicbox-cli-');
  const file = join(dir, 'tiny.json');
  await writeFile(file, JSON.stringify({ hidden: [8], trajectoriesPerTask: 2, checkpointEvery: 1 }));
  const runDir = join(dir, 'run');
  const size = ['--tasks', '2', '--horizon', '10'];
  const trained = await cli('train', '--algo', 'promp', '--env', 'point-1d', '--iterations', '2', ...size, '--config', file, '--out', runDir);
  t.is(trained.code, 0, trained.stderr);
  t.regex(trained.stdout, /^backend: wasm/);
  t.regex(trained.stdout, /iter 1\/2 {2}pre -?\d+\.\d {2}post -?\d+\.\d {2}steps 80 {2}sample \d+\.\ds {2}update \d+\.\ds/);
  t.regex(trained.stdout, /iter 2\/2 .*steps 160/);
  t.deepEqual(fs.readdirSync(runDir).sort(), ['checkpoint.json', 'config.json', 'progress.csv', 'progress.jsonl']);
  t.deepEqual(JSON.parse(fs.readFileSync(join(runDir, 'config.json'), 'utf8')).hidden, [8], 'the config file was applied');

  const conflict = await cli('train', '--resume', runDir, '--seed', '5');
  t.is(conflict.code, 1);
  t.regex(conflict.stderr, /seed 1 → 5 is not allowed/);

  const resumed = await cli('train', '--resume', runDir, '--iterations', '3');
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(resumed.stdout, /iter 3\/3 .*steps 240/);
  t.is(jsonlRows(runDir).length, 3);

  const json = await cli('eval', runDir, '--tasks', '2', '--seed', '1', '--json');
  t.is(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as { averageReturn: number[]; iterations: number; algo: string; env: string; tasks: number };
  t.is(report.iterations, 3);
  t.is(report.tasks, 2);
  t.is(report.averageReturn.length, 2);
  t.true(report.averageReturn.every(Number.isFinite));
  const text = await cli('eval', join(runDir, 'checkpoint.json'), '--tasks', '2', '--seed', '1');
  t.is(text.code, 0);
  t.regex(text.stdout, new RegExp(`pre-update\\s+${report.averageReturn[0]!.toFixed(3)}`));
  t.regex(text.stdout, new RegExp(`after 1 step\\s+${report.averageReturn[1]!.toFixed(3)}`));

  fs.writeFileSync(join(dir, 'broken.json'), fs.readFileSync(join(runDir, 'checkpoint.json'), 'utf8').slice(0, 500));
  const broken = await cli('eval', join(dir, 'broken.json'));
  t.is(broken.code, 1);
  t.regex(broken.stderr, /broken\.json: truncated or corrupt \(not valid JSON/);
  t.notRegex(broken.stderr, noStack);
});
