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
import { startFresh, startResumed } from './resume.ts';
import { completeConfig } from './run-config.ts';
import { runFiles, RunError } from './run-directory.ts';
import { trainerFor, withWorkerSampler } from './trainer-setup.ts';

export { RunError, runFiles, writeFileAtomic } from './run-directory.ts';
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
export { trainerFor, withWorkerSampler, type SamplingOptions } from './trainer-setup.ts';
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
  if (workers > 1) {
    try {
      trainer = holder.trainer = await withWorkerSampler(trainer, { workers, backend: backend.tfjsName });
    } catch (e) {
      tf.dispose([...Object.values(params), ...stateTensors(optimizerState)]);
      throw new RunError(e instanceof Error ? e.message : String(e));
    }
  }
  const sampling = trainer.sampler.workers === 1 ? 'sampling in this thread' : `sampling on ${trainer.sampler.workers} worker threads`;
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
