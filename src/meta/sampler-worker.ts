/**
 * A sampler worker thread: sets up its own backend, policy and environment (for MuJoCo, its own
 * WebAssembly instance) from `workerData`, then answers 'sample' messages with the trajectories of
 * the groups it was given (src/meta/sampler.ts `sampleGroup`, the same code the main thread runs).
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { loadTaskDistribution, type AnyTaskDistribution } from '../envs/index.ts';
import type { Params } from '../surrogates/batch.ts';
import type { FromWorker, ToWorker, WorkerSetup } from './parallel-sampler.ts';
import { mlpPolicyFor, uniformPolicy, type SamplingPolicy } from './policy.ts';
import { sampleGroup, type Trajectories } from './sampler.ts';
import { loadWorkerBackend } from './worker-backend.ts';

const port = parentPort;
if (port === null) throw new Error('sampler-worker.ts runs only as a worker thread');
const setup = workerData as WorkerSetup;
const reply = (message: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);
const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

const prepare = async (): Promise<{ distribution: AnyTaskDistribution; policy: SamplingPolicy }> => {
  await loadWorkerBackend(setup.backend);
  const distribution = await loadTaskDistribution(setup.environment);
  const { observationDim, action, hidden, initLogStd } = setup.policy;
  if (setup.policy.uniform === true) return { distribution, policy: uniformPolicy(action) };
  const policy = mlpPolicyFor(observationDim, action, { hidden, ...(initLogStd !== undefined ? { initLogStd } : {}) });
  return { distribution, policy };
};

const buffersOf = (trajectories: readonly Trajectories[]): ArrayBuffer[] =>
  trajectories.flatMap((tr) => [tr.observations, tr.actions, tr.rewards, tr.mask, tr.logProbs].map((a) => a.buffer as ArrayBuffer));

try {
  const { distribution, policy } = await prepare();
  port.on('message', (message: ToWorker) => {
    if (message.kind !== 'sample') return;
    const { id, groups, perGroup, horizon, seed } = message;
    let current: (typeof groups)[number] | undefined;
    try {
      const trajectories = groups.map((group) => {
        current = group;
        const params: Params = Object.fromEntries(Object.entries(group.params).map(([name, p]) => [name, tf.tensor(p.values, [...p.shape])]));
        try {
          return sampleGroup({ distribution, policy, task: group.task, params, perGroup, horizon, seed, group: group.index });
        } finally {
          tf.dispose(Object.values(params));
        }
      });
      reply({ kind: 'sampled', id, trajectories }, buffersOf(trajectories));
    } catch (e) {
      reply({ kind: 'failed', id, message: messageOf(e), ...(current !== undefined ? { group: current.index, task: current.task } : {}) });
    }
  });
  reply({ kind: 'ready' });
} catch (e) {
  reply({ kind: 'setup-failed', message: messageOf(e) });
}
