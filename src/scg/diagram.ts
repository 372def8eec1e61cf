/**
 * A graph spec drawn as the ProMP paper draws stochastic computation graphs (its Figure 1): stochastic
 * nodes as circles, deterministic nodes as squares, and — in red — the edges the caller highlights (a
 * credit path). The result is a standalone SVG string: no browser, no external fonts or style sheets.
 *
 * Shapes by kind: stochastic → circle, deterministic → square, input → grey square, parameter →
 * hexagon, cost → octagon. Layout is @dagrejs/dagre on the lag-0 edges only; edges with a lag ≥ 1 run
 * between time steps, so they do not constrain the layout and are drawn afterwards as dashed curves
 * labelled `t−L`, routed to keep clear of nodes, labels and other edges (a node's own previous value
 * as a small loop).
 *
 * `layoutDiagram` gives the geometry (node boxes, edge paths, legend and title positions) in the SVG's
 * own coordinates, so tests and other renderers can check or reuse it; `renderDiagram` draws it.
 */
import dagre from '@dagrejs/dagre';

type DagreGraph = InstanceType<typeof dagre.graphlib.Graph>;
import { edgeKey } from './credit.ts';
import { toGraphology } from './graph.ts';
import { isTemporal, type GraphSpec, type NodeKind, type NodeSpec } from './spec.ts';
import { validateGraph } from './validate.ts';

export type Direction = 'LR' | 'TB';
export type NodeShape = 'circle' | 'square' | 'grey-square' | 'hexagon' | 'octagon';

/** The shape each node kind is drawn with. */
export const shapeOfKind: Readonly<Record<NodeKind, NodeShape>> = {
  stochastic: 'circle',
  deterministic: 'square',
  input: 'grey-square',
  parameter: 'hexagon',
  cost: 'octagon',
};

/** Re-exported: highlight keys are the credit query's (one definition, in credit.ts). */
export { edgeKey };

export interface Point {
  readonly x: number;
  readonly y: number;
}

/** A box by its top-left corner and size. */
export interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** One run of a label's text: normal, subscript or superscript. */
export interface LabelRun {
  readonly text: string;
  readonly script: 'normal' | 'sub' | 'sup';
}

export interface NodeLayout {
  readonly name: string;
  readonly kind: NodeKind;
  readonly shape: NodeShape;
  readonly label: readonly LabelRun[];
  readonly center: Point;
  /** The bounding box of the node's shape (not of its loops or labels). */
  readonly box: Box;
  /** The outline for polygonal shapes (squares included), clockwise; absent for circles. */
  readonly polygon?: readonly Point[];
}

/** A path as SVG commands with absolute points. */
export type PathCommand = { readonly op: 'M' | 'L'; readonly to: Point } | { readonly op: 'Q'; readonly c: Point; readonly to: Point } | { readonly op: 'C'; readonly c1: Point; readonly c2: Point; readonly to: Point };

export interface EdgeLayout {
  readonly from: string;
  readonly to: string;
  readonly lag: number;
  readonly key: string;
  readonly path: readonly PathCommand[];
  /** The `t−L` label of an edge with a lag ≥ 1: its text's centre and approximate box. */
  readonly label?: { readonly text: string; readonly at: Point; readonly box: Box };
}

export interface LegendEntry {
  readonly text: string;
  readonly kind?: NodeKind;
  readonly line?: 'lagged' | 'credit';
}

export interface DiagramLayout {
  readonly width: number;
  readonly height: number;
  readonly direction: Direction;
  readonly nodes: readonly NodeLayout[];
  readonly edges: readonly EdgeLayout[];
  readonly legend: { readonly box: Box; readonly entries: readonly LegendEntry[] };
  readonly title?: { readonly text: string; readonly at: Point };
}

export interface DiagramOptions {
  /** Keys (see `edgeKey`) of the edges to draw in red; every key must name an edge of the graph. */
  readonly highlight?: ReadonlySet<string>;
  /** Rank direction: left to right (the default) or top to bottom. */
  readonly direction?: Direction;
  readonly title?: string;
}

// ---------------------------------------------------------------------------------------------------
// Labels

const tex: Readonly<Record<string, string>> = {
  alpha: 'α', beta: 'β', gamma: 'γ', delta: 'δ', epsilon: 'ϵ', varepsilon: 'ε', zeta: 'ζ', eta: 'η',
  theta: 'θ', vartheta: 'ϑ', iota: 'ι', kappa: 'κ', lambda: 'λ', mu: 'μ', nu: 'ν', xi: 'ξ', pi: 'π',
  rho: 'ρ', sigma: 'σ', tau: 'τ', upsilon: 'υ', phi: 'ϕ', varphi: 'φ', chi: 'χ', psi: 'ψ', omega: 'ω',
  Gamma: 'Γ', Delta: 'Δ', Theta: 'Θ', Lambda: 'Λ', Xi: 'Ξ', Pi: 'Π', Sigma: 'Σ', Phi: 'Φ', Psi: 'Ψ',
  Omega: 'Ω', ell: 'ℓ', nabla: '∇', partial: '∂', infty: '∞', cdot: '·', times: '×', prime: '′',
  sum: '∑', prod: '∏', log: 'log', exp: 'exp', mathcal: '', mathrm: '', mathbf: '', operatorname: '',
};

