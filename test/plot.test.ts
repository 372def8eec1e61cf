/** `magicbox plot`: learning curves from hand-made run directories (no training here). */
import * as fs from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { tempDir } from './helpers/temp.ts';
import { runPlot } from '../src/cli/plot.ts';
import { curveData, plotLearningCurves, readRun, RunReadError } from '../src/plot/learning-curves.ts';
import { wellFormedXml } from './helpers/xml.ts';
import { runCli } from './helpers/cli.ts';

const header = 'iteration,timesteps,return_0,return_1,samplingSeconds,adaptationSeconds,outerSeconds,objective,kl,lineSearch,wallSeconds,backend';

const baseConfig = { algo: 'promp', env: 'nav-2d', iterations: 3, seed: 1, tasksPerIteration: 3, trajectoriesPerTask: 3, innerStepSize: 0.1, hidden: [64, 64], checkpointEvery: 10 };

/** One progress.csv row as magicbox train writes it (kl and lineSearch empty, as for ProMP). */
const row = (iteration: number, timesteps: number, pre: number, post: number): string =>
  `${iteration},${timesteps},${pre},${post},0.1,0.02,0.4,-1e-8,,,${iteration + 1}.5,wasm`;

/** A run directory: config.json and progress.csv (`csv` as given, or the header and rows). */
const makeRun = (dir: string, config: Record<string, unknown>, rows: readonly string[], csv?: string): string => {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  fs.writeFileSync(join(dir, 'progress.csv'), csv ?? [header, ...rows].map((l) => `${l}\n`).join(''));
  return dir;
};


/** The `d` attributes of the paths inside the marks of one kind (area, line). */
const markPaths = (svg: string, mark: string): string[] =>
  [...svg.matchAll(new RegExp(`<g class="mark-${mark} role-mark[^"]*"[^>]*>([\\s\\S]*?)</g>`, 'g'))].flatMap((g) =>
    [...g[1]!.matchAll(/<path[^>]*\sd="([^"]+)"/g)].map((p) => p[1]!),
  );

const capture = () => {
  const lines = { log: [] as string[], error: [] as string[] };
  return { lines, out: { log: (s: string) => lines.log.push(s), error: (s: string) => lines.error.push(s) } };
};

test('the well-formedness check itself rejects broken XML', (t) => {
  t.is(wellFormedXml('<svg a="1"><g><path d="M0"/></g></svg>'), undefined);
  t.truthy(wellFormedXml('<svg><g></svg>'));
  t.truthy(wellFormedXml('<svg a=1></svg>'));
  t.truthy(wellFormedXml('<svg>a & b</svg>'));
  t.truthy(wellFormedXml('<svg></svg><svg></svg>'));
  t.truthy(wellFormedXml('<svg a="1" a="2"></svg>'));
  t.is(wellFormedXml('<svg a="x=1" x="2"></svg>'), undefined);
});

test('two seeds of one config: one group, mean ± std on known numbers, a band in the SVG', async (t) => {
  const root = tempDir(t, 'magicbox-plot-');
  // Seed 2 ran one more iteration (and was asked for 4): still the same group, aligned on iterations 0-2.
  const a = makeRun(join(root, 'seed1'), baseConfig, [row(0, 100, 0, 1), row(1, 200, 0, 2), row(2, 300, 0, 3)]);
  const b = makeRun(join(root, 'seed2'), { ...baseConfig, seed: 2, iterations: 4 }, [row(0, 100, 2, 3), row(1, 200, 2, 4), row(2, 300, 2, 5), row(3, 400, 2, 9)]);
  const { svg, spec, groups, skipped } = await plotLearningCurves([a, b], { pre: true, title: 'Two seeds' });
  t.deepEqual(skipped, []);
  t.is(groups.length, 1);
  const g = groups[0]!;
  t.is(g.label, 'promp on nav-2d (2 seeds)');
  t.deepEqual(g.iterations, [0, 1, 2]);
  t.deepEqual(g.timesteps, [100, 200, 300]);
  t.deepEqual(g.post, { mean: [2, 3, 4], std: [1, 1, 1] });
  t.deepEqual(g.pre, { mean: [1, 1, 1], std: [1, 1, 1] });
  const post = curveData(groups, { pre: true }).filter((d) => d.curve === 'post-update');
  t.deepEqual(post.map((d) => [d.timesteps, d.mean, d.lo, d.hi, d.runs]), [[100, 2, 1, 3, 2], [200, 3, 2, 4, 2], [300, 4, 3, 5, 2]]);
  t.deepEqual((spec!.data as { values: unknown[] }).values.length, 6, 'post and pre, 3 points each');

  t.is(wellFormedXml(svg!), undefined);
  t.is(markPaths(svg!, 'area').length, 2, 'a band for the post- and the pre-update curve');
  t.true(markPaths(svg!, 'area').every((d) => /^M[\d.-]+,[\d.-]+L/.test(d)));
  t.is(markPaths(svg!, 'line').length, 2);
  for (const text of ['Two seeds', 'timesteps', 'average return', 'promp on nav-2d (2 seeds)', 'pre-update', 'post-update']) t.true(svg!.includes(text), text);
});

