/**
 * `magicbox reproduce`: bad inputs get one-line errors and leave files alone; a reproduction stopped
 * part-way (Ctrl-C, or unit files missing as after a kill) continues without recomputing the units
 * already saved, and ends with the same numbers as an uninterrupted run. Fig. 6 and Fig. 5 run here
 * with tiny settings (the command and the modules are the real ones). Serial: one test's Ctrl-C
 * (a SIGINT emitted in this process) must not reach another's reproduction.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import { runReproduce, markerFile } from '../src/cli/reproduce.ts';
import { selectBackend } from '../src/backend.ts';
import type { Figure } from '../src/reproduce/figure.ts';
import { makeFig5 } from '../src/reproduce/fig5.ts';
import { fig6Settings, makeFig6 } from '../src/reproduce/fig6.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/temp.ts';

test.before(async () => {
  await selectBackend();
});

const capture = () => {
  const lines = { log: [] as string[], error: [] as string[] };
  return { lines, out: { log: (s: string) => lines.log.push(s), error: (s: string) => lines.error.push(s) } };
};

const tinyFig6 = makeFig6((scale) => ({ ...fig6Settings(scale), pairs: 1, trajectoriesPerTask: 3, iterations: 3, learningRates: [1e-4, 1e-3] }));
const unitsOf = (dir: string) => fs.readdirSync(path.join(dir, 'units')).sort();
const mtimes = (dir: string) => Object.fromEntries(unitsOf(dir).map((f) => [f, fs.statSync(path.join(dir, 'units', f)).mtimeMs]));

test.serial('bad inputs: one line each naming the problem, exit 1, nothing written', async (t) => {
  const dir = tempDir(t);
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['fig3', {}, /^magicbox reproduce: unknown figure "fig3"; valid: fig2, fig4, fig5, fig6$/],
    ['fig6', { scale: 'huge' }, /^magicbox reproduce: --scale: expected one of small, paper, got "huge"$/],
    ['fig6', { seeds: 'three' }, /^magicbox reproduce: --seeds: expected a whole number from 1 to 1000, got "three"$/],
    ['fig6', { seeds: '0' }, /--seeds: expected a whole number/],
    ['fig6', { progress: 'loud' }, /^magicbox reproduce: --progress: expected one of auto, bar, lines, off, got "loud"$/],
  ];
  for (const [figure, opts, message] of cases) {
    const { lines, out } = capture();
    const code = await runReproduce(figure, { out: path.join(dir, 'new'), ...opts }, out, { figures: { fig6: tinyFig6 } });
    t.is(code, 1, figure);
    t.is(lines.error.length, 1, lines.error.join('\n'));
    t.regex(lines.error[0]!, message);
  }
  t.false(fs.existsSync(path.join(dir, 'new')), 'no output directory made for bad input');
  // a figure this build does not have
  const { lines, out } = capture();
  t.is(await runReproduce('fig2', {}, out, { figures: { fig6: tinyFig6 } }), 1);
  t.deepEqual(lines.error, ['magicbox reproduce: fig2 is not in this build (available: fig6)']);
});

test.serial('--out that is a file, holds another reproduction or unrelated files, or cannot be written: one line, files intact', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'notes.txt');
  fs.writeFileSync(file, 'mine');
  const other = path.join(dir, 'other');
  fs.mkdirSync(other);
  fs.writeFileSync(markerFile(other), JSON.stringify({ figure: 'fig6', scale: 'paper' }));
  const unrelated = path.join(dir, 'unrelated');
  fs.mkdirSync(unrelated);
  fs.writeFileSync(path.join(unrelated, 'thesis.tex'), 'chapter 1');
  const locked = path.join(dir, 'locked');
  fs.mkdirSync(locked, { mode: 0o500 });
  const cases: Array<[string, RegExp]> = [
    [file, /--out .*notes\.txt is a file, not a directory$/],
    [other, /--out .*other holds a reproduction of fig6 at --scale paper; give another directory$/],
    [unrelated, /--out .*unrelated is not empty and holds no reproduction/],
    ...(process.getuid?.() === 0 ? [] : ([[path.join(locked, 'sub'), /cannot write there \(EACCES\)/]] as Array<[string, RegExp]>)),
  ];
  for (const [where, message] of cases) {
    const { lines, out } = capture();
    t.is(await runReproduce('fig6', { out: where }, out, { figures: { fig6: tinyFig6 } }), 1);
    t.is(lines.error.length, 1);
    t.regex(lines.error[0]!, /^magicbox reproduce: /);
    t.regex(lines.error[0]!, message);
  }
  t.is(fs.readFileSync(file, 'utf8'), 'mine');
  t.deepEqual(fs.readdirSync(other), ['reproduction.json']);
  t.deepEqual(JSON.parse(fs.readFileSync(markerFile(other), 'utf8')), { figure: 'fig6', scale: 'paper' });
  t.deepEqual(fs.readdirSync(unrelated), ['thesis.tex']);
});

test.serial('the command line: an unknown figure is one line on stderr, no trace; the command is registered with its flags', async (t) => {
  const bad = await runCli(['reproduce', 'fig9']);
  t.is(bad.code, 1);
  t.is(bad.stderr.trim(), 'magicbox reproduce: unknown figure "fig9"; valid: fig2, fig4, fig5, fig6');
  const help = await runCli(['reproduce', '--help']);
  for (const flag of ['--scale', '--seeds', '--out', '--progress']) t.true(help.stdout.includes(flag), flag);
});

test.serial('a killed reproduction resumes: only the missing units are computed, and the numbers equal an uninterrupted run', async (t) => {
  const dir = path.join(tempDir(t), 'fig6');
  const first = capture();
  t.is(await runReproduce('fig6', { out: dir, seeds: '2', progress: 'off' }, first.out, { figures: { fig6: tinyFig6 } }), 0, first.lines.error.join('\n'));
  const units = unitsOf(dir);
  t.is(units.length, 2 * 2 * 2, 'formulations × learning rates × seeds');
  const numbers = fs.readFileSync(path.join(dir, 'fig6.json'), 'utf8');
  t.true(fs.readFileSync(path.join(dir, 'fig6.svg'), 'utf8').startsWith('<svg'));
  // As after a kill: two units never saved (and a temp file left half-written).
  const gone = [units[1]!, units[6]!];
  gone.forEach((f) => fs.rmSync(path.join(dir, 'units', f)));
  fs.writeFileSync(path.join(dir, 'units', gone[0]!), '{"thetas": [[0.09, 0.0');
  const before = mtimes(dir);
  await new Promise((resolve) => setTimeout(resolve, 20));
  const second = capture();
  t.is(await runReproduce('fig6', { out: dir, seeds: '2', progress: 'off' }, second.out, { figures: { fig6: tinyFig6 } }), 0);
  const after = mtimes(dir);
  for (const f of units) {
    if (gone.includes(f)) t.not(after[f], before[f], `${f} recomputed`);
    else t.is(after[f], before[f], `${f} not recomputed`);
  }
  t.true(second.lines.log.includes(`resumed 6 finished run(s) from ${dir}/units`), second.lines.log.join('\n'));
  t.is(fs.readFileSync(path.join(dir, 'fig6.json'), 'utf8'), numbers, 'the same numbers as the uninterrupted run');
});

test.serial('Ctrl-C stops after the unit in progress (exit 130, finished units kept); a rerun continues from them', async (t) => {
  const dir = path.join(tempDir(t), 'fig6');
  const computed: string[] = [];
  // The real figure; the user presses Ctrl-C while the third unit runs.
  const interrupted: Figure = {
    ...tinyFig6,
    run: (request) =>
      tinyFig6.run({
        ...request,
        progress: (done, total, label) => {
          computed.push(label);
          request.progress(done, total, label);
          if (done === 2) process.emit('SIGINT');
        },
      }),
  };
  const first = capture();
  const listeners = process.listenerCount('SIGINT');
  t.is(await runReproduce('fig6', { out: dir, seeds: '1', progress: 'off' }, first.out, { figures: { fig6: interrupted } }), 130);
  t.regex(first.lines.error.join('\n'), /interrupted: stopping after the unit in progress/);
  t.true(first.lines.log.some((l) => /stopped after 2 of 4 runs; run the same command again to continue/.test(l)));
  t.is(unitsOf(dir).length, 2);
  t.false(fs.existsSync(path.join(dir, 'fig6.svg')));
  t.is(process.listenerCount('SIGINT'), listeners, 'the handler is removed');
  const second = capture();
  t.is(await runReproduce('fig6', { out: dir, seeds: '1', progress: 'off' }, second.out, { figures: { fig6: tinyFig6 } }), 0);
  t.true(second.lines.log.includes(`resumed 2 finished run(s) from ${dir}/units`));
  t.is(unitsOf(dir).length, 4);
  t.true(fs.existsSync(path.join(dir, 'fig6.svg')));
});

test.serial('fig5 (tiny): three arms trained in resumable chunks, rollouts drawn, the returns table and numbers written', async (t) => {
  const dir = path.join(tempDir(t), 'fig5');
  const fig5 = makeFig5(() => ({ tasksPerIteration: 2, trajectoriesPerTask: 2, horizon: 6, iterations: 2, chunk: 1, rolloutTrajectories: 2 }));
  const { lines, out } = capture();
  t.is(await runReproduce('fig5', { out: dir, progress: 'off' }, out, { figures: { fig5 } }), 0, lines.error.join('\n'));
  t.deepEqual(unitsOf(dir), [
    'fig5-emaml-trpo-seed1-it1.json',
    'fig5-emaml-trpo-seed1-it2.json',
    'fig5-emaml-trpo-seed1-rollouts.json',
    'fig5-lvc-trpo-seed1-it1.json',
    'fig5-lvc-trpo-seed1-it2.json',
    'fig5-lvc-trpo-seed1-rollouts.json',
    'fig5-maml-trpo-seed1-it1.json',
    'fig5-maml-trpo-seed1-it2.json',
    'fig5-maml-trpo-seed1-rollouts.json',
  ]);
  const csvRows = fs.readFileSync(path.join(dir, 'fig5-returns.csv'), 'utf8').trim().split('\n');
  t.is(csvRows[0], 'arm,seed,iteration,pre_return,step1_return,step2_return,post_return');
  t.is(csvRows.length, 1 + 3 * 2);
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'fig5.json'), 'utf8')) as { arms: Array<{ arm: string; post: number[] }> };
  t.deepEqual(json.arms.map((a) => a.arm), ['lvc-trpo', 'maml-trpo', 'emaml-trpo']);
  t.true(json.arms.every((a) => a.post.length === 1 && Number.isFinite(a.post[0])));
  const lvc = JSON.parse(fs.readFileSync(path.join(dir, 'units', 'fig5-lvc-trpo-seed1-rollouts.json'), 'utf8')) as { tasks: Array<{ paths: unknown[][] }> };
  t.true(lvc.tasks.length >= 1 && lvc.tasks.length <= 4);
  t.is(lvc.tasks[0]!.paths.length, 4, 'pre-update and three inner steps');
  t.is(lvc.tasks[0]!.paths[0]!.length, 2, 'two trajectories per task');
  // the chunks chain: the second starts from the first's parameters, so deleting only the second recomputes the same
  const second = path.join(dir, 'units', 'fig5-lvc-trpo-seed1-it2.json');
  const saved = fs.readFileSync(second, 'utf8');
  fs.rmSync(second);
  fs.rmSync(path.join(dir, 'units', 'fig5-lvc-trpo-seed1-rollouts.json'));
  t.is(await runReproduce('fig5', { out: dir, progress: 'off' }, capture().out, { figures: { fig5 } }), 0);
  t.is(fs.readFileSync(second, 'utf8'), saved);
});
