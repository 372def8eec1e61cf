/**
 * The progress logs of a run: progress.csv and progress.jsonl, one row per finished iteration, and
 * their repair on resume (rows after the checkpoint dropped, a row torn by a kill removed).
 */

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
  /** The meta-objective before the outer step (ProMP: after its outer steps, penalty included). */
  readonly objective: number;
  /** TRPO: the accepted step's KL; ProMP: its penalty's KL after the outer steps; else null. */
  readonly kl: number | null;
  readonly lineSearch: string | null;
  /** Seconds since the run began (over all its sessions). */
  readonly wallSeconds: number;
  readonly backend: string;
  /** ProMP: the fraction of post-update steps outside the clip range after the outer steps (progress.jsonl only). */
  readonly clipFraction?: number;
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

/** The fields of one CSV line (RFC 4180 quoting), or undefined when a quote is left open (a torn line). */
export const csvFields = (line: string): string[] | undefined => {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else field += c;
  }
  if (quoted) return undefined;
  fields.push(field);
  return fields;
};

/** The lines of a progress file that are whole: newline-terminated (a kill can cut the last one short). */
export const wholeLines = (text: string): { lines: string[]; torn: boolean } => {
  const parts = text.split('\n');
  const last = parts.pop()!;
  return { lines: parts, torn: last !== '' };
};

/** A progress file's rows kept on resume: the new text, and how many rows and torn lines it had. */
export interface ProgressRepair {
  readonly text: string;
  readonly kept: number;
  /** Lines that were not whole rows (cut short by a kill, or garbled) and were dropped. */
  readonly torn: number;
  /** Rows recorded before, all of them (for the missing-checkpoint check). */
  readonly rows: number;
}

/**
 * The rows of a progress file for iterations before `next` (the rest are work lost after the last
 * checkpoint), with any row a kill tore dropped; computed without writing, so that a resume can check
 * everything before it changes a file. `columns` (CSV) is the header every row must match.
 */
export const repairProgress = (text: string, columns: readonly string[] | undefined, next: number): ProgressRepair => {
  const { lines, torn: tornTail } = wholeLines(text);
  const body = columns === undefined ? lines : lines.slice(1);
  let torn = tornTail ? 1 : 0;
  let rows = 0;
  const kept: string[] = [];
  for (const line of body) {
    if (line === '') continue;
    const i = columns === undefined ? jsonlIteration(line) : csvIteration(line, columns.length);
    if (i === undefined) {
      torn++;
      continue;
    }
    rows++;
    if (i < next) kept.push(line);
  }
  const header = columns === undefined ? [] : [columns.join(',')];
  return { text: [...header, ...kept].map((l) => `${l}\n`).join(''), kept: kept.length, torn, rows };
};

export const jsonlIteration = (line: string): number | undefined => {
  try {
    const v = (JSON.parse(line) as { iteration?: unknown }).iteration;
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
  } catch {
    return undefined;
  }
};

/** A CSV row's iteration, or undefined for a line that is not a whole row of `fieldCount` fields. */
export const csvIteration = (line: string, fieldCount: number): number | undefined => {
  const fields = csvFields(line);
  if (fields === undefined || fields.length !== fieldCount) return undefined;
  const v = fields[0]!;
  return /^\d+$/.test(v) ? Number(v) : undefined;
};
