/**
 * Sampling on a fleet of `magicbox worker` processes (any machines) through a Redis server and BullMQ:
 * each sampling request becomes one job per task (group), the results are gathered in task order, and
 * since every group draws from random streams seeded by (the request's seed, its index) alone, the
 * trajectories are those of the thread pool and of this thread, bit for bit, wherever they were sampled.
 *
 * Bulk data stays out of the job payloads (src/meta/fleet-protocol.ts): a level's parameters are stored
 * once under their hash (40 tasks at the pre-update level share one set), each job's trajectories come
 * back under its own key.
 *
 * Faults: a worker killed mid-job stalls it and BullMQ hands it to another worker (the numbers cannot
 * change: the job is the same); jobs the server lost (a restart without persistence) are enqueued
 * again once it is back; no worker alive, or no server, for `timeoutSeconds` fails the request with a
 * message saying which; a job that fails on a worker (a diverging policy) fails the request naming the
 * environment and the task. No message carries the password.
 */
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import type { Params } from '../surrogates/batch.ts';
import { decodeTrajectories, defaultQueueName, encodeParams, FLEET_PROTOCOL, fleetKeys, type EncodedParams, type SampleJob, type WorkerHeartbeat } from './fleet-protocol.ts';
import type { Trainer } from './iteration.ts';
import { currentBackendName, type PolicySpec } from './parallel-sampler.ts';
import type { RedisTarget } from './redis-connection.ts';
import { SamplerError, type SampleRequest, type Sampler, type Trajectories } from './sampler.ts';

export interface RedisSamplerOptions {
  readonly redis: RedisTarget;
  /** A catalogue environment name (the workers load it themselves). */
  readonly environment: string;
  readonly policy: PolicySpec;
  /** The tfjs backend this process computes with: the workers' threads use the same one. */
  readonly backend: string;
  /** The distribution's describeTask, for error messages. */
  readonly describeTask?: (task: unknown) => unknown;
  readonly queue?: string;
  /** Seconds with no live worker, or no connection to Redis, before a request fails (default 60). */
  readonly timeoutSeconds?: number;
  /**
   * 'shared' (default): each distinct parameter set of a request is stored once, under its hash, and
   * jobs refer to it; 'inline': every job carries its parameters (bench/fleet.ts compares the two).
   */
  readonly params?: 'shared' | 'inline';
  /** Notices: a reconnection, jobs enqueued again. Default: none. */
  readonly log?: (line: string) => void;
}

/** Bytes moved through Redis since the sampler started. */
export interface FleetTraffic {
  readonly jobs: number;
  /** JSON payloads of the jobs. */
  readonly payloadBytes: number;
  /** Shared parameter sets stored. */
  readonly paramsBytes: number;
  /** Trajectories fetched. */
  readonly resultBytes: number;
}

export interface RedisSampler extends Sampler {
  readonly traffic: () => FleetTraffic;
}

/** How often pending jobs are checked (liveness, lost jobs, missed events). */
const tickMs = 250;
/** A full check of every pending job's state, besides the events: every this many ticks. */
const auditEvery = 8;
/** Live workers are counted every this many ticks. */
const workerCheckEvery = 2;
/** Shared parameters live this long (a level's jobs are done long before). */
const paramsTtlMs = 3_600_000;

