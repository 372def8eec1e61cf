/**
 * Property tests over random small graphs (test/helpers/random-graphs.ts): static DAGs and temporal
 * graphs with lagged and self-lagged edges, given random linear functions by `instantiate` and checked
 * against the exactness oracle, which enumerates every joint outcome. Each property runs from a fixed
 * seed, so a run is reproducible; on failure fast-check shrinks the graph and prints it with the seed
 * and path to replay it.
 *
 * Every run must leave the number of live tensors as it found it (`leakFree`).
 */
import * as tf from '@tensorflow/tfjs';
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { selectBackend } from '../src/backend.ts';
import { hessian, maxAbs, subtract, type Matrix } from '../src/oracle/derivatives.ts';
import { instantiate } from '../src/oracle/instantiate.ts';
import { costsDependOnParameters, derivatives, hessianTerms, oracle, type Oracle } from '../src/oracle/oracle.ts';
import type { BuiltinProblem } from '../src/oracle/problems.ts';
import { exactTolerance } from '../src/oracle/verify.ts';
import { parentsOf, isTemporal, type GraphSpec, type NodeSpec } from '../src/scg/spec.ts';
import { validateGraph } from '../src/scg/validate.ts';
import { compile } from '../src/surrogates/compile.ts';
import { estimatorName, estimators, type Estimator } from '../src/surrogates/estimators.ts';
import { evaluateGraph } from '../src/surrogates/evaluate.ts';
import { jointOutcomes, parameterCount, randomGraphArbitrary, type RandomGraph } from './helpers/random-graphs.ts';

test.before(async () => {
  await selectBackend();
});

/** One seed for every property, so that failures replay; fast-check prints the path to the shrunk case. */
const seed = 0x5eed;
const settings = (numRuns: number): fc.Parameters<[RandomGraph]> => ({ seed, numRuns, includeErrorInReport: true });

/** Runs `body` and fails the run if it changed the number of live tensors. */
const leakFree =
  <A extends unknown[]>(body: (...args: A) => void) =>
  (...args: A): void => {
    const before = tf.memory().numTensors;
    body(...args);
    const leaked = tf.memory().numTensors - before;
    if (leaked !== 0) throw new Error(`${leaked} tensors were not disposed`);
  };

/** Runs a fast-check property and checks that the whole run disposed every tensor it made. */
const assertProperty = <A extends unknown[]>(t: ExecutionContext, property: fc.IProperty<A>, params: fc.Parameters<A>) => {
  const before = tf.memory().numTensors;
  fc.assert(property, params);
  t.is(tf.memory().numTensors, before, 'live tensors after the property run');
};

/** The instantiated problem of a spec and its oracle, disposed after `body` whatever happens. */
const withOracle = (spec: GraphSpec, body: (o: Oracle, problem: BuiltinProblem) => void): void => {
  const problem = instantiate(spec, spec.name ?? 'random');
  const o = oracle(problem);
  try {
    body(o, problem);
  } finally {
    o.dispose();
  }
};

const check = (ok: boolean, message: () => string): void => {
  if (!ok) throw new Error(message());
};

/**
 * measured ≈ reference: max |a − b| below `tolerance` times the scale of the computation, by default
 * max |reference| (the relative error); a Hessian passes the size of the terms it is summed from, since
 * it can be a small difference of large terms (H1 ≈ −H2), where float32 rounding of the terms
 * dominates an error relative to the difference.
 */
const expectClose = (what: string, measured: number[] | Matrix, reference: number[] | Matrix, scale = maxAbs(reference), tolerance = exactTolerance): void => {
  const err = maxAbs(subtract(measured as number[], reference as number[]));
  check(
    err <= tolerance * scale,
    () =>
      `${what}: error ${err.toExponential(2)} is ${(err / scale).toExponential(2)} of the scale ${scale.toExponential(2)} (tolerance ${tolerance})\n` +
      `  measured  ${JSON.stringify(measured)}\n  reference ${JSON.stringify(reference)}`,
  );
};