/**
 * Plain text of a TeX-like fragment without scripts: `\name` → its Unicode letter (an unknown command
 * → its name), `'` → ′, braces dropped.
 */
const plain = (s: string): string =>
  s
    .replace(/\\([A-Za-z]+)\s?/g, (_m, name: string) => tex[name] ?? name)
    .replace(/\\(.)/g, '$1')
    .replace(/'/g, '′')
    .replace(/[{}]/g, '');

/**
 * A label's runs: `_x`, `_{xy}`, `_\tau` give subscripts, `^…` superscripts; everything else is
 * normal text with TeX letters as Unicode (`\theta'` → θ′, `R(\tau')` → R(τ′)).
 */
export function parseLabel(label: string): LabelRun[] {
  const runs: LabelRun[] = [];
  const push = (text: string, script: LabelRun['script']) => {
    if (text === '') return;
    const last = runs.at(-1);
    if (last !== undefined && last.script === script) runs[runs.length - 1] = { text: last.text + text, script };
    else runs.push({ text, script });
  };
  let normal = '';
  let i = 0;
  while (i < label.length) {
    const ch = label[i]!;
    if ((ch === '_' || ch === '^') && i + 1 < label.length) {
      push(plain(normal), 'normal');
      normal = '';
      let j = i + 1;
      let arg: string;
      if (label[j] === '{') {
        let depth = 0;
        let k = j;
        for (; k < label.length; k++) {
          if (label[k] === '{') depth++;
          else if (label[k] === '}' && --depth === 0) break;
        }
        arg = label.slice(j + 1, k);
        j = k + 1;
      } else if (label[j] === '\\') {
        const m = /^\\([A-Za-z]+|.)/.exec(label.slice(j))!;
        arg = m[0];
        j += m[0].length;
      } else {
        arg = label[j]!;
        j += 1;
      }
      push(plain(arg.replace(/[_^]/g, '')), ch === '_' ? 'sub' : 'sup');
      i = j;
    } else {
      normal += ch;
      i += 1;
    }
  }
  push(plain(normal), 'normal');
  return runs.length > 0 ? runs : [{ text: ' ', script: 'normal' }];
}

const fontSize = 14;
const scriptSize = 10;
/** Estimated advance per character: ~7 px at 14 px (a little more, to be safe), ~5.5 px at 10 px. */
const charWidth = { normal: 7.5, script: 5.5 };

const textWidth = (runs: readonly LabelRun[]): number =>
  runs.reduce((w, r) => w + [...r.text].length * (r.script === 'normal' ? charWidth.normal : charWidth.script), 0);
const plainTextWidth = (text: string, size = fontSize): number => [...text].length * charWidth.normal * (size / fontSize);

/** The label a node is drawn with: its `label` or name, with a `_t` subscript on temporal nodes lacking one. */
export function nodeLabel(node: NodeSpec): LabelRun[] {
  const runs = parseLabel(node.label ?? node.name);
  if (isTemporal(node) && !runs.some((r) => r.script === 'sub')) runs.push({ text: 't', script: 'sub' });
  return runs;
}

// ---------------------------------------------------------------------------------------------------
// Geometry

const add = (a: Point, b: Point): Point => ({ x: a.x + b.x, y: a.y + b.y });
const sub = (a: Point, b: Point): Point => ({ x: a.x - b.x, y: a.y - b.y });
const scale = (a: Point, k: number): Point => ({ x: a.x * k, y: a.y * k });
const length = (a: Point): number => Math.hypot(a.x, a.y);
const unit = (a: Point): Point => {
  const l = length(a);
  return l === 0 ? { x: 1, y: 0 } : scale(a, 1 / l);
};
const mid = (a: Point, b: Point): Point => scale(add(a, b), 0.5);

/** The size of a node's shape and its outline relative to its centre. */
function shapeGeometry(shape: NodeShape, labelWidth: number): { width: number; height: number; outline?: Point[] } {
  switch (shape) {
    case 'circle': {
      const r = Math.max(22, labelWidth / 2 + 10);
      return { width: 2 * r, height: 2 * r };
    }
    case 'square':
    case 'grey-square': {
      const side = Math.max(42, labelWidth + 20);
      const h = side / 2;
      return { width: side, height: side, outline: [{ x: -h, y: -h }, { x: h, y: -h }, { x: h, y: h }, { x: -h, y: h }] };
    }
    case 'hexagon': {
      const height = 40;
      const k = 12;
      const w = Math.max(56, labelWidth + 2 * k + 16) / 2;
      const h = height / 2;
      return {
        width: 2 * w,
        height,
        outline: [{ x: -w, y: 0 }, { x: -w + k, y: -h }, { x: w - k, y: -h }, { x: w, y: 0 }, { x: w - k, y: h }, { x: -w + k, y: h }],
      };
    }
    case 'octagon': {
      const height = 44;
      const c = 13;
      const w = Math.max(48, labelWidth + 2 * c + 8) / 2;
      const h = height / 2;
      return {
        width: 2 * w,
        height,
        outline: [
          { x: -w + c, y: -h }, { x: w - c, y: -h }, { x: w, y: -h + c }, { x: w, y: h - c },
          { x: w - c, y: h }, { x: -w + c, y: h }, { x: -w, y: h - c }, { x: -w, y: -h + c },
        ],
      };
    }
  }
}

/** Where the ray from the node's centre towards `toward` leaves its shape, `gap` further out. */
function boundaryPoint(node: NodeLayout, toward: Point, gap = 0): Point {
  const d = unit(sub(toward, node.center));
  if (node.polygon === undefined) return add(node.center, scale(d, node.box.width / 2 + gap));
  let best = Infinity;
  const pts = node.polygon;
  for (let i = 0; i < pts.length; i++) {
    const a = sub(pts[i]!, node.center);
    const e = sub(pts[(i + 1) % pts.length]!, pts[i]!);
    // Solve t·d = a + s·e for t ≥ 0, s ∈ [0, 1].
    const den = d.x * e.y - d.y * e.x;
    if (Math.abs(den) < 1e-12) continue;
    const t = (a.x * e.y - a.y * e.x) / den;
    const s = (a.x * d.y - a.y * d.x) / den;
    if (t >= 0 && s >= -1e-9 && s <= 1 + 1e-9) best = Math.min(best, t);
  }
  return add(node.center, scale(d, (Number.isFinite(best) ? best : 0) + gap));
}

const boxesOverlap = (a: Box, b: Box, pad = 0): boolean =>
  a.x < b.x + b.width + pad && b.x < a.x + a.width + pad && a.y < b.y + b.height + pad && b.y < a.y + a.height + pad;
const inBox = (p: Point, b: Box, pad: number): boolean =>
  p.x > b.x - pad && p.x < b.x + b.width + pad && p.y > b.y - pad && p.y < b.y + b.height + pad;

/** Points in square cells, for "is any point near here" questions in time independent of their number. */
class PointGrid {
  readonly #cells = new Map<string, Point[]>();
  constructor(readonly cell: number) {}
  #key = (i: number, j: number) => `${i},${j}`;
  add(points: readonly Point[]): void {
    for (const p of points) {
      const key = this.#key(Math.floor(p.x / this.cell), Math.floor(p.y / this.cell));
      const list = this.#cells.get(key);
      if (list === undefined) this.#cells.set(key, [p]);
      else list.push(p);
    }
  }
  /** The points in the cells overlapping a box. */
  *#within(x0: number, y0: number, x1: number, y1: number): Generator<Point> {
    for (let i = Math.floor(x0 / this.cell); i <= Math.floor(x1 / this.cell); i++) {
      for (let j = Math.floor(y0 / this.cell); j <= Math.floor(y1 / this.cell); j++) yield* this.#cells.get(this.#key(i, j)) ?? [];
    }
  }
  near(p: Point, r: number): boolean {
    for (const q of this.#within(p.x - r, p.y - r, p.x + r, p.y + r)) if (length(sub(p, q)) < r) return true;
    return false;
  }
  inBox(b: Box, pad: number): boolean {
    for (const q of this.#within(b.x - pad, b.y - pad, b.x + b.width + pad, b.y + b.height + pad)) if (inBox(q, b, pad)) return true;
    return false;
  }
}

/** Points along a polyline, at most `step` apart. */
const samplePolyline = (pts: readonly Point[], step: number): Point[] => {
  const out: Point[] = [pts[0]!];
  for (let i = 1; i < pts.length; i++) {
    const n = Math.max(1, Math.ceil(length(sub(pts[i]!, pts[i - 1]!)) / step));
    for (let j = 1; j <= n; j++) out.push(add(pts[i - 1]!, scale(sub(pts[i]!, pts[i - 1]!), j / n)));
  }
  return out;
};
const cubicAt = (s: Point, c1: Point, c2: Point, e: Point, t: number): Point =>
  add(add(scale(s, (1 - t) ** 3), scale(c1, 3 * t * (1 - t) ** 2)), add(scale(c2, 3 * t * t * (1 - t)), scale(e, t ** 3)));
/** The arrow head's tip lies this far past the end of its path (so the line does not poke through it). */
const arrowOverhang = 6;
/** The gap between an arrow's tip and the node it points at. */
const arrowGap = 2;
/** A path's end point for an arrow whose tip is at `tip`, arriving from `from`. */
const pathEndFor = (tip: Point, from: Point): Point => {
  const back = sub(from, tip);
  return add(tip, scale(unit(back), Math.min(arrowOverhang, length(back) / 2)));
};

const lagText = (lag: number) => `t\u2212${lag}`;
const edgeLabelBox = (text: string, at: Point): Box => {
  const w = plainTextWidth(text, 12) + 4;
  return { x: at.x - w / 2, y: at.y - 9, width: w, height: 18 };
};

// ---------------------------------------------------------------------------------------------------
// Layout

const margin = 20;
const titleHeight = 34;
const legendRow = 24;

/**
 * The diagram's geometry in SVG coordinates. Throws, naming every problem, for a graph `validateGraph`
 * rejects (a cycle, a missing node, …): a drawing of an invalid graph would mislead.
 */
/** The longest side a diagram may have, in layout units, before its ranks are wrapped into bands. */
export const maxDiagramLength = 2400;
/** The most nodes a diagram is drawn with: dagre's recursive layout overflows the stack on a chain of ~2,000. */
export const maxDiagramNodes = 1500;

interface Placement {
  readonly node: (name: string) => Point;
  readonly edgePoints: (from: string, to: string) => Point[] | undefined;
}

/**
 * A dagre layout whose rank axis (x for LR, y for TB) is much longer than its cross axis — a 200-node
 * chain is 23,661 × 182 — re-laid out in bands: the nodes are cut by their rank coordinate into
 * consecutive bands, each band laid out on its own and the bands stacked along the cross axis, so the
 * figure stays near 3:2 and its text readable at print size. Edges between bands become straight lines.
 */
function wrapRanks(g: DagreGraph, direction: Direction, layout: (names: readonly string[]) => DagreGraph): Placement {
  const plain: Placement = {
    node: (name) => g.node(name) as Point,
    edgePoints: (from, to) => (g.edge(from, to) as { points?: Point[] } | undefined)?.points,
  };
  const { width = 0, height = 0 } = g.graph() as { width?: number; height?: number };
  const [along, across] = direction === 'LR' ? [width, height] : [height, width];
  if (along <= maxDiagramLength || along < 2 * Math.max(across, 1)) return plain;
  const bands = Math.min(Math.ceil(along / maxDiagramLength) * 2, Math.max(2, Math.round(Math.sqrt(along / (1.5 * Math.max(across, 100))))));
  const rankOf = (name: string) => (direction === 'LR' ? (g.node(name) as Point).x : (g.node(name) as Point).y);
  const names: string[] = g.nodes();
  const bandOf = new Map(names.map((n) => [n, Math.min(bands - 1, Math.floor((rankOf(n) / (along + 1)) * bands))]));
  const layouts = Array.from({ length: bands }, (_, b) => names.filter((n) => bandOf.get(n) === b)).filter((ns) => ns.length > 0).map(layout);
  const gap = 90;
  let offset = 0;
  const position = new Map<string, Point>();
  const routes = new Map<string, Point[]>();
  for (const band of layouts) {
    const { width: w = 0, height: h = 0 } = band.graph() as { width?: number; height?: number };
    const shift = (p: Point): Point => (direction === 'LR' ? { x: p.x, y: p.y + offset } : { x: p.x + offset, y: p.y });
    for (const n of band.nodes() as string[]) position.set(n, shift(band.node(n) as Point));
    for (const e of band.edges()) routes.set(`${e.v}\u0000${e.w}`, ((band.edge(e) as { points?: Point[] }).points ?? []).map(shift));
    offset += (direction === 'LR' ? h : w) + gap;
  }
  return { node: (name) => position.get(name)!, edgePoints: (from, to) => routes.get(`${from}\u0000${to}`) };
}

export function layoutDiagram(spec: GraphSpec, options: { direction?: Direction; title?: string } = {}): DiagramLayout {
  const problems = validateGraph(spec);
  if (problems.length > 0) {
    const name = spec.name === undefined ? 'the graph' : `graph ${JSON.stringify(spec.name)}`;
    throw new Error(`cannot draw ${name}; it has ${problems.length} problem(s):\n${problems.map((p) => `  - ${p.message}`).join('\n')}`);
  }
  if (spec.nodes.length > maxDiagramNodes) {
    throw new Error(`cannot draw ${spec.nodes.length} nodes legibly (at most ${maxDiagramNodes}); draw a part of the graph`);
  }
  const direction = options.direction ?? 'LR';
  const graph = toGraphology(spec);

  // Edges, one per key (a parent listed twice at one lag is one edge), in declaration order.
  const edgeList: { from: string; to: string; lag: number; key: string }[] = [];
  const seen = new Set<string>();
  graph.forEachEdge((_e, { lag }, from, to) => {
    const key = edgeKey(from, to, lag);
    if (!seen.has(key)) {
      seen.add(key);
      edgeList.push({ from, to, lag, key });
    }
  });

  // Self-loops go on the side across the flow (above in LR, right in TB); room is reserved for them.
  const loopsOf = new Map<string, number>();
  for (const e of edgeList) if (e.lag > 0 && e.from === e.to) loopsOf.set(e.from, (loopsOf.get(e.from) ?? 0) + 1);
  const loopSize = (k: number) => 38 + 26 * k;
  const loopRoom = (count: number) => (count === 0 ? 0 : 0.75 * loopSize(count - 1) + 26);

  const sizes = new Map<string, ReturnType<typeof shapeGeometry> & { label: LabelRun[] }>();
  graph.forEachNode((name, { spec: node }) => {
    const label = nodeLabel(node);
    const geom = shapeGeometry(shapeOfKind[node.kind], textWidth(label));
    sizes.set(name, { ...geom, label });
  });
  const dagreLayout = (names: readonly string[]) => {
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: direction, nodesep: 50, ranksep: 70, edgesep: 20, marginx: 0, marginy: 0 });
    g.setDefaultEdgeLabel(() => ({}));
    const inside = new Set(names);
    for (const name of names) {
      const geom = sizes.get(name)!;
      const room = 2 * loopRoom(loopsOf.get(name) ?? 0);
      g.setNode(name, direction === 'LR' ? { width: geom.width, height: geom.height + room } : { width: geom.width + room, height: geom.height });
    }
    for (const e of edgeList) if (e.lag === 0 && inside.has(e.from) && inside.has(e.to)) g.setEdge(e.from, e.to);
    dagre.layout(g);
    return g;
  };
  const placed = wrapRanks(dagreLayout(graph.nodes()), direction, dagreLayout);

  const nodes = new Map<string, NodeLayout>();
  graph.forEachNode((name, { spec: node }) => {
    const { x, y } = placed.node(name);
    const { width, height, outline, label } = sizes.get(name)!;
    const center = { x, y };
    nodes.set(name, {
      name,
      kind: node.kind,
      shape: shapeOfKind[node.kind],
      label,
      center,
      box: { x: x - width / 2, y: y - height / 2, width, height },
      ...(outline === undefined ? {} : { polygon: outline.map((p) => add(center, p)) }),
    });
  });
  const nodeBoxes = [...nodes.values()].map((n) => ({ name: n.name, box: n.box }));

  const edges: EdgeLayout[] = [];
  // What later (lagged) edges should keep clear of: label boxes, the sampled lines of placed edges, and
  // the points where placed edges meet each node (its ports).
  const labelBoxes: Box[] = [];
  const lines = new PointGrid(8);
  const ports = new Map<string, Point[]>();
  const addPort = (node: string, p: Point) => ports.set(node, [...(ports.get(node) ?? []), p]);

  // Same-step edges first: dagre routed them; their ends are moved onto the real shapes' outlines.
  for (const e of edgeList.filter((e) => e.lag === 0)) {
    const a = nodes.get(e.from)!;
    const b = nodes.get(e.to)!;
    // An edge between two bands of a wrapped layout has no routed points: a straight line.
    const raw = (placed.edgePoints(e.from, e.to) ?? []).slice(1, -1);
    const first = boundaryPoint(a, raw[0] ?? b.center);
    const tip = boundaryPoint(b, raw.at(-1) ?? a.center, arrowGap);
    const pts = [first, ...raw, tip];
    // Rounded polyline: straight to the middle of each segment, a quadratic turn at each inner point.
    const path: PathCommand[] = [{ op: 'M', to: first }];
    for (let i = 1; i < pts.length - 1; i++) {
      path.push({ op: 'L', to: mid(pts[i - 1]!, pts[i]!) });
      path.push({ op: 'Q', c: pts[i]!, to: mid(pts[i]!, pts[i + 1]!) });
    }
    path.push({ op: 'L', to: pathEndFor(tip, pts.at(-2)!) });
    edges.push({ ...e, path });
    lines.add(samplePolyline(pts, 6));
    addPort(e.from, first);
    addPort(e.to, tip);
  }

  /**
   * Badness of a candidate curve: passing through other nodes (or back through its own) is worst, then
   * its ends crowding other edges' ends, then running along or across other edges.
   */
  const curveBadness = (samples: readonly Point[], from: string, to: string): number => {
    const own = [nodes.get(from)!.box, nodes.get(to)!.box];
    const others = nodeBoxes.filter((n) => n.name !== from && n.name !== to).map((n) => n.box);
    let score = 0;
    for (const p of samples) if (others.some((o) => inBox(p, o, 8))) score += 100;
    for (const p of samples.slice(5, -5)) if (own.some((o) => inBox(p, o, 3))) score += 100;
    const ends: [string, Point][] = [[from, samples[0]!], [to, samples.at(-1)!]];
    for (const [node, end] of ends) for (const port of ports.get(node) ?? []) if (length(sub(port, end)) < 16) score += 40;
    for (const p of samples) if (lines.near(p, 6)) score += 1;
    return score;
  };
  /** Badness of a label position: touching a node or another label is worst, then lying on or near other edges. */
  const labelBadness = (labelBox: Box): number => {
    let score = 0;
    if (nodeBoxes.some((n) => boxesOverlap(labelBox, n.box, 4))) score += 300;
    if (labelBoxes.some((l) => boxesOverlap(labelBox, l, 2))) score += 300;
    if (lines.inBox(labelBox, 1)) score += 20;
    if (lines.near({ x: labelBox.x + labelBox.width / 2, y: labelBox.y + labelBox.height / 2 }, 22)) score += 10;
    return score;
  };
  const place = (e: (typeof edgeList)[number], path: PathCommand[], samples: Point[], text: string, at: Point, box: Box) => {
    edges.push({ ...e, path, label: { text, at, box } });
    labelBoxes.push(box);
    lines.add(samples);
    addPort(e.from, samples[0]!);
    addPort(e.to, samples.at(-1)!);
  };

  const loopIndex = new Map<string, number>();
  for (const e of edgeList.filter((e) => e.lag > 0)) {
    const a = nodes.get(e.from)!;
    const b = nodes.get(e.to)!;
    const text = lagText(e.lag);
    if (e.from === e.to) {
      // A loop across the flow (above or below in LR, right or left in TB), where room was reserved.
      const k = loopIndex.get(e.from) ?? 0;
      loopIndex.set(e.from, k + 1);
      const size = loopSize(k);
      const along = direction === 'LR' ? { x: 1, y: 0 } : { x: 0, y: 1 };
      const sides = direction === 'LR' ? [{ x: 0, y: -1 }, { x: 0, y: 1 }] : [{ x: 1, y: 0 }, { x: -1, y: 0 }];
      let best: { score: number; path: PathCommand[]; samples: Point[]; at: Point; box: Box } | undefined;
      for (const across of sides) {
        const spread = 0.8 + 0.2 * k;
        const start = boundaryPoint(a, add(a.center, add(across, scale(along, -spread))));
        const tip = boundaryPoint(a, add(a.center, add(across, scale(along, spread))), arrowGap);
        const c1 = add(start, add(scale(across, size), scale(along, -0.4 * size)));
        const c2 = add(tip, add(scale(across, size), scale(along, 0.4 * size)));
        const apex = add(mid(start, tip), scale(across, 0.75 * size));
        const at = add(apex, scale(across, direction === 'LR' ? 11 : 6 + plainTextWidth(text, 12) / 2));
        const box = edgeLabelBox(text, at);
        const samples = Array.from({ length: 41 }, (_, i) => cubicAt(start, c1, c2, tip, i / 40));
        const score = curveBadness(samples, e.from, e.to) + labelBadness(box);
        if (best === undefined || score < best.score) {
          best = { score, path: [{ op: 'M', to: start }, { op: 'C', c1, c2, to: pathEndFor(tip, c2) }], samples, at, box };
        }
      }
      place(e, best!.path, best!.samples, text, best!.at, best!.box);
    } else {
      // A cubic curve leaving the parent and entering the child straight out of their outlines, at the
      // pair of angles (every 30°) that keeps it clearest of nodes, labels and other edges' ends and lines,
      // preferring shorter curves.
      const dist = length(sub(b.center, a.center));
      let best: { score: number; path: PathCommand[]; samples: Point[]; at: Point; box: Box } | undefined;
      const angles = Array.from({ length: 12 }, (_, i) => (i * Math.PI) / 6);
      for (const out of angles) {
        for (const into of angles) {
          const start = boundaryPoint(a, add(a.center, { x: Math.cos(out), y: Math.sin(out) }));
          const tip = boundaryPoint(b, add(b.center, { x: Math.cos(into), y: Math.sin(into) }), arrowGap);
          for (const f of [0.3, 0.55]) {
            const k = Math.max(30, f * dist);
            const c1 = add(start, scale(unit(sub(start, a.center)), k));
            const c2 = add(tip, scale(unit(sub(tip, b.center)), k));
            const samples = Array.from({ length: 41 }, (_, j) => cubicAt(start, c1, c2, tip, j / 40));
            const curveLength = samples.slice(1).reduce((acc, p, j) => acc + length(sub(p, samples[j]!)), 0);
            const curveScore = curveBadness(samples, e.from, e.to) + curveLength / 15;
            if (best !== undefined && curveScore >= best.score) continue;
            for (const [j, side] of [[20, 1], [20, -1], [14, 1], [14, -1], [26, 1], [26, -1]] as const) {
              const nrm = unit({ x: -(samples[j + 1]!.y - samples[j - 1]!.y), y: samples[j + 1]!.x - samples[j - 1]!.x });
              const at = add(samples[j]!, scale(nrm, side * 12));
              const box = edgeLabelBox(text, at);
              const score = curveScore + labelBadness(box);
              if (best === undefined || score < best.score) {
                best = { score, path: [{ op: 'M', to: start }, { op: 'C', c1, c2, to: pathEndFor(tip, c2) }], samples, at, box };
              }
            }
          }
        }
      }
      place(e, best!.path, best!.samples, text, best!.at, best!.box);
    }
  }
  // Declaration order, whatever order they were placed in.
  const order = new Map(edgeList.map((e, i) => [e.key, i]));
  edges.sort((x, y) => order.get(x.key)! - order.get(y.key)!);

  // Everything drawn so far (control points bound their curves), then the legend to its right.
  const points: Point[] = [];
  for (const n of nodes.values()) points.push({ x: n.box.x, y: n.box.y }, { x: n.box.x + n.box.width, y: n.box.y + n.box.height });
  for (const e of edges) {
    for (const cmd of e.path) points.push(...(cmd.op === 'Q' ? [cmd.c, cmd.to] : cmd.op === 'C' ? [cmd.c1, cmd.c2, cmd.to] : [cmd.to]));
    if (e.label !== undefined) points.push({ x: e.label.box.x, y: e.label.box.y }, { x: e.label.box.x + e.label.box.width, y: e.label.box.y + e.label.box.height });
  }
  const minX = Math.min(...points.map((p) => p.x));
  const minY = Math.min(...points.map((p) => p.y));
  const maxX = Math.max(...points.map((p) => p.x));
  const maxY = Math.max(...points.map((p) => p.y));
  const top = margin + (options.title === undefined ? 0 : titleHeight);
  const shift = { x: margin - minX, y: top - minY };

  const kinds = new Set(spec.nodes.map((n) => n.kind));
  const entries: LegendEntry[] = [
    ...(['parameter', 'input', 'stochastic', 'deterministic', 'cost'] as const).filter((k) => kinds.has(k)).map((kind) => ({ kind, text: kind })),
    ...(edges.some((e) => e.lag > 0) ? [{ line: 'lagged' as const, text: 'lag edge (t−L)' }] : []),
    { line: 'credit' as const, text: 'credit path' },
  ];
  const legendWidth = 44 + Math.max(...entries.map((en) => plainTextWidth(en.text, 12))) + 12;
  const legend: Box = { x: maxX + shift.x + 40, y: top, width: legendWidth, height: entries.length * legendRow + 12 };

  const move = (p: Point): Point => add(p, shift);
  const moveBox = (b: Box): Box => ({ ...b, x: b.x + shift.x, y: b.y + shift.y });
  const movedNodes = [...nodes.values()].map((n) => ({
    ...n,
    center: move(n.center),
    box: moveBox(n.box),
    ...(n.polygon === undefined ? {} : { polygon: n.polygon.map(move) }),
  }));
  const movedEdges = edges.map((e) => ({
    ...e,
    path: e.path.map((cmd): PathCommand =>
      cmd.op === 'Q' ? { op: 'Q', c: move(cmd.c), to: move(cmd.to) } : cmd.op === 'C' ? { op: 'C', c1: move(cmd.c1), c2: move(cmd.c2), to: move(cmd.to) } : { op: cmd.op, to: move(cmd.to) },
    ),
    ...(e.label === undefined ? {} : { label: { text: e.label.text, at: move(e.label.at), box: moveBox(e.label.box) } }),
  }));
  const width = legend.x + legend.width + margin;
  const height = Math.max(maxY + shift.y, legend.y + legend.height) + margin;
  return {
    width: Math.ceil(width),
    height: Math.ceil(height),
    direction,
    nodes: movedNodes,
    edges: movedEdges,
    legend: { box: legend, entries },
    ...(options.title === undefined ? {} : { title: { text: options.title, at: { x: margin, y: margin + 18 } } }),
  };
}

