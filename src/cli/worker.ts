/**
 * `magicbox worker --redis URL [--concurrency N] [--prefetch N] [--queue NAME] [--lock-seconds S] [--verbose]`: a
 * long-running sampling worker for trainers run with `magicbox train … --redis URL` (on this machine or
 * another). Runs until interrupted (Ctrl-C or SIGTERM), then finishes the jobs in progress.
 */
import { selectBackend } from '../backend.ts';
import { startFleetWorker } from '../meta/fleet-worker.ts';
import { redisTarget, RedisUrlError } from '../meta/redis-connection.ts';
import type { Output } from './validate.ts';

export interface WorkerCliOptions {
  readonly redis?: string;
  readonly concurrency?: string;
  readonly queue?: string;
  readonly lockSeconds?: string;
  readonly prefetch?: string;
  readonly verbose?: boolean;
}

const wholeNumber = (flag: string, text: string | undefined, fallback: number, least = 1): { value: number } | { error: string } => {
  if (text === undefined) return { value: fallback };
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < least) return { error: `${flag}: expected a whole number ≥ ${least}, got ${JSON.stringify(text)}` };
  return { value: Number(text) };
};

/**
 * Runs the worker until `stop` resolves (default: SIGINT or SIGTERM); returns the exit status (0 after
 * a clean stop, 1 when it could not start).
 */
export async function runWorker(opts: WorkerCliOptions, out: Output, stop?: Promise<void>): Promise<number> {
  const fail = (line: string) => {
    out.error(`magicbox worker: ${line}`);
    return 1;
  };
  if (opts.redis === undefined) return fail('--redis URL is required (redis://[user[:password]@]host[:port][/db], or rediss:// for TLS)');
  const concurrency = wholeNumber('--concurrency', opts.concurrency, 1);
  if ('error' in concurrency) return fail(concurrency.error);
  const lock = wholeNumber('--lock-seconds', opts.lockSeconds, 30);
  if ('error' in lock) return fail(lock.error);
  const prefetch = wholeNumber('--prefetch', opts.prefetch, 1, 0);
  if ('error' in prefetch) return fail(prefetch.error);
  let target;
  try {
    target = redisTarget(opts.redis);
  } catch (e) {
    if (e instanceof RedisUrlError) return fail(e.message);
    throw e;
  }
  // The main thread only holds each job's parameters for a moment; sampling runs on threads with the
  // backend the job names.
  await selectBackend('cpu');
  let worker;
  try {
    worker = await startFleetWorker({
      redis: target,
      concurrency: concurrency.value,
      lockSeconds: lock.value,
      prefetch: prefetch.value,
      ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
      verbose: opts.verbose === true,
      log: out.log,
    });
  } catch (e) {
    return fail(target.redact(`cannot start: ${e instanceof Error ? e.message : String(e)}`));
  }
  const stopped =
    stop ??
    new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
  await stopped;
  out.log('magicbox worker: stopping after the jobs in progress');
  await worker.close();
  return 0;
}
