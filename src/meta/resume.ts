/**
 * How a run starts: a fresh run directory, or the continuation of the run in one (its checkpoint read
 * and checked against the config, its progress files trimmed to the checkpoint).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { BackendReport } from '../backend.ts';
import type { Params } from '../surrogates/batch.ts';
import { CheckpointError, readCheckpoint, tensorsFromJson, type CheckpointPayload } from './checkpoint.ts';
import type { TrainConfig } from './config.ts';
import type { OptimizerState } from './iteration.ts';
import { csvColumns, repairProgress } from './progress-log.ts';
import { configDifferences, configJson, readRunConfig, resumableFields, type ConfigDifference } from './run-config.ts';
import { fileError, isTempFileName, runFiles, RunError, writeFileAtomic } from './run-directory.ts';
import { trainerShapes } from './trainer-setup.ts';

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

/** The entries of `dir` other than its lock file. */
const entriesBesidesLock = (dir: string): string[] => fs.readdirSync(dir).filter((f) => f !== '.lock');

export interface Start {
  readonly config: TrainConfig;
  readonly next: number;
  readonly timesteps: number;
  readonly elapsedSeconds: number;
  readonly params: Params | undefined;
  readonly optimizerState: OptimizerState;
  readonly checkpointed: boolean;
}

/** Refuses a fresh run in a directory that is a file or holds anything; nothing is written. */
export const checkFreshRunDirectory = (runDir: string): void => {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(runDir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    throw fileError('use', runDir, e);
  }
  if (!stat.isDirectory()) throw new RunError(`${runDir} exists and is not a directory`);
  let entries: string[];
  try {
    entries = entriesBesidesLock(runDir);
  } catch (e) {
    throw fileError('read directory', runDir, e);
  }
  if (entries.length > 0) throw new RunError(`${runDir} already exists and is not empty; nothing was written. Continue that run with --resume ${runDir}, or choose another --out`);
};

/**
 * Writes config.json and the headers of a fresh run directory (created, and locked, by the caller).
 * A failed write removes what this function wrote, so a refused run leaves no half-made directory.
 */
export const startFresh = (runDir: string, config: TrainConfig): Start => {
  checkFreshRunDirectory(runDir);
  const files = runFiles(runDir);
  try {
    writeFileAtomic(files.config, configJson(config));
    writeFileAtomic(files.csv, `${csvColumns(config.adaptationSteps! + 1).join(',')}\n`);
    writeFileAtomic(files.jsonl, '');
  } catch (e) {
    for (const f of [files.config, files.csv, files.jsonl]) fs.rmSync(f, { force: true });
    throw e;
  }
  return { config, next: 0, timesteps: 0, elapsedSeconds: 0, params: undefined, optimizerState: undefined, checkpointed: false };
};

const readIfPresent = (file: string): string => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw fileError('read', file, e);
  }
};

/**
 * Reads a run's checkpoint (or, before its first, its config.json), checks the config against it and
 * works out the repaired progress files; only when all of that succeeded does it write anything
 * (config.json, the trimmed progress files). A run directory whose checkpoint is gone while progress
 * rows remain is refused: continuing would silently discard those rows.
 */
export const startResumed = (runDir: string, wanted: TrainConfig, log: (line: string) => void, warn: (line: string) => void, backend: BackendReport): Start => {
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
      `cannot resume ${runDir}: the config contradicts the ${checkpoint ? 'checkpoint' : 'run'}'s: ${problems.map(describe).join('; ')} (only ${resumableFields.join(' and ')} may change; iterations may grow); nothing was changed`,
      differences,
    );
  }
  const csvRepair = repairProgress(readIfPresent(files.csv), csvColumns(wanted.adaptationSteps! + 1), done);
  const jsonlRepair = repairProgress(readIfPresent(files.jsonl), undefined, done);
  if (checkpoint === undefined && (csvRepair.rows > 0 || jsonlRepair.rows > 0)) {
    throw new RunError(
      `cannot resume ${runDir}: ${files.checkpoint} is missing but progress.csv holds ${csvRepair.rows} row(s) and progress.jsonl ${jsonlRepair.rows}; ` +
        `resuming would discard them, so nothing was changed. Restore the checkpoint, or start a new run with --out`,
    );
  }
  const shapes = trainerShapes(wanted);
  let params: Params | undefined;
  let optimizerState: OptimizerState;
  if (checkpoint !== undefined) {
    try {
      params = tensorsFromJson(checkpoint.params, shapes, 'params');
      optimizerState =
        checkpoint.optimizer === null
          ? undefined
          : { step: checkpoint.optimizer.step, m: tensorsFromJson(checkpoint.optimizer.m, shapes, 'optimizer.m'), v: tensorsFromJson(checkpoint.optimizer.v, shapes, 'optimizer.v') };
    } catch (e) {
      if (params !== undefined) tf.dispose(Object.values(params));
      throw new CheckpointError(`checkpoint ${files.checkpoint}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  // Everything checked: now the files may change.
  const disposeLoaded = () => tf.dispose([...Object.values(params ?? {}), ...Object.values(optimizerState?.m ?? {}), ...Object.values(optimizerState?.v ?? {})]);
  try {
    // Temp files of writes a kill interrupted.
    for (const f of fs.readdirSync(runDir)) if (isTempFileName(f)) fs.rmSync(path.join(runDir, f), { force: true });
    if (readIfPresent(files.config) !== configJson(wanted)) writeFileAtomic(files.config, configJson(wanted));
    writeFileAtomic(files.csv, csvRepair.text);
    writeFileAtomic(files.jsonl, jsonlRepair.text);
  } catch (e) {
    disposeLoaded();
    throw e;
  }
  if (checkpoint !== undefined && checkpoint.backend !== backend.backend) {
    warn(`note: the checkpoint was computed on the ${checkpoint.backend} backend and this session uses ${backend.backend}; the numbers may differ from an uninterrupted run in the last digits`);
  }
  if (differences.length > 0) {
    log(`config changes on resume: ${differences.map((d) => `${d.field} ${JSON.stringify(d.before)} → ${JSON.stringify(d.after)}`).join(', ')}`);
  }
  const torn = csvRepair.torn + jsonlRepair.torn;
  if (torn > 0) warn(`note: removed ${torn} torn progress line(s) (cut short by a kill)`);
  if (csvRepair.kept !== done || jsonlRepair.kept !== done) {
    warn(`warning: the checkpoint is at iteration ${done} but progress.csv has ${csvRepair.kept} and progress.jsonl ${jsonlRepair.kept} rows before it`);
  }
  if (checkpoint === undefined) {
    log(`resuming ${runDir}: it stopped before its first checkpoint; starting from the beginning`);
    return { config: wanted, next: 0, timesteps: 0, elapsedSeconds: 0, params: undefined, optimizerState: undefined, checkpointed: false };
  }
  log(`resuming ${runDir} after ${done} iteration(s) (checkpoint of ${checkpoint.savedAt}, ${checkpoint.timesteps} timesteps)`);
  return { config: wanted, next: done, timesteps: checkpoint.timesteps, elapsedSeconds: checkpoint.elapsedSeconds, params, optimizerState, checkpointed: true };
};
