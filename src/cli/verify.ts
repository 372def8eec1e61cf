/**
 * `magicbox verify [GRAPH.json] [--json]`: runs the exactness oracle on the built-in enumerable graphs,
 * or on a user's graph file whose stochastic nodes are all categorical.
 */
import { isLeft } from 'fp-ts/lib/Either.js';
import { formatDecodeError, readGraphFile } from '../scg/decode.ts';
import { validateGraph } from '../scg/validate.ts';
import { describeBackend, type BackendReport } from '../backend.ts';
import { instantiate } from '../oracle/instantiate.ts';
import { verifyProblems } from '../oracle/problems.ts';
import { formatReport, verify, type GraphCheck } from '../oracle/verify.ts';
import type { Output } from './validate.ts';

/** The most nodes a graph file may have for `verify`. */
export const maxVerifyNodes = 5000;

/** The estimators whose expected derivatives must be exact at every order checked. */
const exactAtEveryOrder: ReadonlySet<string> = new Set(['dice', 'dice-baseline', 'tmaml']);

/**
 * Whether every check came out as theory says: every estimator unbiased at order 1, DiCE, DiCE +
 * baseline and TMAML exact at every order, the Hessian decomposition holding, each predicted bias
 * (LVC, PGT at order 2) equal to the prediction, each closed form (PGT, LVC, Loaded DiCE at order 2)
 * matched, every outcome's gradient equal to its closed form, and clipped LVC at θ ≠ θ_o equal to its.
 */
export const allAsPredicted = (checks: readonly GraphCheck[]): boolean =>
  checks.every(
    (g) =>
      (g.decomposition?.holds ?? true) &&
      g.clippedRatio.holds &&
      g.estimators.every(
        (e) =>
          e.orders.every((o) => (o.order === 1 || exactAtEveryOrder.has(e.kind) ? o.unbiased : true)) &&
          e.orders.every((o) => (o.predictedBias?.matches ?? true) && (o.closedForm?.matches ?? true)) &&
          e.perSample.holds,
      ),
  );

export async function runVerify(
  file: string | undefined,
  options: { readonly json: boolean },
  backend: BackendReport,
  out: Output,
): Promise<number> {
  let problems;
  if (file === undefined) {
    problems = verifyProblems();
  } else {
    const spec = await readGraphFile(file);
    if (isLeft(spec)) {
      spec.left.forEach((e) => out.error(`${file}: ${formatDecodeError(e)}`));
      return 1;
    }
    if (spec.right.nodes.length > maxVerifyNodes) {
      // Enumeration keeps a tensor per node and outcome: far beyond this, Node runs out of heap (a fatal
      // error no handler can catch) after minutes.
      out.error(`${file}: ${spec.right.nodes.length} nodes; the exactness oracle enumerates small graphs (at most ${maxVerifyNodes} nodes)`);
      return 1;
    }
    const structural = validateGraph(spec.right);
    if (structural.length > 0) {
      structural.forEach((p) => out.error(`${file}: ${p.message}`));
      return 1;
    }
    try {
      problems = [instantiate(spec.right, file)];
    } catch (e) {
      out.error(`${file}: ${e instanceof Error ? e.message : String(e)}`);
      return 1;
    }
  }
  let checks: GraphCheck[];
  try {
    checks = verify(problems);
  } catch (e) {
    out.error(`${file ?? 'verify'}: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  if (options.json) {
    out.log(JSON.stringify({ backend: backend.backend, tfjs: backend.tfjsVersion, graphs: checks }));
  } else {
    out.log(describeBackend(backend));
    out.log(formatReport(checks));
  }
  // First derivatives must always be unbiased; a failed prediction is a finding worth a non-zero exit.
  return allAsPredicted(checks) ? 0 : 2;
}
