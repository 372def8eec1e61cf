/**
 * The checks every vectorised environment makes at its boundary, in one place so that their messages
 * read the same everywhere: a step before reset, a wrong number of action values, a non-finite action
 * (naming the environment, the row, the coordinate, the row's task and the step), a bad task count.
 */

/** Throws unless `actions` holds size × dim finite numbers; `step` counts steps since the last reset (−1: none yet). */
export const checkActions = (
  name: string,
  actions: Float32Array,
  size: number,
  dim: number,
  step: number,
  describeRow: (row: number) => unknown,
): void => {
  if (step < 0) throw new Error(`${name}: step() called before reset()`);
  if (actions.length !== size * dim) {
    throw new Error(`${name}: expected ${size * dim} action values ([${size} × ${dim}], row-major), got ${actions.length}`);
  }
  // Every row is checked, done or not: a non-finite action is a bug upstream either way.
  for (let k = 0; k < actions.length; k++) {
    const a = actions[k]!;
    if (!Number.isFinite(a)) {
      const row = Math.floor(k / dim);
      const coordinate = dim > 1 ? `, coordinate ${k % dim}` : '';
      throw new Error(`${name}: action ${a} at row ${row}${coordinate} (task ${JSON.stringify(describeRow(row))}) on step ${step} since reset`);
    }
  }
};

export const checkTaskCount = (name: string, count: number): void => {
  if (!Number.isInteger(count) || count < 0) throw new Error(`${name}: task count must be a non-negative integer, got ${count}`);
};

/** x clipped to [−bound, bound]. */
export const clip = (x: number, bound: number): number => Math.min(bound, Math.max(-bound, x));
