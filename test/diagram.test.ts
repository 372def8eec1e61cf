/** Diagrams of graph specs: well-formed SVG, one shape per node by kind, no overlaps, exact highlighting. */
import * as fs from 'node:fs';
import test from 'ava';
import fc from 'fast-check';
import { isRight } from 'fp-ts/lib/Either.js';
import { parseGraphJson } from '../src/scg/decode.ts';
import { edgeKey, layoutDiagram, parseLabel, renderDiagram, shapeOfKind, type Box, type DiagramLayout } from '../src/scg/diagram.ts';
import { parentsOf, type GraphSpec } from '../src/scg/spec.ts';
import { graphSpecArbitrary } from './helpers/random-graphs.ts';
import { wellFormedXml } from './helpers/xml.ts';

const readGraph = (file: string): GraphSpec => {
  const decoded = parseGraphJson(fs.readFileSync(file, 'utf8'));
  if (!isRight(decoded)) throw new Error(`${file} does not decode`);
  return decoded.right;
};

/** An 8-node static DAG with every kind: two parameters, an input, three stochastic nodes, a deterministic node and a cost. */
const staticDag: GraphSpec = {
  name: 'static-8',
  nodes: [
    { name: 'theta', kind: 'parameter', shape: [2], label: '\\theta' },
    { name: 'phi', kind: 'parameter', shape: [2], label: "\\theta'" },
    { name: 'x', kind: 'input', label: 'x_{in}' },
    { name: 'z', kind: 'stochastic', parents: [{ node: 'theta', lag: 0 }, { node: 'x', lag: 0 }], family: { type: 'categorical', categories: 2 }, label: '\\tau_0' },
    { name: 'h', kind: 'deterministic', parents: [{ node: 'z', lag: 0 }, { node: 'phi', lag: 0 }], label: "R(\\tau')" },
    { name: 'y', kind: 'stochastic', parents: [{ node: 'h', lag: 0 }], family: { type: 'gaussian', dim: 1 } },
    { name: 'w', kind: 'stochastic', parents: [{ node: 'z', lag: 0 }, { node: 'phi', lag: 0 }], family: { type: 'categorical', categories: 3 } },
    { name: 'c', kind: 'cost', parents: [{ node: 'y', lag: 0 }, { node: 'w', lag: 0 }, { node: 'x', lag: 0 }], label: 'c_1' },
  ],
};

const graphs: [string, GraphSpec][] = [
  ['rl-chain', readGraph('examples/graphs/rl-chain.json')],
  ['categorical-mdp', readGraph('examples/graphs/categorical-mdp.json')],
  ['static 8-node DAG', staticDag],
];

const allEdgeKeys = (spec: GraphSpec): string[] => [...new Set(spec.nodes.flatMap((n) => parentsOf(n).map((p) => edgeKey(p.node, n.name, p.lag))))];

const attr = (tag: string, name: string): number => Number(new RegExp(`\\s${name}="([^"]+)"`).exec(tag)![1]);

/** Each node group of an SVG: its name, kind, declared shape, shape element and that element's bounding box. */
const svgNodes = (svg: string) =>
  [...svg.matchAll(/<g class="node" data-node="([^"]*)" data-kind="([^"]*)" data-shape="([^"]*)">([\s\S]*?)<\/g>/g)].map((m) => {
    const body = m[4]!;
    const shapes = [...body.matchAll(/<(circle|rect|polygon|ellipse|path)\s[^>]*>/g)];
    const el = shapes[0]![0];
    let box: Box;
    if (el.startsWith('<circle')) {
      const [cx, cy, r] = [attr(el, 'cx'), attr(el, 'cy'), attr(el, 'r')];
      box = { x: cx - r, y: cy - r, width: 2 * r, height: 2 * r };
    } else if (el.startsWith('<rect')) {
      box = { x: attr(el, 'x'), y: attr(el, 'y'), width: attr(el, 'width'), height: attr(el, 'height') };
    } else {
      const pts = /points="([^"]+)"/.exec(el)![1]!.split(' ').map((p) => p.split(',').map(Number) as [number, number]);
      const xs = pts.map((p) => p[0]);
      const ys = pts.map((p) => p[1]);
      box = { x: Math.min(...xs), y: Math.min(...ys), width: Math.max(...xs) - Math.min(...xs), height: Math.max(...ys) - Math.min(...ys) };
    }
    return { name: m[1]!, kind: m[2]!, shape: m[3]!, element: el.slice(1, el.indexOf(' ')), shapeCount: shapes.length, texts: (body.match(/<text[\s>]/g) ?? []).length, box };
  });

