/**
 * Learning curves from training run directories (see src/meta/train.ts for the layout): the average
 * return after adaptation (post-update, the last `return_k` column of progress.csv) and before it
 * (pre-update, `return_0`) against timesteps, as a vega-lite spec rendered to SVG headless.
 *
 * Runs whose config.json files agree on every field except `seed`, `iterations` and `checkpointEvery`
 * (fields that do not change what an iteration computes) form one group, drawn as the mean over its
 * runs with a ± std band (population std, ddof 0). Members are aligned by iteration index and only the
 * iterations every member has are used. A run that cannot be read — no directory, no progress.csv or
 * config.json, no finished iteration, a malformed CSV line — is reported with the reason and skipped;
 * it is never drawn as zeros. A last row a kill cut short (no line end) is left out and the rest drawn.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { runFiles } from '../meta/run-directory.ts';

/** The curves of one run directory. Arrays are indexed by row of progress.csv. */
export interface RunSeries {
  /** The directory as given. */
  readonly dir: string;
  /** config.json as written by `magicbox train`. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly iterations: readonly number[];
  readonly timesteps: readonly number[];
  /** Average return after the last adaptation step (the last `return_k` column). */
  readonly post: readonly number[];
  /** Average return before adaptation (`return_0`). */
  readonly pre: readonly number[];
  /** The line of progress.csv that a kill cut short (no line end) and that was left out; absent when none was. */
  readonly tornLine?: number;
}

/** A run directory that was not plotted, and why. */
export interface SkippedRun {
  readonly dir: string;
  readonly reason: string;
}

/** Mean and std across the runs of a group, per aligned iteration. */
export interface CurveStats {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/** Runs sharing a config up to the seed: one curve (mean ± std band when there is more than one run). */
export interface CurveGroup {
  /** Legend label, unique among the groups of one plot. */
  readonly label: string;
  readonly runs: readonly RunSeries[];
  /** The iterations every member has, ascending. */
  readonly iterations: readonly number[];
  /** Mean timesteps across the members at each of those iterations. */
  readonly timesteps: readonly number[];
  readonly post: CurveStats;
  readonly pre: CurveStats;
}

export interface PlotOptions {
  /** Also draw the pre-update curves (dashed). */
  readonly pre?: boolean;
  readonly title?: string;
}

/** One data row of the spec: a point of one curve of one group. */
export interface CurveDatum {
  readonly label: string;
  /** The environment of the group's runs: each environment gets its own panel. */
  readonly env: string;
  readonly curve: 'post-update' | 'pre-update';
  readonly iteration: number;
  readonly timesteps: number;
  readonly mean: number;
  readonly std: number;
  readonly lo: number;
  readonly hi: number;
  /** Runs averaged; the band is drawn only when this is more than 1. */
  readonly runs: number;
}

/** A run directory that cannot be plotted; the message is the reason, without the directory. */
export class RunReadError extends Error {
  override name = 'RunReadError';
}

// ---------------------------------------------------------------------------------------------------
// Reading

/** CSV records (RFC 4180 quoting) with the 1-based line each begins on; `terminated` false when the text does not end in a line end. */
const parseCsv = (text: string): { records: Array<{ line: number; fields: string[] }>; terminated: boolean } => {
  const records: Array<{ line: number; fields: string[] }> = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  let i = 0;
  const endRecord = (): void => {
    fields.push(field);
    records.push({ line: start, fields });
    fields = [];
    field = '';
  };
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else {
        if (c === '\n') line += 1;
        field += c;
      }
      i += 1;
      continue;
    }
    if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i += 1;
      endRecord();
      line += 1;
      start = line;
    } else field += c;
    i += 1;
  }
  const terminated = text.length === 0 || ((text.endsWith('\n') || text.endsWith('\r')) && !quoted);
  if (field !== '' || fields.length > 0 || quoted) endRecord();
  return { records, terminated };
};

const numberField = (text: string): number | undefined => {
  if (!/^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(text)) return undefined;
  const v = Number(text);
  return Number.isFinite(v) ? v : undefined;
};

