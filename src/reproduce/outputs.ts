/**
 * What every figure module writes besides its units: files in the output directory (atomically), CSV
 * rows, and the mean ± std over seeds its summary quotes.
 */
import * as path from 'node:path';
import { writeFileAtomic } from '../meta/run-directory.ts';

/** Writes `name` (relative) into outDir atomically; returns the name, for FigureOutcome.files. */
export const writeOutput = (outDir: string, name: string, text: string): string => {
  writeFileAtomic(path.join(outDir, name), text);
  return name;
};

/** A CSV document from a header and rows (numbers written in full precision, strings quoted when needed). */
export const csv = (header: readonly string[], rows: readonly (readonly (number | string | null)[])[]): string => {
  const cell = (v: number | string | null) => (v === null ? '' : typeof v === 'number' ? String(v) : /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  return `${[header, ...rows].map((r) => r.map(cell).join(',')).join('\n')}\n`;
};

/** Mean and population std (ddof 0) of finite numbers; NaN for none. */
export const meanStd = (xs: readonly number[]): { readonly mean: number; readonly std: number } => {
  if (xs.length === 0) return { mean: NaN, std: NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, std: Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length) };
};

/** `1.234 ± 0.056` */
export const plusMinus = (xs: readonly number[], digits = 3): string => {
  const { mean, std } = meanStd(xs);
  return `${mean.toFixed(digits)} ± ${std.toFixed(digits)}`;
};