// ---------------------------------------------------------------------------------------------------
// SVG

/** Text and attribute values with the five XML special characters escaped. */
export const escapeXml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);

const num = (v: number): string => String(Math.round(v * 100) / 100);
const pt = (p: Point): string => `${num(p.x)},${num(p.y)}`;
const pathData = (path: readonly PathCommand[]): string =>
  path
    .map((c) => (c.op === 'Q' ? `Q${pt(c.c)} ${pt(c.to)}` : c.op === 'C' ? `C${pt(c.c1)} ${pt(c.c2)} ${pt(c.to)}` : `${c.op}${pt(c.to)}`))
    .join(' ');

const colours = { ink: '#222222', edge: '#555555', credit: '#d62728', input: '#cccccc', paper: '#ffffff', lagLabel: '#444444' };

/** The label as the content of a `<text>`: normal runs as text, scripts as shifted, smaller tspans. */
const labelMarkup = (runs: readonly LabelRun[]): string =>
  runs
    .map((r) =>
      r.script === 'normal'
        ? `<tspan>${escapeXml(r.text)}</tspan>`
        : `<tspan baseline-shift="${r.script === 'sub' ? 'sub' : 'super'}" font-size="${scriptSize}">${escapeXml(r.text)}</tspan>`,
    )
    .join('');

