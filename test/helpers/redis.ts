/**
 * A real Redis server and real `magicbox worker` processes for the fleet tests. The server is the one
 * .ci/run starts (its URL in MAGICBOX_TEST_REDIS_URL) or, without it, one the tests start themselves
 * from the `redis-server` binary; with neither, the tests fail saying what to install (never skipped).
 * Only loopback addresses are used.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/** A CA and a certificate for 127.0.0.1 signed by it, made with openssl in a folder removed at teardown. */
const testCertificates = (t: ExecutionContext): { dir: string; ca: string; cert: string; key: string } => {
  const dir = mkdtempSync(join(tmpdir(), 'magicbox-redis-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const openssl = (...args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.error !== undefined || r.status !== 0) throw new Error(`openssl ${args[0]} failed (the TLS test needs openssl: apt-get install openssl): ${r.error?.message ?? r.stderr}`);
  };
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=magicbox-test-ca');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'ext');
  return { dir, ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') };
};

/**
 * Starts a private redis-server on a free loopback port; stopped at the test's teardown. `password`
 * alone: `requirepass`; with `user`: an ACL user (the default user off); `tls`: TLS only, with a CA of
 * the test's own (the URL names it, `rediss://…?ca=FILE`).
 */
export const startOwnRedis = async (t: ExecutionContext, options: { readonly password?: string; readonly user?: string; readonly tls?: boolean } = {}): Promise<OwnRedis> => {
  if (!hasRedisServer()) throw new Error(missing);
  const port = await freePort();
  let child: ChildProcess | undefined;
  const { password, user } = options;
  const auth =
    password === undefined ? [] : user === undefined ? ['--requirepass', password] : ['--user', user, 'on', `>${password}`, '~*', '&*', '+@all', '--user', 'default', 'off'];
  const certificates = options.tls === true ? testCertificates(t) : undefined;
  const listen =
    certificates === undefined
      ? ['--port', String(port)]
      : ['--port', '0', '--tls-port', String(port), '--tls-cert-file', certificates.cert, '--tls-key-file', certificates.key, '--tls-ca-cert-file', certificates.ca, '--tls-auth-clients', 'no'];
  const start = async () => {
    const proc = spawn('redis-server', ['--bind', '127.0.0.1', ...listen, '--save', '', '--appendonly', 'no', ...auth], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  const userinfo = password !== undefined ? `${user ?? ''}:${encodeURIComponent(password)}@` : '';
  const url = certificates === undefined ? `redis://${userinfo}127.0.0.1:${port}` : `rediss://${userinfo}127.0.0.1:${port}?ca=${certificates.ca}`;
  return { url, port, stop, start };
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
export const startWorker = async (t: ExecutionContext, url: string, args: readonly string[] = [], env: Readonly<Record<string, string>> = {}): Promise<WorkerProcess> => {
  const proc = spawn('node', ['bin/magicbox.mjs', 'worker', '--redis', url, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
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
