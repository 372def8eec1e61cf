/**
 * Sampling on a fleet of `magicbox worker` processes through a real Redis server (.ci/run's, or one the
 * tests start): the trajectories — and a whole `magicbox train` run — are the thread sampler's to the
 * last bit; a worker SIGKILLed mid-job has its job retried elsewhere with the numbers unchanged; a Redis
 * server restarted mid-request (losing everything) is reconnected to and the lost jobs enqueued again;
 * a server gone for good, or no worker alive, fails the request after the timeout with a message that
 * says so (never the password) and training stops with its checkpoint; a job that fails on a worker
 * names the environment and the task; malformed and foreign-protocol jobs are refused.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend.ts';
import { loadTaskDistribution } from '../src/envs/index.ts';
import { disposeParams } from '../src/meta/algorithms.ts';
import { resolveConfig } from '../src/meta/config.ts';
import { decodeSampleJob, FLEET_PROTOCOL } from '../src/meta/fleet-protocol.ts';
import { workerSampler } from '../src/meta/parallel-sampler.ts';
import { mlpPolicyFor } from '../src/meta/policy.ts';
import { redisTarget } from '../src/meta/redis-connection.ts';
import { redisSampler, redisSamplerFor } from '../src/meta/redis-sampler.ts';
import { inProcessSampler, type SampleRequest, type Trajectories } from '../src/meta/sampler.ts';
import { completeConfig, readCheckpoint, train } from '../src/meta/train.ts';
import { seededUniform } from '../src/random.ts';
import { runCli } from './helpers/cli.ts';
import { startOwnRedis, startWorker, testRedisUrl } from './helpers/redis.ts';

const backend = selectBackend();

const fields = ['observations', 'actions', 'rewards', 'mask', 'logProbs'] as const;
const identical = (a: readonly Trajectories[], b: readonly Trajectories[]): boolean =>
  a.length === b.length &&
  a.every((tr, g) =>
    fields.every((f) => Buffer.compare(Buffer.from(tr[f].buffer, tr[f].byteOffset, tr[f].byteLength), Buffer.from(b[g]![f].buffer, b[g]![f].byteOffset, b[g]![f].byteLength)) === 0),
  );

let queues = 0;
/** A queue of its own for each test (the server may be shared). */
const freshQueue = () => `fleet-test-${process.pid}-${queues++}`;

/** A request whose groups each have their own parameters (as at an adapted level), and its reference. */
const fixture = async (env: string, options: { tasks: number; perGroup: number; horizon: number }) => {
  const b = await backend;
  const distribution = await loadTaskDistribution(env);
  const spec = { observationDim: distribution.observationDim, action: distribution.action, hidden: [16, 16] };
  const policy = mlpPolicyFor(spec.observationDim, spec.action, { hidden: spec.hidden });
  const tasks = distribution.sampleTasks(seededUniform(7), options.tasks);
  // Three parameter sets, each shared by several groups (as the pre-update one is by all).
  const sets = [50, 51, 52].map((seed) => policy.init(seed));
  const params = tasks.map((_, g) => sets[g % 3]!);
  const request: SampleRequest = { tasks, params, perGroup: options.perGroup, horizon: options.horizon, seed: 4321 };
  const reference = await inProcessSampler(distribution, policy).sample(request);
  const samplerFor = (url: string, queue: string, extra: { timeoutSeconds?: number; params?: 'shared' | 'inline' } = {}) =>
    redisSampler({ redis: redisTarget(url), environment: env, policy: spec, backend: b.tfjsName, describeTask: distribution.describeTask, queue, ...extra });
  return { distribution, spec, policy, tasks, params, request, reference, samplerFor, dispose: () => sets.forEach(disposeParams) };
};

