/**
 * The training run: a run directory, the loop over iterations, progress logs, checkpoints and resume,
 * and evaluation of a checkpoint. No command-line parsing here (src/cli/train.ts does that).
 *
 * A run directory holds
 *   config.json       the full resolved config (written first; rewritten on resume if `iterations` or
 *                     `checkpointEvery` changed)
 *   progress.csv      one row per finished iteration (columns below)
 *   progress.jsonl    the same rows as JSON objects, `averageReturn` an array
 *   checkpoint.json   the latest checkpoint, replaced atomically (temp file, fsync, rename): format
 *                     version, sha256 of the payload, and the payload (config, next iteration,
 *                     timesteps, parameters and Adam state as name → {shape, values})
 *
 * `iteration` in the rows (and in TrainingError messages) is the 0-based index runIteration is called
 * with; the plain progress lines count from 1 (`iter 3/20` is iteration 2). A checkpoint written after
 * k iterations has nextIteration k, and a resume drops any row with iteration ≥ k.
 *
 * Reproducibility: an iteration's randomness is seeded by (config.seed, iteration), so starting
 * iteration k from the same parameters and optimiser state gives the same numbers. A checkpoint stores
 * both exactly (float32 values written as JSON numbers survive the round trip), so a run killed after a
 * checkpoint and resumed writes the same rows as the uninterrupted run.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import cliProgress from 'cli-progress';
import * as t from 'io-ts';
import { isLeft, left, right, type Either } from 'fp-ts/lib/Either.js';
import { describeBackend, selectBackend, type BackendReport } from '../backend.ts';
import { environmentDescriptor, environmentNames, loadTaskDistribution } from '../envs/index.ts';
import type { DecodeError } from '../scg/decode.ts';
import type { Params } from '../surrogates/batch.ts';
import { algorithmNames } from './algorithm-names.ts';
import { defaultConfig, resolveConfig, TrainConfigPatchCodec, type TrainConfig, type TrainConfigPatch } from './config.ts';
import { evaluateParams, makeTrainer, runIteration, TrainingError, type IterationResult, type OptimizerState, type Trainer } from './iteration.ts';
import { currentBackendName, defaultWorkerCount, workerSampler } from './parallel-sampler.ts';
import type { Sampler } from './sampler.ts';
import { mlpPolicyFor } from './policy.ts';

// ---------------------------------------------------------------------------------------------------
// Errors

/** A run that cannot start: a run directory in the way or missing, a resume that contradicts the checkpoint. */
export class RunError extends Error {
  override readonly name: string = 'RunError';
}

/** One field whose value differs between the checkpoint's config and the one given. */
export interface ConfigDifference {
  readonly field: keyof TrainConfig;
  readonly before: unknown;
  readonly after: unknown;
  readonly allowed: boolean;
}

/** `resume` with a config that changes a field a resumed run must keep. */
export class ResumeConflictError extends RunError {
  override readonly name = 'ResumeConflictError';
  constructor(
    message: string,
    readonly differences: readonly ConfigDifference[],
  ) {
    super(message);
  }
}

/** A checkpoint that cannot be read: missing, truncated, corrupt, or not a magicbox checkpoint. */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

// ---------------------------------------------------------------------------------------------------
// Config: decoding with errors that name the field, and the fields a resume may change

const configFields = Object.keys(defaultConfig) as Array<keyof TrainConfig>;

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === 'object' && u !== null && !Array.isArray(u);

