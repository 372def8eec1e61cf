/**
 * Several tasks' terms of the outer step computed as one. On the fused engine a task's term (its
 * adaptation, surrogate and KL with their second-order tape) is a few large kernel calls and ~600
 * small tfjs ops, whose bookkeeping (tape, saved-tensor clones, dispatch: ~10 µs each) was a quarter
 * of the term's time at the paper's point-mass sizes. Stacked, K tasks' batches become one batch of K
 * groups (Batch.groups) and their parameters one θ of K blocks ([K, P]: src/ops/mlp/kernels.ts), so
 * the same ops run once for K tasks; every mean over a batch is taken per group, and each group's term
 * depends on its own block of θ alone — the gradient with respect to [K, P] θ is, row by row, each
 * task's own. Memory grows with K (K tasks' tapes), so a stack is bounded by its rows and the
 * network's width (`stackSize`).
 */
import * as tf from '@tensorflow/tfjs';
import type { DistributionParams } from '../scg/builder.ts';
import type { Batch } from '../surrogates/batch.ts';
import type { LevelData } from './meta-objective.ts';

/**
 * What one stack may hold, in rows (trajectories × horizon) times the network's width (its layers'
 * widths summed: the activations, tangents and cotangents the tape keeps per row): 10 point-mass tasks
 * of 20 × 100 steps on the 2-64-64-2 network. At 10 such tasks tfjs's bookkeeping is ~8% of a stacked
 * term (a V8 profile: the kernels ~80%), so larger stacks could save little more, while the tapes held
 * grow with every task; a wider network or a longer batch gets fewer tasks per stack, so a stack's
 * memory stays that of this one.
 */
export const stackUnits = 20_000 * 132;

/**
 * A network's width as `stackUnits` counts it: its observation, hidden and action widths summed (one
 * per action for a categorical one).
 */
export const networkWidth = (observationDim: number, hidden: readonly number[], actionWidth: number): number =>
  observationDim + hidden.reduce((a, b) => a + b, 0) + actionWidth;

/** How many tasks of `rowsPerTask` rows each one stack of `units` holds for a network `width` wide: at least 1. */
export const stackSize = (rowsPerTask: number, width: number, units = stackUnits): number =>
  Math.max(1, Math.floor(units / Math.max(1, rowsPerTask * width)));

/** The tasks 0 … count−1 in stacks of `size`, in order: [start, end) of each. */
export const taskStacks = (count: number, size: number): Array<{ readonly start: number; readonly end: number }> =>
  Array.from({ length: Math.ceil(count / size) }, (_, s) => ({ start: s * size, end: Math.min(count, (s + 1) * size) }));

export class TaskStackError extends Error {
  override readonly name = 'TaskStackError';
}

const concatRows = (ts: readonly tf.Tensor[]): tf.Tensor => (ts.length === 1 ? tf.clone(ts[0]!) : tf.concat([...ts], 0));

/** Refuses records that do not all have the same keys (or are not all absent). */
const checkRecords = (what: string, records: readonly (Readonly<Record<string, tf.Tensor>> | undefined)[]): void => {
  if (records.every((r) => r === undefined)) return;
  const keys = Object.keys(records[0] ?? {});
  if (records.some((r) => r === undefined || Object.keys(r).length !== keys.length || keys.some((k) => r[k] === undefined))) {
    throw new TaskStackError(`the tasks' batches differ in their ${what}: they cannot be stacked`);
  }
};

/** Each record's tensors stacked by key (checked by `checkRecords`), or undefined when there are none. */
const stackRecords = (records: readonly (Readonly<Record<string, tf.Tensor>> | undefined)[]): Record<string, tf.Tensor> | undefined =>
  records[0] === undefined ? undefined : Object.fromEntries(Object.keys(records[0]).map((k) => [k, concatRows(records.map((r) => r![k]!))]));

/**
 * A distribution's parameters over the stacked rows: a per-sample tensor ([n, …], as the family's
 * widest parameter) concatenated; one shared by a task's samples (a Gaussian's state-independent
 * log-std [d]) repeated over its n samples as [n, 1, …, d] first, which broadcasts like the original.
 */
const stackDistributions = (params: readonly DistributionParams[], samples: number): DistributionParams => {
  const first = params[0]! as unknown as Record<string, tf.Tensor>;
  const rank = Math.max(...Object.values(first).map((t) => t.rank));
  const perRow = (t: tf.Tensor): tf.Tensor => {
    if (t.rank === rank) return t;
    const shape = [1, ...new Array<number>(rank - 1 - t.rank).fill(1), ...t.shape];
    // A broadcasting add repeats it (tfjs-wasm's Tile is slow: ~0.7 ms a call).
    return tf.add(tf.reshape(t, shape), tf.zeros([samples, ...shape.slice(1)]));
  };
  return Object.fromEntries(
    Object.keys(first).map((k) => [k, tf.tidy(() => concatRows(params.map((p) => perRow((p as unknown as Record<string, tf.Tensor>)[k]!))))]),
  ) as unknown as DistributionParams;
};

/**
 * K tasks' data at one level as one LevelData of K groups: batches stacked along B (every task's must
 * have the same samples and horizon), weights and E-MAML score weights per group, the sampling
 * distributions (ProMP's KL reference) stacked. The parameters that sampled each level (`sampledBy`)
 * are not carried: a stack's KL reads its reference from `samplingDistributions`. The tensors made are
 * the caller's to free (`disposeStacked`).
 */