const readText = (file: string, name: string): string => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RunReadError(code === 'ENOENT' ? `no ${name}` : `cannot read ${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
};

/** Reads one run directory; throws RunReadError with the reason when it cannot be plotted. */
export function readRun(dir: string): RunSeries {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new RunReadError('no such directory');
  }
  if (!stat.isDirectory()) throw new RunReadError('not a directory');
  const files = runFiles(dir);
  const csvText = readText(files.csv, 'progress.csv (not a run directory, or a run that never started)');
  const configText = readText(files.config, 'config.json (not a magicbox run directory?)');

  let config: unknown;
  try {
    config = JSON.parse(configText);
  } catch (e) {
    throw new RunReadError(`config.json is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new RunReadError('config.json is not a JSON object');

  const { records, terminated } = parseCsv(csvText);
  // A last line without its line end is a row a kill cut short (the trainer writes each row with its
  // newline in one write): left out, as a resume would drop it.
  const torn = !terminated && records.length > 1 ? records.pop() : undefined;
  const header = records[0]?.fields;
  if (header === undefined || (header.length === 1 && header[0] === '')) throw new RunReadError('progress.csv is empty (no header)');
  const column = (name: string): number => {
    const j = header.indexOf(name);
    if (j < 0) throw new RunReadError(`progress.csv has no ${name} column`);
    return j;
  };
  const iterationCol = column('iteration');
  const timestepsCol = column('timesteps');
  const preCol = column('return_0');
  let levels = 1;
  while (header.includes(`return_${levels}`)) levels += 1;
  const postCol = column(`return_${levels - 1}`);

  // Blank lines carry nothing (a truncated line is never blank); every other line is checked.
  const rows = records.slice(1).filter((r) => !(r.fields.length === 1 && r.fields[0] === ''));
  if (rows.length === 0) throw new RunReadError('progress.csv has no finished iteration');
  const iterations: number[] = [];
  const timesteps: number[] = [];
  const post: number[] = [];
  const pre: number[] = [];
  for (const { line, fields } of rows) {
    const where = `progress.csv line ${line}`;
    if (fields.length !== header.length) {
      throw new RunReadError(`${where}: ${fields.length} field(s) where the header has ${header.length} (truncated or malformed line)`);
    }
    const value = (col: number): number => {
      const v = numberField(fields[col]!);
      if (v === undefined) throw new RunReadError(`${where}: ${header[col]} is not a number: ${JSON.stringify(fields[col])}`);
      return v;
    };
    const iteration = value(iterationCol);
    if (!Number.isInteger(iteration) || iteration < 0) throw new RunReadError(`${where}: iteration is not a whole number ≥ 0: ${fields[iterationCol]}`);
    const previous = iterations[iterations.length - 1];
    if (previous !== undefined && iteration <= previous) throw new RunReadError(`${where}: iteration ${iteration} does not follow ${previous}`);
    iterations.push(iteration);
    timesteps.push(value(timestepsCol));
    pre.push(value(preCol));
    post.push(value(postCol));
  }
  if (!terminated && torn === undefined) throw new RunReadError(`progress.csv line ${rows[rows.length - 1]!.line} has no line end (truncated: was the run killed while writing it?)`);
  return { dir, config: config as Record<string, unknown>, iterations, timesteps, post, pre, ...(torn !== undefined ? { tornLine: torn.line } : {}) };
}

/** Reads every directory (each once), collecting the readable runs and the skipped ones with reasons. */
export function readRuns(dirs: readonly string[]): { runs: RunSeries[]; skipped: SkippedRun[] } {
  const runs: RunSeries[] = [];
  const skipped: SkippedRun[] = [];
  const seen = new Set<string>();
  for (const dir of dirs) {
    const key = path.resolve(dir);
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      runs.push(readRun(dir));
    } catch (e) {
      if (!(e instanceof RunReadError)) throw e;
      skipped.push({ dir, reason: e.message });
    }
  }
  return { runs, skipped };
}

// ---------------------------------------------------------------------------------------------------
// Grouping

