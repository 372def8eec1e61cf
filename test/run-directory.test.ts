/**
 * The run directory as a database treats it: the exclusive lock, validation before any write on
 * resume, the refusal of a missing checkpoint next to rows, torn-row repair, temp-file cleanup, the
 * checkpoint before the first iteration, and an abort that abandons an iteration still in progress.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { selectBackend, type BackendReport } from '../src/backend.ts';
import { resolveConfig, type TrainConfig, type TrainConfigPatch } from '../src/meta/config.ts';
import { runIteration } from '../src/meta/iteration.ts';
import { csvFields, repairProgress } from '../src/meta/progress-log.ts';
import { FileError, lockRunDirectory, makeDirectory, RunLockedError, writeFileAtomic } from '../src/meta/run-directory.ts';
import { readCheckpoint, RunError, runFiles, train, type ProgressRow, type TrainOptions } from '../src/meta/train.ts';
import { tempDir } from './helpers/temp.ts';

let backend: BackendReport;
test.before(async () => {
  backend = await selectBackend('wasm');
});

const tiny = (patch: TrainConfigPatch = {}): TrainConfig =>
  resolveConfig({ algo: 'promp', env: 'point-1d', iterations: 3, tasksPerIteration: 2, trajectoriesPerTask: 2, horizon: 10, hidden: [8], checkpointEvery: 1, ...patch });

const run = async (config: TrainConfig, runDir: string, more: Partial<TrainOptions> = {}) => {
  const lines: string[] = [];
  const result = await train({ config, runDir, log: (l) => lines.push(l), progress: 'off', backend, workers: 1, ...more });
  return { result, lines };
};

/** Every file of a directory with its contents, to show that a refused command changed nothing. */
const snapshot = (dir: string): Record<string, string> => Object.fromEntries(fs.readdirSync(dir).sort().map((f) => [f, fs.readFileSync(join(dir, f), 'utf8')]));

const rows = (runDir: string): ProgressRow[] =>
  fs
    .readFileSync(runFiles(runDir).jsonl, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as ProgressRow);

const numbers = (rs: readonly ProgressRow[]) => rs.map((r) => ({ iteration: r.iteration, timesteps: r.timesteps, averageReturn: r.averageReturn, objective: r.objective }));

/** A child process that stays alive until the test ends: a live lock holder that is not this process. */
const liveProcess = (t: ExecutionContext): number => {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  return child.pid!;
};

/** The pid of a process that has exited. */
const deadPid = async (): Promise<number> => {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
};

test.serial('a resume on a directory locked by a live process is refused naming its pid, and changes nothing', async (t) => {
  const runDir = join(tempDir(t), 'run');
  t.is((await run(tiny({ iterations: 2 }), runDir)).result.outcome, 'completed');
  t.false(fs.existsSync(runFiles(runDir).lock), 'the lock is released when the run ends');
  const holder = liveProcess(t);
  fs.writeFileSync(runFiles(runDir).lock, JSON.stringify({ pid: holder, host: hostname() }));
  const before = snapshot(runDir);
  const error = await t.throwsAsync(run(tiny({ iterations: 3 }), runDir, { resume: true }), { instanceOf: RunLockedError });
  t.is(error!.holderPid, holder);
  t.regex(error!.message, new RegExp(`in use by process ${holder} .*nothing was changed`));
  t.deepEqual(snapshot(runDir), before);

  // Within one process too: a second lock on a held directory is refused.
  fs.rmSync(runFiles(runDir).lock);
  const lock = lockRunDirectory(runDir);
  t.throws(() => lockRunDirectory(runDir), { instanceOf: RunLockedError, message: new RegExp(`process ${process.pid}`) });
  lock.release();
  t.false(fs.existsSync(runFiles(runDir).lock));
});

test.serial('a stale lock (its process is gone) is taken over and the resume goes on', async (t) => {
  const runDir = join(tempDir(t), 'run');
  await run(tiny({ iterations: 2 }), runDir);
  fs.writeFileSync(runFiles(runDir).lock, JSON.stringify({ pid: await deadPid(), host: hostname() }));
  const { result } = await run(tiny({ iterations: 3 }), runDir, { resume: true });
  t.is(result.outcome, 'completed');
  t.is(rows(runDir).length, 3);
  t.false(fs.existsSync(runFiles(runDir).lock));
});

test.serial('a missing checkpoint with rows present is refused, and no file changes', async (t) => {
  const runDir = join(tempDir(t), 'run');
  await run(tiny({ iterations: 2 }), runDir);
  fs.rmSync(runFiles(runDir).checkpoint);
  const before = snapshot(runDir);
  await t.throwsAsync(run(tiny({ iterations: 3 }), runDir, { resume: true }), {
    instanceOf: RunError,
    message: /checkpoint\.json is missing but progress\.csv holds 2 row\(s\) and progress\.jsonl 2; resuming would discard them, so nothing was changed/,
  });
  t.deepEqual(snapshot(runDir), before, 'config.json (iterations 2 → 3) and the rows are untouched');
});

