/**
 * `magicbox reproduce FIGURE [--scale small|paper] [--seeds N] [--out DIR] [--progress MODE]`: one of
 * the ProMP paper's figures by its released protocol (src/reproduce/), writing the raw numbers and the
 * SVG into DIR (default reproductions/<figure>-<scale>). Resumable: every finished unit of work is a
 * file in DIR/units, so a rerun after Ctrl-C (or a kill) continues where it stopped, and a rerun of a
 * finished reproduction only redraws it. Ctrl-C stops after the unit in progress; a second exits at once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import cliProgress from 'cli-progress';
import { describeBackend, selectBackend } from '../backend.ts';
import type { ProgressMode } from '../meta/progress-display.ts';
import { writeFileAtomic } from '../meta/run-directory.ts';
import { figureIds, reproductionScales, type Figure, type FigureId, type ReproductionScale } from '../reproduce/figure.ts';
import { figures as builtInFigures } from '../reproduce/figures.ts';
import type { Output } from './validate.ts';

export interface ReproduceCliOptions {
  readonly scale?: string;
  readonly seeds?: string;
  readonly out?: string;
  readonly progress?: string;
}

export interface ReproduceDependencies {
  /** The figures by id (default: this build's, src/reproduce/figures.ts). */
  readonly figures?: Readonly<Partial<Record<FigureId, Figure>>>;
}

const progressModes: readonly ProgressMode[] = ['auto', 'bar', 'lines', 'off'];

/** The file in DIR saying which figure and scale it holds, so that another's units are never mixed in. */
export const markerFile = (outDir: string): string => path.join(outDir, 'reproduction.json');

export const defaultOutDir = (figure: FigureId, scale: ReproductionScale): string => path.join('reproductions', `${figure}-${scale}`);

interface Parsed {
  readonly figure: Figure;
  readonly scale: ReproductionScale;
  readonly seeds: number | undefined;
  readonly outDir: string;
  readonly progress: ProgressMode;
}

const parse = (id: string, opts: ReproduceCliOptions, available: Readonly<Partial<Record<FigureId, Figure>>>): { parsed: Parsed } | { errors: string[] } => {
  const errors: string[] = [];
  let figure: Figure | undefined;
  if (!(figureIds as readonly string[]).includes(id)) errors.push(`unknown figure ${JSON.stringify(id)}; valid: ${figureIds.join(', ')}`);
  else {
    figure = available[id as FigureId];
    if (figure === undefined) errors.push(`${id} is not in this build (available: ${Object.keys(available).join(', ')})`);
  }
  const scale = opts.scale ?? 'small';
  if (!(reproductionScales as readonly string[]).includes(scale)) errors.push(`--scale: expected one of ${reproductionScales.join(', ')}, got ${JSON.stringify(scale)}`);
  let seeds: number | undefined;
  if (opts.seeds !== undefined) {
    seeds = Number(opts.seeds);
    if (!/^\s*\d+\s*$/.test(opts.seeds) || !(seeds >= 1) || seeds > 1000) errors.push(`--seeds: expected a whole number from 1 to 1000, got ${JSON.stringify(opts.seeds)}`);
  }
  const progress = opts.progress ?? 'auto';
  if (!(progressModes as readonly string[]).includes(progress)) errors.push(`--progress: expected one of ${progressModes.join(', ')}, got ${JSON.stringify(progress)}`);
  if (errors.length > 0 || figure === undefined) return { errors };
  const outDir = opts.out ?? defaultOutDir(figure.id, scale as ReproductionScale);
  return { parsed: { figure, scale: scale as ReproductionScale, seeds, outDir, progress: progress as ProgressMode } };
};

