/**
 * A real Redis server and real `magicbox worker` processes for the fleet tests. The server is the one
 * .ci/run starts (its URL in MAGICBOX_TEST_REDIS_URL) or, without it, one the tests start themselves
 * from the `redis-server` binary; with neither, the tests fail saying what to install (never skipped).
 * Only loopback addresses are used.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { ExecutionContext } from 'ava';

/** The variable .ci/run sets to its server's URL. */
export const testRedisVariable = 'MAGICBOX_TEST_REDIS_URL';

const missing =
  `the fleet tests need a Redis server: install it (Debian: apt-get install redis-server) so that they can start one, ` +
  `or set ${testRedisVariable}=redis://127.0.0.1:PORT to a running one`;

const hasRedisServer = (): boolean => spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

/** A free TCP port on 127.0.0.1. */
const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A redis-server child process of the test (no persistence: a restart loses everything, like a crash). */
export interface OwnRedis {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGKILL: nothing is saved) and waits until it is gone. */
  readonly stop: () => Promise<void>;
  /** Starts it again on the same port, empty. */
  readonly start: () => Promise<void>;
}

/** Starts a private redis-server on a free loopback port; stopped at the test's teardown. */
export const startOwnRedis = async (t: ExecutionContext, options: { readonly password?: string } = {}): Promise<OwnRedis> => {
  if (!hasRedisServer()) throw new Error(missing);
  const port = await freePort();
  let child: ChildProcess | undefined;
  const auth = options.password !== undefined ? ['--requirepass', options.password] : [];
  const start = async () => {
    const proc = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', ...auth], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let output = '';
    proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    for (let i = 0; i < 100 && !/Ready to accept connections/.test(output); i++) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited: ${output.slice(-300)}`);
      await sleep(50);
    }
    if (!/Ready to accept connections/.test(output)) throw new Error(`redis-server did not start: ${output.slice(-300)}`);
  };
  const stop = async () => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null) return;
    const gone = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await gone;
  };
  await start();
  t.teardown(stop);
  const userinfo = options.password !== undefined ? `:${encodeURIComponent(options.password)}@` : '';
  return { url: `redis://${userinfo}127.0.0.1:${port}`, port, stop, start };
};

/** The URL of the server the tests use: .ci/run's, or a private one. */
export const testRedisUrl = async (t: ExecutionContext): Promise<string> => {
  const given = process.env[testRedisVariable];
  if (given !== undefined && given !== '') return given;
  return (await startOwnRedis(t)).url;
};

/** A `magicbox worker` child process, its output kept for the test to wait on. */
export interface WorkerProcess {
  readonly process: ChildProcess;
  /** stdout and stderr so far. */
  readonly output: () => string;
  /** Resolves when the output matches `pattern` (from `from` characters on); rejects after `ms`. */
  readonly waitFor: (pattern: RegExp, ms?: number, from?: number) => Promise<RegExpMatchArray>;
  readonly kill: (signal?: NodeJS.Signals) => Promise<void>;
}

/** Starts `magicbox worker --redis URL …args` and waits until it takes jobs; killed at teardown. */
export const startWorker = async (t: ExecutionContext, url: string, args: readonly string[] = []): Promise<WorkerProcess> => {
  const proc = spawn('node', ['bin/magicbox.mjs', 'worker', '--redis', url, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  let output = '';
  const listeners = new Set<() => void>();
  const append = (d: Buffer) => {
    output += d.toString();
    listeners.forEach((l) => l());
  };
  proc.stdout!.on('data', append);
  proc.stderr!.on('data', append);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.once('exit', () => listeners.forEach((l) => l()));
  const waitFor = (pattern: RegExp, ms = 60_000, from = 0) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = output.slice(from).match(pattern);
        if (m !== null) {
          done();
          resolve(m);
        } else if (proc.exitCode !== null || proc.signalCode !== null) {
          done();
          reject(new Error(`the worker exited before printing ${pattern}: ${output.slice(-500)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`the worker did not print ${pattern} within ${ms} ms: ${output.slice(-500)}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    await exited;
  };
  t.teardown(() => kill());
  await waitFor(/taking sampling jobs/);
  return { process: proc, output: () => output, waitFor, kill };
};