/**
 * The tolerance of a Hessian against the size of its terms. Float32 rounding reaches ~2·10⁻⁴ of that
 * size on some random graphs of a few hundred outcomes (sums over outcomes cancel), while a wrong
 * estimator or credit assignment is off by 10⁻² or more; gradients are held to `exactTolerance`.
 */
const hessianTolerance = 1e-3;

const addMatrices = (a: Matrix, b: Matrix): Matrix => a.map((row, i) => row.map((x, j) => x + b[i]![j]!));

// ---- 1. Validation ----

const byNameOf = (spec: GraphSpec) => new Map(spec.nodes.map((n) => [n.name, n]));

/** Lag-0 children of every node (the same-step graph), for an independent reachability search. */
const sameStepReach = (spec: GraphSpec, from: string, direction: 'down' | 'up'): Set<string> => {
  const edges = spec.nodes.flatMap((n) => parentsOf(n).filter((p) => p.lag === 0).map((p) => [p.node, n.name] as const));
  const reached = new Set([from]);
  const frontier = [from];
  for (let x = frontier.pop(); x !== undefined; x = frontier.pop()) {
    for (const [parent, child] of edges) {
      const [a, b] = direction === 'down' ? [parent, child] : [child, parent];
      if (a === x && !reached.has(b)) {
        reached.add(b);
        frontier.push(b);
      }
    }
  }
  return reached;
};

test('every generated graph is valid, and the generator covers the structures it promises', (t) => {
  const seen = new Set<string>();
  const note = (g: RandomGraph) => {
    const byName = byNameOf(g.spec);
    seen.add(g.flavour);
    for (const n of g.spec.nodes) {
      for (const p of parentsOf(n)) {
        const parent = byName.get(p.node)!;
        if (p.lag === 1 && p.node === n.name) seen.add('self-lag');
        if (p.lag === 1 && p.node !== n.name) seen.add('lag between nodes');
        if (n.kind === 'stochastic' && parent.kind === 'deterministic') seen.add('deterministic into stochastic');
        if (isTemporal(n) && parent.kind !== 'parameter' && !isTemporal(parent)) seen.add('static into temporal');
      }
      if (n.kind === 'stochastic' && isTemporal(n)) seen.add('temporal stochastic');
      if (n.kind === 'cost' && isTemporal(n) && parentsOf(n).every((p) => !isTemporal(byName.get(p.node)!))) seen.add('temporal cost of static parents');
      if (n.kind === 'cost' && parentsOf(n).some((p) => byName.get(p.node)!.kind === 'parameter')) seen.add('cost with a parameter parent');
    }
    if (g.outcomes > 200) seen.add('over 200 outcomes');
    if (g.spec.nodes.filter((n) => n.kind === 'parameter').length === 2) seen.add('two parameters');
  };
  assertProperty(
    t,
    fc.property(
      randomGraphArbitrary(),
      leakFree((g: RandomGraph) => {
        note(g);
        const problems = validateGraph(g.spec);
        check(problems.length === 0, () => `problems: ${JSON.stringify(problems)}`);
        check(jointOutcomes(g.spec) === g.outcomes && g.outcomes <= 500, () => `outcomes ${g.outcomes}`);
        check(parameterCount(g.spec) >= 1 && parameterCount(g.spec) <= 8, () => `parameters ${parameterCount(g.spec)}`);
        for (const n of g.spec.nodes) {
          const parents = parentsOf(n).map((p) => byNameOf(g.spec).get(p.node)!);
          if (n.kind === 'stochastic') check(parents.some((p) => p.kind === 'parameter'), () => `${n.name} has no parameter parent`);
          if (n.kind === 'cost') {
            const stochastic = parentsOf(n).filter((p) => p.lag === 0 && byNameOf(g.spec).get(p.node)!.kind === 'stochastic');
            check(stochastic.length >= 1 && stochastic.length <= 2, () => `${n.name} has ${stochastic.length} stochastic parents`);
          }
        }
        check((g.flavour === 'static') === ((g.spec.horizon ?? 1) === 1), () => `${g.flavour} graph of horizon ${g.spec.horizon}`);
      }),
    ),
    settings(300),
  );
  t.deepEqual(
    [...seen].sort(),
    [
      'cost with a parameter parent',
      'deterministic into stochastic',
      'lag between nodes',
      'over 200 outcomes',
      'self-lag',
      'static',
      'static into temporal',
      'temporal',
      'temporal cost of static parents',
      'temporal stochastic',
      'two parameters',
    ],
  );
});