test('different configs: two lines, labels telling them apart, no band', async (t) => {
  const root = tempDir(t, 'magicbox-plot-');
  const a = makeRun(join(root, 'a'), baseConfig, [row(0, 100, 0, 1), row(1, 200, 0, 2)]);
  const b = makeRun(join(root, 'b'), { ...baseConfig, seed: 2, innerStepSize: 0.2 }, [row(0, 100, 0, 5), row(1, 200, 0, 6)]);
  const { svg, groups } = await plotLearningCurves([a, b]);
  t.deepEqual(groups.map((g) => g.label), ['promp on nav-2d, innerStepSize=0.1 (seed 1)', 'promp on nav-2d, innerStepSize=0.2 (seed 2)']);
  t.deepEqual(groups.map((g) => g.post.std), [[0, 0], [0, 0]]);
  t.is(wellFormedXml(svg!), undefined);
  t.is(markPaths(svg!, 'line').length, 2);
  t.is(markPaths(svg!, 'area').length, 0);
  t.false(svg!.includes('pre-update'), 'no pre-update curve unless asked for');
});

test('a truncated or malformed progress.csv line, or a run without logs: named and skipped, the rest plotted', async (t) => {
  const root = tempDir(t, 'magicbox-plot-');
  const good = makeRun(join(root, 'good'), baseConfig, [row(0, 100, 0, 1), row(1, 200, 0, 2)]);
  const rows = [row(0, 100, 0, 1), row(1, 200, 0, 2)];
  const cut = makeRun(join(root, 'cut-run'), baseConfig, [], `${header}\n${rows.join('\n')}\n2,300,-5.`);
  const cutLastField = makeRun(join(root, 'cut-last-field'), baseConfig, [], `${header}\n${rows.join('\n')}\n${row(2, 300, 0, 3).slice(0, -2)}`);
  const text = makeRun(join(root, 'text-run'), baseConfig, [row(0, 100, 0, 1), row(1, 200, 0, 2).replace('200', 'abc')]);
  const empty = join(root, 'empty-run');
  fs.mkdirSync(empty);
  const noRows = makeRun(join(root, 'no-rows'), baseConfig, []);
  const noConfig = join(root, 'no-config');
  fs.mkdirSync(noConfig);
  fs.writeFileSync(join(noConfig, 'progress.csv'), `${header}\n${row(0, 100, 0, 1)}\n`);

  // A last line cut short by a kill (no line end) is left out; the rows before it are plotted.
  t.deepEqual(readRun(cut).iterations, [0, 1]);
  t.is(readRun(cut).tornLine, 4);
  t.deepEqual(readRun(cutLastField).iterations, [0, 1]);
  // A short line that has its line end is malformed, not torn.
  const short = makeRun(join(root, 'short-line'), baseConfig, [], `${header}\n${rows.join('\n')}\n2,300,-5.\n`);
  t.throws(() => readRun(short), { instanceOf: RunReadError, message: /line 4: 3 field\(s\) where the header has 12/ });
  t.throws(() => readRun(text), { instanceOf: RunReadError, message: /line 3: timesteps is not a number: "abc"/ });

  const out = join(root, 'curves.svg');
  const { lines, out: output } = capture();
  const code = await runPlot([good, cut, cutLastField, short, text, empty, noRows, noConfig, join(root, 'missing')], { out, pre: false }, output);
  t.is(code, 0);
  t.is(lines.error.filter((l) => /note: .*left out progress\.csv line 4, cut short/.test(l)).length, 2);
  lines.error = lines.error.filter((l) => !/note: /.test(l));
  const reasons = {
    'short-line': /line 4: 3 field/,
    'text-run': /not a number/,
    'empty-run': /no progress\.csv/,
    'no-rows': /no finished iteration/,
    'no-config': /no config\.json/,
    missing: /no such directory/,
  };
  t.is(lines.error.length, Object.keys(reasons).length, lines.error.join('\n'));
  for (const [name, reason] of Object.entries(reasons)) {
    const line = lines.error.find((l) => l.includes(join(root, name) + ':'));
    t.truthy(line, name);
    t.regex(line!, reason);
  }
  t.regex(lines.log[0]!, /1 curve\(s\) from 3 run\(s\), 6 skipped/);
  const svg = fs.readFileSync(out, 'utf8');
  t.is(wellFormedXml(svg), undefined);
  t.is(markPaths(svg, 'line').length, 1, 'only the good run is drawn');
  t.false(svg.includes('cut-run'));
});

