/**
 * `magicbox train --algo A --env E [--iterations N] [--seed S] [--out DIR] [--config FILE] [--resume RUN_DIR] …`:
 * builds the config (defaults, then the config file, then the command line; on resume the run's own
 * config.json comes first), checks every value with the config codec so that errors name the flag or
 * field, and runs src/meta/train.ts. Ctrl-C (or SIGTERM, or the parent's death) stops the run with a
 * checkpoint of the last finished iteration; a second Ctrl-C exits at once.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { isLeft } from 'fp-ts/lib/Either.js';
import { selectBackend } from '../backend.ts';
import { batchSize, formatBytes, wasmHeapBytes } from '../meta/batch-size.ts';
import { resolveConfig, type TrainConfig, type TrainConfigPatch } from '../meta/config.ts';
import { CheckpointError, completeConfig, decodeConfigPatch, readRunConfig, RunError, train, type ProgressMode } from '../meta/train.ts';
import { watchLauncher } from './parent-watch.ts';
import type { Output } from './validate.ts';
import { redisTarget, RedisUrlError, type RedisTarget } from '../meta/redis-connection.ts';

/** The options as commander gives them: strings, checked here. */
export interface TrainCliOptions {
  readonly algo?: string;
  readonly env?: string;
  readonly iterations?: string;
  readonly seed?: string;
  readonly out?: string;
  readonly config?: string;
  readonly resume?: string;
  readonly tasks?: string;
  readonly trajectories?: string;
  readonly horizon?: string;
  readonly adaptationSteps?: string;
  readonly checkpointEvery?: string;
  readonly engine?: string;
  readonly actionNormalization?: string;
  readonly progress?: string;
  readonly workers?: string;
  readonly redis?: string;
  readonly redisTimeout?: string;
}

/** Command-line flags and the config fields they set. */
const flagFields = {
  algo: { flag: '--algo', field: 'algo', numeric: false },
  env: { flag: '--env', field: 'env', numeric: false },
  iterations: { flag: '--iterations', field: 'iterations', numeric: true },
  seed: { flag: '--seed', field: 'seed', numeric: true },
  tasks: { flag: '--tasks', field: 'tasksPerIteration', numeric: true },
  trajectories: { flag: '--trajectories', field: 'trajectoriesPerTask', numeric: true },
  horizon: { flag: '--horizon', field: 'horizon', numeric: true },
  adaptationSteps: { flag: '--adaptation-steps', field: 'adaptationSteps', numeric: true },
  checkpointEvery: { flag: '--checkpoint-every', field: 'checkpointEvery', numeric: true },
  engine: { flag: '--engine', field: 'engine', numeric: false },
  actionNormalization: { flag: '--action-normalization', field: 'actionNormalization', numeric: false },
} as const satisfies Record<string, { flag: string; field: keyof TrainConfigPatch; numeric: boolean }>;

const progressModes: readonly ProgressMode[] = ['auto', 'bar', 'lines', 'off'];

/** `runs/<algo>-<env>-<seed>-<YYYYMMDD-HHMMSS>` (UTC). */
export const defaultRunDir = (config: TrainConfig, now: Date = new Date()): string => {
  const stamp = now.toISOString().replace(/\.\d+Z$/, '').replaceAll('-', '').replaceAll(':', '').replace('T', '-');
  return path.join('runs', `${config.algo}-${config.env}-${config.seed}-${stamp}`);
};

/** The command-line values as a config patch, or errors naming the flag. */
const cliPatch = (opts: TrainCliOptions): { patch: TrainConfigPatch } | { errors: string[] } => {
  const raw: Record<string, unknown> = {};
  const flagOf: Record<string, string> = {};
  for (const [key, { flag, field, numeric }] of Object.entries(flagFields)) {
    const value = opts[key as keyof typeof flagFields];
    if (value === undefined) continue;
    // A numeric flag's text becomes a number only when it is one; otherwise the codec reports the text.
    raw[field] = numeric && /^\s*-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i.test(value) ? Number(value) : value;
    flagOf[field] = flag;
  }
  const decoded = decodeConfigPatch(raw);
  if (isLeft(decoded)) {
    return { errors: decoded.left.map((e) => `${flagOf[e.path.split(/[.[]/)[0]!] ?? e.path}: ${e.message}`) };
  }
  return { patch: decoded.right };
};

