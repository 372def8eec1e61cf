/**
 * Sampling across CPU cores: a pool of worker threads, each with its own tfjs backend, policy and
 * environment runtime (its own MuJoCo WebAssembly instance), loaded once and kept for the pool's life.
 * A request's groups (tasks) are split into contiguous blocks, one per worker; every group draws from
 * random streams seeded by (the request's seed, its index) alone, so the trajectories are the same
 * whatever the number of workers (and the same as `inProcessSampler`'s).
 *
 * A worker that throws (e.g. a NaN action) is reported with the environment and the task it was
 * sampling; a worker that dies (e.g. out of memory) fails every request it held, naming the environment
 * and its tasks, and the pool refuses further requests instead of hanging.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { ActionSpace } from '../envs/types.ts';
import type { Params } from '../surrogates/batch.ts';
import { SamplerError, type SampleRequest, type Sampler, type Trajectories } from './sampler.ts';

/**
 * The policy a worker rebuilds: an MLP for the environment's spaces (src/meta/policy.ts `mlpPolicyFor`),
 * or with `uniform: true` the parameter-free uniform random policy (`uniformPolicy`).
 */
export interface PolicySpec {
  readonly uniform?: boolean;
  readonly observationDim: number;
  readonly action: ActionSpace;
  readonly hidden: readonly number[];
  readonly initLogStd?: number;
}

/** What a worker needs to set itself up (plain data: it crosses the thread boundary). */
export interface WorkerSetup {
  /** A built-in environment name (src/envs/index.ts `environmentNames`). */
  readonly environment: string;
  readonly policy: PolicySpec;
  /** The tfjs backend the worker must use: the main thread's, so that its numbers are the same. */
  readonly backend: string;
}

/** Messages to a worker. */
export type ToWorker =
  | { readonly kind: 'sample'; readonly id: number; readonly groups: readonly WorkerGroup[]; readonly perGroup: number; readonly horizon: number; readonly seed: number };

/** One group as a worker receives it: its index in the request, its task and its parameters as arrays. */
export interface WorkerGroup {
  readonly index: number;
  readonly task: unknown;
  readonly params: Readonly<Record<string, { readonly shape: readonly number[]; readonly values: Float32Array }>>;
}

/** Messages from a worker. */
export type FromWorker =
  | { readonly kind: 'ready' }
  | { readonly kind: 'setup-failed'; readonly message: string }
  | { readonly kind: 'sampled'; readonly id: number; readonly trajectories: readonly Trajectories[] }
  | { readonly kind: 'failed'; readonly id: number; readonly message: string; readonly group?: number; readonly task?: unknown };

export interface WorkerSamplerOptions extends WorkerSetup {
  /** Number of worker threads; default: one per core (os.availableParallelism()). */
  readonly workers?: number;
  /**
   * The worker script (default: src/meta/sampler-worker.mjs). Another script speaking the same messages
   * may stand in, e.g. one that crashes on purpose to test the pool's error handling.
   */
  readonly entry?: URL;
}

/** The default worker count: one per core. */
export const defaultWorkerCount = (): number => Math.max(1, availableParallelism());

/** The worker's entry: a plain .mjs file that registers tsx's loader, then imports the TypeScript worker. */
const workerEntry = new URL('./sampler-worker.mjs', import.meta.url);

/** Blocks of `groups` indices, as even as possible, one per worker (workers beyond the groups get none). */
export const splitGroups = (groups: number, workers: number): Array<{ readonly start: number; readonly end: number }> => {
  const blocks: Array<{ start: number; end: number }> = [];
  const base = Math.floor(groups / workers);
  const extra = groups % workers;
  let start = 0;
  for (let w = 0; w < workers; w++) {
    const size = base + (w < extra ? 1 : 0);
    blocks.push({ start, end: start + size });
    start += size;
  }
  return blocks;
};

const paramsAsArrays = (params: Params): WorkerGroup['params'] =>
  Object.fromEntries(Object.entries(params).map(([name, t]) => [name, { shape: t.shape, values: Float32Array.from(t.dataSync()) }]));

interface Pending {
  readonly resolve: (trajectories: readonly Trajectories[]) => void;
  readonly reject: (error: Error) => void;
  /** The environment's description of the tasks this worker holds, for a crash message. */
  readonly tasks: readonly unknown[];
}

interface PoolWorker {
  readonly index: number;
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
}

/**
 * Starts `workers` worker threads and waits until each has loaded its backend, policy and environment.
 * `describeTask` turns a task into what error messages show (the distribution's `describeTask`).
 */
