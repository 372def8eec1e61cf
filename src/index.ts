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
export { estimators, estimatorName, estimatorKinds, type Estimator, type EstimatorKind, type Baselines, type BaselineSource, type CustomEstimator, type EstimatorKit } from './surrogates/estimators.ts';
export { checkBatch, BatchError, type Batch, type Params } from './surrogates/batch.ts';
export { evaluateGraph, EvaluationError, type Evaluation, type EvaluationOptions } from './surrogates/evaluate.ts';
export { oracle, hessianTerms, enumeratedGraph, type Oracle, type OracleProblem, type HessianTerms, type KnownTransition } from './oracle/oracle.ts';
export { gradient, hessian, thirdDerivative, jacobian, relativeError, maxAbs, type ScalarFn, type SummedFn, type Matrix } from './oracle/derivatives.ts';
export { verify, formatReport, type GraphCheck, type EstimatorCheck, type OrderCheck } from './oracle/verify.ts';
export { builtinProblems, verifyProblems, mdpChain, twoCostDag, pathwiseChain, lagTwoChain } from './oracle/problems.ts';
export { instantiate } from './oracle/instantiate.ts';

// Ops whose derivatives are right at every order.
export * as ops from './ops/index.ts';

// Training runs: a run directory with config, progress logs and checkpoints; resume; evaluation.
export {
  train,
  trainerFor,
  withWorkerSampler,
  type SamplingOptions,
  type TrainerParts,
  evaluateCheckpoint,
  readCheckpoint,
  decodeConfigPatch,
  RunError,
  FileError,
  RunLockedError,
  ResumeConflictError,
  CheckpointError,
  type TrainOptions,
  type TrainResult,
  type ProgressRow,
  type ProgressMode,
  type CheckpointPayload,
  type CheckpointEvaluation,
} from './meta/train.ts';

// Meta-objectives, algorithms and what they run on.
export { metaObjective, metaGraph, formulations, type MetaObjective, type MetaObjectiveOptions, type Formulation, type LevelData, type OuterObjective } from './meta/meta-objective.ts';
export { algorithms, type Algorithm } from './meta/algorithms.ts';
export { algorithmNames, type AlgorithmName } from './meta/algorithm-names.ts';
export { resolveConfig, defaultConfig, type TrainConfig, type TrainConfigPatch } from './meta/config.ts';
export { makeTrainer, runIteration, evaluateParams, TrainingError, type Trainer, type IterationStats } from './meta/iteration.ts';
export { gaussianMlpPolicy, categoricalMlpPolicy, linearGaussianPolicy, mlpPolicyFor, type Policy, type PackedPolicy } from './meta/policy.ts';
export { rlGraph, graphParameters, packedParameter, policyEngines, type GraphParameters, type PolicyEngine } from './meta/rl-graph.ts';
export { sampleGroups, inProcessSampler, averageReturn, SamplerError, type Sampler, type SampleRequest, type Trajectories } from './meta/sampler.ts';
export { workerSampler, defaultWorkerCount, type WorkerSamplerOptions, type PolicySpec } from './meta/parallel-sampler.ts';
// Sampling on a fleet of `magicbox worker` processes through Redis (docs/scaling-out.md).
export { redisSampler, redisSamplerFor, type RedisSampler, type RedisSamplerOptions, type FleetTraffic } from './meta/redis-sampler.ts';
export { startFleetWorker, type FleetWorker, type FleetWorkerOptions } from './meta/fleet-worker.ts';
export { redisTarget, RedisUrlError, redisPasswordVariable, type RedisTarget } from './meta/redis-connection.ts';
export { FLEET_PROTOCOL } from './meta/fleet-protocol.ts';
export { ACTION_NORMALIZATION_SCALE, actionNormalizations, environmentActions, policyActionSpace, type ActionNormalization } from './envs/action-normalization.ts';
export { taskDistribution, taskDistributionNames, environmentNames, environmentDescriptor, loadTaskDistribution, pointCorners, point1d, nav2d, type EnvironmentDescriptor } from './envs/index.ts';
export type { TaskDistribution, VectorEnv, ActionSpace } from './envs/types.ts';

// Drawing: credit paths, diagrams, learning curves.
export { creditEdges, edgeKey } from './scg/credit.ts';
export { renderDiagram, layoutDiagram } from './scg/diagram.ts';
export { plotLearningCurves } from './plot/learning-curves.ts';
