/**
 * A sampling worker of the fleet (what `magicbox worker` runs): takes jobs from the BullMQ queue, one
 * group (task) each, and samples them on worker threads of its own (src/meta/parallel-sampler.ts), one
 * thread per unit of concurrency and per environment, each loading the environment's runtime once and
 * kept for the process's life. The trajectories are the thread pool's, bit for bit: the same code, the
 * same backend, the same random streams (seeded by the request's seed and the group's index).
 *
 * Sampling runs off the main thread, so the main thread stays free to renew the jobs' locks. A job that
 * fails deterministically (a diverging policy, a malformed or foreign-protocol payload) fails for good
 * (UnrecoverableError): retrying it could only fail again. A thread that dies fails its job for a retry.
 * Every worker announces itself in a heartbeat key, so that a trainer can tell "no worker alive".
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import * as tf from '@tensorflow/tfjs';
import { environmentDescriptor } from '../envs/index.ts';
import { decodeParams, decodeSampleJob, defaultQueueName, encodeTrajectories, FLEET_PROTOCOL, fleetKeys, type SampleJob, type SampleResult, type WorkerHeartbeat } from './fleet-protocol.ts';
import { workerSampler, type WorkerSetup } from './parallel-sampler.ts';
import { mlpPolicyFor } from './policy.ts';
import { actionNormalizations, policyActionSpace } from '../envs/action-normalization.ts';
import type { RedisTarget } from './redis-connection.ts';
import type { Sampler } from './sampler.ts';

export interface FleetWorkerOptions {
  readonly redis: RedisTarget;
  /** Jobs sampled at once, each on its own thread (default 1). */
  readonly concurrency?: number;
  /**
   * Jobs taken from the queue beyond `concurrency`, each waiting for a sampling thread to free (default
   * 1). A thread that finishes a job starts the waiting one at once instead of idling through the
   * round trip that reports the result and takes the next job (~5 ms on loopback, 5–6% of a
   * HalfCheetah job of 2,000 steps). 0 takes a job only when a thread is free.
   */
  readonly prefetch?: number;
  readonly queue?: string;
  /**
   * How long a job stays locked to a worker that stops renewing its lock (one killed mid-job) before
   * another worker takes it over; also the interval of the stalled-job check. Default 30 s.
   */
  readonly lockSeconds?: number;
  /** Status lines (already free of the password). */
  readonly log?: (line: string) => void;
  /** One line per job taken and finished. */
  readonly verbose?: boolean;
}

export interface FleetWorker {
  /** This worker's name in heartbeats and messages: host:pid:random. */
  readonly name: string;
  /** Finishes the jobs in progress, then releases threads and connections. */
  readonly close: () => Promise<void>;
}