const show = (u: unknown): string => {
  const s = u === undefined ? 'nothing' : JSON.stringify(u);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** What a codec expects, for the built-in io-ts types (the project's own types carry their own message). */
const expectedOf = (type: t.Decoder<unknown, unknown>): string => {
  if (type instanceof t.NumberType) return 'a number';
  if (type instanceof t.StringType) return 'a string';
  if (type instanceof t.ArrayType) return 'an array';
  if (type instanceof t.ExactType || type instanceof t.PartialType || type instanceof t.InterfaceType) return 'an object';
  return type.name;
};

const describeConfigError = (e: t.ValidationError): DecodeError => {
  let where = '';
  for (let i = 1; i < e.context.length; i++) {
    const key = e.context[i]!.key;
    if (key === '') continue;
    where = e.context[i - 1]!.type instanceof t.ArrayType ? `${where}[${key}]` : where === '' ? key : `${where}.${key}`;
  }
  const type = e.context.at(-1)!.type;
  if (where === 'algo' && typeof e.value === 'string') {
    return { path: where, message: `unknown algorithm ${JSON.stringify(e.value)}; valid: ${algorithmNames.join(', ')}` };
  }
  const expectation = e.message ?? `expected ${expectedOf(type)}`;
  return { path: where, message: `${expectation}, got ${show(e.value)}` };
};

/**
 * A config patch (a config file's contents, or command-line values by field name) checked field by
 * field: each error names the field (`innerStepSize: expected a positive number, got -1`); unknown
 * fields and unknown environment names are errors too.
 */
export function decodeConfigPatch(u: unknown): Either<DecodeError[], TrainConfigPatch> {
  if (!isRecord(u)) return left([{ path: '', message: `expected an object of config fields, got ${show(u)}` }]);
  const decoded = TrainConfigPatchCodec.decode(u);
  const errors: DecodeError[] = isLeft(decoded) ? decoded.left.map(describeConfigError) : [];
  for (const key of Object.keys(u)) {
    if (!(configFields as string[]).includes(key)) errors.push({ path: key, message: `unknown field (the fields are ${configFields.join(', ')})` });
  }
  const env = u['env'];
  if (typeof env === 'string' && !environmentNames.includes(env)) {
    errors.push({ path: 'env', message: `unknown environment ${JSON.stringify(env)}; valid: ${environmentNames.join(', ')}` });
  }
  if (isLeft(decoded) || errors.length > 0) return left(errors);
  return right(decoded.right);
}

/** The config with the environment's horizon and adaptation steps filled in, fields in canonical order. */
export const completeConfig = (config: TrainConfig): TrainConfig => {
  let distribution;
  try {
    distribution = environmentDescriptor(config.env);
  } catch (e) {
    throw new RunError(e instanceof Error ? e.message : String(e));
  }
  const full: TrainConfig = {
    ...config,
    horizon: config.horizon ?? distribution.horizon,
    adaptationSteps: config.adaptationSteps ?? distribution.adaptationSteps,
  };
  return Object.fromEntries(configFields.map((k) => [k, full[k]])) as unknown as TrainConfig;
};

/** The fields a resumed run may change: how long it runs and how often it checkpoints. */
export const resumableFields: readonly (keyof TrainConfig)[] = ['iterations', 'checkpointEvery'];

/** Every field whose value differs, each marked allowed or not on resume. */
export const configDifferences = (before: TrainConfig, after: TrainConfig): ConfigDifference[] =>
  configFields
    .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]))
    .map((field) => ({ field, before: before[field], after: after[field], allowed: resumableFields.includes(field) }));

// ---------------------------------------------------------------------------------------------------
// Files

/** The files of a run directory. */
export const runFiles = (runDir: string) => ({
  config: path.join(runDir, 'config.json'),
  csv: path.join(runDir, 'progress.csv'),
  jsonl: path.join(runDir, 'progress.jsonl'),
  checkpoint: path.join(runDir, 'checkpoint.json'),
});

const fsyncDir = (dir: string): void => {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Not every platform can fsync a directory; the rename itself is still atomic.
  }
};

/** Writes `file` atomically: a temp file in the same directory, fsync, rename over the old one. */
export const writeFileAtomic = (file: string, text: string): void => {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(temp, 'w');
  try {
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, file);
  fsyncDir(dir);
};

const configJson = (config: TrainConfig): string => `${JSON.stringify(config, null, 2)}\n`;

// ---------------------------------------------------------------------------------------------------
// Checkpoints

export const checkpointFormat = 'magicbox-checkpoint';
export const checkpointVersion = 1;

/** A tensor as JSON: its shape and its values in row-major order. */
export interface TensorJson {
  readonly shape: readonly number[];
  readonly values: readonly number[];
}

/** Everything a run needs to continue exactly where it stopped. */
export interface CheckpointPayload {
  readonly config: TrainConfig;
  /** The iteration the run continues with (= iterations done). */
  readonly nextIteration: number;
  /** Environment steps taken so far. */
  readonly timesteps: number;
  /** Wall-clock seconds the run has taken so far (over all its sessions). */
  readonly elapsedSeconds: number;
  /** The backend that computed it (a resume on another backend may not reproduce the numbers bit for bit). */
  readonly backend: string;
  readonly savedAt: string;
  readonly params: Readonly<Record<string, TensorJson>>;
  readonly optimizer: { readonly kind: 'adam'; readonly step: number; readonly m: Readonly<Record<string, TensorJson>>; readonly v: Readonly<Record<string, TensorJson>> } | null;
}

const WholeNumber = new t.Type<number, number, unknown>(
  'WholeNumber',
  (u): u is number => typeof u === 'number' && Number.isInteger(u) && u >= 0,
  (u, c) => (typeof u === 'number' && Number.isInteger(u) && u >= 0 ? t.success(u) : t.failure(u, c, 'expected a whole number ≥ 0')),
  t.identity,
);
const TensorJsonCodec = t.strict({ shape: t.array(WholeNumber), values: t.array(t.number) });
const TensorsCodec = t.record(t.string, TensorJsonCodec);
const PayloadCodec = t.strict({
  config: t.UnknownRecord,
  nextIteration: WholeNumber,
  timesteps: WholeNumber,
  elapsedSeconds: t.number,
  backend: t.string,
  savedAt: t.string,
  params: TensorsCodec,
  optimizer: t.union([t.null, t.strict({ kind: t.literal('adam'), step: WholeNumber, m: TensorsCodec, v: TensorsCodec })]),
});

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

const tensorsToJson = (p: Params): Record<string, TensorJson> =>
  Object.fromEntries(Object.entries(p).map(([name, v]) => [name, { shape: v.shape, values: Array.from(v.dataSync()) }]));