/** Creates (or checks) DIR; returns a one-line problem, or undefined when it is a writable directory of this figure and scale. */
const prepareOutDir = (outDir: string, figure: FigureId, scale: ReproductionScale): string | undefined => {
  if (fs.existsSync(outDir) && !fs.statSync(outDir).isDirectory()) return `--out ${outDir} is a file, not a directory`;
  try {
    fs.mkdirSync(outDir, { recursive: true });
    fs.accessSync(outDir, fs.constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    return `--out ${outDir}: cannot write there (${code})`;
  }
  const marker = markerFile(outDir);
  if (fs.existsSync(marker)) {
    let held: { figure?: unknown; scale?: unknown } = {};
    try {
      held = JSON.parse(fs.readFileSync(marker, 'utf8')) as typeof held;
    } catch {
      return `--out ${outDir}: ${marker} is not readable JSON; give another directory`;
    }
    if (held.figure !== figure || held.scale !== scale) {
      return `--out ${outDir} holds a reproduction of ${String(held.figure)} at --scale ${String(held.scale)}; give another directory`;
    }
  } else if (fs.readdirSync(outDir).length > 0) {
    return `--out ${outDir} is not empty and holds no reproduction; give an empty or new directory`;
  }
  try {
    writeFileAtomic(marker, `${JSON.stringify({ figure, scale })}\n`);
  } catch (e) {
    return `--out ${outDir}: ${e instanceof Error ? e.message : String(e)}`;
  }
  return undefined;
};

/** The unit progress: a bar on a terminal, a line per unit otherwise (the trainer's display, for units). */
const unitDisplay = (mode: ProgressMode, log: (line: string) => void) => {
  const resolved = mode === 'auto' ? (process.stderr.isTTY ? 'bar' : 'lines') : mode;
  let bar: cliProgress.SingleBar | undefined;
  const started = performance.now();
  const restore = () => process.stderr.write('\x1b[?25h\x1b[?7h');
  return {
    update: (done: number, total: number, label: string) => {
      if (resolved === 'off') return;
      if (resolved === 'lines') {
        log(`unit ${done}/${total}  ${label}  (${((performance.now() - started) / 1000).toFixed(0)}s)`);
        return;
      }
      if (bar === undefined) {
        bar = new cliProgress.SingleBar(
          { format: 'unit {value}/{total} [{bar}] {label} | {duration_formatted}, eta {eta_formatted}', hideCursor: true, etaBuffer: 5, stream: process.stderr },
          cliProgress.Presets.shades_classic,
        );
        process.on('exit', restore);
        bar.start(total, 0, { label: '' });
      }
      bar.update(done, { label });
    },
    stop: () => {
      if (bar !== undefined) {
        bar.stop();
        process.off('exit', restore);
        restore();
        bar = undefined;
      }
    },
  };
};

/** Runs a figure; returns the exit status (0 done, 1 bad input, 130 stopped by Ctrl-C before the end). */
export async function runReproduce(id: string, opts: ReproduceCliOptions, out: Output, deps: ReproduceDependencies = {}): Promise<number> {
  const prefix = 'magicbox reproduce';
  const result = parse(id, opts, deps.figures ?? builtInFigures);
  if ('errors' in result) {
    result.errors.forEach((e) => out.error(`${prefix}: ${e}`));
    return 1;
  }
  const { figure, scale, seeds, outDir, progress } = result.parsed;
  const problem = prepareOutDir(outDir, figure.id, scale);
  if (problem !== undefined) {
    out.error(`${prefix}: ${problem}`);
    return 1;
  }
  const backend = await selectBackend();
  out.log(describeBackend(backend));
  out.log(`${figure.title}; --scale ${scale}: ${figure.describeScale(scale)}; ${seeds ?? figure.seedsAt?.(scale) ?? figure.defaultSeeds} seed(s); writing to ${outDir}`);
  let interrupts = 0;
  const onInterrupt = () => {
    interrupts++;
    if (interrupts === 1) out.error(`${prefix}: interrupted: stopping after the unit in progress (interrupt again to exit at once; a rerun continues)`);
    else {
      out.error(`${prefix}: exiting at once; the finished units are in ${outDir}/units and a rerun continues from them`);
      process.exit(130);
    }
  };
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onInterrupt);
  const display = unitDisplay(progress, out.error);
  try {
    const outcome = await figure.run({
      scale,
      seeds,
      outDir,
      progress: display.update,
      log: (line) => out.log(line),
      stopRequested: () => interrupts > 0,
    });
    display.stop();
    outcome.summary.forEach((line) => out.log(line));
    if (!outcome.complete) return 130;
    out.log(`wrote ${outcome.files.map((f) => path.join(outDir, f)).join(', ')}`);
    return 0;
  } finally {
    display.stop();
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onInterrupt);
  }
}
