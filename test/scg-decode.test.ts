import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import test from 'ava';
import fc from 'fast-check';
import { isLeft, isRight, type Either } from 'fp-ts/lib/Either.js';
import * as io from 'io-ts';
import {
  decodeGraphSpec,
  describeValidationErrors,
  encodeGraphSpec,
  formatDecodeError,
  parseGraphJson,
  readGraphFile,
  type DecodeError,
} from '../src/scg/decode.ts';
import type { GraphSpec } from '../src/scg/spec.ts';

const example = (name: string) => new URL(`../examples/graphs/${name}`, import.meta.url).pathname;

/** The formatted errors of a decoding that must fail. */
function errorsOf(result: Either<DecodeError[], unknown>): string[] {
  if (!isLeft(result)) throw new Error(`expected errors, decoded ${JSON.stringify(result.right)}`);
  return result.left.map(formatDecodeError);
}
const nodesErrors = (...nodes: unknown[]) => errorsOf(decodeGraphSpec({ nodes }));

const theta = { name: 'theta', kind: 'parameter', shape: [2] };

test('the example graphs decode; malformed.json reports each bad field by its path', async (t) => {
  t.true(isRight(await readGraphFile(example('rl-chain.json'))));
  t.true(isRight(await readGraphFile(example('cycle.json')))); // well-formed; the cycle is validation's business
  t.deepEqual(errorsOf(await readGraphFile(example('malformed.json'))), [
    'nodes[2].kind: expected one of parameter, input, stochastic, deterministic, cost, got "stochatic"',
    'nodes[3].parents[0].lag: expected a whole number ≥ 0, got -1',
  ]);
});

test('parents are objects in memory whichever form the file uses', (t) => {
  const decoded = decodeGraphSpec({
    nodes: [theta, { name: 'x', kind: 'deterministic', parents: ['theta', { node: 'x', lag: 2 }, { node: 'theta' }] }],
  });
  if (isLeft(decoded)) return t.fail();
  t.deepEqual(decoded.right.nodes[1], {
    name: 'x',
    kind: 'deterministic',
    parents: [
      { node: 'theta', lag: 0 },
      { node: 'x', lag: 2 },
      { node: 'theta', lag: 0 },
    ],
  });
});

test('files in canonical form survive decode → encode unchanged', async (t) => {
  for (const name of ['rl-chain.json', 'cycle.json']) {
    const json: unknown = JSON.parse(await readFile(example(name), 'utf8'));
    const decoded = decodeGraphSpec(json);
    if (isLeft(decoded)) return t.fail(name);
    t.deepEqual(encodeGraphSpec(decoded.right), json, name);
  }
});

test('a misspelled kind lists the kinds, not every branch of the union', (t) => {
  t.deepEqual(nodesErrors(theta, { name: 'a', kind: 'stochatic', parents: [] }), [
    'nodes[1].kind: expected one of parameter, input, stochastic, deterministic, cost, got "stochatic"',
  ]);
  t.deepEqual(nodesErrors({ name: 'a', parents: [] }), [
    'nodes[0].kind: missing; expected one of parameter, input, stochastic, deterministic, cost',
  ]);
  t.deepEqual(nodesErrors(7), ['nodes[0]: expected an object with a "kind" field, got 7']);
});

test('errors inside a node come from the branch its kind selects', (t) => {
  t.deepEqual(
    nodesErrors(
      { name: 'a', kind: 'stochastic', parents: [], family: { type: 'gauss' } },
      { name: 'b', kind: 'stochastic', parents: [], family: { type: 'gaussian' } },
      { name: 'c', kind: 'stochastic', family: { type: 'categorical', categories: 0 } },
      { kind: 'parameter', shape: [2, 1.5] },
    ),
    [
      'nodes[0].family.type: expected one of categorical, gaussian, external, trajectory, got "gauss"',
      'nodes[1].family.dim: missing; expected a whole number ≥ 1',
      'nodes[2].parents: missing; expected an array',
      'nodes[2].family.categories: expected a whole number ≥ 1, got 0',
      'nodes[3].name: missing; expected a string',
      'nodes[3].shape[1]: expected a whole number ≥ 1, got 1.5',
    ],
  );
});

test('a bad parent reference names the parent by its index', (t) => {
  t.deepEqual(
    nodesErrors(theta, { name: 'x', kind: 'cost', parents: [5, { lag: 1 }, { node: 'theta', lag: -1 }, { node: 'theta', lag: '1' }] }),
    [
      'nodes[1].parents[0]: expected a node name or {"node": name, "lag": steps back}, got 5',
      'nodes[1].parents[1].node: missing; expected a string',
      'nodes[1].parents[2].lag: expected a whole number ≥ 0, got -1',
      'nodes[1].parents[3].lag: expected a whole number ≥ 0, got "1"',
    ],
  );
});