export const workerSampler = async (options: WorkerSamplerOptions & { readonly describeTask?: (task: unknown) => unknown }): Promise<Sampler> => {
  const count = options.workers ?? defaultWorkerCount();
  if (!Number.isInteger(count) || count < 1) throw new SamplerError(`workers must be a positive integer, got ${count}`);
  const setup: WorkerSetup = { environment: options.environment, policy: options.policy, backend: options.backend };
  const describe = options.describeTask ?? ((task: unknown) => task);
  const env = options.environment;
  /** Why the pool cannot sample any more (a worker died, or it was closed). */
  let broken: string | undefined;
  let nextId = 0;

  const pool: PoolWorker[] = [];
  const failAll = (reason: string): void => {
    broken ??= reason;
    for (const w of pool) {
      for (const [id, p] of w.pending) {
        w.pending.delete(id);
        p.reject(new SamplerError(`${reason} (it was sampling ${env} task${p.tasks.length === 1 ? '' : 's'} ${p.tasks.map((t) => JSON.stringify(t)).join(', ')})`));
      }
    }
  };

  const start = (index: number): Promise<PoolWorker> =>
    new Promise<PoolWorker>((resolve, reject) => {
      const worker = new Worker(options.entry ?? workerEntry, { workerData: setup });
      const entry: PoolWorker = { index, worker, pending: new Map() };
      let ready = false;
      worker.on('message', (message: FromWorker) => {
        switch (message.kind) {
          case 'ready':
            ready = true;
            resolve(entry);
            return;
          case 'setup-failed':
            reject(new SamplerError(`sampler worker ${index} could not set up ${env}: ${message.message}`));
            void worker.terminate();
            return;
          case 'sampled': {
            const p = entry.pending.get(message.id);
            entry.pending.delete(message.id);
            p?.resolve(message.trajectories);
            return;
          }
          case 'failed': {
            const p = entry.pending.get(message.id);
            entry.pending.delete(message.id);
            const where = message.group !== undefined ? ` task ${message.group} (${JSON.stringify(describe(message.task))})` : '';
            p?.reject(new SamplerError(`sampling ${env}${where} failed in worker ${index}: ${message.message}`));
            return;
          }
        }
      });
      worker.on('error', (error) => {
        if (!ready) reject(new SamplerError(`sampler worker ${index} for ${env} failed while starting: ${error.message}`));
        failAll(`sampler worker ${index} for ${env} crashed: ${error.message}`);
      });
      worker.on('exit', (code) => {
        if (!ready) reject(new SamplerError(`sampler worker ${index} for ${env} exited with code ${code} while starting`));
        if (broken === undefined || entry.pending.size > 0) failAll(`sampler worker ${index} for ${env} exited with code ${code}`);
      });
    });

  const started = await Promise.allSettled(Array.from({ length: count }, (_, i) => start(i)));
  for (const s of started) if (s.status === 'fulfilled') pool.push(s.value);
  const firstFailure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (firstFailure !== undefined) {
    broken = 'the pool failed to start';
    await Promise.all(pool.map((w) => w.worker.terminate()));
    throw firstFailure.reason instanceof Error ? firstFailure.reason : new SamplerError(String(firstFailure.reason));
  }
  // An idle pool must not keep the process alive (e.g. a program that forgets to close it).
  for (const w of pool) w.worker.unref();

  const sample = async (request: SampleRequest): Promise<Trajectories[]> => {
    if (broken !== undefined) throw new SamplerError(`the ${env} sampler cannot sample: ${broken}`);
    const { tasks, params, perGroup, horizon, seed } = request;
    if (tasks.length !== params.length) throw new SamplerError(`${tasks.length} tasks but ${params.length} parameter sets`);
    // Parameters shared by several groups (the pre-update policy) are read once.
    const arrays = new Map<Params, WorkerGroup['params']>();
    const asArrays = (p: Params) => {
      let a = arrays.get(p);
      if (a === undefined) arrays.set(p, (a = paramsAsArrays(p)));
      return a;
    };
    const blocks = splitGroups(tasks.length, pool.length);
    const parts = blocks.map(({ start, end }, w) => {
      if (start === end) return Promise.resolve([] as readonly Trajectories[]);
      const worker = pool[w]!;
      const id = nextId++;
      const groups: WorkerGroup[] = [];
      for (let g = start; g < end; g++) groups.push({ index: request.groupIndices?.[g] ?? g, task: tasks[g], params: asArrays(params[g]!) });
      return new Promise<readonly Trajectories[]>((resolve, reject) => {
        worker.pending.set(id, { resolve, reject, tasks: tasks.slice(start, end).map(describe) });
        worker.worker.ref();
        const message: ToWorker = { kind: 'sample', id, groups, perGroup, horizon, seed };
        worker.worker.postMessage(message);
      }).finally(() => {
        if (worker.pending.size === 0) worker.worker.unref();
      });
    });
    const settled = await Promise.allSettled(parts);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) throw failed.reason instanceof Error ? failed.reason : new SamplerError(String(failed.reason));
    return settled.flatMap((s) => (s.status === 'fulfilled' ? [...s.value] : []));
  };

  return {
    workers: pool.length,
    sample,
    close: async () => {
      broken ??= 'the sampler was closed';
      // Terminating workers do not keep the event loop alive: a program awaiting close() at top level
      // (the CLI after Ctrl-C) would end with exit code 13 before they are gone. A timer holds it.
      const keepAlive = setInterval(() => {}, 1_000_000);
      try {
        await Promise.all(pool.map((w) => w.worker.terminate()));
      } finally {
        clearInterval(keepAlive);
      }
    },
  };
};

/**
 * The tfjs backend this thread computes with, as tfjs names it ('tensorflow' for both node backends:
 * a worker tries the GPU one first).
 */
export const currentBackendName = (): string => tf.getBackend();