export const stackLevelData = (levels: readonly LevelData[]): LevelData => {
  // Everything checked before anything is made: a refusal leaves no tensor behind.
  if (levels.length === 0) throw new TaskStackError('no tasks to stack');
  const batches = levels.map((d) => d.batch);
  const shapeOf = (b: Batch) => (b.mask ?? Object.values(b.values)[0]!).shape.slice(0, 2).join(' × ');
  if (batches.some((b) => b.groups !== undefined)) throw new TaskStackError('a batch that is already a stack cannot be stacked again');
  if (new Set(batches.map(shapeOf)).size > 1) {
    throw new TaskStackError(`the tasks' batches differ in size (${batches.map(shapeOf).join(', ')}): they cannot be stacked`);
  }
  const records = {
    values: batches.map((b) => b.values),
    baselines: batches.map((b) => b.baselines),
    behaviour: batches.map((b) => b.behaviour),
    advantages: batches.map((b) => b.advantages),
  };
  Object.entries(records).forEach(([what, r]) => checkRecords(what, r));
  if (new Set(batches.map((b) => b.mask === undefined)).size > 1) throw new TaskStackError('some tasks mask their batches and some do not: they cannot be stacked');
  const weighted = levels.filter((d) => d.weights !== undefined).length;
  if (weighted !== 0 && weighted !== levels.length) throw new TaskStackError('some tasks weight their samples and some do not: they cannot be stacked');
  const scored = levels.filter((d) => d.scoreWeight !== undefined).length;
  if (scored !== 0 && scored !== levels.length) throw new TaskStackError('some tasks carry an E-MAML score weight and some do not: they cannot be stacked');
  const fixed = levels.filter((d) => d.samplingDistributions !== undefined).length;
  if (fixed !== 0 && fixed !== levels.length) throw new TaskStackError('some tasks carry their KL reference and some do not: they cannot be stacked');
  const samples = (batches[0]!.mask ?? Object.values(batches[0]!.values)[0]!).shape[0]!;
  const batch: Batch = {
    values: stackRecords(records.values)!,
    ...(batches[0]!.mask !== undefined ? { mask: concatRows(batches.map((b) => b.mask!)) } : {}),
    ...optional('baselines', stackRecords(records.baselines)),
    ...optional('behaviour', stackRecords(records.behaviour)),
    ...optional('advantages', stackRecords(records.advantages)),
    groups: levels.length,
  };
  return {
    batch,
    // The trainer's weights (1 / the task's steps per trajectory) do not read the parameters.
    ...(weighted > 0 ? { weights: (p) => tf.concat(levels.map((d) => d.weights!(p)), 0) } : {}),
    ...(scored > 0 ? { scoreWeight: levels.map((d) => d.scoreWeight as number) } : {}),
    ...(fixed > 0
      ? {
          samplingDistributions: new Map(
            [...levels[0]!.samplingDistributions!.keys()].map((name) => [
              name,
              stackDistributions(
                levels.map((d) => d.samplingDistributions!.get(name)!),
                samples,
              ),
            ]),
          ),
        }
      : {}),
  };
};

const optional = <K extends string>(key: K, value: Record<string, tf.Tensor> | undefined): Partial<Record<K, Record<string, tf.Tensor>>> =>
  value === undefined ? {} : ({ [key]: value } as Record<K, Record<string, tf.Tensor>>);

/** Frees the tensors `stackLevelData` made. */
export const disposeStacked = (d: LevelData): void => {
  const b = d.batch;
  tf.dispose([
    ...Object.values(b.values),
    ...(b.mask !== undefined ? [b.mask] : []),
    ...Object.values(b.baselines ?? {}),
    ...Object.values(b.behaviour ?? {}),
    ...Object.values(b.advantages ?? {}),
    ...[...(d.samplingDistributions?.values() ?? [])].flatMap((p) => Object.values(p as unknown as Record<string, tf.Tensor>)),
  ]);
};

/** One task's data for the outer step: its pre-update levels and its post-update data. */
export interface TaskData {
  readonly pre: readonly LevelData[];
  readonly post: LevelData;
}

/**
 * Tasks' data as one stack: each pre-update level and the post-update data stacked (`stackLevelData`).
 * Free it with `disposeStackedTasks`; a refusal frees what was stacked before it.
 */
export const stackTasks = (tasks: readonly TaskData[]): { pre: LevelData[]; post: LevelData } => {
  if (tasks.length === 0) throw new TaskStackError('no tasks to stack');
  const made: LevelData[] = [];
  try {
    const pre = tasks[0]!.pre.map((_, j) => {
      const level = stackLevelData(tasks.map((t) => t.pre[j]!));
      made.push(level);
      return level;
    });
    return { pre, post: stackLevelData(tasks.map((t) => t.post)) };
  } catch (e) {
    made.forEach(disposeStacked);
    throw e;
  }
};

/** Frees the tensors `stackTasks` made. */
export const disposeStackedTasks = (stack: { readonly pre: readonly LevelData[]; readonly post: LevelData }): void =>
  [...stack.pre, stack.post].forEach(disposeStacked);