const shapeMarkup = (shape: NodeShape, center: Point, box: Box, polygon: readonly Point[] | undefined, extra = ''): string => {
  const fill = shape === 'grey-square' ? colours.input : colours.paper;
  const style = `fill="${fill}" stroke="${colours.ink}" stroke-width="1.6"${extra}`;
  if (shape === 'circle') return `<circle cx="${num(center.x)}" cy="${num(center.y)}" r="${num(box.width / 2)}" ${style}/>`;
  if (shape === 'square' || shape === 'grey-square')
    return `<rect x="${num(box.x)}" y="${num(box.y)}" width="${num(box.width)}" height="${num(box.height)}" ${style}/>`;
  return `<polygon points="${polygon!.map(pt).join(' ')}" ${style}/>`;
};

/** A small legend icon of a kind's shape, centred at `c`. */
const legendIcon = (kind: NodeKind, c: Point): string => {
  const shape = shapeOfKind[kind];
  const h = 8;
  const box = { x: c.x - h, y: c.y - h, width: 2 * h, height: 2 * h };
  const poly =
    shape === 'hexagon'
      ? [{ x: -12, y: 0 }, { x: -6, y: -h }, { x: 6, y: -h }, { x: 12, y: 0 }, { x: 6, y: h }, { x: -6, y: h }]
      : [{ x: -4, y: -h }, { x: 4, y: -h }, { x: h, y: -4 }, { x: h, y: 4 }, { x: 4, y: h }, { x: -4, y: h }, { x: -h, y: 4 }, { x: -h, y: -4 }];
  return shapeMarkup(shape, c, box, poly.map((p) => add(c, p)), ' class="legend-icon"');
};

