/**
 * Sampling on a fleet of `magicbox worker` processes through Redis against the thread sampler, on this
 * machine: HalfCheetahFwdBack at the paper's batch (40 tasks × 20 trajectories × horizon 100 = 80,000
 * environment steps per request), the (64, 64) tanh MLP Gaussian policy, environment steps per second
 *   - with the thread sampler (one thread per core, src/meta/parallel-sampler.ts),
 *   - with 1, 2 and 4 worker processes (concurrency 1 each) over a loopback Redis server,
 * the 2-process rate as a ratio of the thread sampler's (target ≥ 0.9: the queue costs little) — each
 * fleet request timed A/B interleaved with a thread-sampler request, the ratio the median over the pairs,
 * since the machine's load drifts between configurations — the CPU seconds per 1000 steps of each (every
 * process counted: trainer, Redis, workers), and the
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
 *   --reps=R                                 timed request pairs per configuration (default 4)
 *   --jobs=J                                 one-step jobs timed for the overhead (default 40)
 *   --prefetch=P                             the workers' --prefetch (default: theirs, 1)
 *   --quick                                  --tasks=8 --reps=2 --jobs=10, and only 1 and 2 processes
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
// Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these.
const clockTicks = 100;
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
const redisServer = async (): Promise<{ url: string; stop: () => void; pid?: number }> => {
  const given = process.env['MAGICBOX_BENCH_REDIS_URL'];
  if (given !== undefined && given !== '') return { url: given, stop: () => {} };
  const port = await freePort();
  const child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.on('error', (e) => (output += `${e.message} (install redis-server: apt-get install redis-server)`));
  for (let i = 0; i < 100 && !/Ready to accept connections/.test(output); i++) await sleep(50);
  if (!/Ready to accept connections/.test(output)) throw new Error(`redis-server did not start: ${output.slice(-300)}`);
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL'), ...(child.pid !== undefined ? { pid: child.pid } : {}) };
};

/** `magicbox worker` processes on `queue`, started and waited for. */
const startWorkers = async (url: string, queue: string, count: number, prefetch: number | undefined): Promise<ChildProcess[]> =>
  Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ChildProcess>((resolve, reject) => {
          const child = spawn('node', ['bin/magicbox.mjs', 'worker', '--redis', url, '--queue', queue, ...(prefetch !== undefined ? ['--prefetch', String(prefetch)] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  const { quick, value } = benchArgs('fleet', args, ['tasks', 'trajectories', 'horizon', 'reps', 'jobs', 'prefetch']);
  const opts = {
    tasks: value('tasks') ?? (quick ? 8 : 40),
    trajectories: value('trajectories') ?? 20,
    horizon: value('horizon') ?? 100,
    reps: value('reps') ?? (quick ? 2 : 4),
    jobs: value('jobs') ?? (quick ? 10 : 40),
    prefetch: value('prefetch', 0),
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

  // CPU seconds used so far by this process (its threads included) and by the given child processes
  // (from /proc: the workers' sampling threads are theirs; Linux only, else undefined).
  const cpuSeconds = (pids: readonly number[]): number | undefined => {
    try {
      const children = pids.map((pid) => {
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        return (Number(fields[11]) + Number(fields[12])) / clockTicks;
      });
      const own = process.cpuUsage();
      return (own.user + own.system) / 1e6 + children.reduce((a, b) => a + b, 0);
    } catch {
      return undefined;
    }
  };
  interface Timed {
    readonly stepsPerSecond: number;
    readonly cpuPer1000Steps: number | undefined;
    readonly out: Trajectories[];
  }
  const timedRequest = async (sampler: Sampler, seed: number, pids: readonly number[]): Promise<Timed> => {
    const cpuBefore = cpuSeconds(pids);
    const started = performance.now();
    const out = await sampler.sample(request(seed));
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = cpuSeconds(pids);
    const cpu = cpuBefore !== undefined && cpuAfter !== undefined ? ((cpuAfter - cpuBefore) / stepsPerRequest) * 1000 : undefined;
    return { stepsPerSecond: stepsPerRequest / seconds, cpuPer1000Steps: cpu, out };
  };
  const medianOrUndefined = (xs: ReadonlyArray<number | undefined>): number | undefined => (xs.every((x) => x !== undefined) ? median(xs as number[]) : undefined);

  // The thread sampler stays up for the whole run: each fleet configuration is timed A/B interleaved
  // with it (thread, fleet, fleet, thread, …), so both see the same machine load, and the ratio is the
  // median of the per-pair ratios.
  const threads = availableParallelism();
  const pool = await workerSampler({ environment: ENV, policy: spec, backend, workers: threads, describeTask: distribution.describeTask });
  const threadRuns: Timed[] = [];
  const measurePair = async (label: string, sampler: Sampler, childPids: readonly number[]) => {
    // Untimed: thread start-up, first-call costs (every process gets jobs of its own).
    await sampler.sample(request(999));
    await pool.sample(request(999));
    const fleetRuns: Timed[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < opts.reps; r++) {
      const timeThreads = () => timedRequest(pool, r, []);
      const timeFleet = () => timedRequest(sampler, r, childPids);
      let thread: Timed;
      let fleetRun: Timed;
      if (r % 2 === 0) {
        thread = await timeThreads();
        fleetRun = await timeFleet();
      } else {
        fleetRun = await timeFleet();
        thread = await timeThreads();
      }
      if (!same(fleetRun.out, thread.out)) throw new Error(`${label}: request ${r} differs from the thread sampler's trajectories`);
      threadRuns.push(thread);
      fleetRuns.push(fleetRun);
      ratios.push(fleetRun.stepsPerSecond / thread.stepsPerSecond);
    }
    log(`${label}: ${median(fleetRuns.map((x) => x.stepsPerSecond)).toFixed(0)} env steps/s (${fleetRuns.map((x) => x.stepsPerSecond.toFixed(0)).join(', ')}); interleaved thread sampler ${threadRuns.slice(-opts.reps).map((x) => x.stepsPerSecond.toFixed(0)).join(', ')}; ratio ${median(ratios).toFixed(3)}`);
    const resultBytes = 'traffic' in sampler ? (sampler as RedisSampler).traffic().resultBytes / (opts.reps + 1) : 0;
    return { stepsPerSecond: median(fleetRuns.map((x) => x.stepsPerSecond)), each: fleetRuns.map((x) => x.stepsPerSecond), ratio: median(ratios), ratios, cpuPer1000Steps: medianOrUndefined(fleetRuns.map((x) => x.cpuPer1000Steps)), resultBytes };
  };

  const server = await redisServer();
  const fleet: Record<string, { stepsPerSecond: number; each: number[]; ratio: number; ratios: number[]; cpuPer1000Steps: number | undefined }> = {};
  let overhead: Record<string, unknown> = {};
  let traffic: Record<string, unknown> = {};
  try {
    for (const count of processCounts) {
      const queue = `bench-fleet-${process.pid}-${count}`;
      const workers = await startWorkers(server.url, queue, count, opts.prefetch);
      let sampler: RedisSampler | undefined;
      try {
        sampler = await redisSampler({ redis: redisTarget(server.url), environment: ENV, policy: spec, backend, describeTask: distribution.describeTask, queue });
        const r = await measurePair(`fleet, ${count} worker process(es)`, sampler, [...workers.map((w) => w.pid!), ...(server.pid !== undefined ? [server.pid] : [])]);
        fleet[String(count)] = { stepsPerSecond: r.stepsPerSecond, each: r.each, ratio: r.ratio, ratios: r.ratios, cpuPer1000Steps: r.cpuPer1000Steps };
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
    await pool.close();
    disposeParams(params);
  }
  const threadStepsPerSecond = median(threadRuns.map((x) => x.stepsPerSecond));
  const threadCpu = medianOrUndefined(threadRuns.map((x) => x.cpuPer1000Steps));
  const ratio2 = fleet['2']!.ratio;
  return {
    environment: ENV,
    tasks: opts.tasks,
    trajectoriesPerTask: opts.trajectories,
    horizon: opts.horizon,
    envStepsPerRequest: stepsPerRequest,
    workerPrefetch: opts.prefetch ?? 'default (1)',
    policy: 'mlp 64x64 tanh gaussian',
    envStepsPerSecond: {
      threadSampler: round(threadStepsPerSecond),
      ...Object.fromEntries(Object.entries(fleet).map(([k, v]) => [`fleet${k}Processes`, round(v.stepsPerSecond)])),
    },
    threads,
    timedRequests: { threadSampler: threadRuns.map((x) => round(x.stepsPerSecond)), ...Object.fromEntries(Object.entries(fleet).map(([k, v]) => [`fleet${k}`, v.each.map((x) => round(x))])) },
    // Each fleet configuration over the thread sampler timed beside it (median of interleaved pairs).
    overInterleavedThreadSampler: Object.fromEntries(Object.entries(fleet).map(([k, v]) => [`fleet${k}Processes`, { median: round(v.ratio, 3), pairs: v.ratios.map((x) => round(x, 3)) }])),
    // CPU seconds per 1000 env steps, all processes counted (the trainer, Redis, the workers): what the
    // queue costs in work, independent of how busy the machine was.
    cpuSecondsPer1000Steps: {
      threadSampler: threadCpu === undefined ? null : round(threadCpu, 4),
      ...Object.fromEntries(Object.entries(fleet).map(([k, v]) => [`fleet${k}Processes`, v.cpuPer1000Steps === undefined ? null : round(v.cpuPer1000Steps, 4)])),
    },
    fleet2ProcessesOverThreadSampler: round(ratio2, 3),
    target: { fleet2ProcessesOverThreadSampler: { atLeast: 0.9, met: ratio2 >= 0.9 } },
    perJobOverheadMs: overhead,
    bytesPerLevel: traffic,
    trajectoriesIdenticalToThreadSampler: true,
    loadAverageBefore: loadBefore.map((x) => round(x, 2)),
    loadAverageAfter: loadavg().map((x) => round(x, 2)),
  };
};
