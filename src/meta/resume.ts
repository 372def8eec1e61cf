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
import { csvColumns, csvIteration, jsonlIteration, truncateProgress } from './progress-log.ts';
import { configDifferences, configJson, readRunConfig, resumableFields, type ConfigDifference } from './run-config.ts';
import { runFiles, RunError, writeFileAtomic } from './run-directory.ts';
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

const isEmptyDir = (dir: string): boolean => fs.readdirSync(dir).length === 0;

export interface Start {
  readonly config: TrainConfig;
  readonly next: number;
  readonly timesteps: number;
  readonly elapsedSeconds: number;
  readonly params: Params | undefined;
  readonly optimizerState: OptimizerState;
  readonly checkpointed: boolean;
}

/** Creates a fresh run directory (refusing a non-empty one) and writes config.json and the headers. */
export const startFresh = (runDir: string, config: TrainConfig): Start => {
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