/** Config fields that do not change what an iteration computes: runs differing only in these are one group. */
export const groupIgnoredFields: readonly string[] = ['seed', 'iterations', 'checkpointEvery'];

/** JSON with object keys sorted, so that equal configs give equal strings. */
const canonical = (v: unknown): string => {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
};

const groupKey = (config: Readonly<Record<string, unknown>>): string =>
  canonical(Object.fromEntries(Object.entries(config).filter(([k]) => !groupIgnoredFields.includes(k))));

/** Mean and population std (ddof 0) of each column of `values` (runs × points). */
export const meanStd = (values: readonly (readonly number[])[]): CurveStats => {
  const n = values.length;
  const points = values[0]?.length ?? 0;
  const mean: number[] = [];
  const std: number[] = [];
  for (let i = 0; i < points; i++) {
    const column = values.map((v) => v[i]!);
    const m = column.reduce((a, b) => a + b, 0) / n;
    mean.push(m);
    std.push(Math.sqrt(column.reduce((a, b) => a + (b - m) ** 2, 0) / n));
  }
  return { mean, std };
};

const text = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v) ?? '?');

/**
 * Groups runs by config up to the seed (in order of first appearance) and computes each group's
 * mean ± std over the iterations every member has. Labels name the algorithm and environment, the
 * fields that tell groups with the same algorithm and environment apart, and the seeds.
 */
