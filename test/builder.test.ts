/**
 * The typed builder. Its type errors are part of the test: `npm test` type-checks this file, and each
 * `@ts-expect-error` fails the type-check if the line it marks stops being an error.
 */
import test from 'ava';
import { DuplicateNodeError, UndeclaredParentError, lag, scg } from '../src/scg/builder.ts';
import { encodeGraphSpec, decodeGraphSpec } from '../src/scg/decode.ts';
import { validateGraph } from '../src/scg/validate.ts';
import { rlChain } from './helpers/rl-chain.ts';

test('a built graph is valid, round-trips through its JSON form, and keeps one function per computed node', (t) => {
  const graph = rlChain();
  t.deepEqual(validateGraph(graph.spec), []);
  const decoded = decodeGraphSpec(JSON.parse(JSON.stringify(encodeGraphSpec(graph.spec))));
  t.is(decoded._tag, 'Right');
  if (decoded._tag === 'Right') t.deepEqual(decoded.right, graph.spec);
  t.deepEqual([...graph.impls.keys()], ['a']);
  t.deepEqual(graph.spec.nodes.find((n) => n.name === 's'), {
    kind: 'stochastic',
    name: 's',
    temporal: true,
    family: { type: 'external' },
    parents: [
      { node: 's', lag: 1 },
      { node: 'a', lag: 1 },
    ],
  });
});

test('declaring a name twice throws; a lag must be a whole number ≥ 1', (t) => {
  const b = scg().parameter('theta', { shape: [1] });
  t.throws(() => b.parameter('theta', { shape: [2] }), { instanceOf: DuplicateNodeError, message: /'theta' is declared twice/ });
  t.throws(() => lag('s', 0), { instanceOf: RangeError });
  t.throws(() => lag('s', 1.5), { instanceOf: RangeError });
});

test('builders are immutable: extending one in two directions does not interfere', (t) => {
  const base = scg().parameter('theta', { shape: [1] });
  const one = base.cost('c1', { parents: ['theta'] }).build();
  const two = base.cost('c2', { parents: ['theta'] }).build();
  t.deepEqual(one.spec.nodes.map((n) => n.name), ['theta', 'c1']);
  t.deepEqual(two.spec.nodes.map((n) => n.name), ['theta', 'c2']);
});

test('type errors: undeclared parents, undeclared lagged parents at build(), wrong distribution parameters', (t) => {
  const b = scg().parameter('theta', { shape: [2] });
  // @ts-expect-error 'x' is not declared
  b.cost('c', { parents: ['x'] });
  const pending = b.stochastic('s', { temporal: true, family: { type: 'external' }, parents: [lag('a', 1)] });
  // @ts-expect-error the lagged parent 'a' is never declared
  t.throws(() => pending.build(), { instanceOf: UndeclaredParentError, message: /'s' → 'a'/ });
  const complete = pending
    .stochastic('a', {
      temporal: true,
      family: { type: 'categorical', categories: 2 },
      parents: ['s', 'theta'],
      distribution: ({ theta }) => ({ logits: theta }),
    })
    .build();
  t.is(complete.spec.nodes.length, 3);
  b.stochastic('g', {
    family: { type: 'gaussian', dim: 2 },
    parents: ['theta'],
    // @ts-expect-error a Gaussian node returns { mean, logStd }, not logits
    distribution: ({ theta }) => ({ logits: theta }),
  });
  b.stochastic('k', {
    family: { type: 'categorical', categories: 2 },
    parents: ['theta'],
    // @ts-expect-error 'phi' is not a parent of this node
    distribution: ({ phi }) => ({ logits: phi }),
  });
});
