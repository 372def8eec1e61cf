/**
 * The outer step across CPU cores. Each task's term of the outer loss — its adapted parameters θ′_i(θ),
 * its meta-surrogate, its KL, and their gradient — depends on that task's data alone, so the tasks of
 * an iteration are split into contiguous blocks, one per worker thread; each worker builds the same
 * trainer (config, environment, policy, backend) and computes its tasks' terms with the code the main
 * thread runs, in the same stacks of tasks (task-stack.ts: a block holds whole stacks). The main thread
 * adds the terms in task order (task-sum.ts), so a run is the same, bit for bit, whatever the number
 * of workers.
 *
 * Per iteration: `load` sends each worker its tasks' trajectories (it builds their batches once);
 * then every outer step sends only the parameters and gets back one [value, ...gradients] per task,
 * and ProMP's end-of-step statistics come back the same way (`diagnostics`).
 */
import { Worker } from 'node:worker_threads';
import type { Params } from '../surrogates/batch.ts';
import type { TrainConfig } from './config.ts';
import { splitGroups } from './parallel-sampler.ts';
import type { Trajectories } from './sampler.ts';

/** Parameters as plain arrays (they cross the thread boundary). */
export type WireParams = Readonly<Record<string, { readonly shape: readonly number[]; readonly values: Float32Array }>>;

export interface OuterWorkerSetup {
  /** The run's config: a catalogue environment, the policy's widths, the algorithm and its settings. */
  readonly config: TrainConfig;
  /** The main thread's tfjs backend, so that the numbers are the same. */
  readonly backend: string;
}

export type ToOuterWorker =
  | {
      readonly kind: 'load';
      readonly id: number;
      readonly key: number;
      /** Each task's trajectories per level and (E-MAML as released) its post-update score weight. */
      readonly tasks: readonly {
        readonly index: number;
        readonly levels: readonly Trajectories[];
        readonly scoreWeight?: number;
        /** ProMP's per-level KL: the parameters that sampled levels 1 … K − 1 (the sampling phase's). */
        readonly sampledBy?: readonly WireParams[];
      }[];
      /** Tasks per stack: task i is in stack ⌊i / stack⌋ (iteration.ts outerStackSize); absent: task by task. */
      readonly stack?: number;
    }
  | { readonly kind: 'terms' | 'diagnostics'; readonly id: number; readonly key: number; readonly start: WireParams; readonly at: WireParams }
  | { readonly kind: 'release'; readonly id: number };

export type FromOuterWorker =
  | { readonly kind: 'ready' }
  | { readonly kind: 'setup-failed'; readonly message: string }
  | { readonly kind: 'loaded' | 'released'; readonly id: number }
  | { readonly kind: 'terms'; readonly id: number; readonly terms: readonly { readonly index: number; readonly values: readonly Float32Array[] }[] }
  | { readonly kind: 'diagnostics'; readonly id: number; readonly values: readonly { readonly index: number; readonly values: readonly number[] }[] }
  | { readonly kind: 'failed'; readonly id: number; readonly message: string };

export class OuterWorkerError extends Error {
  override readonly name = 'OuterWorkerError';
}

/** What the iteration asks of the pool. */
export interface OuterWorkers {
  readonly workers: number;
  /**
   * Hands each worker its block of tasks: trajectories[level][task] (and E-MAML's score weight per task,
   * iteration.ts), whole stacks of `stack` tasks each (absent: the tasks are computed one by one).
   */
  readonly load: (
    trajectories: readonly (readonly Trajectories[])[],
    scoreWeights: readonly number[] | undefined,
    stack: number | undefined,
    /** Per level 1 … K − 1, each task's parameters that sampled it, where ProMP's KL reads them. */
    sampledBy?: readonly (readonly Params[])[],
  ) => Promise<void>;
  /** Every task's [loss term, ...gradients] at `at` (KL reference `start`), in task order. */
  readonly terms: (start: Params, at: Params) => Promise<Float32Array[][]>;
  /** ProMP: every task's end-of-step statistics at `at` (iteration.ts `prompTaskDiagnostics`), in task order. */
  readonly diagnostics: (start: Params, at: Params) => Promise<number[][]>;
  /** Frees the loaded tasks' data in the workers. */
  readonly release: () => Promise<void>;
  readonly close: () => Promise<void>;
}

const workerEntry = new URL('./outer-worker.mjs', import.meta.url);

const wire = (p: Params): WireParams =>
  Object.fromEntries(Object.entries(p).map(([name, t]) => [name, { shape: t.shape, values: Float32Array.from(t.dataSync()) }]));

interface PoolWorker {
  readonly worker: Worker;
  readonly pending: Map<number, { resolve: (m: FromOuterWorker) => void; reject: (e: Error) => void }>;
  block: { start: number; end: number };
}