export function groupRuns(runs: readonly RunSeries[]): CurveGroup[] {
  const byKey = new Map<string, RunSeries[]>();
  for (const run of runs) {
    const key = groupKey(run.config);
    byKey.set(key, [...(byKey.get(key) ?? []), run]);
  }
  const members = [...byKey.values()];
  const base = (run: RunSeries): string => `${text(run.config.algo)} on ${text(run.config.env)}`;
  const labels = members.map((group) => {
    const first = group[0]!;
    const siblings = members.filter((g) => base(g[0]!) === base(first));
    const keys = [...new Set(siblings.flatMap((g) => Object.keys(g[0]!.config)))].filter(
      (k) => !groupIgnoredFields.includes(k) && k !== 'algo' && k !== 'env' && new Set(siblings.map((g) => canonical(g[0]!.config[k]))).size > 1,
    );
    const detail = keys.map((k) => `${k}=${first.config[k] === undefined ? '—' : text(first.config[k])}`).join(', ');
    const seeds = group.map((r) => text(r.config.seed));
    const count = new Set(seeds).size === group.length ? `${group.length} seeds` : `${group.length} runs`;
    const who = group.length === 1 ? `seed ${seeds[0]}` : count;
    return `${base(first)}${detail === '' ? '' : `, ${detail}`} (${who})`;
  });
  const used = new Map<string, number>();
  return members.map((group, g) => {
    let label = labels[g]!;
    const times = used.get(label) ?? 0;
    used.set(label, times + 1);
    if (times > 0) label = `${label} #${times + 1}`;
    const iterations = group[0]!.iterations.filter((it) => group.every((r) => r.iterations.includes(it)));
    const pick = (r: RunSeries, series: readonly number[]): number[] => iterations.map((it) => series[r.iterations.indexOf(it)]!);
    return {
      label,
      runs: group,
      iterations,
      timesteps: meanStd(group.map((r) => pick(r, r.timesteps))).mean,
      post: meanStd(group.map((r) => pick(r, r.post))),
      pre: meanStd(group.map((r) => pick(r, r.pre))),
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// Spec and rendering

/** The data rows of the spec: every point of every curve (pre-update ones only with `pre`). */
export const curveData = (groups: readonly CurveGroup[], options: PlotOptions = {}): CurveDatum[] =>
  groups.flatMap((g) =>
    (options.pre ? (['post-update', 'pre-update'] as const) : (['post-update'] as const)).flatMap((curve) => {
      const stats = curve === 'post-update' ? g.post : g.pre;
      return g.iterations.map((iteration, i) => {
        const mean = stats.mean[i]!;
        const std = stats.std[i]!;
        return { label: g.label, env: text(g.runs[0]!.config.env), curve, iteration, timesteps: g.timesteps[i]!, mean, std, lo: mean - std, hi: mean + std, runs: g.runs.length };
      });
    }),
  );

/** The default title: what is plotted. */
export const defaultTitle = (options: PlotOptions): string =>
  options.pre ? 'Average return before and after adaptation' : 'Average return after adaptation';

/**
 * The vega-lite spec: x timesteps, y average return; one colour per group, a ± std band (area) for
 * groups of more than one run; pre-update curves dashed when asked for. Runs on different
 * environments (whose returns have unrelated scales) get one panel each, with their own axes.
 */
export function learningCurveSpec(groups: readonly CurveGroup[], options: PlotOptions = {}): TopLevelSpec {
  const data = curveData(groups, options);
  const environments = [...new Set(data.map((d) => d.env))];
  const pointsPerCurve = Math.max(0, ...groups.map((g) => g.iterations.length));
  const anyBand = groups.some((g) => g.runs.length > 1);
  // Legend symbols drawn as line segments (the default would show the band's fill or the points).
  const strokeLegend = { symbolType: 'stroke', symbolStrokeWidth: 2, symbolSize: 300, symbolOpacity: 1 } as const;
  const y = { type: 'quantitative' as const, title: 'average return', scale: { zero: false } };
  const dash = options.pre
    ? { strokeDash: { field: 'curve', type: 'nominal' as const, title: 'curve', scale: { domain: ['post-update', 'pre-update'], range: [[1, 0], [6, 4]] }, legend: { ...strokeLegend, encode: { symbols: { update: { stroke: { value: '#444' } } } } } } }
    : {};
  const title = { text: options.title ?? defaultTitle(options), ...(anyBand ? { subtitle: 'mean ± std over seeds where runs share a config' } : {}) };
  const plot = {
    encoding: {
      x: { field: 'timesteps', type: 'quantitative', title: 'timesteps' },
      color: {
        field: 'label',
        type: 'nominal',
        title: 'run',
        scale: { domain: groups.map((g) => g.label) },
        legend: { orient: 'bottom', direction: 'vertical', labelLimit: 600, ...strokeLegend },
      },
    },
    layer: [
      {
        transform: [{ filter: 'datum.runs > 1' }],
        mark: { type: 'area', opacity: 0.2 },
        encoding: { y: { field: 'lo', ...y }, y2: { field: 'hi' }, detail: { field: 'curve', type: 'nominal' } },
      },
      {
        mark: { type: 'line', strokeWidth: 2, point: pointsPerCurve <= 40 },
        encoding: { y: { field: 'mean', ...y }, detail: { field: 'curve', type: 'nominal' }, ...dash },
      },
    ],
  };
  const values = data as unknown as Array<Record<string, unknown>>;
  const schema = 'https://vega.github.io/schema/vega-lite/v6.json';
  if (environments.length <= 1) {
    return { $schema: schema, title, width: 640, height: 380, background: 'white', data: { values }, ...plot } as TopLevelSpec;
  }
  return {
    $schema: schema,
    title,
    background: 'white',
    data: { values },
    facet: { field: 'env', type: 'nominal', title: null, header: { labelFontSize: 13, labelFontWeight: 'bold' }, sort: environments },
    columns: Math.min(2, environments.length),
    spec: { width: 420, height: 280, ...plot },
    resolve: { scale: { x: 'independent', y: 'independent' } },
  } as TopLevelSpec;
}

/** Renders a vega-lite spec to an SVG document, headless (no browser, no canvas). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Reads, groups, builds the spec and (when at least one run was readable) renders the SVG. */
export async function plotLearningCurves(
  dirs: readonly string[],
  options: PlotOptions = {},
): Promise<{ svg: string | undefined; spec: TopLevelSpec | undefined; groups: CurveGroup[]; skipped: SkippedRun[] }> {
  const { runs, skipped } = readRuns(dirs);
  if (runs.length === 0) return { svg: undefined, spec: undefined, groups: [], skipped };
  const groups = groupRuns(runs);
  const spec = learningCurveSpec(groups, options);
  return { svg: await renderSvg(spec), spec, groups, skipped };
}
