import test from 'ava';
import { isLeft } from 'fp-ts/lib/Either.js';
import { runValidate } from '../src/cli/validate.ts';
import { decodeGraphSpec, readGraphFile } from '../src/scg/decode.ts';
import { findSameStepCycles, reachableFrom, toGraphology } from '../src/scg/graph.ts';
import type { GraphSpec } from '../src/scg/spec.ts';
import { validateGraph, type Problem } from '../src/scg/validate.ts';

const examples = new URL('../examples/graphs/', import.meta.url);
const example = (name: string) => new URL(name, examples).pathname;

/** A spec from nodes written as in a file; the tests are about validation, so decoding must succeed. */
function graph(...nodes: unknown[]): GraphSpec {
  const decoded = decodeGraphSpec({ nodes });
  if (isLeft(decoded)) throw new Error(decoded.left.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return decoded.right;
}
const summary = (problems: readonly Problem[]) => problems.map(({ code, nodes }) => ({ code, nodes }));

const theta = { name: 'theta', kind: 'parameter', shape: [2] };
const cost = (name: string, parents: unknown[], extra: object = {}) => ({ name, kind: 'cost', parents, ...extra });
const det = (name: string, parents: unknown[], extra: object = {}) => ({ name, kind: 'deterministic', parents, ...extra });
const categorical = { type: 'categorical', categories: 3 };
const temporal = { temporal: true };

test('a valid graph has no problems', (t) => {
  t.deepEqual(validateGraph(graph(theta, det('x', ['theta']), cost('c', ['x']))), []);
});

test('the RL chain example is valid: loops through lagged edges are not cycles', async (t) => {
  const spec = await readGraphFile(example('rl-chain.json'));
  if (isLeft(spec)) return t.fail(JSON.stringify(spec.left));
  t.deepEqual(validateGraph(spec.right), []);
});

test('duplicate-name names the node once, with the positions of its declarations', (t) => {
  const problems = validateGraph(graph(theta, det('x', ['theta']), det('x', ['theta']), cost('c', ['x'])));
  t.deepEqual(summary(problems), [{ code: 'duplicate-name', nodes: ['x'] }]);
  t.regex(problems[0]!.message, /nodes\[1\] and nodes\[2\] are both named "x"/);
});

test('missing-parent names the child and the missing parent', (t) => {
  const problems = validateGraph(graph(theta, det('x', ['theta', { node: 'ghost', lag: 0 }]), cost('c', ['x'])));
  t.deepEqual(summary(problems), [{ code: 'missing-parent', nodes: ['x', 'ghost'] }]);
  t.regex(problems[0]!.message, /"x" has parent "ghost", but no node is named "ghost"/);
});

test('cycle lists the nodes of a same-step cycle in order', async (t) => {
  const spec = await readGraphFile(example('cycle.json'));
  if (isLeft(spec)) return t.fail(JSON.stringify(spec.left));
  const problems = validateGraph(spec.right);
  t.deepEqual(summary(problems), [{ code: 'cycle', nodes: ['x', 'y', 'z'] }]);
  t.regex(problems[0]!.message, /^x → y → z → x is a cycle within one time step/);
});

test('cycle: a node that is its own lag-0 parent', (t) => {
  const problems = validateGraph(graph(theta, det('x', ['theta', 'x']), cost('c', ['x'])));
  t.deepEqual(summary(problems), [{ code: 'cycle', nodes: ['x'] }]);
});

test('cycle: one problem per strongly connected component, naming the nodes off the reported cycle', (t) => {
  // x → y → x and x → z → x: one component, reported once through its first node.
  const problems = validateGraph(graph(theta, det('x', ['theta', 'y', 'z']), det('y', ['x']), det('z', ['x']), cost('c', ['x'])));
  t.deepEqual(summary(problems), [{ code: 'cycle', nodes: ['x', 'y'] }]);
  t.regex(problems[0]!.message, /"z" lies on further same-step cycles/);
});

test('a loop with one lagged edge between temporal nodes is not a cycle', (t) => {
  const spec = graph(
    theta,
    det('h', ['theta', { node: 'g', lag: 1 }], temporal),
    det('g', ['h'], temporal),
    cost('c', ['g'], temporal),
  );
  t.deepEqual(validateGraph(spec), []);
});

test('lag-on-static: a lag on an edge from or to a node without a time axis', (t) => {
  const problems = validateGraph(
    graph(
      theta,
      det('s', ['theta', { node: 's', lag: 1 }]), // static child and parent
      det('u', [{ node: 'theta', lag: 2 }], temporal), // parameters are never temporal
      cost('c', ['s', 'u'], temporal),
    ),
  );
  t.deepEqual(summary(problems), [
    { code: 'lag-on-static', nodes: ['s', 's'] },
    { code: 'lag-on-static', nodes: ['u', 'theta'] },
  ]);
  t.regex(problems[1]!.message, /"u" uses "theta" at lag 2, but "theta" has no time axis/);
});

test('temporal-into-static: a per-sample node cannot depend on a per-time-step one', (t) => {
  const problems = validateGraph(graph(theta, det('r', ['theta'], temporal), cost('total', ['r'])));
  t.deepEqual(summary(problems), [{ code: 'temporal-into-static', nodes: ['total', 'r'] }]);
  t.regex(problems[0]!.message, /mark "total" "temporal": true/);
});

test('parent-kind: a cost used as a parent', (t) => {
  const problems = validateGraph(graph(theta, cost('c', ['theta']), cost('d', ['c'])));
  t.deepEqual(summary(problems), [{ code: 'parent-kind', nodes: ['d', 'c'] }]);
  t.regex(problems[0]!.message, /"d" has the cost "c" as a parent/);
});

test('missing-family: a stochastic node without a distribution family', (t) => {
  const problems = validateGraph(
    graph(theta, { name: 'a', kind: 'stochastic', parents: ['theta'] }, cost('c', ['a'])),
  );
  t.deepEqual(summary(problems), [{ code: 'missing-family', nodes: ['a'] }]);
  t.regex(problems[0]!.message, /stochastic node "a" has no "family"/);
});

test('unreachable-cost: a cost no parameter influences, through any kind and lag', (t) => {
  const spec = graph(
    theta,
    { name: 'obs', kind: 'input', temporal: true },
    { name: 'a', kind: 'stochastic', parents: ['obs', 'theta'], family: categorical, temporal: true },
    // Reached from theta only through an external node and a lagged edge: still influenced.
    { name: 's', kind: 'stochastic', parents: [{ node: 'a', lag: 1 }], family: { type: 'external' }, temporal: true },
    cost('r', ['s'], temporal),
    cost('penalty', ['obs'], temporal),
  );
  const problems = validateGraph(spec);
  t.deepEqual(summary(problems), [{ code: 'unreachable-cost', nodes: ['penalty'] }]);
  t.regex(problems[0]!.message, /no parameter influences cost "penalty"/);
});

test('no-parameters replaces one unreachable-cost per cost', (t) => {
  const problems = validateGraph(graph({ name: 'x', kind: 'input' }, cost('c', ['x']), cost('d', ['x'])));
  t.deepEqual(summary(problems), [{ code: 'no-parameters', nodes: [] }]);
});

test('every problem is reported at once', (t) => {
  const problems = validateGraph(
    graph(
      theta,
      det('x', ['theta', 'ghost', 'y']),
      det('y', ['x']),
      { name: 'a', kind: 'stochastic', parents: ['theta'] },
      cost('c', ['a']),
      cost('c', ['a']),
      cost('lonely', []),
    ),
  );
  t.deepEqual(
    problems.map((p) => p.code),
    ['duplicate-name', 'missing-parent', 'missing-family', 'cycle', 'unreachable-cost'],
  );
});

test('toGraphology keeps one edge per parent reference, lags included', (t) => {
  const g = toGraphology(graph(theta, det('s', ['theta', { node: 's', lag: 1 }, 'ghost'], temporal)));
  t.deepEqual(g.nodes(), ['theta', 's']);
  t.deepEqual(
    g.mapEdges((_e, { lag }, parent, child) => `${parent}->${child}@${lag}`),
    ['theta->s@0', 's->s@1'],
  );
  t.deepEqual([...reachableFrom(g, ['theta'])], ['s']);
  t.deepEqual([...reachableFrom(g, ['s'], 'backward')].sort(), ['s', 'theta']);
  t.deepEqual(findSameStepCycles(g), []);
});

test('runValidate prints a summary for a valid file and problems for an invalid one', async (t) => {
  const lines: string[] = [];
  const out = { log: (s: string) => lines.push(`log ${s}`), error: (s: string) => lines.push(`error ${s}`) };

  t.is(await runValidate(example('rl-chain.json'), out), 0);
  t.deepEqual(lines.splice(0), [`log ${example('rl-chain.json')}: valid (4 nodes: 1 parameter, 2 stochastic, 1 cost)`]);

  t.is(await runValidate(example('cycle.json'), out), 1);
  t.is(lines.length, 1);
  t.true(lines.splice(0)[0]!.startsWith(`error ${example('cycle.json')}: cycle: x → y → z → x`));

  t.is(await runValidate(example('malformed.json'), out), 1);
  t.deepEqual(lines.splice(0), [
    `error ${example('malformed.json')}: nodes[2].kind: expected one of parameter, input, stochastic, deterministic, cost, got "stochatic"`,
    `error ${example('malformed.json')}: nodes[3].parents[0].lag: expected a whole number ≥ 0, got -1`,
  ]);

  t.is(await runValidate(example('no-such-graph.json'), out), 1);
  t.deepEqual(lines.splice(0), [`error ${example('no-such-graph.json')}: no such file`]);
});