/** A config file's patch, or errors `FILE: field: message`. */
const filePatch = async (file: string): Promise<{ patch: TrainConfigPatch } | { errors: string[] }> => {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { errors: [`${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a config file' : e instanceof Error ? e.message : String(e)}`] };
  }
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    return { errors: [`${file}: not valid JSON: ${e instanceof Error ? e.message : String(e)}`] };
  }
  const decoded = decodeConfigPatch(value);
  if (isLeft(decoded)) return { errors: decoded.left.map((e) => `${file}: ${e.path === '' ? '' : `${e.path}: `}${e.message}`) };
  return { patch: decoded.right };
};

/** How far above the core count --workers may go before it is refused (each worker holds a backend and an environment copy). */
export const workersPerCoreLimit = 4;

/**
 * `--workers N`: a whole number ≥ 1 (how many threads sample), or absent (one per core). Above the
 * cores it is a warning (the threads only take turns); above 4× the cores a refusal (`--workers 1000`
 * would start a thousand tfjs backends and run out of memory minutes later).
 */
export const parseWorkers = (text: string | undefined, cores: number = availableParallelism()): { value?: number; warning?: string } | { error: string } => {
  if (text === undefined) return {};
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < 1) return { error: `--workers: expected a whole number ≥ 1, got ${JSON.stringify(text)}` };
  const value = Number(text);
  if (value > workersPerCoreLimit * cores) {
    return { error: `--workers ${value} is far above the ${cores} core(s) of this machine (at most ${workersPerCoreLimit * cores}); each worker loads its own backend and environment` };
  }
  if (value > cores) return { value, warning: `note: --workers ${value} is above the ${cores} core(s) of this machine; the extra threads only take turns` };
  return { value };
};

/** `--redis URL [--redis-timeout S]`: the fleet's server (password masked in every message), or none. */
const parseRedis = (opts: TrainCliOptions): { target?: RedisTarget; timeout: number } | { error: string } => {
  const timeoutText = opts.redisTimeout;
  if (timeoutText !== undefined && !(/^\s*\d+(\.\d*)?\s*$/.test(timeoutText) && Number(timeoutText) > 0)) {
    return { error: `--redis-timeout: expected a number of seconds > 0, got ${JSON.stringify(timeoutText)}` };
  }
  const timeout = timeoutText === undefined ? 60 : Number(timeoutText);
  if (opts.redis !== undefined && opts.workers !== undefined) return { error: '--workers and --redis exclude each other: with --redis, the workers are `magicbox worker` processes' };
  if (opts.redis === undefined) return timeoutText === undefined ? { timeout } : { error: '--redis-timeout needs --redis' };
  try {
    return { target: redisTarget(opts.redis), timeout };
  } catch (e) {
    if (e instanceof RedisUrlError) return { error: e.message };
    throw e;
  }
};

