/** The magicbox command as a user runs it: exit statuses, messages, and the JSON report. */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { tempDir } from './helpers/temp.ts';
import { runCli } from './helpers/cli.ts';

const run = (...args: string[]) => runCli(args);

test('verify --json: DiCE, DiCE + baseline and TMAML exact at orders 1-3; LVC and PGT biased at order 2 as predicted', async (t) => {
  const { code, stdout } = await run('verify', '--json');
  t.is(code, 0);
  const report = JSON.parse(stdout) as {
    backend: string;
    graphs: Array<{
      graph: string;
      clippedRatio: { holds: boolean; clippedShare: number };
      estimators: Array<{
        kind: string;
        estimator: string;
        perSample: { holds: boolean };
        orders: Array<{ order: number; relativeError: number; unbiased: boolean; predictedBias?: { matches: boolean }; closedForm?: { matches: boolean } }>;
      }>;
    }>;
  };
  t.is(report.backend, 'wasm');
  t.deepEqual(report.graphs.map((g) => g.graph), ['mdp-chain', 'two-cost-dag', 'pathwise-chain', 'lag-two-chain']);
  for (const g of report.graphs) {
    for (const e of g.estimators) {
      const exactKinds = ['dice', 'dice-baseline', 'tmaml'];
      if (exactKinds.includes(e.kind)) t.true(e.orders.every((o) => o.unbiased && o.relativeError < 1e-4), `${g.graph} ${e.kind}`);
      if (e.kind === 'lvc' || e.kind === 'pgt') {
        const second = e.orders.find((o) => o.order === 2)!;
        t.false(second.unbiased);
        // The four-term prediction exists where costs do not depend on θ (and not for PGT with a baseline).
        const predicted = g.graph !== 'pathwise-chain' && !(e.kind === 'pgt' && e.estimator.endsWith('+ baseline'));
        t.is(second.predictedBias?.matches, predicted ? true : undefined, `${g.graph} ${e.estimator}`);
        t.true(second.closedForm?.matches, `${g.graph} ${e.estimator}: its own closed form`);
      }
      t.true(e.perSample.holds, `${g.graph} ${e.estimator}: per sample`);
    }
    t.true(g.clippedRatio.holds && g.clippedRatio.clippedShare > 0.1, `${g.graph}: clipped LVC at θ ≠ θ_o`);
  }
});

test('verify on a user graph file runs the oracle on it; a graph that cannot be enumerated is refused in one line', async (t) => {
  const ok = await run('verify', 'examples/graphs/categorical-mdp.json');
  t.is(ok.code, 0);
  t.regex(ok.stdout, /DiCE\s+\S+ exact\s+\S+ exact\s+\S+ exact/);
  const external = await run('verify', 'examples/graphs/rl-chain.json');
  t.is(external.code, 1);
  t.regex(external.stderr, /'s' is external: verify needs every stochastic node to be categorical/);
  t.notRegex(external.stderr, /\n\s+at /, 'no stack trace');
});

test('validate: a cycle exits 1 naming its nodes; a malformed file names the bad fields; a valid file exits 0', async (t) => {
  const cycle = await run('validate', 'examples/graphs/cycle.json');
  t.is(cycle.code, 1);
  t.regex(cycle.stderr, /x → y → z → x/);
  const malformed = await run('validate', 'examples/graphs/malformed.json');
  t.is(malformed.code, 1);
  t.regex(malformed.stderr, /nodes\[3\]\.parents\[0\]\.lag: expected a whole number ≥ 0, got -1/);
  t.notRegex(malformed.stderr, /\n\s+at /, 'no stack trace');
  const valid = await run('validate', 'examples/graphs/rl-chain.json');
  t.is(valid.code, 0);
  t.regex(valid.stdout, /valid/);
});

test('validate leaves the file untouched and reports bad JSON syntax without a stack trace', async (t) => {
  const dir = tempDir(t, 'magicbox-cli-');
  const file = join(dir, 'broken.json');
  const text = '{ "nodes": [ { "name": "x", ';
  await writeFile(file, text);
  const r = await run('validate', file);
  t.is(r.code, 1);
  t.regex(r.stderr, /not valid JSON/);
  t.is(await readFile(file, 'utf8'), text);
});

test('an unknown command or backend is refused with the valid choices', async (t) => {
  const r = await run('frobnicate');
  t.not(r.code, 0);
  t.regex(r.stderr, /unknown command 'frobnicate'/);
  const { code, stderr } = await runCli(['verify'], { MAGICBOX_BACKEND: 'gpu9000' });
  t.is(code, 1);
  t.regex(stderr, /MAGICBOX_BACKEND=gpu9000 is not a backend magicbox knows; valid: tensorflow-gpu, tensorflow, wasm, cpu/);
});

test('diagram: draws a graph file or a module, colours credit paths, and refuses a cycle without writing', async (t) => {
  const dir = tempDir(t, 'magicbox-cli-');
  const svg = join(dir, 'chain.svg');
  const ok = await run('diagram', 'examples/graphs/rl-chain.json', '--credit', 'r', '--out', svg);
  t.is(ok.code, 0, ok.stderr);
  const text = await readFile(svg, 'utf8');
  t.regex(text, /^(<\?xml[^>]*>\s*)?<svg[\s\S]*<\/svg>\s*$/);
  t.regex(text, /data-highlighted="true"/);
  const cycleOut = join(dir, 'cycle.svg');
  const cycle = await run('diagram', 'examples/graphs/cycle.json', '--out', cycleOut);
  t.is(cycle.code, 1);
  t.regex(cycle.stderr, /x → y → z → x/);
  await t.throwsAsync(readFile(cycleOut, 'utf8'), { code: 'ENOENT' });
  const badCost = await run('diagram', 'examples/graphs/rl-chain.json', '--credit', 'a', '--out', join(dir, 'x.svg'));
  t.is(badCost.code, 1);
  t.regex(badCost.stderr, /'a' is not a cost of the graph; its costs: r/);
  // .mts: outside a package with "type": "module", a .ts file would be loaded as CommonJS.
  const module = join(dir, 'graph.mts');
  await writeFile(module, `export const graph = ${await readFile('examples/graphs/rl-chain.json', 'utf8')};\n`);
  const fromModule = await run('diagram', module, '--out', join(dir, 'module.svg'));
  t.is(fromModule.code, 0, fromModule.stderr);
});