interface PendingJob {
  readonly id: string;
  readonly group: number;
  readonly data: SampleJob;
  readonly params: EncodedParams;
  readonly resolve: (bytes: Buffer) => void;
  readonly reject: (error: Error) => void;
  settled: boolean;
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Connects to Redis and the queue; fails at once (with a clear message) when the server cannot be reached. */
export const redisSampler = async (options: RedisSamplerOptions): Promise<RedisSampler> => {
  const { redis: target, environment: env } = options;
  const queueName = options.queue ?? defaultQueueName;
  const keys = fleetKeys(queueName);
  const timeoutMs = (options.timeoutSeconds ?? 60) * 1000;
  if (!(timeoutMs > 0)) throw new SamplerError(`the Redis timeout must be a positive number of seconds, got ${options.timeoutSeconds}`);
  const mode = options.params ?? 'shared';
  const describe = options.describeTask ?? ((task: unknown) => task);
  const notice = (line: string) => options.log?.(target.redact(line));
  const error = (line: string) => new SamplerError(target.redact(line));
  const token = randomUUID().slice(0, 8);
  let nextRequest = 0;
  const traffic = { jobs: 0, payloadBytes: 0, paramsBytes: 0, resultBytes: 0 };

  const redis = new Redis({ ...target.options, maxRetriesPerRequest: null, lazyConnect: true });
  let downSince: number | undefined;
  let lastFailure = '';
  let reconnected = false;
  redis.on('error', (e: Error) => {
    lastFailure = messageOf(e);
  });
  redis.on('close', () => {
    if (downSince === undefined) {
      downSince = Date.now();
      if (pending.size > 0) notice(`lost the connection to Redis at ${target.display}; reconnecting`);
    }
  });
  redis.on('ready', () => {
    if (downSince !== undefined) {
      reconnected = true;
      if (pending.size > 0) notice(`reconnected to Redis at ${target.display}`);
    }
    downSince = undefined;
  });
  const pending = new Map<string, PendingJob>();
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    // The error event says more than the rejection ("WRONGPASS …" rather than "Connection is closed.").
    throw error(`cannot connect to Redis at ${target.display}: ${lastFailure !== '' ? lastFailure : messageOf(e)}`);
  }
  downSince = undefined;
  const queue = new Queue(queueName, { connection: redis });
  const events = new QueueEvents(queueName, { connection: { ...target.options, maxRetriesPerRequest: null } });
  // Connection errors are followed through `redis`'s state; these only must not go unhandled.
  queue.on('error', () => {});
  events.on('error', () => {});
  await events.waitUntilReady();

  /** Live workers and their total concurrency (heartbeat keys, which expire when a worker dies). */
  const liveWorkers = async (): Promise<{ count: number; concurrency: number }> => {
    const names = await redis.smembers(keys.workers);
    if (names.length === 0) return { count: 0, concurrency: 0 };
    const beats = await redis.mget(names.map(keys.worker));
    const dead = names.filter((_, i) => beats[i] === null);
    if (dead.length > 0) await redis.srem(keys.workers, ...dead);
    let count = 0;
    let concurrency = 0;
    for (const b of beats) {
      if (b === null) continue;
      count++;
      try {
        concurrency += (JSON.parse(b) as Partial<WorkerHeartbeat>).concurrency ?? 1;
      } catch {
        concurrency += 1;
      }
    }
    return { count, concurrency };
  };

  const fetchResult = async (job: PendingJob): Promise<boolean> => {
    const bytes = await redis.getBuffer(keys.result(job.id));
    if (bytes === null) return false;
    if (job.settled) return true;
    job.settled = true;
    traffic.resultBytes += bytes.byteLength;
    await redis.del(keys.result(job.id));
    pending.delete(job.id);
    job.resolve(bytes);
    return true;
  };

  const failJob = async (job: PendingJob, reason: string) => {
    if (job.settled) return;
    job.settled = true;
    pending.delete(job.id);
    const task = JSON.stringify(describe(job.data.task));
    job.reject(error(`sampling ${env} task ${job.group} (${task}) failed on a Redis worker: ${reason}`));
    await queue.remove(job.id).catch(() => 0);
  };

  const storeParams = async (sets: Iterable<EncodedParams>) => {
    if (mode !== 'shared') return;
    const pipeline = redis.pipeline();
    for (const p of sets) {
      pipeline.set(keys.params(p.hash), p.data, 'PX', paramsTtlMs);
      traffic.paramsBytes += p.data.byteLength;
    }
    await pipeline.exec();
  };