/**
 * The diagram as a standalone SVG document. Throws, listing the problems, for a graph `validateGraph`
 * rejects, and for highlight keys that name no edge of the graph.
 */
export function renderDiagram(spec: GraphSpec, options: DiagramOptions = {}): string {
  const layout = layoutDiagram(spec, { ...(options.direction === undefined ? {} : { direction: options.direction }), ...(options.title === undefined ? {} : { title: options.title }) });
  const highlight = options.highlight ?? new Set<string>();
  const keys = new Set(layout.edges.map((e) => e.key));
  const unknown = [...highlight].filter((k) => !keys.has(k));
  if (unknown.length > 0) {
    throw new Error(`cannot highlight ${unknown.map((k) => JSON.stringify(k)).join(', ')}: the graph has no such edge (edges: ${[...keys].join(', ')})`);
  }

  const out: string[] = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}" viewBox="0 0 ${layout.width} ${layout.height}" font-family="sans-serif" font-size="${fontSize}">`,
  );
  if (options.title !== undefined) out.push(`<title>${escapeXml(options.title)}</title>`);
  out.push('<defs>');
  for (const [id, fill] of [['arrow', colours.edge], ['arrow-credit', colours.credit]] as const) {
    // The tip is 6 units past the path's end (see arrowOverhang), so the line ends inside the head.
    out.push(
      `<marker id="${id}" viewBox="0 0 10 10" refX="${10 - arrowOverhang}" refY="5" markerWidth="10" markerHeight="10" markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="${fill}"/></marker>`,
    );
  }
  out.push('</defs>');
  out.push(`<rect class="background" x="0" y="0" width="${layout.width}" height="${layout.height}" fill="${colours.paper}"/>`);
  if (layout.title !== undefined) {
    out.push(`<text class="title" x="${num(layout.title.at.x)}" y="${num(layout.title.at.y)}" font-size="16" font-weight="bold" fill="${colours.ink}">${escapeXml(layout.title.text)}</text>`);
  }

  // Edges under nodes; highlighted edges over the others; lag labels over every edge.
  const ordered = [...layout.edges].sort((a, b) => Number(highlight.has(a.key)) - Number(highlight.has(b.key)));
  out.push('<g class="edges">');
  for (const e of ordered) {
    const on = highlight.has(e.key);
    const stroke = on ? colours.credit : colours.edge;
    const dash = e.lag > 0 ? ' stroke-dasharray="6 4"' : '';
    out.push(
      `<g class="edge" data-from="${escapeXml(e.from)}" data-to="${escapeXml(e.to)}" data-lag="${e.lag}" data-highlighted="${on}">` +
        `<path d="${pathData(e.path)}" fill="none" stroke="${stroke}" stroke-width="${on ? 3 : 1.5}"${dash} marker-end="url(#${on ? 'arrow-credit' : 'arrow'})"/>` +
        (e.label === undefined
          ? ''
          : `<text x="${num(e.label.at.x)}" y="${num(e.label.at.y + 4)}" text-anchor="middle" font-size="12" fill="${on ? colours.credit : colours.lagLabel}" stroke="${colours.paper}" stroke-width="4" stroke-linejoin="round" paint-order="stroke">${escapeXml(e.label.text)}</text>`) +
        '</g>',
    );
  }
  out.push('</g>');

  out.push('<g class="nodes">');
  for (const n of layout.nodes) {
    out.push(
      `<g class="node" data-node="${escapeXml(n.name)}" data-kind="${n.kind}" data-shape="${n.shape}">` +
        shapeMarkup(n.shape, n.center, n.box, n.polygon) +
        `<text x="${num(n.center.x)}" y="${num(n.center.y + 5)}" text-anchor="middle" fill="${colours.ink}">${labelMarkup(n.label)}</text>` +
        '</g>',
    );
  }
  out.push('</g>');

  const { box, entries } = layout.legend;
  out.push(`<g class="legend" font-size="12">`);
  out.push(`<rect x="${num(box.x)}" y="${num(box.y)}" width="${num(box.width)}" height="${num(box.height)}" rx="4" fill="#fafafa" stroke="#bbbbbb"/>`);
  entries.forEach((en, i) => {
    const cy = box.y + 6 + legendRow * i + legendRow / 2;
    const icon = { x: box.x + 22, y: cy };
    if (en.kind !== undefined) out.push(legendIcon(en.kind, icon));
    else {
      const on = en.line === 'credit';
      out.push(
        `<path d="M${pt({ x: icon.x - 14, y: cy })} L${pt({ x: icon.x + 8, y: cy })}" fill="none" stroke="${on ? colours.credit : colours.edge}" stroke-width="${on ? 3 : 1.5}"${on ? '' : ' stroke-dasharray="6 4"'} marker-end="url(#${on ? 'arrow-credit' : 'arrow'})"/>`,
      );
    }
    out.push(`<text x="${num(box.x + 44)}" y="${num(cy + 4)}" fill="${colours.ink}">${escapeXml(en.text)}</text>`);
  });
  out.push('</g>');
  out.push('</svg>');
  return out.join('\n') + '\n';
}