const svgEdges = (svg: string) =>
  [...svg.matchAll(/<g class="edge" data-from="([^"]*)" data-to="([^"]*)" data-lag="(\d+)" data-highlighted="(true|false)">([\s\S]*?)<\/g>/g)].map((m) => ({
    key: edgeKey(m[1]!, m[2]!, Number(m[3])),
    highlighted: m[4] === 'true',
    body: m[5]!,
  }));

const overlap = (a: Box, b: Box): boolean => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
const inside = (a: Box, outer: { width: number; height: number }): boolean => a.x >= 0 && a.y >= 0 && a.x + a.width <= outer.width && a.y + a.height <= outer.height;

const elementFor = { circle: 'circle', square: 'rect', 'grey-square': 'rect', hexagon: 'polygon', octagon: 'polygon' } as const;

/** Layout invariants: nodes pairwise apart, lag labels clear of nodes, legend clear of everything, all inside the canvas. */
const checkLayout = (t: { true: (v: boolean, m?: string) => void }, layout: DiagramLayout) => {
  const nodes = layout.nodes;
  for (let i = 0; i < nodes.length; i++) {
    t.true(inside(nodes[i]!.box, layout), `${nodes[i]!.name} inside the canvas`);
    t.true(!overlap(nodes[i]!.box, layout.legend.box), `${nodes[i]!.name} clear of the legend`);
    for (let j = i + 1; j < nodes.length; j++) t.true(!overlap(nodes[i]!.box, nodes[j]!.box), `${nodes[i]!.name} and ${nodes[j]!.name} do not overlap`);
  }
  for (const e of layout.edges) {
    if (e.label === undefined) continue;
    t.true(inside(e.label.box, layout), `label of ${e.key} inside the canvas`);
    for (const n of nodes) t.true(!overlap(e.label.box, n.box), `label of ${e.key} clear of ${n.name}`);
  }
  t.true(inside(layout.legend.box, layout), 'legend inside the canvas');
};

