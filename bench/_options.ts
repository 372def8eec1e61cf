/**
 * The options a benchmark takes after its name (`npm run bench -- NAME --quick --tasks=8`): `--quick`
 * (also MAGICBOX_BENCH_QUICK=1) and `--name=value` pairs. Anything else is refused, listing what the
 * benchmark knows; a number that is not a whole number in range is refused, naming the option.
 */

/**
 * A benchmark asked to run in a way it cannot: an unknown or malformed option, a reference that is not
 * installed. The runner (run.ts) prints its message as one line, without a stack.
 */
export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}
export interface BenchArgs {
  readonly quick: boolean;
  /** The text of `--name=…`, or undefined when absent. */
  readonly raw: (name: string) => string | undefined;
  /** `--name=…` as a whole number ≥ `min` (default 1), or undefined when absent. */
  readonly value: (name: string, min?: number) => number | undefined;
}

/** Parses `args` for benchmark `bench`, which knows the `--name=` options in `names` (and `--quick`). */
export const benchArgs = (bench: string, args: readonly string[], names: readonly string[]): BenchArgs => {
  const known = ['--quick', ...names.map((n) => `--${n}=`)];
  const unknown = args.filter((a) => !known.some((k) => (k.endsWith('=') ? a.startsWith(k) : a === k)));
  if (unknown.length > 0) throw new BenchUsageError(`${bench}: unknown option(s) ${unknown.join(' ')}; known: ${known.join(' ')}`);
  const raw = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  return {
    quick: args.includes('--quick') || process.env.MAGICBOX_BENCH_QUICK === '1',
    raw,
    value: (name, min = 1) => {
      const text = raw(name);
      if (text === undefined) return undefined;
      const v = Number(text);
      if (text.trim() === '' || !Number.isInteger(v) || v < min) throw new BenchUsageError(`--${name} needs a whole number ≥ ${min}, got '${text}'`);
      return v;
    },
  };
};
