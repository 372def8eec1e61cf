/**
 * The training loop. The run directory, its checkpoints, progress logs, resume and evaluation live in
 * their own modules (run-directory, checkpoint, progress-log, resume, evaluate-checkpoint), re-exported
 * here. No command-line parsing here (src/cli/train.ts does that).
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
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { describeBackend, selectBackend, type BackendReport } from '../backend.ts';
import type { Params } from '../surrogates/batch.ts';
import { tensorsToJson, writeCheckpoint } from './checkpoint.ts';
import type { TrainConfig } from './config.ts';
import { runIteration, TrainingError, type IterationResult, type OptimizerState, type Trainer } from './iteration.ts';
import { defaultWorkerCount } from './parallel-sampler.ts';
import { describeReturns, formatDuration, makeDisplay, type ProgressMode } from './progress-display.ts';
import { csvLine, type ProgressRow } from './progress-log.ts';
import { checkFreshRunDirectory, startFresh, startResumed } from './resume.ts';
import { completeConfig } from './run-config.ts';
import { fileError, lockRunDirectory, makeDirectory, runFiles, RunError, type RunLock } from './run-directory.ts';
import { trainerFor, withWorkerSampler, workersFor, type TrainerParts } from './trainer-setup.ts';
import type { Sampler } from './sampler.ts';

export { RunError, FileError, RunLockedError, runFiles, writeFileAtomic, lockRunDirectory, type RunLock } from './run-directory.ts';
export { decodeConfigPatch, completeConfig, resumableFields, configDifferences, readRunConfig, type ConfigDifference } from './run-config.ts';
export {
  CheckpointError,
  checkpointFormat,
  checkpointVersion,
  encodeCheckpoint,
  decodeCheckpoint,
  readCheckpoint,
  writeCheckpoint,
  type TensorJson,
  type CheckpointPayload,
} from './checkpoint.ts';
export { csvColumns, type ProgressRow } from './progress-log.ts';
export { iterationLine, type ProgressMode } from './progress-display.ts';
export { ResumeConflictError } from './resume.ts';
export { trainerFor, withWorkerSampler, type SamplingOptions, type TrainerParts } from './trainer-setup.ts';
export { evaluateCheckpoint, type CheckpointEvaluation } from './evaluate-checkpoint.ts';

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
  /**
   * Aborting stops the run at once: an iteration still in progress is abandoned (its work is lost,
   * nothing of it is recorded), the state after the last finished iteration is checkpointed, and the
   * run returns 'interrupted'. A synchronous stretch of an iteration (the outer step) runs to its end
   * before the abort can be seen.
   */
  readonly signal?: AbortSignal;
  /**
   * Besides every `checkpointEvery` iterations, a checkpoint is written after any iteration that ends
   * this many seconds or more after the last one (default 60), so that a kill loses about a minute.
   * Checkpoints do not change the numbers.
   */
  readonly checkpointSeconds?: number;
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
  /** Your own task distribution and/or policy instead of the built-in ones (see TrainerParts). */
  readonly distribution?: TrainerParts['distribution'];
  readonly policy?: TrainerParts['policy'];
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

const disposeReplaced = (old: readonly tf.Tensor[], kept: readonly tf.Tensor[]): void => {
  const keep = new Set(kept);
  tf.dispose(old.filter((x) => !keep.has(x)));
};

const stateTensors = (s: OptimizerState): tf.Tensor[] => (s === undefined ? [] : [...Object.values(s.m), ...Object.values(s.v)]);

