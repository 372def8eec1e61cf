/**
 * Sampling on a fleet of `magicbox worker` processes through Redis against the thread sampler, on this
 * machine: HalfCheetahFwdBack at the paper's batch (40 tasks × 20 trajectories × horizon 100 = 80,000
 * environment steps per request), the (64, 64) tanh MLP Gaussian policy, environment steps per second
 *   - with the thread sampler (one thread per core, src/meta/parallel-sampler.ts),
 *   - with 1, 2 and 4 worker processes (concurrency 1 each) over a loopback Redis server,
 * the 2-process rate as a ratio of the thread sampler's (target ≥ 0.9: the queue costs little), and the
 * per-job overhead: enqueue → result of a one-step job, median over many, with the parameters shared
 * (stored once under their hash) and inline (in every job's payload), beside the same job on a worker
 * thread of this process (the difference is the queue's share); and the bytes each mode moves per level,
 * which is what decides between the two. Every fleet request's trajectories are checked to be the
 * thread sampler's, bit for bit.
 *
 * The Redis server: MAGICBOX_BENCH_REDIS_URL, or a private `redis-server` on a free loopback port
 * (no persistence), stopped at the end.
 *
 * Options (`npm run bench -- fleet --reps=3`):
 *   --tasks=N --trajectories=N --horizon=T   the request (default 40, 20, 100)
 *   --reps=R                                 timed requests per configuration (default 2)
 *   --jobs=J                                 one-step jobs timed for the overhead (default 40)
 *   --quick                                  --tasks=8 --reps=1 --jobs=10, and only 1 and 2 processes
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { loadTaskDistribution } from '../src/envs/index.ts';
import { disposeParams } from '../src/meta/algorithms.ts';
import { workerSampler, type PolicySpec } from '../src/meta/parallel-sampler.ts';
import { mlpPolicyFor } from '../src/meta/policy.ts';
import { redisTarget } from '../src/meta/redis-connection.ts';
import { redisSampler, type RedisSampler } from '../src/meta/redis-sampler.ts';
import type { SampleRequest, Sampler, Trajectories } from '../src/meta/sampler.ts';
import { seededUniform } from '../src/random.ts';
import { benchArgs } from './_options.ts';

const ENV = 'half-cheetah-fwd-back';
const log = (msg: string) => process.stderr.write(`[fleet] ${msg}\n`);
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number, digits = 0): number => Number(x.toFixed(digits));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const fields = ['observations', 'actions', 'rewards', 'mask', 'logProbs'] as const;
const same = (a: readonly Trajectories[], b: readonly Trajectories[]): boolean =>
  a.length === b.length && a.every((tr, g) => fields.every((f) => Buffer.compare(Buffer.from(tr[f].buffer, tr[f].byteOffset, tr[f].byteLength), Buffer.from(b[g]![f].buffer, b[g]![f].byteOffset, b[g]![f].byteLength)) === 0));

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });

/** A private redis-server on a loopback port, or the one MAGICBOX_BENCH_REDIS_URL names. */
const redisServer = async (): Promise<{ url: string; stop: () => void }> => {
  const given = process.env['MAGICBOX_BENCH_REDIS_URL'];
  if (given !== undefined && given !== '') return { url: given, stop: () => {} };
  const port = await freePort();
  const child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.on('error', (e) => (output += `${e.message} (install redis-server: apt-get install redis-server)`));
  for (let i = 0; i < 100 && !/Ready to accept connections/.test(output); i++) await sleep(50);
  if (!/Ready to accept connections/.test(output)) throw new Error(`redis-server did not start: ${output.slice(-300)}`);
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
};

/** `magicbox worker` processes on `queue`, started and waited for. */
const startWorkers = async (url: string, queue: string, count: number): Promise<ChildProcess[]> =>
  Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ChildProcess>((resolve, reject) => {
          const child = spawn('node', ['bin/magicbox.mjs', 'worker', '--redis', url, '--queue', queue], { stdio: ['ignore', 'pipe', 'pipe'] });
          let output = '';
          const onData = (d: Buffer) => {
            output += d.toString();
            if (/taking sampling jobs/.test(output)) resolve(child);
          };
          child.stdout.on('data', onData);
          child.stderr.on('data', onData);
          child.once('exit', (code) => reject(new Error(`a worker exited (${code}): ${output.slice(-300)}`)));
        }),
    ),
  );