test('the top level must be an object with nodes', (t) => {
  t.deepEqual(errorsOf(decodeGraphSpec([])), ['expected an object, got []']);
  t.deepEqual(errorsOf(decodeGraphSpec({})), ['nodes: missing; expected an array']);
  t.deepEqual(errorsOf(decodeGraphSpec({ nodes: [], horizon: 0 })), ['horizon: expected a whole number ≥ 1, got 0']);
});

test('unknown fields are errors, at any depth, along with type errors', (t) => {
  t.deepEqual(
    errorsOf(
      decodeGraphSpec({
        nodes: [
          { ...theta, temporal: true },
          { name: 'a', kind: 'stochastic', temporl: true, parents: [{ node: 'theta', lags: 1 }], family: { type: 'external', n: 1 } },
          { name: 'b', kind: 'cost', parents: 'a' },
        ],
        'my notes': 'x',
      }),
    ),
    [
      'nodes[2].parents: expected an array, got "a"',
      '["my notes"]: unknown field (the fields allowed here are nodes, name, horizon)',
      'nodes[0].temporal: unknown field (the fields allowed here are name, kind, shape, label)',
      'nodes[1].temporl: unknown field (the fields allowed here are name, kind, parents, label, temporal, family)',
      'nodes[1].parents[0].lags: unknown field (the fields allowed here are node, lag)',
      'nodes[1].family.n: unknown field (the fields allowed here are type)',
    ],
  );
});

test('invalid JSON and unreadable files are errors, not exceptions', async (t) => {
  t.deepEqual(errorsOf(parseGraphJson('{"nodes": [\n  {"name": "a",}\n]}')), [
    'not valid JSON: Expected double-quoted property name in JSON at position 27 (line 2, column 16)',
  ]);
  t.deepEqual(errorsOf(parseGraphJson('')), ['not valid JSON: Unexpected end of JSON input']);
  t.deepEqual(errorsOf(await readGraphFile(example('does-not-exist.json'))), ['no such file']);
  t.deepEqual(errorsOf(await readGraphFile(example(''))), ['is a directory, not a graph file']);
});

test('describeValidationErrors: an untagged union reports the branch that got furthest, or the union', (t) => {
  const codec = io.type({ x: io.union([io.string, io.type({ a: io.number })]) });
  const describe = (u: unknown) => {
    const result = codec.decode(u);
    return isLeft(result) ? describeValidationErrors(result.left).map(formatDecodeError) : [];
  };
  t.deepEqual(describe({ x: { a: 'no' } }), ['x.a: expected a number, got "no"']);
  t.deepEqual(describe({ x: 5 }), ['x: expected a string or an object, got 5']);
});

// ---------------------------------------------------------------------------------------------------
// Round trip over random specs

// Plain objects, as JSON.parse makes them (fast-check's default null prototype would never deep-equal).
const plain = { noNullPrototype: true } as const;
const name = fc.constantFrom('theta', 'phi', 's', 'a', 'r', 'x_1', 'node with spaces');
const optional = { label: fc.string(), temporal: fc.boolean() };
const parents = fc.array(fc.oneof(name.map((node) => ({ node, lag: 0 })), fc.record({ node: name, lag: fc.nat(5) }, plain)), {
  maxLength: 4,
});
const shape = fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 3 });
const family = fc.oneof(
  fc.record({ type: fc.constant('categorical'), categories: fc.integer({ min: 1, max: 10 }) }, plain),
  fc.record({ type: fc.constant('gaussian'), dim: fc.integer({ min: 1, max: 10 }) }, plain),
  fc.record({ type: fc.constant('external') }, plain),
);
const withParents = (kind: string, extra = {}) =>
  fc.record({ name, kind: fc.constant(kind), parents, ...optional, ...extra }, { requiredKeys: ['name', 'kind', 'parents'], ...plain });
const node = fc.oneof(
  fc.record({ name, kind: fc.constant('parameter'), shape, label: fc.string() }, { requiredKeys: ['name', 'kind', 'shape'], ...plain }),
  fc.record({ name, kind: fc.constant('input'), shape, ...optional }, { requiredKeys: ['name', 'kind'], ...plain }),
  withParents('stochastic', { family }),
  withParents('deterministic', { shape }),
  withParents('cost'),
);
const spec = fc.record(
  { nodes: fc.array(node, { maxLength: 6 }), name: fc.string(), horizon: fc.integer({ min: 1, max: 500 }) },
  { requiredKeys: ['nodes'], ...plain },
) as fc.Arbitrary<unknown> as fc.Arbitrary<GraphSpec>;

test('decode(encode(spec)) is spec, through JSON text', (t) => {
  fc.assert(
    fc.property(spec, (s) => {
      const decoded = parseGraphJson(JSON.stringify(encodeGraphSpec(s)));
      return isRight(decoded) && isDeepStrictEqual(decoded.right, s);
    }),
    { numRuns: 300 },
  );
  t.pass();
});