/**
 * A graph with one more lag-0 edge v → u, where u reaches v through lag-0 edges (u = v: a self-loop),
 * chosen so that the edge breaks no other rule: v is not a cost, and not temporal when u is static.
 */
const withCycle = fc
  .tuple(randomGraphArbitrary(), fc.nat(), fc.nat())
  .map(([g, i, j]) => {
    const targets = g.spec.nodes.filter((n) => n.kind === 'stochastic' || n.kind === 'deterministic');
    const u = targets[i % targets.length]!;
    const byName = byNameOf(g.spec);
    const sources = [...sameStepReach(g.spec, u.name, 'down')]
      .map((name) => byName.get(name)!)
      .filter((v) => v.kind !== 'cost' && (isTemporal(u) || !isTemporal(v)));
    const v = sources[j % sources.length]!;
    const nodes = g.spec.nodes.map((n): NodeSpec => (n.name === u.name && n.kind !== 'parameter' && n.kind !== 'input' ? { ...n, parents: [...n.parents, { node: v.name, lag: 0 }] } : n));
    return { original: g.spec, spec: { ...g.spec, nodes }, u: u.name, v: v.name };
  });

test('adding a lag-0 edge that closes a cycle makes validation report that cycle, naming its nodes', (t) => {
  assertProperty(
    t,
    fc.property(
      withCycle,
      leakFree(({ original, spec, u, v }) => {
        const problems = validateGraph(spec);
        check(problems.length === 1 && problems[0]!.code === 'cycle', () => `expected one cycle problem, got ${JSON.stringify(problems)}`);
        const { nodes: cycle, message } = problems[0]!;
        // Every cycle of the new graph uses the new edge v → u; the nodes on one lie on a path u ⇝ v.
        const component = [...sameStepReach(original, u, 'down')].filter((x) => sameStepReach(original, v, 'up').has(x));
        check(cycle.includes(u) && cycle.includes(v), () => `cycle ${cycle.join(' → ')} misses ${u} or ${v}`);
        check(new Set(cycle).size === cycle.length && cycle.every((x) => component.includes(x)), () => `cycle ${cycle.join(' → ')} is not within ${component}`);
        const byName = byNameOf(spec);
        cycle.forEach((x, k) => {
          const next = cycle[(k + 1) % cycle.length]!;
          check(
            parentsOf(byName.get(next)!).some((p) => p.node === x && p.lag === 0),
            () => `${x} is not a lag-0 parent of ${next} in the reported cycle ${cycle.join(' → ')}`,
          );
        });
        check(message.startsWith(`${[...cycle, cycle[0]].join(' → ')} is a cycle`), () => message);
        // Nodes of the component off the reported cycle are named too.
        check(component.every((x) => message.includes(x)), () => `the message does not name all of ${component}: ${message}`);
      }),
    ),
    { seed, numRuns: 300, includeErrorInReport: true },
  );
});

// ---- 2. What the surrogates evaluate to ----

/** Per outcome: the sum of its costs, and each estimator's per-sample surrogate, at θ₀. */
const forwardValues = (o: Oracle, ests: readonly Estimator[]): { costs: number[]; surrogates: number[][] } => {
  tf.engine().startScope();
  try {
    const params = o.layout.unflatten(tf.tensor1d([...o.layout.flat]));
    const batch = o.enumeration.batch;
    const ev = evaluateGraph(o.problem.graph, params, batch);
    const total = tf.addN([...ev.costs.values()].map((c) => (c.rank === 2 ? tf.sum(c, 1) : c)));
    return {
      costs: Array.from(total.dataSync()),
      surrogates: ests.map((e) => Array.from(compile(o.problem.graph, e).perSample(params, batch).dataSync())),
    };
  } finally {
    tf.engine().endScope();
  }
};