/** Seconds rounded to microseconds (timings carry no more information than that). */
const micro = (seconds: number): number => Math.round(seconds * 1e6) / 1e6;

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
  const parts: TrainerParts = { distribution: options.distribution, policy: options.policy };
  if (options.resume && (parts.distribution !== undefined || parts.policy !== undefined)) {
    throw new RunError('a run with a task distribution or policy of your own cannot be resumed: its checkpoint names only built-in ones');
  }
  workersFor(parts, options.workers); // refuses worker threads for these parts before anything is written
  const wanted = completeConfig(options.config, options.distribution);
  // Build the trainer before touching the run directory: a config the algorithms refuse (e.g. a clip
  // range the estimator rejects) is reported with nothing written.
  // (The sampler's worker threads start later, once the run directory has been checked.)
  let trainer: Trainer;
  try {
    trainer = await trainerFor(wanted, { workers: 1, ...parts });
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

/** Default of TrainOptions.checkpointSeconds: a kill loses at most about a minute of work. */
export const defaultCheckpointSeconds = 60;

/**
 * Takes the run directory (created for a fresh run, one level at a time) and its lock, then runs.
 * A fresh run that fails before its first checkpoint leaves no directory behind.
 */
async function runTrainer(
  options: TrainOptions,
  holder: { trainer: Trainer },
  wanted: TrainConfig,
  backend: BackendReport,
  iterate: IterationFunction,
  warn: (line: string) => void,
): Promise<TrainResult> {
  const { runDir } = options;
  let created = false;
  if (!options.resume) {
    checkFreshRunDirectory(runDir);
    created = !fs.existsSync(runDir);
    makeDirectory(runDir);
  } else if (!fs.existsSync(runDir) || !fs.statSync(runDir).isDirectory()) {
    throw new RunError(`cannot resume ${runDir}: no such run directory`);
  }
  let lock: RunLock;
  try {
    lock = lockRunDirectory(runDir);
  } catch (e) {
    if (created) fs.rmSync(runDir, { recursive: true, force: true });
    throw e;
  }
  try {
    return await runLocked(options, holder, wanted, backend, iterate, warn);
  } catch (e) {
    // A failure before the first checkpoint (setup, or a full disk refusing it): a directory this call
    // created holds nothing to continue from, so none of it is left half-written. Later failures keep it.
    lock.release();
    if (created && !fs.existsSync(runFiles(runDir).checkpoint)) fs.rmSync(runDir, { recursive: true, force: true });
    throw e;
  } finally {
    lock.release();
  }
}

/** The body of `train`, once its trainer exists and the run directory is locked; `holder.trainer` gains its worker sampler here. */
async function runLocked(
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
  const checkpointSeconds = options.checkpointSeconds ?? defaultCheckpointSeconds;
  let lastCheckpointAt = performance.now();

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
    lastCheckpointAt = performance.now();
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
  const kept = () =>
    checkpointIteration === undefined
      ? 'no checkpoint had been written yet'
      : `the last good checkpoint (after ${checkpointIteration} iteration(s)) is kept in ${files.checkpoint}`;

  if (done >= config.iterations) {
    log(`${runDir}: all ${config.iterations} iterations are done; nothing to run (raise --iterations to continue)`);
    tf.dispose([...Object.values(params), ...stateTensors(optimizerState)]);
    return result('completed', 0);
  }
  const workers = workersFor(options, options.workers) ?? defaultWorkerCount();
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
  let csv: number | undefined;
  let jsonl: number | undefined;
  // An abort settles this at once, so that an iteration still sampling is abandoned rather than awaited.
  const aborted = new Promise<'aborted'>((resolve) => {
    if (signal?.aborted) resolve('aborted');
    signal?.addEventListener('abort', () => resolve('aborted'), { once: true });
  });
  const interrupted = () => {
    display.stop();
    try {
      if (checkpointIteration !== done) checkpoint();
    } catch (e) {
      const message = `interrupted after ${done} iteration(s), but the checkpoint could not be written: ${describeError(e)}; ${kept()}`;
      warn(message);
      return result('failed', 1, message);
    }
    const message = `interrupted after ${done} iteration(s); checkpoint written. Continue with: magicbox train --resume ${runDir}`;
    warn(message);
    return result('interrupted', 130, message);
  };
  try {
    csv = openAppend(files.csv);
    jsonl = openAppend(files.jsonl);
    // A checkpoint before the first iteration: from here on every row on disk has a checkpoint to
    // continue from, so a missing checkpoint next to rows is always an error.
    if (checkpointIteration === undefined) checkpoint();
    while (done < config.iterations) {
      if (signal?.aborted) return interrupted();
      const iteration = done;
      let step: IterationResult;
      try {
        const running = Promise.resolve(iterate(trainer, params, optimizerState, iteration));
        const first = await Promise.race([running, aborted]);
        if (first === 'aborted') {
          // Abandoned: its result (if it ever comes) is not this run's; the state before it is checkpointed.
          running.then((r) => tf.dispose([...Object.values(r.params), ...stateTensors(r.optimizerState)].filter((x) => !Object.values(params).includes(x))), () => {});
          return interrupted();
        }
        step = first;
      } catch (e) {
        display.stop();
        // (An exhausted wasm heap arrives as a TrainingError naming the batch: iteration.ts memoryError.)
        const what = e instanceof TrainingError ? e.message : `iteration ${iteration}: ${describeError(e)}`;
        const message = `training stopped: ${what}; ${kept()}`;
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
        // ProMP's objective before its outer step is ~0 by construction: the row shows the one after.
        objective: s.objectiveAfter ?? s.objective,
        kl: s.kl ?? null,
        lineSearch: s.lineSearch ?? null,
        wallSeconds: micro(wall()),
        backend: backend.backend,
        ...(s.clipFraction !== undefined ? { clipFraction: s.clipFraction } : {}),
      };
      disposeReplaced([...Object.values(params), ...stateTensors(optimizerState)], [...Object.values(step.params), ...stateTensors(step.optimizerState)]);
      params = step.params;
      optimizerState = step.optimizerState;
      try {
        appendLine(csv, files.csv, csvLine(row));
        appendLine(jsonl, files.jsonl, JSON.stringify(row));
        done = iteration + 1;
        lastRow = row;
        const due = done % config.checkpointEvery === 0 || done === config.iterations || (performance.now() - lastCheckpointAt) / 1000 >= checkpointSeconds;
        if (due) {
          // The rows the checkpoint vouches for are on disk before it is.
          fs.fsyncSync(csv);
          fs.fsyncSync(jsonl);
          checkpoint();
        }
      } catch (e) {
        display.stop();
        const message = `training stopped after ${done} iteration(s): ${describeError(e)}; ${kept()}`;
        warn(message);
        return result('failed', 1, message);
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
    if (csv !== undefined) fs.closeSync(csv);
    if (jsonl !== undefined) fs.closeSync(jsonl);
    tf.dispose([...Object.values(params), ...stateTensors(optimizerState)]);
  }
}

const describeError = (e: unknown): string => (e instanceof Error ? e.message.split('\n')[0]! : String(e));

const openAppend = (file: string): number => {
  try {
    return fs.openSync(file, 'a');
  } catch (e) {
    throw fileError('open', file, e);
  }
};

/** Appends one row; a failed or short write is a FileError naming the file. */
const appendLine = (fd: number, file: string, line: string): void => {
  try {
    fs.writeSync(fd, `${line}\n`);
  } catch (e) {
    throw fileError('write', file, e);
  }
};
