/**
 * `magicbox validate GRAPH.json`: decode and check a graph file, printing one line per problem in the
 * `file: message` form editors and CI logs recognise.
 */
import { isLeft } from 'fp-ts/lib/Either.js';
import { formatDecodeError, readGraphFile } from '../scg/decode.ts';
import type { GraphSpec, NodeKind } from '../scg/spec.ts';
import { validateGraph } from '../scg/validate.ts';

export interface Output {
  readonly log: (line: string) => void;
  readonly error: (line: string) => void;
}

/** Checks one graph file; returns the exit status, 0 when the graph is valid and 1 otherwise. */
export async function runValidate(file: string, out: Output): Promise<number> {
  const decoded = await readGraphFile(file);
  if (isLeft(decoded)) {
    for (const error of decoded.left) out.error(`${file}: ${formatDecodeError(error)}`);
    return 1;
  }
  const problems = validateGraph(decoded.right);
  for (const problem of problems) out.error(`${file}: ${problem.code}: ${problem.message}`);
  if (problems.length > 0) return 1;
  out.log(`${file}: valid (${summary(decoded.right)})`);
  return 0;
}

const kindOrder: readonly NodeKind[] = ['parameter', 'input', 'stochastic', 'deterministic', 'cost'];
/** Kinds named by nouns take a plural; the adjectives do not ("2 stochastic"). */
const plurals: Partial<Record<NodeKind, string>> = { parameter: 'parameters', input: 'inputs', cost: 'costs' };

/** "4 nodes: 1 parameter, 2 stochastic, 1 cost". */
function summary(spec: GraphSpec): string {
  const counts = kindOrder
    .map((kind) => [kind, spec.nodes.filter((node) => node.kind === kind).length] as const)
    .filter(([, count]) => count > 0)
    .map(([kind, count]) => `${count} ${count === 1 ? kind : (plurals[kind] ?? kind)}`);
  const total = spec.nodes.length;
  return `${total} ${total === 1 ? 'node' : 'nodes'}${counts.length > 0 ? `: ${counts.join(', ')}` : ''}`;
}