/** Tensors from their JSON, in the order and with the shapes `shapes` gives; throws on a mismatch. */
const tensorsFromJson = (json: Readonly<Record<string, TensorJson>>, shapes: Readonly<Record<string, readonly number[]>>, what: string): Params => {
  const want = Object.keys(shapes);
  const have = Object.keys(json);
  if (want.length !== have.length || want.some((n) => !have.includes(n))) {
    throw new Error(`${what} has tensors ${have.join(', ')}, the policy needs ${want.join(', ')}`);
  }
  for (const name of want) {
    const { shape, values } = json[name]!;
    if (JSON.stringify(shape) !== JSON.stringify(shapes[name])) throw new Error(`${what}.${name} has shape [${shape.join(', ')}], the policy needs [${shapes[name]!.join(', ')}]`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (values.length !== size) throw new Error(`${what}.${name} has ${values.length} values for shape [${shape.join(', ')}] (${size})`);
  }
  return Object.fromEntries(want.map((name) => [name, tf.tensor(Float32Array.from(json[name]!.values), [...json[name]!.shape])]));
};

/** The text of a checkpoint file: a header (format, version, checksum) around the payload. */
export const encodeCheckpoint = (payload: CheckpointPayload): string => {
  const body = JSON.stringify(payload);
  return `{"format":"${checkpointFormat}","version":${checkpointVersion},"sha256":"${sha256(body)}","payload":${body}}\n`;
};

/**
 * Reads and checks a checkpoint (a file, or a run directory holding checkpoint.json). Every way it can
 * be unreadable is a CheckpointError naming the file: missing, truncated or corrupt (the checksum over
 * the payload does not match, or the JSON ends early), another format or a newer version.
 */
export const readCheckpoint = (file: string): CheckpointPayload => {
  let where = file;
  try {
    if (fs.statSync(file).isDirectory()) where = runFiles(file).checkpoint;
  } catch {
    // reported below
  }
  let text: string;
  try {
    text = fs.readFileSync(where, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : e instanceof Error ? e.message : String(e);
    throw new CheckpointError(`checkpoint ${where}: ${reason}`);
  }
  return decodeCheckpoint(text, where);
};

/** Checks a checkpoint's text; `where` names it in errors. */
export const decodeCheckpoint = (text: string, where: string): CheckpointPayload => {
  const corrupt = (why: string) => new CheckpointError(`checkpoint ${where}: truncated or corrupt (${why})`);
  if (text.length === 0) throw corrupt('the file is empty');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw corrupt(`not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isRecord(doc)) throw corrupt('not a JSON object');
  if (doc['format'] !== checkpointFormat) {
    throw new CheckpointError(`checkpoint ${where}: not a magicbox checkpoint (format ${show(doc['format'])}, expected "${checkpointFormat}")`);
  }
  if (doc['version'] !== checkpointVersion) {
    throw new CheckpointError(`checkpoint ${where}: format version ${show(doc['version'])}; this magicbox reads version ${checkpointVersion}`);
  }
  const stored = doc['sha256'];
  if (typeof stored !== 'string') throw corrupt('no checksum');
  if (!isRecord(doc['payload'])) throw corrupt('no payload');
  // JSON.stringify(JSON.parse(s)) === s for the compact JSON this module writes, so any change to the
  // payload that changes a value changes the checksum.
  const computed = sha256(JSON.stringify(doc['payload']));
  if (computed !== stored) throw corrupt(`checksum mismatch: stored sha256 ${stored.slice(0, 12)}…, contents give ${computed.slice(0, 12)}…`);
  const decoded = PayloadCodec.decode(doc['payload']);
  if (isLeft(decoded)) {
    const first = describeConfigError(decoded.left[0]!);
    throw new CheckpointError(`checkpoint ${where}: invalid payload (${first.path === '' ? '' : `${first.path}: `}${first.message})`);
  }
  const config = decodeConfigPatch(decoded.right.config);
  if (isLeft(config)) {
    const first = config.left[0]!;
    throw new CheckpointError(`checkpoint ${where}: invalid config (${first.path}: ${first.message})`);
  }
  return { ...decoded.right, config: completeConfig(resolveConfig(config.right)) };
};

/** Writes a checkpoint atomically. */
export const writeCheckpoint = (file: string, payload: CheckpointPayload): void => writeFileAtomic(file, encodeCheckpoint(payload));

// ---------------------------------------------------------------------------------------------------
// Progress rows

/** One row of progress.csv / progress.jsonl. */
export interface ProgressRow {
  readonly iteration: number;
  /** Environment steps so far, this iteration's included. */
  readonly timesteps: number;
  /** Average return per trajectory at each adaptation level (0: pre-update). */
  readonly averageReturn: readonly number[];
  readonly samplingSeconds: number;
  readonly adaptationSeconds: number;
  readonly outerSeconds: number;
  readonly objective: number;
  readonly kl: number | null;
  readonly lineSearch: string | null;
  /** Seconds since the run began (over all its sessions). */
  readonly wallSeconds: number;
  readonly backend: string;
}

/** The CSV header for a run with `levels` adaptation levels (adaptation steps + 1). */
export const csvColumns = (levels: number): string[] => [
  'iteration',
  'timesteps',
  ...Array.from({ length: levels }, (_, j) => `return_${j}`),
  'samplingSeconds',
  'adaptationSeconds',
  'outerSeconds',
  'objective',
  'kl',
  'lineSearch',
  'wallSeconds',
  'backend',
];

const csvField = (v: string | number | null): string => {
  if (v === null) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};

const csvLine = (row: ProgressRow): string =>
  [
    row.iteration,
    row.timesteps,
    ...row.averageReturn,
    row.samplingSeconds,
    row.adaptationSeconds,
    row.outerSeconds,
    row.objective,
    row.kl,
    row.lineSearch,
    row.wallSeconds,
    row.backend,
  ]
    .map(csvField)
    .join(',');

/**
 * Keeps the rows of a progress file for iterations before `next` (the rest are work lost after the
 * last checkpoint, or a line cut short by a kill); returns how many were kept.
 */
const truncateProgress = (file: string, header: string | undefined, next: number, iterationOf: (line: string) => number | undefined): number => {
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : [];
  const rows = (header === undefined ? lines : lines.slice(1)).filter((line) => {
    const i = line === '' ? undefined : iterationOf(line);
    return i !== undefined && i < next;
  });
  writeFileAtomic(file, [...(header === undefined ? [] : [header]), ...rows].map((l) => `${l}\n`).join(''));
  return rows.length;
};

const jsonlIteration = (line: string): number | undefined => {
  try {
    const v = (JSON.parse(line) as { iteration?: unknown }).iteration;
    return typeof v === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
};

const csvIteration = (line: string): number | undefined => {
  const v = line.split(',')[0];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
};

// ---------------------------------------------------------------------------------------------------
// Display: a progress bar on a terminal, one line per iteration otherwise

export type ProgressMode = 'auto' | 'bar' | 'lines' | 'off';

const fixed = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

/** `pre -98.7  post -96.1` (with the intermediate levels, `pre -98.7  k1 -97.0  post -96.1`). */
const describeReturns = (r: readonly number[]): string =>
  r.length === 1 ? `return ${fixed(r[0]!)}` : r.map((x, j) => `${j === 0 ? 'pre' : j === r.length - 1 ? 'post' : `k${j}`} ${fixed(x)}`).join('  ');

/** One plain line per iteration: `iter 3/20  pre -98.7  post -96.1  steps 60000  sample 0.3s  update 4.2s`. */
export const iterationLine = (row: ProgressRow, total: number): string =>
  `iter ${row.iteration + 1}/${total}  ${describeReturns(row.averageReturn)}  steps ${row.timesteps}  sample ${fixed(row.samplingSeconds)}s  update ${fixed(row.adaptationSeconds + row.outerSeconds)}s` +
  (row.kl !== null ? `  kl ${row.kl.toPrecision(2)}` : '');

interface Display {
  readonly row: (row: ProgressRow) => void;
  readonly stop: () => void;
}

const makeDisplay = (mode: ProgressMode, log: (line: string) => void, total: number, start: number): Display => {
  const resolved = mode === 'auto' ? (process.stderr.isTTY ? 'bar' : 'lines') : mode;
  if (resolved === 'off') return { row: () => {}, stop: () => {} };
  if (resolved === 'lines') return { row: (row) => log(iterationLine(row, total)), stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: 'iter {value}/{total} [{bar}] {returns}  steps {steps} | {duration_formatted}, eta {eta_formatted}', hideCursor: true, etaBuffer: 5, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, start, { returns: '', steps: 0 });
  let stopped = false;
  return {
    row: (row) => bar.update(row.iteration + 1, { returns: describeReturns(row.averageReturn), steps: row.timesteps }),
    stop: () => {
      if (!stopped) bar.stop();
      stopped = true;
    },
  };
};

// ---------------------------------------------------------------------------------------------------
// The run

export type IterationFunction = (trainer: Trainer, params: Params, optimizerState: OptimizerState, iteration: number) => IterationResult | Promise<IterationResult>;

export interface TrainOptions {
  readonly config: TrainConfig;
  readonly runDir: string;
  /**
   * Continue the run in `runDir` from its checkpoint (or from the start if it stopped before its first).
   * `config` may differ from the checkpoint's only in `iterations` (not below the iterations done) and
   * `checkpointEvery`.
   */
  readonly resume?: boolean;
  /** Lines for the user (backend, resume, per-iteration lines in 'lines' mode, the summary). */
  readonly log: (line: string) => void;
  /** Error lines (a training failure, warnings); default: `log`. */
  readonly error?: (line: string) => void;
  /** 'auto' (default): a progress bar when stderr is a terminal, plain lines otherwise. */
  readonly progress?: ProgressMode;
  /** Aborting stops the run after the iteration in progress, with a checkpoint. */
  readonly signal?: AbortSignal;
  /** The backend to report (default: `selectBackend()`). */
  readonly backend?: BackendReport;
  /** Called after each iteration's row is written (and its checkpoint, if one is due). */
  readonly onIteration?: (row: ProgressRow) => void;
  /**
   * Sampler worker threads (default: one per core); 1 samples in this thread. The trajectories, and so
   * the run, are the same whatever the number.
   */
  readonly workers?: number;
  /**
   * Builds the sampler for the run instead of worker threads (e.g. `redisSamplerFor`, sampling on
   * `magicbox worker` processes); it is closed when the run ends. The run is the same whatever samples.
   */
  readonly sampler?: (trainer: Trainer) => Promise<Sampler>;
  /** The iteration function (default: runIteration); a seam for tests and instrumentation. */
  readonly iterate?: IterationFunction;
}

export interface TrainResult {
  /** 'completed': all iterations done; 'interrupted': stopped by the signal, with a checkpoint; 'failed': a NaN/inf or other error in an iteration. */
  readonly outcome: 'completed' | 'interrupted' | 'failed';
  /** 0, 130 (interrupted) or 1 (failed): what the command exits with. */
  readonly exitCode: number;
  readonly runDir: string;
  readonly config: TrainConfig;
  /** Iterations done and recorded in the progress files. */
  readonly iterationsDone: number;
  /** The iteration the latest checkpoint continues from; undefined if none was written. */
  readonly checkpointIteration: number | undefined;
  readonly lastRow?: ProgressRow;
  /** For a failure: what went wrong. */
  readonly message?: string;
}

/** How a trainer samples: the number of worker threads (1: this thread) and the backend they load. */
export interface SamplingOptions {
  /** Default: one per core (os.availableParallelism()). */
  readonly workers?: number;
  /** The tfjs backend workers load (default: this thread's). */
  readonly backend?: string;
}

/**
 * The trainer (distribution, policy, compiled meta-objective, sampler) a config describes; loads MuJoCo
 * when the environment needs it and starts the sampler's worker threads. Close `trainer.sampler` when
 * done with it.
 */
export const trainerFor = async (config: TrainConfig, sampling: SamplingOptions = {}): Promise<Trainer> => {
  const distribution = await loadTaskDistribution(config.env);
  const policy = mlpPolicyFor(distribution.observationDim, distribution.action, { hidden: config.hidden, initLogStd: config.initLogStd });
  // Built first, so that a config the algorithms refuse fails before any thread starts.
  return withWorkerSampler(makeTrainer(config, distribution, policy), sampling);
};

/**
 * The trainer with its sampling moved to `sampling.workers` worker threads (default one per core; 1
 * keeps it in this thread). The policy must be the MLP its config describes (as `trainerFor` makes).
 */
export const withWorkerSampler = async (trainer: Trainer, sampling: SamplingOptions = {}): Promise<Trainer> => {
  const workers = sampling.workers ?? defaultWorkerCount();
  if (!Number.isInteger(workers) || workers < 1) throw new RunError(`workers must be a whole number ≥ 1, got ${workers}`);
  if (workers === 1) return trainer;
  const { config, distribution, policy } = trainer;
  const initLogStd = config.initLogStd;
  const sampler = await workerSampler({
    environment: config.env,
    policy: { observationDim: policy.observationDim, action: policy.action, hidden: policy.hidden, ...(initLogStd !== undefined ? { initLogStd } : {}) },
    backend: sampling.backend ?? currentBackendName(),
    workers,
    describeTask: distribution.describeTask,
  });
  await trainer.sampler.close();
  return { ...trainer, sampler };
};

const disposeReplaced = (old: readonly tf.Tensor[], kept: readonly tf.Tensor[]): void => {
  const keep = new Set(kept);
  tf.dispose(old.filter((x) => !keep.has(x)));
};

const stateTensors = (s: OptimizerState): tf.Tensor[] => (s === undefined ? [] : [...Object.values(s.m), ...Object.values(s.v)]);

/** Seconds rounded to microseconds (timings carry no more information than that). */
const micro = (seconds: number): number => Math.round(seconds * 1e6) / 1e6;

const formatDuration = (seconds: number): string => {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m}m${Math.round(seconds - 60 * m)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
};

const isEmptyDir = (dir: string): boolean => fs.readdirSync(dir).length === 0;

interface Start {
  readonly config: TrainConfig;
  readonly next: number;
  readonly timesteps: number;
  readonly elapsedSeconds: number;
  readonly params: Params | undefined;
  readonly optimizerState: OptimizerState;
  readonly checkpointed: boolean;
}

/** Creates a fresh run directory (refusing a non-empty one) and writes config.json and the headers. */
const startFresh = (runDir: string, config: TrainConfig): Start => {
  const files = runFiles(runDir);
  if (fs.existsSync(runDir)) {
    if (!fs.statSync(runDir).isDirectory()) throw new RunError(`${runDir} exists and is not a directory`);
    if (!isEmptyDir(runDir)) throw new RunError(`${runDir} already exists and is not empty; nothing was written. Continue that run with --resume ${runDir}, or choose another --out`);
  }
  fs.mkdirSync(runDir, { recursive: true });
  writeFileAtomic(files.config, configJson(config));
  writeFileAtomic(files.csv, `${csvColumns(config.adaptationSteps! + 1).join(',')}\n`);
  writeFileAtomic(files.jsonl, '');
  return { config, next: 0, timesteps: 0, elapsedSeconds: 0, params: undefined, optimizerState: undefined, checkpointed: false };
};

/** Reads a run's checkpoint (or, before its first, its config.json), checks the config against it, trims the progress files. */
const startResumed = (runDir: string, wanted: TrainConfig, log: (line: string) => void, warn: (line: string) => void, backend: BackendReport): Start => {
  const files = runFiles(runDir);
  if (!fs.existsSync(runDir) || !fs.statSync(runDir).isDirectory()) throw new RunError(`cannot resume ${runDir}: no such run directory`);
  let checkpoint: CheckpointPayload | undefined;
  let reference: TrainConfig;
  if (fs.existsSync(files.checkpoint)) {
    checkpoint = readCheckpoint(files.checkpoint);
    reference = checkpoint.config;
  } else {
    if (!fs.existsSync(files.config)) throw new RunError(`cannot resume ${runDir}: not a magicbox run directory (no config.json)`);
    const saved = readRunConfig(runDir);
    reference = saved;
  }
  const differences = configDifferences(reference, wanted);
  const done = checkpoint?.nextIteration ?? 0;
  const problems = differences.filter((d) => !d.allowed || (d.field === 'iterations' && wanted.iterations < done));
  if (problems.length > 0) {
    const describe = (d: ConfigDifference) => {
      const change = `${d.field} ${JSON.stringify(d.before)} → ${JSON.stringify(d.after)}`;
      if (d.field === 'iterations') return `${change} is below the ${done} iterations already done`;
      return `${change} is not allowed`;
    };
    throw new ResumeConflictError(
      `cannot resume ${runDir}: the config contradicts the ${checkpoint ? 'checkpoint' : 'run'}'s: ${problems.map(describe).join('; ')} (only ${resumableFields.join(' and ')} may change; iterations may grow)`,
      differences,
    );
  }
  if (checkpoint !== undefined && checkpoint.backend !== backend.backend) {
    warn(`note: the checkpoint was computed on the ${checkpoint.backend} backend and this session uses ${backend.backend}; the numbers may differ from an uninterrupted run in the last digits`);
  }
  if (differences.length > 0) {
    log(`config changes on resume: ${differences.map((d) => `${d.field} ${JSON.stringify(d.before)} → ${JSON.stringify(d.after)}`).join(', ')}`);
  }
  // Temp files of writes a kill interrupted.
  for (const f of fs.readdirSync(runDir)) if (/^\..*\.\d+\.tmp$/.test(f)) fs.rmSync(path.join(runDir, f), { force: true });
  writeFileAtomic(files.config, configJson(wanted));
  const keptCsv = truncateProgress(files.csv, csvColumns(wanted.adaptationSteps! + 1).join(','), done, csvIteration);
  const keptJsonl = truncateProgress(files.jsonl, undefined, done, jsonlIteration);
  if (keptCsv !== done || keptJsonl !== done) {
    warn(`warning: the checkpoint is at iteration ${done} but progress.csv has ${keptCsv} and progress.jsonl ${keptJsonl} rows before it`);
  }
  if (checkpoint === undefined) {
    log(`resuming ${runDir}: it stopped before its first checkpoint; starting from the beginning`);
    return { config: wanted, next: 0, timesteps: 0, elapsedSeconds: 0, params: undefined, optimizerState: undefined, checkpointed: false };
  }
  log(`resuming ${runDir} after ${done} iteration(s) (checkpoint of ${checkpoint.savedAt}, ${checkpoint.timesteps} timesteps)`);
  const shapes = trainerShapes(wanted);
  let params: Params | undefined;
  try {
    params = tensorsFromJson(checkpoint.params, shapes, 'params');
    const optimizerState: OptimizerState =
      checkpoint.optimizer === null
        ? undefined
        : { step: checkpoint.optimizer.step, m: tensorsFromJson(checkpoint.optimizer.m, shapes, 'optimizer.m'), v: tensorsFromJson(checkpoint.optimizer.v, shapes, 'optimizer.v') };
    return { config: wanted, next: done, timesteps: checkpoint.timesteps, elapsedSeconds: checkpoint.elapsedSeconds, params, optimizerState, checkpointed: true };
  } catch (e) {
    if (params !== undefined) tf.dispose(Object.values(params));
    throw new CheckpointError(`checkpoint ${files.checkpoint}: ${e instanceof Error ? e.message : String(e)}`);
  }
};

const trainerShapes = (config: TrainConfig): Readonly<Record<string, readonly number[]>> => {
  const distribution = environmentDescriptor(config.env);
  return mlpPolicyFor(distribution.observationDim, distribution.action, { hidden: config.hidden, initLogStd: config.initLogStd }).paramShapes;
};

/** The config.json of a run directory, decoded (a RunError naming the bad field otherwise). */
export const readRunConfig = (runDir: string): TrainConfig => {
  const file = runFiles(runDir).config;
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RunError(`${file}: ${code === 'ENOENT' ? 'no such file (not a magicbox run directory?)' : `not valid JSON: ${e instanceof Error ? e.message : String(e)}`}`);
  }
  const decoded = decodeConfigPatch(value);
  if (isLeft(decoded)) throw new RunError(decoded.left.map((d) => `${file}: ${d.path === '' ? '' : `${d.path}: `}${d.message}`).join('\n'));
  return completeConfig(resolveConfig(decoded.right));
};