/** Runs `magicbox train`; returns the exit status (0 done, 1 bad input or a failed run, 130 interrupted). */
export async function runTrain(opts: TrainCliOptions, out: Output): Promise<number> {
  const fail = (lines: readonly string[]) => {
    lines.forEach((line) => out.error(`magicbox train: ${line}`));
    return 1;
  };
  if (opts.progress !== undefined && !(progressModes as readonly string[]).includes(opts.progress)) {
    return fail([`--progress: expected one of ${progressModes.join(', ')}, got ${JSON.stringify(opts.progress)}`]);
  }
  const workers = parseWorkers(opts.workers);
  if ('error' in workers) return fail([workers.error]);
  if (workers.warning !== undefined) out.error(`magicbox train: ${workers.warning}`);
  const redis = parseRedis(opts);
  if ('error' in redis) return fail([redis.error]);
  if (opts.resume !== undefined && opts.out !== undefined) {
    return fail(['--out and --resume exclude each other: a resumed run stays in its own directory']);
  }
  const fromCli = cliPatch(opts);
  if ('errors' in fromCli) return fail(fromCli.errors);
  const fromFile = opts.config === undefined ? { patch: {} } : await filePatch(opts.config);
  if ('errors' in fromFile) return fail(fromFile.errors);

  let config: TrainConfig;
  let runDir: string;
  try {
    if (opts.resume !== undefined) {
      runDir = opts.resume;
      const saved = readRunConfig(runDir);
      config = completeConfig(resolveConfig({ ...saved, hidden: [...saved.hidden] }, fromFile.patch, fromCli.patch));
    } else {
      config = completeConfig(resolveConfig(fromFile.patch, fromCli.patch));
      runDir = opts.out ?? defaultRunDir(config);
    }
  } catch (e) {
    if (e instanceof RunError) return fail(e.message.split('\n'));
    throw e;
  }

  const backend = await selectBackend();
  const sized = (['tasks', 'trajectories', 'horizon'] as const).some((k) => opts[k] !== undefined) || ['tasksPerIteration', 'trajectoriesPerTask', 'horizon'].some((k) => k in fromFile.patch);
  if (opts.resume === undefined && !sized) {
    // The paper's sizes are large: say what is about to be sampled, and what it may take.
    const size = batchSize(config);
    const heap = backend.backend === 'wasm' ? `; the wasm backend's heap is capped at ${formatBytes(wasmHeapBytes)}` : '';
    out.log(`batch per iteration (no --tasks/--trajectories/--horizon given): ${size.description}; memory up to ~${formatBytes(size.memoryBytes)} (rough)${heap}`);
  }
  const controller = new AbortController();
  const stopping = stopOnSignals(controller, out);
  try {
    const result = await train({
      config,
      runDir,
      resume: opts.resume !== undefined,
      log: out.log,
      error: out.error,
      progress: (opts.progress as ProgressMode | undefined) ?? 'auto',
      signal: controller.signal,
      backend,
      ...(workers.value !== undefined ? { workers: workers.value } : {}),
      ...(redis.target !== undefined ? { sampler: async (t) => (await import('../meta/redis-sampler.ts')).redisSamplerFor(t, { redis: redis.target!, timeoutSeconds: redis.timeout, log: out.error }) } : {}),
    });
    return result.exitCode;
  } catch (e) {
    if (e instanceof RunError || e instanceof CheckpointError) return fail([e.message]);
    throw e;
  } finally {
    stopping.dispose();
  }
}

/**
 * Ctrl-C, SIGTERM, SIGHUP and the death of the parent process (a `kill -9` of the npx wrapper, whose
 * child would otherwise train on as an orphan) all stop the run: the first abandons the iteration
 * in progress and checkpoints; a second Ctrl-C exits at once (the checkpoint on disk is the last
 * one written; the terminal is restored by the progress display's exit hook).
 */
const stopOnSignals = (controller: AbortController, out: Output): { dispose: () => void } => {
  let interrupts = 0;
  const stop = (why: string) => {
    interrupts++;
    if (interrupts === 1) {
      out.error(`magicbox train: ${why}: stopping now and writing a checkpoint (interrupt again to exit at once)`);
      controller.abort();
    } else {
      out.error('magicbox train: exiting at once; the run continues from its last checkpoint with --resume');
      process.exit(130);
    }
  };
  const onInterrupt = () => stop('interrupted');
  const onTerminate = () => stop('terminated');
  const onHangup = () => stop('the terminal closed');
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onTerminate);
  process.on('SIGHUP', onHangup);
  const stopWatching = watchLauncher((pid) => {
    // Its output may now go to a closed pipe: a write error must not end the run before its checkpoint.
    process.stdout.on('error', () => {});
    process.stderr.on('error', () => {});
    if (interrupts === 0) stop(`the process that launched it (${pid}) is gone`);
  });
  return {
    dispose: () => {
      stopWatching();
      process.off('SIGINT', onInterrupt);
      process.off('SIGTERM', onTerminate);
      process.off('SIGHUP', onHangup);
    },
  };
};
