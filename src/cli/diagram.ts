/**
 * `magicbox diagram GRAPH --out FILE.svg [--credit COST] [--direction LR|TB]`: draws a graph as the
 * ProMP paper draws its Figure 1 (stochastic nodes as circles, deterministic as squares), colouring
 * the credit paths of a cost. GRAPH is a JSON graph file or a TypeScript/JavaScript module exporting a
 * graph (as `default` or `graph`: a Graph value or its spec). Nothing is written unless the whole
 * diagram could be drawn.
 */
import { isLeft } from 'fp-ts/lib/Either.js';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../meta/run-directory.ts';
import { creditEdges } from '../scg/credit.ts';
import { decodeGraphSpec, formatDecodeError, readGraphFile } from '../scg/decode.ts';
import { renderDiagram } from '../scg/diagram.ts';
import type { GraphSpec } from '../scg/spec.ts';
import { validateGraph } from '../scg/validate.ts';
import type { Output } from './validate.ts';

export interface DiagramOptions {
  readonly out: string;
  readonly credit?: string;
  readonly direction?: 'LR' | 'TB';
  readonly title?: string;
}

/** The spec a module exports, checked with the same codec as a file. */
const specFromModule = async (file: string): Promise<{ spec: GraphSpec } | { errors: string[] }> => {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path.resolve(file)).href)) as Record<string, unknown>;
  } catch (e) {
    return { errors: [`cannot load the module: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`] };
  }
  const exported = mod.graph ?? mod.default;
  if (exported === undefined) return { errors: ['the module exports no graph (export it as `graph` or as the default export)'] };
  const candidate = typeof exported === 'object' && exported !== null && 'spec' in exported ? (exported as { spec: unknown }).spec : exported;
  const decoded = decodeGraphSpec(candidate);
  return isLeft(decoded) ? { errors: decoded.left.map(formatDecodeError) } : { spec: decoded.right };
};

export async function runDiagram(file: string, options: DiagramOptions, out: Output): Promise<number> {
  const isModule = /\.(m?[jt]s)$/.test(file);
  let spec: GraphSpec;
  if (isModule) {
    const loaded = await specFromModule(file);
    if ('errors' in loaded) {
      loaded.errors.forEach((e) => out.error(`${file}: ${e}`));
      return 1;
    }
    spec = loaded.spec;
  } else {
    const decoded = await readGraphFile(file);
    if (isLeft(decoded)) {
      decoded.left.forEach((e) => out.error(`${file}: ${formatDecodeError(e)}`));
      return 1;
    }
    spec = decoded.right;
  }
  const problems = validateGraph(spec);
  if (problems.length > 0) {
    problems.forEach((p) => out.error(`${file}: ${p.message}`));
    out.error(`${file}: nothing written`);
    return 1;
  }
  let highlight: Set<string> | undefined;
  if (options.credit !== undefined) {
    try {
      highlight = creditEdges(spec, options.credit);
    } catch (e) {
      out.error(`${file}: ${e instanceof Error ? e.message : String(e)}`);
      return 1;
    }
  }
  let svg: string;
  try {
    svg = renderDiagram(spec, {
      ...(highlight ? { highlight } : {}),
      ...(options.direction ? { direction: options.direction } : {}),
      ...(options.title !== undefined ? { title: options.title } : spec.name !== undefined ? { title: spec.name } : {}),
    });
  } catch (e) {
    // Too many nodes to draw (refused up front), or a graph deep enough to overflow the layout's recursion.
    const why = e instanceof RangeError ? `the graph is too deep for the layout (${e.message})` : e instanceof Error ? e.message.split('\n')[0] : String(e);
    out.error(`${file}: ${why}; nothing written`);
    return 1;
  }
  writeFileAtomic(options.out, svg);
  out.log(`${options.out}: ${spec.nodes.length} nodes${highlight ? `, ${highlight.size} edges on credit paths of '${options.credit}'` : ''}`);
  return 0;
}