/** Starts `count` outer-step workers for `config` and waits until each has built its trainer. */
export const outerWorkers = async (setup: OuterWorkerSetup, count: number): Promise<OuterWorkers> => {
  if (!Number.isInteger(count) || count < 2) throw new OuterWorkerError(`outer-step workers: need at least 2, got ${count}`);
  let broken: string | undefined;
  let nextId = 0;
  let key = 0;
  let tasks = 0;
  const pool: PoolWorker[] = [];
  const failAll = (reason: string) => {
    broken ??= reason;
    for (const w of pool) for (const [id, p] of w.pending) (w.pending.delete(id), p.reject(new OuterWorkerError(reason)));
  };
  const start = (index: number) =>
    new Promise<PoolWorker>((resolve, reject) => {
      const worker = new Worker(workerEntry, { workerData: setup });
      const entry: PoolWorker = { worker, pending: new Map(), block: { start: 0, end: 0 } };
      let ready = false;
      worker.on('message', (message: FromOuterWorker) => {
        if (message.kind === 'ready') {
          ready = true;
          resolve(entry);
          return;
        }
        if (message.kind === 'setup-failed') {
          reject(new OuterWorkerError(`outer-step worker ${index} could not set up: ${message.message}`));
          void worker.terminate();
          return;
        }
        const p = entry.pending.get(message.id);
        entry.pending.delete(message.id);
        if (message.kind === 'failed') p?.reject(new OuterWorkerError(`outer-step worker ${index}: ${message.message}`));
        else p?.resolve(message);
      });
      worker.on('error', (e) => {
        if (!ready) reject(new OuterWorkerError(`outer-step worker ${index} failed while starting: ${e.message}`));
        failAll(`outer-step worker ${index} crashed: ${e.message}`);
      });
      worker.on('exit', (code) => {
        if (!ready) reject(new OuterWorkerError(`outer-step worker ${index} exited with code ${code} while starting`));
        if (broken === undefined || entry.pending.size > 0) failAll(`outer-step worker ${index} exited with code ${code}`);
      });
    });
  const started = await Promise.allSettled(Array.from({ length: count }, (_, i) => start(i)));
  for (const s of started) if (s.status === 'fulfilled') pool.push(s.value);
  const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure !== undefined) {
    await Promise.all(pool.map((w) => w.worker.terminate()));
    throw failure.reason instanceof Error ? failure.reason : new OuterWorkerError(String(failure.reason));
  }
  for (const w of pool) w.worker.unref();

  const ask = (w: PoolWorker, message: ToOuterWorker): Promise<FromOuterWorker> => {
    if (broken !== undefined) return Promise.reject(new OuterWorkerError(`the outer-step workers cannot work: ${broken}`));
    return new Promise<FromOuterWorker>((resolve, reject) => {
      w.pending.set(message.id, { resolve, reject });
      w.worker.ref();
      w.worker.postMessage(message);
    }).finally(() => {
      if (w.pending.size === 0) w.worker.unref();
    });
  };
  const active = () => pool.filter((w) => w.block.end > w.block.start);
  /** Asks every active worker for `kind` at `at` (KL reference `start`) and puts the per-task answers in task order. */
  const perTask = async <T>(
    kind: 'terms' | 'diagnostics',
    startParams: Params,
    at: Params,
    answersOf: (a: FromOuterWorker) => readonly { readonly index: number; readonly values: readonly T[] }[],
    what: string,
  ): Promise<T[][]> => {
    const message = { key, start: wire(startParams), at: wire(at) };
    const answers = await Promise.all(active().map((w) => ask(w, { kind, id: nextId++, ...message })));
    const out: T[][] = new Array<T[]>(tasks);
    for (const a of answers) for (const t of answersOf(a)) out[t.index] = [...t.values];
    for (let i = 0; i < tasks; i++) if (out[i] === undefined) throw new OuterWorkerError(`outer-step workers returned no ${what} for task ${i}`);
    return out;
  };

  return {
    workers: pool.length,
    load: async (trajectories, scoreWeights, stack, sampledBy) => {
      key++;
      tasks = trajectories[0]?.length ?? 0;
      // Whole stacks per worker (a stack is one computation).
      const size = stack ?? 1;
      splitGroups(Math.ceil(tasks / size), pool.length).forEach(
        (block, w) => (pool[w]!.block = { start: Math.min(tasks, block.start * size), end: Math.min(tasks, block.end * size) }),
      );
      await Promise.all(
        active().map((w) => {
          const mine = [];
          for (let i = w.block.start; i < w.block.end; i++) {
            mine.push({
              index: i,
              levels: trajectories.map((level) => level[i]!),
              ...(scoreWeights !== undefined ? { scoreWeight: scoreWeights[i]! } : {}),
              ...(sampledBy !== undefined ? { sampledBy: sampledBy.map((level) => wire(level[i]!)) } : {}),
            });
          }
          return ask(w, { kind: 'load', id: nextId++, key, tasks: mine, ...(stack !== undefined ? { stack } : {}) });
        }),
      );
    },
    terms: (startParams, at) => perTask('terms', startParams, at, (a) => (a.kind === 'terms' ? a.terms : []), 'term'),
    diagnostics: (startParams, at) => perTask('diagnostics', startParams, at, (a) => (a.kind === 'diagnostics' ? a.values : []), 'statistics'),
    release: async () => {
      await Promise.all(active().map((w) => ask(w, { kind: 'release', id: nextId++ })));
    },
    close: async () => {
      broken ??= 'the outer-step workers were closed';
      await Promise.all(pool.map((w) => w.worker.terminate()));
    },
  };
};