test('DiCE, DiCE + baseline and TMAML evaluate to the sum of the costs of every enumerated outcome', (t) => {
  assertProperty(
    t,
    fc.property(
      randomGraphArbitrary(),
      leakFree((g: RandomGraph) =>
        withOracle(g.spec, (o, problem) => {
          check(o.enumeration.outcomes === g.outcomes, () => `the oracle enumerated ${o.enumeration.outcomes} outcomes, expected ${g.outcomes}`);
          const ests = [estimators.dice(), estimators.diceBaseline(problem.baselines), estimators.tmaml(problem.baselines)];
          const { costs, surrogates } = forwardValues(o, ests);
          const scale = Math.max(1, ...costs.map(Math.abs));
          ests.forEach((e, k) => {
            const worst = Math.max(...costs.map((c, b) => Math.abs(surrogates[k]![b]! - c)));
            check(worst <= 1e-5 * scale, () => `${estimatorName(e)}: per-sample surrogate differs from the cost sum by ${worst}`);
          });
        }),
      ),
    ),
    settings(100),
  );
});

// ---- 3–5. Expected derivatives against the exact ones ----

test("DiCE's expected gradient and Hessian and TMAML's expected Hessian are exact", (t) => {
  assertProperty(
    t,
    fc.property(
      randomGraphArbitrary(),
      leakFree((g: RandomGraph) =>
        withOracle(g.spec, (o, problem) => {
          const theta = o.layout.flat;
          const exact = derivatives(o.exact, theta, [], 2);
          const dice = derivatives(o.expected(estimators.dice()), theta, [], 2);
          // PGT's expected Hessian is E[Σ_w ∇²ℓ_w Q_w] plus the costs' own: the size of the terms of ∇²J.
          const scale = Math.max(maxAbs(exact.order2), maxAbs(hessian(o.expected(estimators.pgt()), theta)));
          expectClose('DiCE gradient', dice.order1, exact.order1);
          expectClose('DiCE Hessian', dice.order2, exact.order2, scale, hessianTolerance);
          expectClose('TMAML Hessian', hessian(o.expected(estimators.tmaml(problem.baselines)), theta), exact.order2, scale, hessianTolerance);
        }),
      ),
    ),
    settings(100),
  );
});

test('every estimator has an unbiased expected gradient', (t) => {
  assertProperty(
    t,
    fc.property(
      randomGraphArbitrary(),
      leakFree((g: RandomGraph) =>
        withOracle(g.spec, (o, problem) => {
          const theta = o.layout.flat;
          const exact = derivatives(o.exact, theta, [], 1).order1;
          const b = problem.baselines;
          for (const e of [estimators.pgt(), estimators.lvc(), estimators.loadedDice(0.5), estimators.diceBaseline(b), estimators.tmaml(b)]) {
            expectClose(`${estimatorName(e)} gradient`, derivatives(o.expected(e), theta, [], 1).order1, exact);
          }
        }),
      ),
    ),
    settings(100),
  );
});

/**
 * Pairs (w, c) of a per-sample stochastic node and a temporal cost where w influences some steps of c
 * but not all (w reaches c only through a lagged edge), read off the oracle's explicitly unrolled graph.
 */
const partialBroadcasts = (o: Oracle): string[] => {
  const { spec } = o.problem.graph;
  const en = o.enumeration;
  return spec.nodes
    .filter((w) => w.kind === 'stochastic' && !isTemporal(w))
    .flatMap((w) =>
      spec.nodes
        .filter((c) => c.kind === 'cost' && isTemporal(c))
        .filter((c) => {
          const steps = Array.from({ length: en.horizon }, (_, step) => en.ancestors.get(en.instanceKey({ node: c.name, step }))!.has(en.instanceKey({ node: w.name, step: 0 })));
          return steps.some((x) => x) && !steps.every((x) => x);
        })
        .map((c) => `${w.name} → ${c.name}`),
    );
};

