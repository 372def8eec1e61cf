/**
 * What a running trainer shows: a progress bar on a terminal, one line per iteration otherwise.
 */
import cliProgress from 'cli-progress';
import type { ProgressRow } from './progress-log.ts';

export type ProgressMode = 'auto' | 'bar' | 'lines' | 'off';

const fixed = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

/** `pre -98.7  post -96.1` (with the intermediate levels, `pre -98.7  k1 -97.0  post -96.1`). */
export const describeReturns = (r: readonly number[]): string =>
  r.length === 1 ? `return ${fixed(r[0]!)}` : r.map((x, j) => `${j === 0 ? 'pre' : j === r.length - 1 ? 'post' : `k${j}`} ${fixed(x)}`).join('  ');

/** One plain line per iteration: `iter 3/20  pre -98.7  post -96.1  steps 60000  sample 0.3s  update 4.2s`. */
export const iterationLine = (row: ProgressRow, total: number): string =>
  `iter ${row.iteration + 1}/${total}  ${describeReturns(row.averageReturn)}  steps ${row.timesteps}  sample ${fixed(row.samplingSeconds)}s  update ${fixed(row.adaptationSeconds + row.outerSeconds)}s` +
  (row.kl !== null ? `  kl ${row.kl.toPrecision(2)}` : '') +
  (row.clipFraction !== undefined ? `  clipped ${(100 * row.clipFraction).toFixed(1)}%` : '');

export interface Display {
  readonly row: (row: ProgressRow) => void;
  readonly stop: () => void;
}

/** ANSI: show the cursor (DECTCEM), turn auto-wrap on (DECAWM). */
const showCursorAndWrap = '\x1b[?25h\x1b[?7h';

export const makeDisplay = (mode: ProgressMode, log: (line: string) => void, total: number, start: number): Display => {
  const resolved = mode === 'auto' ? (process.stderr.isTTY ? 'bar' : 'lines') : mode;
  if (resolved === 'off') return { row: () => {}, stop: () => {} };
  if (resolved === 'lines') return { row: (row) => log(iterationLine(row, total)), stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: 'iter {value}/{total} [{bar}] {returns}  steps {steps} | {duration_formatted}, eta {eta_formatted}', hideCursor: true, etaBuffer: 5, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  // The bar hides the cursor and turns line wrap off; whatever way the process ends (a second
  // Ctrl-C's process.exit, an uncaught error), both are turned back on.
  const restoreTerminal = () => {
    process.stderr.write(showCursorAndWrap);
  };
  process.on('exit', restoreTerminal);
  bar.start(total, start, { returns: '', steps: 0 });
  let stopped = false;
  return {
    row: (row) => bar.update(row.iteration + 1, { returns: describeReturns(row.averageReturn), steps: row.timesteps }),
    stop: () => {
      if (!stopped) {
        bar.stop();
        process.off('exit', restoreTerminal);
        restoreTerminal();
      }
      stopped = true;
    },
  };
};

export const formatDuration = (seconds: number): string => {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m}m${Math.round(seconds - 60 * m)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
};