test.serial('a run writes a checkpoint before its first iteration', async (t) => {
  const runDir = join(tempDir(t), 'run');
  let seen: number | undefined;
  await run(tiny({ iterations: 1, checkpointEvery: 100 }), runDir, {
    iterate: (trainer, params, state, i) => {
      seen = readCheckpoint(runDir).nextIteration;
      return runIteration(trainer, params, state, i);
    },
  });
  t.is(seen, 0);
});

test.serial('torn last rows (a kill mid-write) are dropped on resume, which then writes the uninterrupted numbers', async (t) => {
  const whole = join(tempDir(t), 'whole');
  await run(tiny(), whole);
  const runDir = join(tempDir(t), 'run');
  await run(tiny({ iterations: 2 }), runDir);
  // Iteration 2's row half-written in both files, as a kill -9 during the append leaves it.
  const third = fs.readFileSync(runFiles(whole).csv, 'utf8').split('\n')[3]!;
  fs.appendFileSync(runFiles(runDir).csv, third.slice(0, 17));
  const thirdJson = fs.readFileSync(runFiles(whole).jsonl, 'utf8').split('\n')[2]!;
  fs.appendFileSync(runFiles(runDir).jsonl, thirdJson.slice(0, 30));
  const { result, lines } = await run(tiny(), runDir, { resume: true });
  t.is(result.outcome, 'completed');
  t.true(lines.some((l) => /removed 2 torn progress line\(s\)/.test(l)), lines.join('\n'));
  t.deepEqual(numbers(rows(runDir)), numbers(rows(whole)));
  const csv = fs.readFileSync(runFiles(runDir).csv, 'utf8').split('\n');
  t.is(csv.length, 5, 'header, three rows, final newline');
  t.true(csv.slice(1, 4).every((l) => csvFields(l)!.length === csvFields(csv[0]!)!.length));
});

test('repairProgress keeps whole rows before the checkpoint and drops torn or garbled ones', (t) => {
  const columns = ['iteration', 'a', 'b'];
  const text = 'iteration,a,b\n0,1,"x,y"\n1,2,3\n2,3\n3,4,5\n4,5,"open\n';
  const r = repairProgress(text, columns, 3);
  t.is(r.text, 'iteration,a,b\n0,1,"x,y"\n1,2,3\n');
  t.is(r.kept, 2);
  t.is(r.rows, 3, 'rows 0, 1 and 3 are whole');
  t.is(r.torn, 2, 'the short row and the line cut inside a quote');
  const jsonl = repairProgress('{"iteration":0}\n{"iteration":1}\n{"itera', undefined, 5);
  t.is(jsonl.text, '{"iteration":0}\n{"iteration":1}\n');
  t.is(jsonl.torn, 1);
});

test('a failed atomic write leaves the old file and no temp file, and names the path and cause', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'a.json');
  fs.writeFileSync(file, 'old');
  fs.mkdirSync(join(dir, 'sub'));
  // Renaming a file over a directory fails after the temp file was written.
  const error = t.throws(() => writeFileAtomic(join(dir, 'sub'), 'new'), { instanceOf: FileError });
  t.regex(error!.message, /cannot write .*sub: is a directory \(EISDIR\)/);
  t.deepEqual(fs.readdirSync(dir).sort(), ['a.json', 'sub']);
  t.throws(() => writeFileAtomic(join(dir, 'a.json', 'x'), 'new'), { instanceOf: FileError, message: /a\.json\/x: a component of the path is a file, not a directory \(ENOTDIR\)/ });
  t.is(fs.readFileSync(file, 'utf8'), 'old');
});

test('makeDirectory creates missing ancestors and names what cannot be made, without hanging under /proc', (t) => {
  const dir = tempDir(t);
  makeDirectory(join(dir, 'a', 'b', 'c'));
  t.true(fs.statSync(join(dir, 'a', 'b', 'c')).isDirectory());
  fs.writeFileSync(join(dir, 'file'), '');
  t.throws(() => makeDirectory(join(dir, 'file', 'x', 'y')), { instanceOf: FileError, message: /file is a file, not a directory/ });
  if (fs.existsSync('/proc/self')) t.throws(() => makeDirectory('/proc/magicbox-test/run'), { instanceOf: FileError, message: /cannot create directory \/proc\/magicbox-test/ });
});

test.serial('an abort while an iteration is still in progress abandons it and checkpoints the last finished one', async (t) => {
  const runDir = join(tempDir(t), 'run');
  const controller = new AbortController();
  const { result } = await run(tiny({ iterations: 6, checkpointEvery: 10 }), runDir, {
    signal: controller.signal,
    iterate: (trainer, params, state, i) => {
      if (i < 2) return runIteration(trainer, params, state, i);
      // Iteration 2 never finishes on its own (a long sampling phase).
      setTimeout(() => controller.abort(), 50);
      return new Promise(() => {});
    },
  });
  t.is(result.outcome, 'interrupted');
  t.is(result.exitCode, 130);
  t.is(result.iterationsDone, 2);
  t.is(readCheckpoint(runDir).nextIteration, 2);
  t.is(rows(runDir).length, 2);
  t.false(fs.existsSync(runFiles(runDir).lock));
});