/**
 * Trains `config` in `runDir`: a fresh run (the directory must not exist or be empty) or, with
 * `resume`, the continuation of the run there. Setup problems throw (RunError, ResumeConflictError,
 * CheckpointError); a NaN/inf or other failure inside an iteration ends the run with outcome 'failed'
 * and exit code 1, leaving the last good checkpoint as it was.
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const warn = options.error ?? options.log;
  const iterate = options.iterate ?? runIteration;
  const backend = options.backend ?? (await selectBackend());
  const wanted = completeConfig(options.config);
  // Build the trainer before touching the run directory: a config the algorithms refuse (e.g. a clip
  // range the estimator rejects) is reported with nothing written.
  // (The sampler's worker threads start later, once the run directory has been checked.)
  let trainer: Trainer;
  try {
    trainer = await trainerFor(wanted, { workers: 1 });
  } catch (e) {
    throw new RunError(`invalid configuration: ${e instanceof Error ? e.message : String(e)}`);
  }
  const holder = { trainer };
  try {
    return await runTrainer(options, holder, wanted, backend, iterate, warn);
  } finally {
    await holder.trainer.sampler.close();
  }
}

/** The body of `train`, once its trainer exists; `holder.trainer` gains its worker sampler here. */
async function runTrainer(
  options: TrainOptions,
  holder: { trainer: Trainer },
  wanted: TrainConfig,
  backend: BackendReport,
  iterate: IterationFunction,
  warn: (line: string) => void,
): Promise<TrainResult> {
  const { runDir, log, signal } = options;
  let trainer = holder.trainer;
  // Setup problems are reported before anything else is printed; what setup has to say comes after
  // the backend line.
  const notes: Array<{ line: string; warning: boolean }> = [];
  const start = options.resume
    ? startResumed(runDir, wanted, (line) => notes.push({ line, warning: false }), (line) => notes.push({ line, warning: true }), backend)
    : startFresh(runDir, wanted);
  log(describeBackend(backend));
  notes.forEach(({ line, warning }) => (warning ? warn(line) : log(line)));
  const { config } = start;
  const files = runFiles(runDir);
  let params: Params = start.params ?? trainer.policy.init(config.seed);
  let optimizerState: OptimizerState = start.optimizerState;
  let timesteps = start.timesteps;
  let done = start.next;
  let checkpointIteration = start.checkpointed ? start.next : undefined;
  let lastRow: ProgressRow | undefined;
  const began = performance.now();
  const wall = () => start.elapsedSeconds + (performance.now() - began) / 1000;

  const checkpoint = () => {
    writeCheckpoint(files.checkpoint, {
      config,
      nextIteration: done,
      timesteps,
      elapsedSeconds: wall(),
      backend: backend.backend,
      savedAt: new Date().toISOString(),
      params: tensorsToJson(params),
      optimizer: optimizerState === undefined ? null : { kind: 'adam', step: optimizerState.step, m: tensorsToJson(optimizerState.m), v: tensorsToJson(optimizerState.v) },
    });
    checkpointIteration = done;
  };
  const result = (outcome: TrainResult['outcome'], exitCode: number, message?: string): TrainResult => ({
    outcome,
    exitCode,
    runDir,
    config,
    iterationsDone: done,
    checkpointIteration,
    ...(lastRow !== undefined ? { lastRow } : {}),
    ...(message !== undefined ? { message } : {}),
  });

  if (done >= config.iterations) {
    log(`${runDir}: all ${config.iterations} iterations are done; nothing to run (raise --iterations to continue)`);
    tf.dispose([...Object.values(params), ...stateTensors(optimizerState)]);
    return result('completed', 0);
  }
  const workers = options.workers ?? defaultWorkerCount();
  if (workers > 1 || options.sampler !== undefined) {
    try {
      const sampler = options.sampler;
      trainer = holder.trainer =
        sampler !== undefined ? { ...trainer, sampler: await sampler(trainer) } : await withWorkerSampler(trainer, { workers, backend: backend.tfjsName });
    } catch (e) {
      tf.dispose([...Object.values(params), ...stateTensors(optimizerState)]);
      throw new RunError(e instanceof Error ? e.message : String(e));
    }
  }
  const sampling = trainer.sampler.description ?? (trainer.sampler.workers === 1 ? 'sampling in this thread' : `sampling on ${trainer.sampler.workers} worker threads`);
  log(`training ${config.algo} on ${config.env}: iterations ${done + 1}-${config.iterations}, ${config.tasksPerIteration} tasks × ${config.trajectoriesPerTask} trajectories × horizon ${config.horizon}, ${config.adaptationSteps} adaptation step(s), ${sampling}; run directory ${runDir}`);

  const display = makeDisplay(options.progress ?? 'auto', log, config.iterations, done);
  const csv = fs.openSync(files.csv, 'a');
  const jsonl = fs.openSync(files.jsonl, 'a');
  try {
    while (done < config.iterations) {
      if (signal?.aborted) {
        display.stop();
        if (checkpointIteration !== done) checkpoint();
        const message = `interrupted after ${done} iteration(s); checkpoint written. Continue with: magicbox train --resume ${runDir}`;
        warn(message);
        return result('interrupted', 130, message);
      }
      const iteration = done;
      let step: IterationResult;
      try {
        step = await iterate(trainer, params, optimizerState, iteration);
      } catch (e) {
        display.stop();
        const what = e instanceof TrainingError ? e.message : `iteration ${iteration}: ${e instanceof Error ? e.message : String(e)}`;
        const kept =
          checkpointIteration === undefined
            ? 'no checkpoint had been written yet'
            : `the last good checkpoint (after ${checkpointIteration} iteration(s)) is kept in ${files.checkpoint}`;
        const message = `training stopped: ${what}; ${kept}`;
        warn(message);
        if (!(e instanceof TrainingError) && process.env['MAGICBOX_DEBUG'] && e instanceof Error && e.stack) warn(e.stack);
        return result('failed', 1, message);
      }
      timesteps += step.stats.timesteps;
      const s = step.stats;
      const row: ProgressRow = {
        iteration,
        timesteps,
        averageReturn: [...s.averageReturn],
        samplingSeconds: micro(s.samplingSeconds),
        adaptationSeconds: micro(s.adaptationSeconds),
        outerSeconds: micro(s.outerSeconds),
        objective: s.objective,
        kl: s.kl ?? null,
        lineSearch: s.lineSearch ?? null,
        wallSeconds: micro(wall()),
        backend: backend.backend,
      };
      fs.writeSync(csv, `${csvLine(row)}\n`);
      fs.writeSync(jsonl, `${JSON.stringify(row)}\n`);
      disposeReplaced([...Object.values(params), ...stateTensors(optimizerState)], [...Object.values(step.params), ...stateTensors(step.optimizerState)]);
      params = step.params;
      optimizerState = step.optimizerState;
      done = iteration + 1;
      lastRow = row;
      if (done % config.checkpointEvery === 0 || done === config.iterations) {
        // The rows the checkpoint vouches for are on disk before it is.
        fs.fsyncSync(csv);
        fs.fsyncSync(jsonl);
        checkpoint();
      }
      display.row(row);
      options.onIteration?.(row);
      // Let signal handlers (Ctrl-C) run between iterations.
      await new Promise((resolve) => setImmediate(resolve));
    }
    display.stop();
    const last = lastRow!;
    log(
      `done: ${config.iterations} iterations, ${timesteps} timesteps in ${formatDuration(wall())}; last iteration ${describeReturns(last.averageReturn)}; ` +
        `checkpoint ${files.checkpoint}`,
    );
    return result('completed', 0);
  } finally {
    display.stop();
    fs.closeSync(csv);
    fs.closeSync(jsonl);
    tf.dispose([...Object.values(params), ...stateTensors(optimizerState)]);
  }
}