test("when costs depend on θ only through sampling, LVC's expected Hessian is H1 + H2 and PGT's is H2", (t) => {
  let pgtChecked = 0;
  const runs = 100;
  assertProperty(
    t,
    fc.property(
      randomGraphArbitrary({ directParameterCosts: false }),
      leakFree((g: RandomGraph) =>
        withOracle(g.spec, (o) => {
          check(!costsDependOnParameters(o), () => 'a cost depends on θ directly, but the generator was told to avoid that');
          const theta = o.layout.flat;
          const { h1, h2, h12 } = hessianTerms(o);
          const scale = Math.max(maxAbs(h1), maxAbs(h2), maxAbs(h12));
          expectClose('H1 + H2 + H12 + H12ᵀ', addMatrices(addMatrices(h1, h2), h12), hessian(o.exact, theta), scale, hessianTolerance);
          expectClose('LVC Hessian', hessian(o.expected(estimators.lvc()), theta), addMatrices(h1, h2), scale, hessianTolerance);
          pgtChecked++;
          expectClose('PGT Hessian', hessian(o.expected(estimators.pgt()), theta), h2, Math.max(maxAbs(h1), maxAbs(h2)), hessianTolerance);
        }),
      ),
    ),
    settings(runs),
  );
  t.is(pgtChecked, runs, 'PGT is checked on every graph');
});

// ---- Bugs the properties found, each kept as a minimal graph ----

const categorical = { type: 'categorical', categories: 2 } as const;

test('a per-sample node that reaches a temporal cost only through a lag is credited with the steps it reaches', (t) => {
  // x → s_t → c_{t+1}: c_0 reads s_{−1} (padding), so x influences c_1 only. Crediting x with every
  // step of c (as the influence query once did) makes PGT's Q_x also sum c_0, and its Hessian not H2.
  const spec: GraphSpec = {
    horizon: 2,
    nodes: [
      { name: 'theta', kind: 'parameter', shape: [2] },
      { name: 'x', kind: 'stochastic', family: categorical, parents: [{ node: 'theta', lag: 0 }] },
      { name: 's', kind: 'stochastic', temporal: true, family: categorical, parents: [{ node: 'theta', lag: 0 }, { node: 'x', lag: 0 }] },
      { name: 'c', kind: 'cost', temporal: true, parents: [{ node: 's', lag: 1 }] },
    ],
  };
  withOracle(spec, (o) => {
    t.deepEqual(partialBroadcasts(o), ['x → c']);
    const { h1, h2 } = hessianTerms(o);
    const pgt = hessian(o.expected(estimators.pgt()), o.layout.flat);
    t.true(maxAbs(subtract(pgt, h2)) <= hessianTolerance * Math.max(maxAbs(h1), maxAbs(h2)), `PGT ${JSON.stringify(pgt)} vs H2 ${JSON.stringify(h2)}`);
  });
});

test('a per-sample deterministic node computed from parameters only can feed a temporal node', (t) => {
  // Its value has no batch axis (shape []); giving it a time axis with expandDims(x, 1) once failed
  // with "Axis must be <= rank of the tensor".
  const spec: GraphSpec = {
    horizon: 2,
    nodes: [
      { name: 'theta', kind: 'parameter', shape: [2] },
      { name: 'd', kind: 'deterministic', parents: [{ node: 'theta', lag: 0 }] },
      { name: 's', kind: 'stochastic', temporal: true, family: categorical, parents: [{ node: 'theta', lag: 0 }, { node: 'd', lag: 0 }] },
      { name: 'c', kind: 'cost', temporal: true, parents: [{ node: 's', lag: 0 }] },
    ],
  };
  tf.engine().startScope();
  try {
    t.notThrows(() => withOracle(spec, (o) => void derivatives(o.exact, o.layout.flat, [], 1)));
  } finally {
    tf.engine().endScope();
  }
});

test('the oracle takes a Hessian with respect to a single scalar parameter', (t) => {
  // Basis vectors once came from tf.oneHot(…, d), which needs depth d ≥ 2.
  t.notThrows(() => hessian((theta) => tf.sum(tf.square(theta)), [1]));
});