for (const [name, spec] of graphs) {
  for (const direction of ['LR', 'TB'] as const) {
    test(`${name} (${direction}): well-formed SVG, each node once with its kind's shape, no overlaps, exactly the highlighted edges in red`, (t) => {
      const keys = allEdgeKeys(spec);
      // Every other edge, so both states occur.
      const highlight = new Set(keys.filter((_, i) => i % 2 === 0));
      const svg = renderDiagram(spec, { highlight, direction, title: `${name} & co <${direction}>` });
      t.is(wellFormedXml(svg), undefined);
      t.true(svg.includes('font-family="sans-serif"'));
      t.false(/@import|<link|href="http|url\((?!#)/.test(svg), 'no external resources');
      t.true(svg.includes(`${name} &amp; co &lt;${direction}&gt;`), 'the title, escaped');

      const nodes = svgNodes(svg);
      t.deepEqual(nodes.map((n) => n.name).sort(), spec.nodes.map((n) => n.name).sort(), 'every node exactly once');
      for (const node of spec.nodes) {
        const drawn = nodes.find((n) => n.name === node.name)!;
        t.is(drawn.kind, node.kind);
        t.is(drawn.shape, shapeOfKind[node.kind], `${node.name}: shape for ${node.kind}`);
        t.is(drawn.element, elementFor[shapeOfKind[node.kind]], `${node.name}: drawn as <${elementFor[shapeOfKind[node.kind]]}>`);
        t.is(drawn.shapeCount, 1, `${node.name}: one shape element`);
        t.is(drawn.texts, 1, `${node.name}: one text`);
        if (drawn.shape === 'square' || drawn.shape === 'grey-square') t.is(drawn.box.width, drawn.box.height, 'squares are square');
      }
      // The SVG's shapes are where the layout says, and the layout's boxes never overlap.
      const layout = layoutDiagram(spec, { direction, title: 'x' });
      for (const n of layout.nodes) {
        const drawn = nodes.find((d) => d.name === n.name)!.box;
        for (const k of ['x', 'y', 'width', 'height'] as const) t.true(Math.abs(drawn[k] - n.box[k]) < 0.02, `${n.name}.${k}: ${drawn[k]} vs ${n.box[k]}`);
      }
      for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) t.false(overlap(nodes[i]!.box, nodes[j]!.box), `${nodes[i]!.name} / ${nodes[j]!.name}`);
      checkLayout(t, layout);

      const edges = svgEdges(svg);
      t.deepEqual(edges.map((e) => e.key).sort(), [...keys].sort(), 'every edge exactly once');
      t.deepEqual(edges.filter((e) => e.highlighted).map((e) => e.key).sort(), [...highlight].sort(), 'highlighted: exactly the keys passed in');
      for (const e of edges) {
        t.regex(e.body, /<path d="M[^"]+"[^>]*marker-end="url\(#arrow(-credit)?\)"/, `${e.key}: a path with an arrow head`);
        t.is(e.body.includes('#d62728'), e.highlighted, `${e.key}: red iff highlighted`);
        const lag = Number(/@(\d+)$/.exec(e.key)![1]);
        t.is(e.body.includes('stroke-dasharray'), lag > 0, `${e.key}: dashed iff lagged`);
        if (lag > 0) t.true(e.body.includes(`>t\u2212${lag}</text>`), `${e.key}: labelled t−${lag}`);
      }
    });
  }
}

test('temporal nodes get a _t subscript when their label has none; self-loops and lag edges are drawn', (t) => {
  const spec = readGraph('examples/graphs/rl-chain.json');
  const noLabels: GraphSpec = { ...spec, nodes: spec.nodes.map(({ label: _label, ...n }) => n as GraphSpec['nodes'][number]) };
  const svg = renderDiagram(noLabels, {});
  t.is(wellFormedXml(svg), undefined);
  t.regex(svg, /data-node="s"[^>]*><circle[^>]*\/><text[^>]*><tspan>s<\/tspan><tspan baseline-shift="sub" font-size="10">t<\/tspan><\/text>/);
  t.regex(svg, /data-node="theta"[^>]*><polygon[^>]*\/><text[^>]*><tspan>theta<\/tspan><\/text>/, 'parameters are not temporal');
  const loop = svgEdges(svg).find((e) => e.key === 's->s@1')!;
  t.regex(loop.body, /d="M[\d.,-]+ C/, 'the self-loop is a curve');
  t.deepEqual(svgEdges(svg).filter((e) => e.highlighted), [], 'no highlight: nothing red');
});

test('labels: TeX letters to Unicode, scripts as tspans, XML characters escaped', (t) => {
  t.deepEqual(parseLabel("\\theta'"), [{ text: 'θ′', script: 'normal' }]);
  t.deepEqual(parseLabel("R(\\tau')"), [{ text: 'R(τ′)', script: 'normal' }]);
  t.deepEqual(parseLabel('\\tau_0'), [{ text: 'τ', script: 'normal' }, { text: '0', script: 'sub' }]);
  t.deepEqual(parseLabel('x_{t+1}^2'), [{ text: 'x', script: 'normal' }, { text: 't+1', script: 'sub' }, { text: '2', script: 'sup' }]);
  t.deepEqual(parseLabel('\\pi_\\phi'), [{ text: 'π', script: 'normal' }, { text: 'ϕ', script: 'sub' }]);
  t.deepEqual(parseLabel('\\ell\\alpha\\psi\\chi'), [{ text: 'ℓαψχ', script: 'normal' }]);

  const spec: GraphSpec = {
    nodes: [
      { name: 'p"<&>\'', kind: 'parameter', shape: [1], label: 'a<b & "c"' },
      { name: 'cost', kind: 'cost', parents: [{ node: 'p"<&>\'', lag: 0 }], label: 'c_{x&y}' },
    ],
  };
  const svg = renderDiagram(spec, { highlight: new Set([edgeKey('p"<&>\'', 'cost', 0)]) });
  t.is(wellFormedXml(svg), undefined);
  t.true(svg.includes('data-node="p&quot;&lt;&amp;&gt;&apos;"'));
  t.true(svg.includes('<tspan>a&lt;b &amp; &quot;c&quot;</tspan>'));
  t.true(svg.includes('<tspan baseline-shift="sub" font-size="10">x&amp;y</tspan>'));
  t.deepEqual(svgEdges(svg).map((e) => e.highlighted), [true]);
});

test('a graph with a cycle or a missing node is refused with the validation messages; unknown highlight keys too', (t) => {
  const cycle = readGraph('examples/graphs/cycle.json');
  const error = t.throws(() => renderDiagram(cycle, {}));
  t.regex(error!.message, /x → y → z → x is a cycle/);
  t.throws(() => layoutDiagram(cycle), { message: /cycle/ });

  const missing: GraphSpec = { nodes: [...staticDag.nodes, { name: 'c2', kind: 'cost', parents: [{ node: 'nowhere', lag: 0 }] }] };
  t.throws(() => renderDiagram(missing, {}), { message: /no node is named "nowhere"/ });

  t.throws(() => renderDiagram(staticDag, { highlight: new Set(['theta->c@0']) }), { message: /cannot highlight "theta->c@0"/ });
});

test('random valid graphs (static and temporal): every node once, no overlapping boxes or labels, well-formed', (t) => {
  fc.assert(
    fc.property(graphSpecArbitrary({ flavour: 'either' }), fc.boolean(), (spec, tb) => {
      const direction = tb ? 'TB' : 'LR';
      const svg = renderDiagram(spec, { highlight: new Set(allEdgeKeys(spec).slice(0, 2)), direction });
      const problems: string[] = [];
      const xml = wellFormedXml(svg);
      if (xml !== undefined) problems.push(xml);
      const nodes = svgNodes(svg);
      if (nodes.length !== spec.nodes.length || new Set(nodes.map((n) => n.name)).size !== nodes.length) problems.push('nodes not drawn once each');
      const layout = layoutDiagram(spec, { direction });
      const boxes = [...layout.nodes.map((n) => ({ what: n.name, box: n.box })), ...layout.edges.flatMap((e) => (e.label ? [{ what: `label ${e.key}`, box: e.label.box }] : []))];
      for (let i = 0; i < boxes.length; i++) {
        if (!inside(boxes[i]!.box, layout)) problems.push(`${boxes[i]!.what} outside the canvas`);
        for (let j = i + 1; j < boxes.length; j++) {
          if (overlap(boxes[i]!.box, boxes[j]!.box)) problems.push(`${boxes[i]!.what} overlaps ${boxes[j]!.what}`);
        }
      }
      if (problems.length > 0) throw new Error(`${problems.join('; ')}\n${JSON.stringify(spec)}`);
    }),
    { numRuns: 100, seed: 20240605 },
  );
  t.pass();
});

test("Figure 1 as drawn: the red edges of the formulation I and II diagrams are exactly the influence query's credit paths, and they differ", async (t) => {
  const { metaGraph } = await import('../src/meta/meta-objective.ts');
  const { creditEdges } = await import('../src/scg/credit.ts');
  const red = (svg: string) =>
    new Set([...svg.matchAll(/<g class="edge" data-from="([^"]+)" data-to="([^"]+)" data-lag="(\d+)" data-highlighted="true"/g)].map((m) => `${m[1]}->${m[2]}@${m[3]}`));
  const drawn = (['I', 'II'] as const).map((f) => {
    const spec = metaGraph(1, f).spec;
    const credit = creditEdges(spec, 'R');
    const highlighted = red(renderDiagram(spec, { highlight: credit }));
    t.deepEqual([...highlighted].sort(), [...credit].sort(), `formulation ${f}`);
    return highlighted;
  });
  t.notDeepEqual([...drawn[0]!].sort(), [...drawn[1]!].sort());
});

test('a long chain is wrapped into bands: near-square, no node overlapping another; too many nodes are refused', (t) => {
  const chain = (n: number): GraphSpec => ({
    name: `chain-${n}`,
    nodes: [
      { name: 'theta', kind: 'parameter', shape: [1] },
      ...Array.from({ length: n }, (_, i) => ({ name: `d${i}`, kind: 'deterministic' as const, parents: [{ node: i === 0 ? 'theta' : `d${i - 1}`, lag: 0 }] })),
      { name: 'c', kind: 'cost', parents: [{ node: `d${n - 1}`, lag: 0 }] },
    ],
  });
  const layout = layoutDiagram(chain(200));
  // Unwrapped, this chain is 23,661 × 182.
  t.true(layout.width < 3000 && layout.height < 3000, `${layout.width} × ${layout.height}`);
  t.true(Math.max(layout.width, layout.height) / Math.min(layout.width, layout.height) < 2.5);
  const boxes = layout.nodes.map((n) => n.box);
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i]!;
      const b = boxes[j]!;
      t.false(a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height, `${layout.nodes[i]!.name} overlaps ${layout.nodes[j]!.name}`);
    }
  }
  t.is(layout.edges.length, 201, 'every edge drawn, those between bands too');
  t.throws(() => layoutDiagram(chain(2000)), { message: /cannot draw 2002 nodes legibly \(at most 1500\)/ });
});