// ---------------------------------------------------------------------------------------------------
// Evaluation

export interface CheckpointEvaluation {
  /** Average return per trajectory at each adaptation level (0: pre-update) on fresh tasks. */
  readonly averageReturn: number[];
  readonly checkpoint: string;
  readonly config: TrainConfig;
  /** Iterations the checkpointed parameters were trained for. */
  readonly iterations: number;
  readonly tasks: number;
  readonly seed: number;
}

/**
 * Meta-test evaluation: loads a checkpoint (a file or a run directory) and measures the average return
 * at each adaptation level on `tasks` fresh tasks (default: the run's tasks per iteration), drawn from
 * `seed` (default 0), with no outer step.
 */
export const evaluateCheckpoint = async (
  file: string,
  options: { readonly tasks?: number; readonly seed?: number } & SamplingOptions = {},
): Promise<CheckpointEvaluation> => {
  const checkpoint = readCheckpoint(file);
  const where = fs.existsSync(file) && fs.statSync(file).isDirectory() ? runFiles(file).checkpoint : file;
  let params: Params;
  try {
    params = tensorsFromJson(checkpoint.params, trainerShapes(checkpoint.config), 'params');
  } catch (e) {
    throw new CheckpointError(`checkpoint ${where}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const tasks = options.tasks ?? checkpoint.config.tasksPerIteration;
  const seed = options.seed ?? 0;
  try {
    const trainer = await trainerFor(checkpoint.config, options);
    try {
      const averageReturn = await evaluateParams(trainer, params, seed, tasks);
      return { averageReturn, checkpoint: where, config: checkpoint.config, iterations: checkpoint.nextIteration, tasks, seed };
    } finally {
      await trainer.sampler.close();
    }
  } finally {
    tf.dispose(Object.values(params));
  }
};
