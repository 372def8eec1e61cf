/**
 * Where the sampling fleet's Redis server is: a `redis://` or `rediss://` (TLS) URL, checked and turned
 * into ioredis options, and the same URL as it may be shown — with its password masked. Every message
 * the coordinator and the workers print goes through `redact`, so that a password given in the URL
 * (or in MAGICBOX_REDIS_PASSWORD) never reaches a log.
 *
 *   redis://[user[:password]@]host[:port][/db]
 *   rediss://[user[:password]@]host[:port][/db][?ca=FILE&cert=FILE&key=FILE&servername=NAME]
 */
import { readFileSync } from 'node:fs';
import type { RedisOptions } from 'ioredis';

/** The environment variable that supplies the password when the URL has none (keeps it off `ps`). */
export const redisPasswordVariable = 'MAGICBOX_REDIS_PASSWORD';

export class RedisUrlError extends Error {
  override readonly name = 'RedisUrlError';
}

/** A checked Redis address: ioredis options, the URL to show, and the secrets to mask. */
export interface RedisTarget {
  /** ioredis options (host, port, username, password, db, tls). */
  readonly options: RedisOptions;
  /** The URL with its password replaced by `***`. */
  readonly display: string;
  /** Replaces every secret (the password) in `text` by `***`. */
  readonly redact: (text: string) => string;
}

const tlsParameters = ['ca', 'cert', 'key', 'servername'] as const;

const masked = '***';

/**
 * Parses `url` (password from `env.MAGICBOX_REDIS_PASSWORD` when the URL has none). Throws a
 * RedisUrlError naming the problem — never echoing the password.
 */
export const redisTarget = (url: string, env: NodeJS.ProcessEnv = process.env): RedisTarget => {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RedisUrlError(`--redis: not a URL (expected redis://[user[:password]@]host[:port][/db] or rediss://…)`);
  }
  const urlPassword = parsed.password === '' ? undefined : decodeURIComponent(parsed.password);
  const password = urlPassword ?? (env[redisPasswordVariable] === '' ? undefined : env[redisPasswordVariable]);
  const redact = (text: string): string => {
    if (password === undefined) return text;
    let out = text;
    for (const secret of new Set([password, encodeURIComponent(password), parsed.password].filter((s) => s.length > 0))) out = out.split(secret).join(masked);
    return out;
  };
  const shown = new URL(parsed.href);
  if (shown.password !== '') shown.password = masked;
  const display = shown.href;
  const fail = (why: string): never => {
    throw new RedisUrlError(`--redis ${display}: ${why}`);
  };
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') fail(`the scheme must be redis:// or rediss:// (TLS), not ${parsed.protocol}//`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') fail('no host');
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  const path = parsed.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d+$/.test(path)) fail(`the path must be a database number, not /${path}`);
  const db = path === '' ? 0 : Number(path);
  const tls = parsed.protocol === 'rediss:';
  const query: Record<string, string> = {};
  for (const [name, value] of parsed.searchParams) {
    if (!(tlsParameters as readonly string[]).includes(name)) fail(`unknown parameter ${name}; valid: ${tlsParameters.join(', ')} (TLS options, with rediss://)`);
    if (!tls) fail(`${name}= is a TLS option: use rediss://`);
    query[name] = value;
  }
  const file = (name: 'ca' | 'cert' | 'key'): { [k: string]: Buffer } => {
    const where = query[name];
    if (where === undefined) return {};
    try {
      return { [name]: readFileSync(where) };
    } catch (e) {
      return fail(`${name}=${where}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : e instanceof Error ? e.message : String(e)}`);
    }
  };
  if ((query['cert'] === undefined) !== (query['key'] === undefined)) fail('cert= and key= go together (a client certificate and its key)');
  const username = parsed.username === '' ? undefined : decodeURIComponent(parsed.username);
  const options: RedisOptions = {
    host,
    port,
    db,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(tls ? { tls: { ...file('ca'), ...file('cert'), ...file('key'), ...(query['servername'] !== undefined ? { servername: query['servername'] } : {}) } } : {}),
  };
  return { options, display, redact };
};
