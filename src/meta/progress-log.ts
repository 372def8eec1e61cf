/**
 * The progress logs of a run: progress.csv and progress.jsonl, one row per finished iteration, and
 * their repair on resume (rows after the checkpoint dropped, a row torn by a kill removed).
 */
import * as fs from 'node:fs';
import { writeFileAtomic } from './run-directory.ts';

/** One row of progress.csv / progress.jsonl. */
export interface ProgressRow {
  readonly iteration: number;
  /** Environment steps so far, this iteration's included. */
  readonly timesteps: number;
  /** Average return per trajectory at each adaptation level (0: pre-update). */
  readonly averageReturn: readonly number[];
  readonly samplingSeconds: number;
  readonly adaptationSeconds: number;
  readonly outerSeconds: number;
  readonly objective: number;
  readonly kl: number | null;
  readonly lineSearch: string | null;
  /** Seconds since the run began (over all its sessions). */
  readonly wallSeconds: number;
  readonly backend: string;
}

/** The CSV header for a run with `levels` adaptation levels (adaptation steps + 1). */
export const csvColumns = (levels: number): string[] => [
  'iteration',
  'timesteps',
  ...Array.from({ length: levels }, (_, j) => `return_${j}`),
  'samplingSeconds',
  'adaptationSeconds',
  'outerSeconds',
  'objective',
  'kl',
  'lineSearch',
  'wallSeconds',
  'backend',
];

const csvField = (v: string | number | null): string => {
  if (v === null) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};

export const csvLine = (row: ProgressRow): string =>
  [
    row.iteration,
    row.timesteps,
    ...row.averageReturn,
    row.samplingSeconds,
    row.adaptationSeconds,
    row.outerSeconds,
    row.objective,
    row.kl,
    row.lineSearch,
    row.wallSeconds,
    row.backend,
  ]
    .map(csvField)
    .join(',');

/**
 * Keeps the rows of a progress file for iterations before `next` (the rest are work lost after the
 * last checkpoint, or a line cut short by a kill); returns how many were kept.
 */
export const truncateProgress = (file: string, header: string | undefined, next: number, iterationOf: (line: string) => number | undefined): number => {
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : [];
  const rows = (header === undefined ? lines : lines.slice(1)).filter((line) => {
    const i = line === '' ? undefined : iterationOf(line);
    return i !== undefined && i < next;
  });
  writeFileAtomic(file, [...(header === undefined ? [] : [header]), ...rows].map((l) => `${l}\n`).join(''));
  return rows.length;
};

export const jsonlIteration = (line: string): number | undefined => {
  try {
    const v = (JSON.parse(line) as { iteration?: unknown }).iteration;
    return typeof v === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
};

export const csvIteration = (line: string): number | undefined => {
  const v = line.split(',')[0];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
};
