/**
 * `magicbox plot RUN_DIR... --out FILE.svg [--pre] [--title T]`: learning curves (average return
 * against timesteps) of training runs, one line per run or a mean ± std band over the seeds of runs
 * that share a config. Runs that cannot be read are named with the reason and skipped; the SVG is
 * written (atomically) when at least one run could be read, and the exit status is 1 when none could.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../meta/run-directory.ts';
import { plotLearningCurves } from '../plot/learning-curves.ts';
import type { Output } from './validate.ts';

export interface PlotCliOptions {
  readonly out: string;
  readonly pre: boolean;
  readonly title?: string;
}

/** Plots the runs in `dirs`; returns the exit status (0, or 1 when nothing could be plotted or written). */
export async function runPlot(dirs: readonly string[], opts: PlotCliOptions, out: Output): Promise<number> {
  const outDir = path.dirname(path.resolve(opts.out));
  if (!fs.existsSync(outDir) || !fs.statSync(outDir).isDirectory()) {
    out.error(`magicbox plot: --out ${opts.out}: no such directory ${outDir}`);
    return 1;
  }
  if (fs.existsSync(opts.out) && fs.statSync(opts.out).isDirectory()) {
    out.error(`magicbox plot: --out ${opts.out} is a directory; give a file name (FILE.svg)`);
    return 1;
  }
  const { svg, groups, skipped } = await plotLearningCurves(dirs, { pre: opts.pre, ...(opts.title !== undefined ? { title: opts.title } : {}) });
  for (const s of skipped) out.error(`magicbox plot: skipped ${s.dir}: ${s.reason}`);
  for (const run of groups.flatMap((g) => g.runs)) {
    if (run.tornLine !== undefined) out.error(`magicbox plot: note: ${run.dir}: left out progress.csv line ${run.tornLine}, cut short (the run was killed while writing it)`);
  }
  if (svg === undefined) {
    out.error(`magicbox plot: no run could be read; nothing written`);
    return 1;
  }
  writeFileAtomic(opts.out, svg);
  const runs = groups.reduce((n, g) => n + g.runs.length, 0);
  out.log(`wrote ${opts.out}: ${groups.length} curve(s) from ${runs} run(s)${skipped.length > 0 ? `, ${skipped.length} skipped` : ''}`);
  for (const g of groups) {
    const last = g.post.mean.length - 1;
    out.log(`  ${g.label}: ${g.iterations.length} iteration(s), last post-update return ${g.post.mean[last]!.toFixed(3)}${g.runs.length > 1 ? ` ± ${g.post.std[last]!.toFixed(3)}` : ''}`);
  }
  return 0;
}