/** Seconds a heartbeat is refreshed after, and lives for. */
const heartbeatMs = 2000;
const heartbeatTtlMs = 3 * heartbeatMs;
/** Results not collected within this (a trainer that died) expire. */
const resultTtlMs = 3_600_000;
/** Parameter sets kept decoded-ready per worker (a level's shared set, reused by its jobs). */
const paramsCacheSize = 16;

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export const startFleetWorker = async (options: FleetWorkerOptions): Promise<FleetWorker> => {
  const { redis: target } = options;
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be a whole number ≥ 1, got ${concurrency}`);
  const prefetch = options.prefetch ?? 1;
  if (!Number.isInteger(prefetch) || prefetch < 0) throw new Error(`prefetch must be a whole number ≥ 0, got ${prefetch}`);
  const queue = options.queue ?? defaultQueueName;
  const keys = fleetKeys(queue);
  const lockMs = Math.round((options.lockSeconds ?? 30) * 1000);
  const log = (line: string) => options.log?.(target.redact(line));
  const name = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

  // Sampling threads, by setup; a thread is busy with at most one job at a time, and at most
  // `concurrency` sample at once: a prefetched job waits here, in job order, for a thread to free.
  const idle = new Map<string, Sampler[]>();
  const all = new Set<Sampler>();
  let sampling = 0;
  const waiting: Array<() => void> = [];
  const threadSlot = async (): Promise<void> => {
    if (sampling < concurrency) {
      sampling++;
      return;
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const freeThreadSlot = () => {
    const next = waiting.shift();
    if (next !== undefined) next();
    else sampling--;
  };
  const acquire = async (setup: WorkerSetup): Promise<{ sampler: Sampler; key: string }> => {
    const key = JSON.stringify(setup);
    const ready = idle.get(key)?.pop();
    if (ready !== undefined) return { sampler: ready, key };
    const sampler = await workerSampler({ ...setup, workers: 1 });
    all.add(sampler);
    return { sampler, key };
  };
  const release = (key: string, sampler: Sampler) => {
    const list = idle.get(key) ?? [];
    list.push(sampler);
    idle.set(key, list);
  };
  const discard = async (sampler: Sampler) => {
    all.delete(sampler);
    await sampler.close();
  };

  const redis = new Redis({ ...target.options, lazyConnect: true });
  let outage = false;
  let connected = false;
  let firstFailure = '';
  redis.on('error', (e: Error) => {
    if (!connected) {
      firstFailure ||= messageOf(e);
      return;
    }
    if (!outage) log(`magicbox worker: lost Redis at ${target.display} (${messageOf(e)}); reconnecting`);
    outage = true;
  });
  redis.on('ready', () => {
    if (outage) log(`magicbox worker: reconnected to Redis at ${target.display}`);
    outage = false;
  });
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    throw new Error(`cannot connect to Redis at ${target.display}: ${firstFailure !== '' ? firstFailure : messageOf(e)}`);
  }
  connected = true;

  const paramsCache = new Map<string, Buffer>();
  const paramsBytes = async (job: SampleJob): Promise<Buffer> => {
    if ('inline' in job.params) return Buffer.from(job.params.inline, 'base64');
    const hash = job.params.ref;
    const cached = paramsCache.get(hash);
    if (cached !== undefined) return cached;
    const bytes = await redis.getBuffer(keys.params(hash));
    // Not final: the trainer stores the parameters again if the server lost them.
    if (bytes === null) throw new Error(`the parameters ${hash.slice(0, 12)}… are not in Redis (expired, or the server restarted)`);
    paramsCache.set(hash, bytes);
    if (paramsCache.size > paramsCacheSize) paramsCache.delete(paramsCache.keys().next().value!);
    return bytes;
  };

  const process_ = async (job: Job): Promise<SampleResult> => {
    const decoded = decodeSampleJob(job.data);
    if ('error' in decoded) throw new UnrecoverableError(decoded.error);
    const j = decoded.job;
    const descriptor = environmentDescriptor(j.environment);
    // The policy acts in the environment's units or in the normalised box (action-normalization.ts).
    const spaces = actionNormalizations.map((n) => JSON.stringify(policyActionSpace(descriptor.action, n)));
    if (j.policy.observationDim !== descriptor.observationDim || !spaces.includes(JSON.stringify(j.policy.action))) {
      throw new UnrecoverableError(`malformed sampling job: the policy's spaces are not those of ${j.environment}`);
    }
    const shapes = j.policy.uniform === true ? {} : mlpPolicyFor(j.policy.observationDim, j.policy.action, { hidden: j.policy.hidden, ...(j.policy.initLogStd !== undefined ? { initLogStd: j.policy.initLogStd } : {}) }).paramShapes;
    let params;
    try {
      params = decodeParams(j.layout, await paramsBytes(j), shapes);
    } catch (e) {
      if (e instanceof Error && /not in Redis/.test(e.message)) throw e;
      throw new UnrecoverableError(`malformed sampling job: ${messageOf(e)}`);
    }
    const setup: WorkerSetup = { environment: j.environment, policy: j.policy, backend: j.backend };
    try {
      // The thread slot is held for the sampling only: reporting the result overlaps the next job.
      await threadSlot();
      let trajectories;
      try {
        const { sampler, key } = await acquire(setup);
        try {
          trajectories = await sampler.sample({ tasks: [j.task], params: [params], perGroup: j.perGroup, horizon: j.horizon, seed: j.seed, groupIndices: [j.group] });
        } catch (e) {
          // A thread that still answers failed on the job itself (e.g. a NaN action): final. One that died
          // is replaced, and the job retried.
          const alive = await sampler.sample({ tasks: [], params: [], perGroup: 1, horizon: 1, seed: 0 }).then(
            () => true,
            () => false,
          );
          if (!alive) {
            await discard(sampler);
            throw new Error(`a sampling thread died: ${messageOf(e)}`);
          }
          release(key, sampler);
          throw new UnrecoverableError(messageOf(e).replace(/^sampling .*? failed in worker \d+: /, ''));
        }
        release(key, sampler);
      } finally {
        freeThreadSlot();
      }
      const tr = trajectories[0]!;
      const bytes = encodeTrajectories(tr);
      const resultKey = keys.result(String(job.id));
      await redis.set(resultKey, bytes, 'PX', resultTtlMs);
      return { protocol: FLEET_PROTOCOL, key: resultKey, n: tr.n, horizon: tr.horizon, observationDim: tr.observationDim, actionDim: tr.actionDim, bytes: bytes.byteLength };
    } finally {
      tf.dispose(Object.values(params));
    }
  };

  const worker = new Worker(queue, process_, {
    connection: { ...target.options, maxRetriesPerRequest: null },
    concurrency: concurrency + prefetch,
    lockDuration: lockMs,
    stalledInterval: lockMs,
    // A worker killed mid-job stalls its job once; a second stall of the same job is also tolerated.
    maxStalledCount: 2,
    name,
    autorun: false,
  });
  let lastError = '';
  worker.on('error', (e) => {
    const message = messageOf(e);
    if (!outage && message !== lastError) log(`magicbox worker: ${message}`);
    lastError = message;
  });
  worker.on('active', (job) => {
    if (options.verbose) log(`magicbox worker: job ${job.id} started (${(job.data as { environment?: string }).environment} task ${(job.data as { group?: number }).group})`);
  });
  worker.on('completed', (job) => {
    if (options.verbose) log(`magicbox worker: job ${job.id} done in ${Date.now() - (job.processedOn ?? Date.now())} ms`);
  });
  worker.on('failed', (job, e) => log(`magicbox worker: job ${job?.id ?? '?'} failed: ${messageOf(e)}`));

  const beat: WorkerHeartbeat = { protocol: FLEET_PROTOCOL, host: hostname(), pid: process.pid, concurrency };
  const heartbeat = () => {
    if (redis.status === 'ready') redis.multi().set(keys.worker(name), JSON.stringify(beat), 'PX', heartbeatTtlMs).sadd(keys.workers, name).exec().catch(() => {});
  };
  heartbeat();
  const timer = setInterval(heartbeat, heartbeatMs);
  void worker.run().catch((e: unknown) => log(`magicbox worker: ${messageOf(e)}`));
  await worker.waitUntilReady();
  log(`magicbox worker ${name}: taking sampling jobs from queue ${queue} at ${target.display} (concurrency ${concurrency}, protocol ${FLEET_PROTOCOL})`);

  return {
    name,
    close: async () => {
      clearInterval(timer);
      await worker.close();
      await redis.multi().del(keys.worker(name)).srem(keys.workers, name).exec().catch(() => {});
      await Promise.all([...all].map((s) => s.close()));
      redis.disconnect();
    },
  };
};