test('redisTarget: user, password, database and TLS files from the URL; the password masked; one-line errors', (t) => {
  const a = redisTarget('redis://trainer:s3cr%40t@10.0.0.5:6380/2', {});
  t.deepEqual(a.options, { host: '10.0.0.5', port: 6380, db: 2, username: 'trainer', password: 's3cr@t' });
  t.is(a.display, 'redis://trainer:***@10.0.0.5:6380/2');
  t.is(a.redact('WRONGPASS for s3cr@t (s3cr%40t)'), 'WRONGPASS for *** (***)');
  const fromEnv = redisTarget('redis://127.0.0.1', { MAGICBOX_REDIS_PASSWORD: 'hunter2' });
  t.is(fromEnv.options.password, 'hunter2');
  t.is(fromEnv.options.port, 6379);
  t.false(fromEnv.display.includes('hunter2'));
  t.is(fromEnv.redact('hunter2!'), '***!');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'magicbox-tls-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'ca.pem'), 'CA');
  const tls = redisTarget(`rediss://:pw@cache.example:6390?ca=${path.join(dir, 'ca.pem')}&servername=cache`, {});
  t.deepEqual(tls.options.tls, { ca: Buffer.from('CA'), servername: 'cache' });
  const error = (url: string) => t.throws(() => redisTarget(url, {}))!.message;
  t.regex(error('http://u:topsecret@h'), /scheme must be redis:\/\/ or rediss:\/\//);
  t.false(error('http://u:topsecret@h').includes('topsecret'));
  t.regex(error('redis://h/x'), /database number/);
  t.regex(error('redis://h?ca=/x'), /TLS option: use rediss/);
  t.regex(error('rediss://h?ca=/nonexistent/ca.pem'), /ca=\/nonexistent\/ca.pem: no such file/);
  t.regex(error('rediss://h?bogus=1'), /unknown parameter bogus/);
  t.regex(error('not a url'), /not a URL/);
});

test('decodeSampleJob refuses malformed payloads and names both protocol versions', (t) => {
  const foreign = decodeSampleJob({ protocol: FLEET_PROTOCOL + 1 });
  t.true('error' in foreign && foreign.error.includes(`protocol ${FLEET_PROTOCOL}`) && foreign.error.includes(`protocol ${FLEET_PROTOCOL + 1}`));
  const job = { protocol: FLEET_PROTOCOL, environment: 'point-corners', backend: 'wasm', policy: { observationDim: 2, action: { kind: 'continuous', dim: 2, low: -0.1, high: 0.1 }, hidden: [4] }, task: { corner: 0, goal: [-2, -2] }, group: 0, perGroup: 2, horizon: 3, seed: 1, layout: [], params: { inline: '' } };
  t.true('job' in decodeSampleJob(job));
  const bad = (patch: Record<string, unknown>) => {
    const d = decodeSampleJob({ ...job, ...patch });
    return 'error' in d ? d.error : '';
  };
  t.regex(bad({ environment: 'rm -rf /' }), /environment: not a catalogue environment/);
  t.regex(bad({ perGroup: -1 }), /^malformed sampling job: perGroup/);
  t.regex(bad({ params: { ref: 'zz' } }), /malformed/);
  t.regex(bad({ task: 'x' }), /task/);
});

test.serial('two worker processes give the thread sampler\'s trajectories to the last bit (point and MuJoCo, shared and inline parameters)', async (t) => {
  const url = await testRedisUrl(t);
  const queue = freshQueue();
  const a = await startWorker(t, url, ['--queue', queue, '--verbose']);
  const b = await startWorker(t, url, ['--queue', queue, '--verbose', '--concurrency', '2']);
  for (const env of ['point-corners', 'half-cheetah-fwd-back']) {
    const f = await fixture(env, { tasks: 6, perGroup: 3, horizon: 40 });
    try {
      // Different seeds give different trajectories: the comparison has teeth.
      t.false(identical(f.reference, await inProcessSampler(f.distribution, f.policy).sample({ ...f.request, seed: 1 })));
      for (const params of ['shared', 'inline'] as const) {
        const sampler = await f.samplerFor(url, queue, { params });
        try {
          t.true(identical(await sampler.sample(f.request), f.reference), `${env}, ${params} parameters`);
          const traffic = sampler.traffic();
          t.is(traffic.jobs, 6);
          // Shared: each distinct parameter set (3 of them) is stored once.
          if (params === 'shared') t.is(traffic.paramsBytes, 3 * Object.values(f.params[0]!).reduce((acc, x) => acc + x.size * 4, 0));
          else t.is(traffic.paramsBytes, 0);
        } finally {
          await sampler.close();
        }
      }
    } finally {
      f.dispose();
    }
  }
  // Both workers took jobs.
  t.regex(a.output(), /job \S+ done/);
  t.regex(b.output(), /job \S+ done/);
});

test.serial('magicbox train --redis: the same run as sampled in this thread', async (t) => {
  const url = await testRedisUrl(t);
  await startWorker(t, url);
  await startWorker(t, url);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'magicbox-fleet-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const args = ['train', '--algo', 'promp', '--env', 'point-corners', '--iterations', '2', '--tasks', '3', '--trajectories', '4', '--horizon', '10', '--seed', '3', '--progress', 'off'];
  const local = await runCli([...args, '--workers', '1', '--out', path.join(dir, 'local')]);
  t.is(local.code, 0, local.stderr);
  const fleet = await runCli([...args, '--redis', url, '--out', path.join(dir, 'fleet')]);
  t.is(fleet.code, 0, fleet.stderr);
  t.regex(fleet.stdout, /sampling on Redis workers/);
  const rows = (run: string) => fs.readFileSync(path.join(dir, run, 'progress.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { averageReturn: number[] }).averageReturn);
  t.deepEqual(rows('fleet'), rows('local'));
  t.deepEqual(readCheckpoint(path.join(dir, 'fleet')).params, readCheckpoint(path.join(dir, 'local')).params);
  t.is(rows('local').length, 2);
});

test.serial('a worker SIGKILLed mid-job: its job is retried on the other worker and the trajectories are unchanged', async (t) => {
  const url = await testRedisUrl(t);
  const queue = freshQueue();
  const f = await fixture('half-cheetah-fwd-back', { tasks: 12, perGroup: 10, horizon: 100 });
  t.teardown(f.dispose);
  const events = new QueueEvents(queue, { connection: { ...redisTarget(url).options, maxRetriesPerRequest: null } });
  t.teardown(() => events.close());
  await events.waitUntilReady();
  const stalled: string[] = [];
  events.on('stalled', ({ jobId }) => stalled.push(jobId));
  const victim = await startWorker(t, url, ['--queue', queue, '--verbose', '--lock-seconds', '1']);
  await startWorker(t, url, ['--queue', queue, '--lock-seconds', '1']);
  const sampler = await f.samplerFor(url, queue);
  t.teardown(() => sampler.close());
  const result = sampler.sample(f.request);
  // Observed here so that a failure below is reported as itself, not as the rejection the teardown's close causes.
  result.catch(() => undefined);
  // Once it has finished a job, the victim is frozen and the jobs it holds read from its log; frozen
  // between two jobs (holding none), it is let go for a moment and frozen again. Then it is killed:
  // certainly mid-job.
  await victim.waitFor(/job \S+ done/);
  let log = '';
  let held: string[] = [];
  for (let attempt = 0; attempt < 50 && held.length === 0; attempt++) {
    if (attempt > 0) {
      victim.process.kill('SIGCONT');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    victim.process.kill('SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, 200));
    log = victim.output();
    held = [...log.matchAll(/job (\S+) started/g)].map((m) => m[1]!).filter((id) => !log.includes(`job ${id} done`));
  }
  await victim.kill('SIGKILL');
  // One job sampling, and with the default --prefetch 1 possibly one more waiting for the thread: both
  // are the victim's, and both must be taken over.
  t.true(held.length >= 1 && held.length <= 2, log);
  t.true(identical(await result, f.reference));
  for (const id of held) t.true(stalled.includes(id), `stalled: ${stalled.join(', ')}; killed while holding ${held.join(', ')}`);
});

test.serial('Redis stopped and restarted mid-request (losing every key): the jobs are enqueued again and the trajectories are unchanged', async (t) => {
  const server = await startOwnRedis(t);
  const queue = freshQueue();
  const f = await fixture('half-cheetah-fwd-back', { tasks: 10, perGroup: 10, horizon: 100 });
  t.teardown(f.dispose);
  const worker = await startWorker(t, server.url, ['--queue', queue, '--verbose', '--lock-seconds', '2']);
  const notices: string[] = [];
  const sampler = await redisSampler({ redis: redisTarget(server.url), environment: 'half-cheetah-fwd-back', policy: f.spec, backend: (await backend).tfjsName, queue, timeoutSeconds: 30, log: (l) => notices.push(l) });
  t.teardown(() => sampler.close());
  const result = sampler.sample(f.request);
  result.catch(() => undefined); // a failure below is reported as itself
  await worker.waitFor(/job \S+ done/);
  await server.stop();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await server.start();
  t.true(identical(await result, f.reference));
  t.true(notices.some((n) => /enqueuing them again/.test(n)), notices.join('\n'));
  t.regex(worker.output(), /reconnected to Redis/);
});

test.serial('Redis gone for good: the request fails after the timeout, naming the server without its password', async (t) => {
  const password = 'correct horse battery';
  const server = await startOwnRedis(t, { password });
  t.regex(server.url, /:correct%20horse%20battery@/);
  const f = await fixture('point-corners', { tasks: 2, perGroup: 2, horizon: 5 });
  t.teardown(f.dispose);
  const sampler = await f.samplerFor(server.url, freshQueue(), { timeoutSeconds: 2 });
  t.teardown(() => sampler.close());
  const result = sampler.sample(f.request);
  await new Promise((resolve) => setTimeout(resolve, 300));
  await server.stop();
  const started = Date.now();
  const error = await t.throwsAsync(result);
  t.regex(error!.message, new RegExp(`lost the connection to Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${server.port} `));
  t.false(error!.message.includes('correct'));
  t.true(Date.now() - started < 10_000);
  // A wrong password is refused at once, and the message does not carry it either.
  await server.start();
  const wrong = await t.throwsAsync(f.samplerFor(server.url.replace('correct%20horse', 'wrong%20horse'), freshQueue()));
  t.regex(wrong!.message, /cannot connect to Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/?: WRONGPASS/);
  t.false(wrong!.message.includes('wrong horse') || wrong!.message.includes('wrong%20horse'));
});

test.serial('no worker alive: training stops after the timeout with its checkpoint and a message that says so', async (t) => {
  const url = await testRedisUrl(t);
  const queue = freshQueue();
  const worker = await startWorker(t, url, ['--queue', queue]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'magicbox-fleet-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await backend;
  const config = completeConfig(resolveConfig({ algo: 'maml-vpg', env: 'point-corners', seed: 1, iterations: 3, tasksPerIteration: 2, trajectoriesPerTask: 2, horizon: 5, hidden: [8], checkpointEvery: 1 }));
  const lines: string[] = [];
  const result = await train({
    config,
    runDir: path.join(dir, 'run'),
    log: (l) => lines.push(l),
    progress: 'off',
    sampler: (trainer) => redisSamplerFor(trainer, { redis: redisTarget(url), queue, timeoutSeconds: 2 }),
    onIteration: (row) => {
      if (row.iteration === 0) void worker.kill('SIGKILL');
    },
  });
  t.is(result.outcome, 'failed');
  t.is(result.iterationsDone, 1);
  t.regex(result.message!, /iteration 1: sampling at adaptation level 0 failed \(no magicbox worker took sampling jobs from queue \S+ at redis:\/\/127\.0\.0\.1:\d+\/? for 2 s; start one with: magicbox worker --redis URL\); the last good checkpoint \(after 1 iteration\(s\)\) is kept/);
  t.is(readCheckpoint(path.join(dir, 'run')).nextIteration, 1);
});

test.serial('a job that fails on a worker names the environment and the task; foreign and malformed jobs are refused', async (t) => {
  const url = await testRedisUrl(t);
  const queue = freshQueue();
  await startWorker(t, url, ['--queue', queue]);
  const f = await fixture('point-corners', { tasks: 3, perGroup: 2, horizon: 5 });
  t.teardown(f.dispose);
  // A diverged policy: NaN parameters for task 1.
  const nan = Object.fromEntries(Object.entries(f.params[1]!).map(([k, v]) => [k, tf.fill(v.shape, Number.NaN)]));
  t.teardown(() => disposeParams(nan));
  const sampler = await f.samplerFor(url, queue);
  t.teardown(() => sampler.close());
  const error = await t.throwsAsync(sampler.sample({ ...f.request, params: [f.params[0]!, nan, f.params[2]!] }));
  t.regex(error!.message, new RegExp(`^sampling point-corners task 1 \\(${JSON.stringify(f.distribution.describeTask(f.tasks[1])).replace(/[[\]{}().]/g, '\\$&')}\\) failed on a Redis worker: .*NaN`));
  // The sampler still works after a failed request.
  t.true(identical(await sampler.sample(f.request), f.reference));

  // Jobs written by hand, as another version or a hostile client could: refused, not run.
  const raw = new Queue(queue, { connection: redisTarget(url).options });
  const events = new QueueEvents(queue, { connection: { ...redisTarget(url).options, maxRetriesPerRequest: null } });
  t.teardown(async () => {
    await raw.close();
    await events.close();
  });
  await events.waitUntilReady();
  const reasonOf = async (data: unknown) => {
    const job = await raw.add('sample', data, { attempts: 3 });
    await t.throwsAsync(job.waitUntilFinished(events, 30_000));
    return (await raw.getJob(job.id!))!;
  };
  const foreign = await reasonOf({ protocol: 99, environment: 'point-corners' });
  t.regex(foreign.failedReason, new RegExp(`speaks magicbox sampling protocol ${FLEET_PROTOCOL}, the job protocol 99`));
  t.is(foreign.attemptsMade, 1, 'refused once, not retried');
  const malformed = await reasonOf({ protocol: FLEET_PROTOCOL, environment: '../../etc/passwd', task: {} });
  t.regex(malformed.failedReason, /^malformed sampling job: .*not a catalogue environment/);
});

test('the commands refuse a bad --redis in one line, without the password', async (t) => {
  const [noUrl, badScheme, unreachable, both, badPrefetch, badConcurrency] = await Promise.all([
    runCli(['worker']),
    runCli(['worker', '--redis', 'http://user:pa55word@127.0.0.1:1']),
    runCli(['worker', '--redis', 'redis://user:pa55word@127.0.0.1:1']),
    runCli(['train', '--algo', 'promp', '--env', 'point-corners', '--redis', 'redis://127.0.0.1:1', '--workers', '2']),
    runCli(['worker', '--redis', 'redis://127.0.0.1:1', '--prefetch', '-1']),
    runCli(['worker', '--redis', 'redis://127.0.0.1:1', '--concurrency', '0']),
  ]);
  t.is(badPrefetch.code, 1);
  t.is(badPrefetch.stderr.trim(), 'magicbox worker: --prefetch: expected a whole number ≥ 0, got "-1"');
  t.is(badConcurrency.code, 1);
  t.is(badConcurrency.stderr.trim(), 'magicbox worker: --concurrency: expected a whole number ≥ 1, got "0"');
  t.is(noUrl.code, 1);
  t.regex(noUrl.stderr, /^magicbox worker: --redis URL is required/);
  t.is(badScheme.code, 1);
  t.is(badScheme.stderr.trim(), 'magicbox worker: --redis http://user:***@127.0.0.1:1/: the scheme must be redis:// or rediss:// (TLS), not http://');
  t.is(unreachable.code, 1);
  t.regex(unreachable.stderr, /^magicbox worker: cannot start: cannot connect to Redis at redis:\/\/user:\*\*\*@127\.0\.0\.1:1: connect ECONNREFUSED/);
  for (const r of [badScheme, unreachable]) t.false(`${r.stdout}${r.stderr}`.includes('pa55word'));
  t.is(both.code, 1);
  t.regex(both.stderr, /--workers and --redis exclude each other/);
});

test.serial('rediss:// with an ACL user: the CA from the URL, the password from MAGICBOX_REDIS_PASSWORD, never printed', async (t) => {
  const password = 'tls-and-acl-pw';
  const server = await startOwnRedis(t, { tls: true, user: 'magicbox', password });
  // The URL without its password; the password from the environment.
  const url = server.url.replace(`:${password}@`, '@');
  t.regex(url, /^rediss:\/\/magicbox@127\.0\.0\.1:\d+\?ca=/);
  const queue = freshQueue();
  const worker = await startWorker(t, url, ['--queue', queue, '--verbose'], { MAGICBOX_REDIS_PASSWORD: password });
  const f = await fixture('point-corners', { tasks: 3, perGroup: 2, horizon: 8 });
  t.teardown(f.dispose);
  const sampler = await redisSampler({ redis: redisTarget(url, { MAGICBOX_REDIS_PASSWORD: password }), environment: 'point-corners', policy: f.spec, backend: (await backend).tfjsName, queue });
  t.teardown(() => sampler.close());
  t.true(identical(await sampler.sample(f.request), f.reference));
  t.regex(worker.output(), /job \S+ done/);
  t.false(worker.output().includes(password));
  // Without the CA the server's certificate is refused; without the password, the server refuses.
  await t.throwsAsync(redisSampler({ redis: redisTarget(url.replace(/\?ca=.*$/, ''), { MAGICBOX_REDIS_PASSWORD: password }), environment: 'point-corners', policy: f.spec, backend: 'wasm', queue }), { message: /cannot connect to Redis at rediss:\/\/magicbox@127\.0\.0\.1:\d+: .*(certificate|self.signed)/i });
  await t.throwsAsync(redisSampler({ redis: redisTarget(url, {}), environment: 'point-corners', policy: f.spec, backend: 'wasm', queue }), { message: /cannot connect to Redis at rediss:\/\/magicbox@127\.0\.0\.1:\d+\?ca=\S+: .*(NOAUTH|WRONGPASS|auth)/i });
});

test('groupIndices: a part of a request sampled alone (in this thread or on a thread) gives that part of the whole', async (t) => {
  const f = await fixture('point-corners', { tasks: 5, perGroup: 3, horizon: 12 });
  t.teardown(f.dispose);
  const part = { ...f.request, tasks: [f.tasks[3], f.tasks[1]], params: [f.params[3]!, f.params[1]!], groupIndices: [3, 1] };
  t.true(identical(await inProcessSampler(f.distribution, f.policy).sample(part), [f.reference[3]!, f.reference[1]!]));
  // Without the indices the streams are those of groups 0 and 1: different trajectories.
  t.false(identical(await inProcessSampler(f.distribution, f.policy).sample({ ...part, groupIndices: undefined }), [f.reference[3]!, f.reference[1]!]));
  const pool = await workerSampler({ environment: 'point-corners', policy: f.spec, backend: (await backend).tfjsName, workers: 2 });
  t.teardown(() => pool.close());
  t.true(identical(await pool.sample(part), [f.reference[3]!, f.reference[1]!]));
});