const stopWorkers = async (workers: readonly ChildProcess[]) => {
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.exitCode !== null) return resolve();
          w.removeAllListeners('exit');
          w.once('exit', () => resolve());
          w.kill('SIGTERM');
        }),
    ),
  );
};

export const run = async (args: readonly string[] = []): Promise<Record<string, unknown>> => {
  const { quick, value } = benchArgs('fleet', args, ['tasks', 'trajectories', 'horizon', 'reps', 'jobs']);
  const opts = {
    tasks: value('tasks') ?? (quick ? 8 : 40),
    trajectories: value('trajectories') ?? 20,
    horizon: value('horizon') ?? 100,
    reps: value('reps') ?? (quick ? 1 : 2),
    jobs: value('jobs') ?? (quick ? 10 : 40),
  };
  const processCounts = quick ? [1, 2] : [1, 2, 4];
  const loadBefore = loadavg();
  const distribution = await loadTaskDistribution(ENV);
  const backend = tf.getBackend();
  const spec: PolicySpec = { observationDim: distribution.observationDim, action: distribution.action, hidden: [64, 64] };
  const policy = mlpPolicyFor(spec.observationDim, spec.action, { hidden: spec.hidden });
  const params = policy.init(1);
  const tasks = distribution.sampleTasks(seededUniform(3), opts.tasks);
  const request = (seed: number): SampleRequest => ({ tasks, params: tasks.map(() => params), perGroup: opts.trajectories, horizon: opts.horizon, seed });
  const stepsPerRequest = opts.tasks * opts.trajectories * opts.horizon;
  log(`${ENV}: ${opts.tasks} tasks × ${opts.trajectories} trajectories × horizon ${opts.horizon} = ${stepsPerRequest} env steps per request; ${opts.reps} timed request(s) per configuration`);

  const measure = async (label: string, sampler: Sampler, reference?: Trajectories[][]) => {
    // Untimed: thread start-up, first-call costs (every process gets jobs of its own).
    await sampler.sample(request(999));
    const each: number[] = [];
    const samples: Trajectories[][] = [];
    for (let r = 0; r < opts.reps; r++) {
      const started = performance.now();
      const out = await sampler.sample(request(r));
      each.push(stepsPerRequest / ((performance.now() - started) / 1000));
      samples.push(out);
      if (reference !== undefined && !same(out, reference[r]!)) throw new Error(`${label}: request ${r} differs from the thread sampler's trajectories`);
    }
    log(`${label}: ${median(each).toFixed(0)} env steps/s (${each.map((x) => x.toFixed(0)).join(', ')})`);
    const resultBytes = 'traffic' in sampler ? (sampler as RedisSampler).traffic().resultBytes / (opts.reps + 1) : 0;
    return { stepsPerSecond: median(each), each, samples, resultBytes };
  };

  const threads = availableParallelism();
  const pool = await workerSampler({ environment: ENV, policy: spec, backend, workers: threads, describeTask: distribution.describeTask });
  let threadResult;
  try {
    threadResult = await measure(`thread sampler, ${threads} threads`, pool);
  } finally {
    await pool.close();
  }

  const server = await redisServer();
  const fleet: Record<string, { stepsPerSecond: number; each: number[] }> = {};
  let overhead: Record<string, unknown> = {};
  let traffic: Record<string, unknown> = {};
  try {
    for (const count of processCounts) {
      const queue = `bench-fleet-${process.pid}-${count}`;
      const workers = await startWorkers(server.url, queue, count);
      let sampler: RedisSampler | undefined;
      try {
        sampler = await redisSampler({ redis: redisTarget(server.url), environment: ENV, policy: spec, backend, describeTask: distribution.describeTask, queue });
        const r = await measure(`fleet, ${count} worker process(es)`, sampler, threadResult.samples);
        fleet[String(count)] = { stepsPerSecond: r.stepsPerSecond, each: r.each };
        if (count === 1) {
          // Per-job overhead: one-step jobs one after another (the worker's thread is warm), parameters
          // shared and inline; and the bytes a level moves each way.
          const tiny = (seed: number): SampleRequest => ({ tasks: tasks.slice(0, 1), params: [params], perGroup: 1, horizon: 1, seed });
          const inline = await redisSampler({ redis: redisTarget(server.url), environment: ENV, policy: spec, backend, queue, params: 'inline' });
          try {
            const time = async (s: RedisSampler) => {
              const ms: number[] = [];
              await s.sample(tiny(0));
              for (let j = 0; j < opts.jobs; j++) {
                const started = performance.now();
                await s.sample(tiny(j + 1));
                ms.push(performance.now() - started);
              }
              return median(ms);
            };
            const sharedMs = await time(sampler);
            const inlineMs = await time(inline);
            // The same one-step job on a warm worker thread of this process: what is not the queue's.
            const thread = await workerSampler({ environment: ENV, policy: spec, backend, workers: 1 });
            let threadMs: number;
            try {
              const ms: number[] = [];
              await thread.sample(tiny(0));
              for (let j = 0; j < opts.jobs; j++) {
                const started = performance.now();
                await thread.sample(tiny(j + 1));
                ms.push(performance.now() - started);
              }
              threadMs = median(ms);
            } finally {
              await thread.close();
            }
            log(`one-step job, enqueue → result: ${sharedMs.toFixed(2)} ms shared parameters, ${inlineMs.toFixed(2)} ms inline; on a worker thread of this process ${threadMs.toFixed(2)} ms`);
            // One level's traffic in each mode: the pre-update level (one parameter set for all tasks)
            // and an adapted one (a set per task).
            const adapted = tasks.map((_, i) => policy.init(100 + i));
            try {
              // What goes to the workers does not depend on the trajectories' length: measured on one-step
              // requests of all the tasks. What comes back is the full level's (measured above).
              const levelTraffic = async (s: RedisSampler, perTask: boolean) => {
                const before = s.traffic();
                await s.sample({ ...request(7), perGroup: 1, horizon: 1, ...(perTask ? { params: adapted } : {}) });
                const after = s.traffic();
                return { jobPayloadBytes: after.payloadBytes - before.payloadBytes, sharedParamsBytes: after.paramsBytes - before.paramsBytes };
              };
              traffic = {
                resultBytes: Math.round(r.resultBytes),
                preUpdateLevel: { shared: await levelTraffic(sampler, false), inline: await levelTraffic(inline, false) },
                adaptedLevel: { shared: await levelTraffic(sampler, true), inline: await levelTraffic(inline, true) },
              };
            } finally {
              adapted.forEach(disposeParams);
            }
            overhead = {
              enqueueToResultSharedParams: round(sharedMs, 2),
              enqueueToResultInlineParams: round(inlineMs, 2),
              sameJobOnThreadSampler: round(threadMs, 2),
              queueShareSharedParams: round(sharedMs - threadMs, 2),
            };
          } finally {
            await inline.close();
          }
        }
      } finally {
        await sampler?.close();
        await stopWorkers(workers);
      }
    }
  } finally {
    server.stop();
    disposeParams(params);
  }
  const ratio2 = fleet['2']!.stepsPerSecond / threadResult.stepsPerSecond;
  return {
    environment: ENV,
    tasks: opts.tasks,
    trajectoriesPerTask: opts.trajectories,
    horizon: opts.horizon,
    envStepsPerRequest: stepsPerRequest,
    policy: 'mlp 64x64 tanh gaussian',
    envStepsPerSecond: {
      threadSampler: round(threadResult.stepsPerSecond),
      ...Object.fromEntries(Object.entries(fleet).map(([k, v]) => [`fleet${k}Processes`, round(v.stepsPerSecond)])),
    },
    threads,
    timedRequests: { threadSampler: threadResult.each.map((x) => round(x)), ...Object.fromEntries(Object.entries(fleet).map(([k, v]) => [`fleet${k}`, v.each.map((x) => round(x))])) },
    fleet2ProcessesOverThreadSampler: round(ratio2, 3),
    target: { fleet2ProcessesOverThreadSampler: { atLeast: 0.9, met: ratio2 >= 0.9 } },
    perJobOverheadMs: overhead,
    bytesPerLevel: traffic,
    trajectoriesIdenticalToThreadSampler: true,
    loadAverageBefore: loadBefore.map((x) => round(x, 2)),
    loadAverageAfter: loadavg().map((x) => round(x, 2)),
  };
};
