/**
 * The benchmark runner behind `npm run bench -- NAME [ARGS…]`. Every module `bench/<name>.ts` (other
 * than this one, and other than helpers whose name starts with `_`) is a benchmark exporting
 * `run(args?): Promise<Record<string, unknown>>`. The runner selects the tfjs backend (honouring
 * MAGICBOX_BACKEND), runs the named benchmark with the remaining arguments, and prints ONE JSON line
 * on stdout: the benchmark's figures, the machine, the backend, the versions and the date. Progress
 * and diagnostics go to stderr, so stdout stays machine-readable.
 *
 *   npm run bench                                 lists the benchmarks
 *   npm run bench -- surrogate-overhead           runs one
 *   npm run bench -- surrogate-overhead --quick   a benchmark's own options follow its name
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { describeBackend, selectBackend } from '../src/backend.ts';
import { BenchUsageError } from './_options.ts';

/** What a benchmark module exports. Extra arguments after its name on the command line are passed on. */
export type BenchmarkRun = (args: readonly string[]) => Promise<Record<string, unknown>>;

const benchDir = dirname(fileURLToPath(import.meta.url));
const thisFile = basename(fileURLToPath(import.meta.url));

/** The benchmark names, sorted: `bench/<name>.ts` except this runner and `_helpers.ts`. */
export const benchmarkNames = (): string[] =>
  readdirSync(benchDir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && e.name !== thisFile && !e.name.startsWith('_'))
    .map((e) => e.name.slice(0, -'.ts'.length))
    .sort();

const packageVersion = (): string => {
  const pkg = JSON.parse(readFileSync(join(benchDir, '..', 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
};

const machine = () => {
  const cores = cpus();
  return {
    cpus: cores[0]?.model.trim() ?? 'unknown',
    cores: cores.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
};

const listing = (names: readonly string[]): string =>
  `benchmarks (npm run bench -- NAME):\n${names.map((n) => `  ${n}`).join('\n')}`;

const main = async (argv: readonly string[]): Promise<number> => {
  const names = benchmarkNames();
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === '--list') {
    process.stdout.write(`${listing(names)}\n`);
    return 0;
  }
  if (!names.includes(name)) {
    process.stderr.write(`unknown benchmark '${name}'; valid: ${names.join(', ') || '(none)'}\n`);
    return 1;
  }
  const mod = (await import(pathToFileURL(join(benchDir, `${name}.ts`)).href)) as { run?: unknown };
  if (typeof mod.run !== 'function') {
    process.stderr.write(`bench/${name}.ts does not export a function run()\n`);
    return 1;
  }
  const backend = await selectBackend();
  process.stderr.write(`[bench ${name}] ${describeBackend(backend)}\n`);
  const figures = await (mod.run as BenchmarkRun)(rest);
  const line = {
    bench: name,
    ...figures,
    machine: machine(),
    backend: backend.backend,
    ...(backend.skipped.length > 0 ? { backendSkipped: backend.skipped.map((s) => s.backend) } : {}),
    versions: { tfjs: tf.version.tfjs, magicbox: packageVersion() },
    date: new Date().toISOString(),
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
  return 0;
};

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    // How the benchmark was asked to run: one line; anything else is a fault, with its stack.
    const name = process.argv[2] ?? 'bench';
    const usage = (message: string) => (message.startsWith(`${name}:`) ? message : `${name}: ${message}`);
    const line = e instanceof BenchUsageError ? usage(e.message) : e instanceof Error ? (e.stack ?? e.message) : String(e);
    process.stderr.write(`${line}\n`);
    process.exitCode = 1;
  },
);