test('nothing plottable: exit 1, nothing written, no temp file left', async (t) => {
  const root = tempDir(t, 'magicbox-plot-');
  const empty = join(root, 'empty-run');
  fs.mkdirSync(empty);
  const cut = makeRun(join(root, 'cut-run'), baseConfig, [], `${header}\n0,100,1`);
  const out = join(root, 'out', 'curves.svg');
  fs.mkdirSync(join(root, 'out'));
  const { lines, out: output } = capture();
  t.is(await runPlot([empty, cut], { out, pre: true }, output), 1);
  t.deepEqual(fs.readdirSync(join(root, 'out')), []);
  t.is(lines.log.length, 0);
  t.true(lines.error.some((l) => l.includes('empty-run')));
  t.true(lines.error.some((l) => l.includes('cut-run')));
  t.regex(lines.error[lines.error.length - 1]!, /nothing written/);
});

test('the command: magicbox plot RUN_DIR... --out FILE.svg --pre --title T', async (t) => {
  const root = tempDir(t, 'magicbox-plot-');
  const a = makeRun(join(root, 'a'), baseConfig, [row(0, 100, 0, 1), row(1, 200, 0, 2)]);
  const b = makeRun(join(root, 'b'), { ...baseConfig, seed: 2 }, [row(0, 100, 1, 2), row(1, 200, 1, 3)]);
  const out = join(root, 'curves.svg');
  const { code, stdout, stderr } = await runCli(['plot', a, b, '--pre', '--title', 'Seeds & bands', '--out', out]);
  t.is(code, 0, stderr);
  t.regex(stdout, /wrote .*curves\.svg: 1 curve\(s\) from 2 run\(s\)/);
  const svg = fs.readFileSync(out, 'utf8');
  t.is(wellFormedXml(svg), undefined);
  t.true(svg.includes('Seeds &amp; bands'));
  t.is(markPaths(svg, 'area').length, 2);
  const missing = await runCli(['plot', join(root, 'nope'), '--out', join(root, 'x.svg')]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /skipped .*nope: no such directory/);
  t.false(fs.existsSync(join(root, 'x.svg')));
});

test('runs on different environments get one panel each, with their own axes', async (t) => {
  const root = tempDir(t, 'magicbox-plot-');
  const a = makeRun(join(root, 'nav'), baseConfig, [row(0, 100, 0, -50), row(1, 200, 0, -40)]);
  const b = makeRun(join(root, 'corners'), { ...baseConfig, env: 'point-corners' }, [row(0, 100, 0, 1), row(1, 200, 0, 2)]);
  const { svg, spec, groups } = await plotLearningCurves([a, b]);
  t.is(groups.length, 2);
  const facet = (spec as { facet?: { field: string } }).facet;
  t.is(facet?.field, 'env');
  t.is(wellFormedXml(svg!), undefined);
  for (const env of ['nav-2d', 'point-corners']) t.true(svg!.includes(`>${env}<`), `a panel header for ${env}`);
  t.is(markPaths(svg!, 'line').length, 2, 'one line in each panel');
  // The single-environment plot stays one panel.
  const single = await plotLearningCurves([a]);
  t.is((single.spec as { facet?: unknown }).facet, undefined);
});