  const enqueue = async (jobs: readonly PendingJob[]) => {
    const bulk = jobs.map((j) => {
      traffic.jobs++;
      traffic.payloadBytes += JSON.stringify(j.data).length;
      return { name: 'sample', data: j.data, opts: { jobId: j.id, attempts: 3, removeOnComplete: true, removeOnFail: false } };
    });
    await queue.addBulk(bulk);
  };

  events.on('completed', ({ jobId }) => {
    const job = pending.get(jobId);
    if (job !== undefined) void fetchResult(job).catch(() => {});
  });
  events.on('failed', ({ jobId, failedReason }) => {
    const job = pending.get(jobId);
    if (job === undefined) return;
    // Only a job that failed for good (not one about to be retried) fails its request.
    void queue
      .getJobState(jobId)
      .then((state) => (state === 'failed' ? failJob(job, failedReason) : undefined))
      .catch(() => {});
  });

  /** Enqueues again the jobs the server lost (no result, no job), with their parameters. */
  const audit = async () => {
    const lost: PendingJob[] = [];
    for (const job of [...pending.values()]) {
      if (job.settled) continue;
      const state = await queue.getJobState(job.id);
      if (state === 'failed') {
        const j = await queue.getJob(job.id);
        await failJob(job, j?.failedReason ?? 'failed');
      } else if (!(await fetchResult(job)) && state === 'unknown') {
        lost.push(job);
      }
    }
    if (lost.length > 0 && !lost.every((j) => j.settled)) {
      notice(`Redis at ${target.display} lost ${lost.length} sampling job(s) (a restart?); enqueuing them again`);
      await storeParams(new Set(lost.map((j) => j.params)));
      await enqueue(lost.filter((j) => !j.settled));
    }
  };

  let noWorkerSince: number | undefined;
  let ticks = 0;
  let busy = false;
  const failAll = (message: string) => {
    for (const job of [...pending.values()]) {
      job.settled = true;
      pending.delete(job.id);
      job.reject(error(message));
      void queue.remove(job.id).catch(() => 0);
    }
  };
  const tick = async () => {
    if (busy || pending.size === 0) return;
    busy = true;
    try {
      const now = Date.now();
      if (redis.status !== 'ready') {
        if (downSince !== undefined && now - downSince > timeoutMs) {
          failAll(`lost the connection to Redis at ${target.display} ${Math.round((now - downSince) / 1000)} s ago and could not reconnect (${lastFailure || 'closed'})`);
        }
        return;
      }
      ticks++;
      if (ticks % workerCheckEvery === 0) {
        const workers = await liveWorkers();
        if (workers.count > 0) noWorkerSince = undefined;
        else {
          noWorkerSince ??= now;
          if (now - noWorkerSince > timeoutMs) {
            failAll(`no magicbox worker took sampling jobs from queue ${queueName} at ${target.display} for ${Math.round(timeoutMs / 1000)} s; start one with: magicbox worker --redis URL`);
            return;
          }
        }
      }
      if (reconnected || ticks % auditEvery === 0) {
        reconnected = false;
        await audit();
      }
    } catch {
      // A command that failed mid-outage: the next tick looks again.
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), tickMs);
  timer.unref();

  let closed = false;
  const initial = await liveWorkers();

