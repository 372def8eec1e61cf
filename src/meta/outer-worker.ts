/**
 * An outer-step worker thread: builds the trainer the main thread has (same config, environment
 * descriptor, policy and backend), holds the level data of the tasks it is given for one iteration,
 * and answers with each task's term of the outer loss and its gradient at the parameters it is sent —
 * the code the main thread runs for that task (iteration.ts `outerTaskTerms`), so the numbers are the
 * same bit for bit — and, for ProMP, with each task's end-of-step statistics (`prompDiagnostics`).
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { loadTaskDistribution } from '../envs/index.ts';
import type { Params } from '../surrogates/batch.ts';
import { loadWorkerBackend } from './worker-backend.ts';
import { disposeParams } from './algorithms.ts';
import {
  levelData,
  makeTrainer,
  needsSamplingParams,
  outerStackTerms,
  outerTaskTerms,
  prompDiagnostics,
  prompTaskDiagnostics,
  withSamplingDistributions,
  type Trainer,
} from './iteration.ts';
import { disposeStackedTasks, stackTasks } from './task-stack.ts';
import type { LevelData } from './meta-objective.ts';
import type { FromOuterWorker, OuterWorkerSetup, ToOuterWorker, WireParams } from './outer-workers.ts';
import { configPolicy } from './trainer-setup.ts';
import { disposeBatch } from './sampler.ts';

const port = parentPort;
if (port === null) throw new Error('outer-worker.ts runs only as a worker thread');
const setup = workerData as OuterWorkerSetup;
const reply = (message: FromOuterWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);
const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

const tensorsOf = (p: WireParams): Params => Object.fromEntries(Object.entries(p).map(([name, a]) => [name, tf.tensor(a.values, [...a.shape])]));

const prepare = async (): Promise<Trainer> => {
  await loadWorkerBackend(setup.backend);
  const distribution = await loadTaskDistribution(setup.config.env);
  const policy = configPolicy(setup.config, distribution);
  return makeTrainer(setup.config, distribution, policy);
};

/** The tasks this worker holds for the current iteration: their index and level data. */
interface HeldTask {
  readonly index: number;
  readonly pre: readonly LevelData[];
  readonly post: LevelData;
}

/** Held tasks stacked (task-stack.ts): their indices, and their data as one. */
interface HeldStack {
  readonly indices: readonly number[];
  readonly pre: LevelData[];
  readonly post: LevelData;
}

try {
  const trainer = await prepare();
  let held:
    | {
        readonly key: number;
        readonly stack: number | undefined;
        tasks: readonly HeldTask[];
        made?: Params[];
        prepared?: Array<() => void>;
        /** The held tasks in their stacks (iteration.ts outerStackSize), stacked once per iteration. */
        stacks?: HeldStack[];
      }
    | undefined;
  const release = () => {
    held?.tasks.forEach((t) => [...t.pre, t.post].forEach((d) => disposeBatch(d.batch)));
    held?.made?.forEach(disposeParams);
    held?.prepared?.forEach((dispose) => dispose());
    held?.stacks?.forEach(disposeStackedTasks);
    held = undefined;
  };
  port.on('message', (message: ToOuterWorker) => {
    try {
      switch (message.kind) {
        case 'load': {
          release();
          const made: Params[] = [];
          held = {
            key: message.key,
            stack: message.stack,
            tasks: message.tasks.map(({ index, levels, scoreWeight, sampledBy }) => {
              const data = levels.map((tr) => levelData(trainer, tr));
              const post = data.at(-1)!;
              // The sampling phase's parameters of levels 1 … K − 1, where the main thread sent them.
              const by = sampledBy?.map(tensorsOf) ?? [];
              made.push(...by);
              const pre = data.slice(0, -1).map((d, j) => (j > 0 && by[j - 1] !== undefined ? { ...d, sampledBy: by[j - 1]! } : d));
              return { index, pre, post: scoreWeight === undefined ? post : { ...post, scoreWeight } };
            }),
            ...(message.tasks.some((t) => t.sampledBy !== undefined) ? { made } : {}),
          };
          reply({ kind: 'loaded', id: message.id });
          return;
        }
        case 'terms':
        case 'diagnostics': {
          if (held?.key !== message.key) throw new Error(`no data loaded for iteration key ${message.key}`);
          const start = tensorsOf(message.start);
          const at = tensorsOf(message.at);
          try {
            // ProMP's per-level KL reads the parameters that sampled every level: the main thread's (load).
            if (needsSamplingParams(trainer) && held.made === undefined) throw new Error("ProMP's per-level KL needs the parameters that sampled each level, and the load sent none");
            // ProMP's KL reference distributions, once per iteration (as the main thread does).
            if (trainer.algorithm.optimizer === 'promp' && held.prepared === undefined) {
              const withFixed = held.tasks.map((t) => ({ t, ...withSamplingDistributions(trainer, start, t.pre) }));
              held.tasks = withFixed.map(({ t, pre }) => ({ ...t, pre }));
              held.prepared = withFixed.map(({ dispose }) => dispose);
            }
            const stack = held.stack;
            if (stack !== undefined && held.stacks === undefined) {
              // The held tasks are whole stacks (outer-workers.ts): grouped by stack, in task order.
              const byStack = new Map<number, HeldTask[]>();
              for (const t of held.tasks) {
                const key = Math.floor(t.index / stack);
                byStack.set(key, [...(byStack.get(key) ?? []), t]);
              }
              // Kept as they are made, so that `release` frees them should a later one be refused.
              const stacks: HeldStack[] = [];
              held.stacks = stacks;
              for (const members of byStack.values()) stacks.push({ indices: members.map((t) => t.index), ...stackTasks(members) });
            }
            if (message.kind === 'diagnostics') {
              // ProMP's end-of-step statistics at the parameters the outer step ended with.
              const values =
                held.stacks === undefined
                  ? held.tasks.map((t) => ({ index: t.index, values: prompTaskDiagnostics(trainer, start, t.pre, t.post, at) }))
                  : held.stacks.flatMap((s) => prompDiagnostics(trainer, start, s.pre, s.post, at).map((v, k) => ({ index: s.indices[k]!, values: v })));
              reply({ kind: 'diagnostics', id: message.id, values });
              return;
            }
            const terms =
              held.stacks === undefined
                ? held.tasks.map((t) => ({ index: t.index, values: outerTaskTerms(trainer, start, t.pre, t.post, at) }))
                : held.stacks.flatMap((s) => outerStackTerms(trainer, start, s.pre, s.post, at).map((values, k) => ({ index: s.indices[k]!, values })));
            reply({ kind: 'terms', id: message.id, terms }, terms.flatMap((t) => t.values.map((v) => v.buffer as ArrayBuffer)));
          } finally {
            disposeParams(start);
            disposeParams(at);
          }
          return;
        }
        case 'release':
          release();
          reply({ kind: 'released', id: message.id });
          return;
      }
    } catch (e) {
      reply({ kind: 'failed', id: message.id, message: messageOf(e) });
    }
  });
  reply({ kind: 'ready' });
} catch (e) {
  reply({ kind: 'setup-failed', message: messageOf(e) });
}
