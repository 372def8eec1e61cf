/** magicbox's public API. Everything else under src/ is internal and may change. */
export { selectBackend, describeBackend, backendNames, BackendError, type BackendName, type BackendReport } from './backend.ts';

// The graph: one declarative structure…
export type { GraphSpec, NodeSpec, NodeKind, Family, ParentRef } from './scg/spec.ts';
export { GraphSpecCodec } from './scg/spec.ts';
export { scg, lag, graphOf, GraphBuilder, DuplicateNodeError, UndeclaredParentError } from './scg/builder.ts';
export type { Graph, NodeImpl, NodeContext, ParentValues, CategoricalParams, GaussianParams } from './scg/builder.ts';
export { decodeGraphSpec, encodeGraphSpec, parseGraphJson, readGraphFile, formatDecodeError, type DecodeError } from './scg/decode.ts';
export { validateGraph, type Problem, type ProblemCode } from './scg/validate.ts';
export { influenceQuery, influenceMask, type Influence, type InfluenceQuery } from './scg/influence.ts';

// …and its interpreters: compile a surrogate, enumerate exactly.
export { compile, GraphError, type Surrogate } from './surrogates/compile.ts';
export { estimators, estimatorName, estimatorKinds, type Estimator, type EstimatorKind, type Baselines, type BaselineSource } from './surrogates/estimators.ts';
export { checkBatch, BatchError, type Batch, type Params } from './surrogates/batch.ts';
export { evaluateGraph, EvaluationError, type Evaluation } from './surrogates/evaluate.ts';
export { oracle, hessianTerms, type Oracle, type OracleProblem, type HessianTerms } from './oracle/oracle.ts';
export { verify, formatReport, type GraphCheck, type EstimatorCheck, type OrderCheck } from './oracle/verify.ts';
export { builtinProblems, mdpChain, twoCostDag } from './oracle/problems.ts';
export { instantiate } from './oracle/instantiate.ts';

// Ops whose derivatives are right at every order.
export * as ops from './ops/index.ts';

// Training runs: a run directory with config, progress logs and checkpoints; resume; evaluation.
export {
  train,
  evaluateCheckpoint,
  readCheckpoint,
  decodeConfigPatch,
  RunError,
  ResumeConflictError,
  CheckpointError,
  type TrainOptions,
  type TrainResult,
  type ProgressRow,
  type ProgressMode,
  type CheckpointPayload,
  type CheckpointEvaluation,
} from './meta/train.ts';