  const sample = async (request: SampleRequest): Promise<Trajectories[]> => {
    if (closed) throw new SamplerError('the Redis sampler was closed');
    const { tasks, params, perGroup, horizon, seed } = request;
    if (tasks.length !== params.length) throw new SamplerError(`${tasks.length} tasks but ${params.length} parameter sets`);
    if (tasks.length === 0) return [];
    const encoded = new Map<Params, EncodedParams>();
    const encode = (p: Params) => {
      let e = encoded.get(p);
      if (e === undefined) encoded.set(p, (e = encodeParams(p)));
      return e;
    };
    const r = nextRequest++;
    const results: Array<Promise<Buffer>> = [];
    const jobs: PendingJob[] = tasks.map((task, i) => {
      const p = encode(params[i]!);
      const group = request.groupIndices?.[i] ?? i;
      const data: SampleJob = {
        protocol: FLEET_PROTOCOL,
        environment: env,
        backend: options.backend as SampleJob['backend'],
        policy: { ...options.policy, hidden: [...options.policy.hidden] } as SampleJob['policy'],
        task: task as SampleJob['task'],
        group,
        perGroup,
        horizon,
        seed,
        layout: p.layout,
        params: mode === 'shared' ? { ref: p.hash } : { inline: p.data.toString('base64') },
      };
      let resolve!: (b: Buffer) => void;
      let reject!: (e: Error) => void;
      results.push(
        new Promise<Buffer>((res, rej) => {
          resolve = res;
          reject = rej;
        }),
      );
      return { id: `${token}-${r}-${i}`, group, data, params: p, resolve, reject, settled: false };
    });
    for (const job of jobs) pending.set(job.id, job);
    noWorkerSince = undefined;
    // Not awaited before the results: with the server down these commands wait for it, and the
    // timeout (in `tick`) must still be able to end the request.
    void storeParams(encoded.values())
      .then(() => enqueue(jobs))
      .catch((e: unknown) => failAll(`could not enqueue the sampling jobs on Redis at ${target.display}: ${messageOf(e)}`));
    // The first failure ends the request (Promise.all keeps handlers on the others' promises).
    const outcome = await Promise.all(results).then(
      (buffers) => ({ buffers }),
      (e: unknown) => ({ failure: e instanceof Error ? e : new SamplerError(String(e)) }),
    );
    if ('failure' in outcome) {
      // The rest of the request is abandoned: its waiting jobs are removed.
      for (const job of jobs) if (!job.settled) void failJob(job, 'another task of the request failed');
      throw outcome.failure;
    }
    const actionDim = options.policy.action.kind === 'continuous' ? options.policy.action.dim : 1;
    return outcome.buffers.map((bytes, i) => {
      try {
        return decodeTrajectories({ protocol: FLEET_PROTOCOL, key: '', n: perGroup, horizon, observationDim: options.policy.observationDim, actionDim, bytes: bytes.byteLength }, bytes);
      } catch (e) {
        throw error(`sampling ${env} task ${jobs[i]!.group}: a Redis worker returned malformed trajectories: ${messageOf(e)}`);
      }
    });
  };

  return {
    workers: Math.max(1, initial.concurrency),
    description: `sampling on Redis workers (queue ${queueName} at ${target.display}; ${initial.count} worker(s) alive now)`,
    sample,
    traffic: () => ({ ...traffic }),
    close: async () => {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      failAll('the Redis sampler was closed');
      // Closing waits for the server; a server that is gone must not hold the process.
      await Promise.race([Promise.allSettled([queue.close(), events.close()]), sleep(2000)]);
      redis.disconnect();
    },
  };
};

/**
 * The Redis sampler for a trainer (as `trainerFor` makes it): its environment, its MLP policy and this
 * thread's backend. For `train({ …, sampler: (t) => redisSamplerFor(t, { redis }) })`.
 */
export const redisSamplerFor = (
  trainer: Pick<Trainer, 'config' | 'distribution' | 'policy'>,
  options: Omit<RedisSamplerOptions, 'environment' | 'policy' | 'backend' | 'describeTask'>,
): Promise<RedisSampler> => {
  const { config, distribution, policy } = trainer;
  return redisSampler({
    ...options,
    environment: config.env,
    policy: { observationDim: policy.observationDim, action: policy.action, hidden: policy.hidden, ...(config.initLogStd !== undefined ? { initLogStd: config.initLogStd } : {}) },
    backend: currentBackendName(),
    describeTask: distribution.describeTask,
  });
};
