/**
 * `magicbox rollouts CHECKPOINT --out FILE.svg [--tasks N] [--trajectories K] [--seed S] [--title T]`:
 * a trained policy's pre-update and post-update trajectories in the plane, for the 2D point
 * environments (point-corners, nav-2d, point-momentum), on a few fresh tasks, adapted with the run's
 * own inner steps.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../backend.ts';
import { CheckpointError, readCheckpoint, tensorsFromJson } from '../meta/checkpoint.ts';
import { pointRollouts } from '../meta/rollouts.ts';
import { writeFileAtomic } from '../meta/run-directory.ts';
import { trainerFor, trainerShapes } from '../meta/trainer-setup.ts';
import { renderRollouts } from '../plot/rollouts.ts';
import type { Output } from './validate.ts';

export interface RolloutsCliOptions {
  readonly out: string;
  readonly tasks?: string;
  readonly trajectories?: string;
  readonly seed?: string;
  readonly title?: string;
}

/** The 2D point environments (position = the first two observation coordinates), with their reward region radius where there is one. */
export const pointEnvironments2d: Readonly<Record<string, { readonly regionRadius?: number }>> = Object.freeze({
  'point-corners': {},
  'nav-2d': {},
  'point-momentum': { regionRadius: 2 },
});

const whole = (flag: string, text: string | undefined, min: number, max: number): { value?: number; error?: string } => {
  if (text === undefined) return {};
  const value = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || value < min || value > max) return { error: `${flag}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(text)}` };
  return { value };
};

/** Draws a checkpoint's trajectories; returns the exit status (0, or 1 for bad input or an unreadable checkpoint). */
export async function runRollouts(checkpoint: string, opts: RolloutsCliOptions, out: Output): Promise<number> {
  const prefix = 'magicbox rollouts';
  const tasks = whole('--tasks', opts.tasks, 1, 16);
  const trajectories = whole('--trajectories', opts.trajectories, 1, 1000);
  const seed = whole('--seed', opts.seed, 0, Number.MAX_SAFE_INTEGER);
  const errors = [tasks.error, trajectories.error, seed.error].filter((e): e is string => e !== undefined);
  const outDir = path.dirname(path.resolve(opts.out));
  if (!fs.existsSync(outDir) || !fs.statSync(outDir).isDirectory()) errors.push(`--out ${opts.out}: no such directory ${outDir}`);
  else if (fs.existsSync(opts.out) && fs.statSync(opts.out).isDirectory()) errors.push(`--out ${opts.out} is a directory; give a file name (FILE.svg)`);
  if (errors.length > 0) {
    errors.forEach((e) => out.error(`${prefix}: ${e}`));
    return 1;
  }
  let payload;
  try {
    payload = readCheckpoint(checkpoint);
  } catch (e) {
    if (e instanceof CheckpointError) {
      out.error(`${prefix}: ${e.message}`);
      return 1;
    }
    throw e;
  }
  const { config } = payload;
  const kind = pointEnvironments2d[config.env];
  if (kind === undefined) {
    out.error(`${prefix}: ${checkpoint} was trained on ${config.env}; rollouts draws the 2D point environments (${Object.keys(pointEnvironments2d).join(', ')})`);
    return 1;
  }
  const backend = await selectBackend();
  let params;
  try {
    params = tensorsFromJson(payload.params, trainerShapes(config), 'params');
  } catch (e) {
    out.error(`${prefix}: checkpoint ${checkpoint}: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  const trainer = await trainerFor(config, { workers: 1, backend: backend.tfjsName });
  try {
    const rollouts = await pointRollouts(trainer, params, { tasks: tasks.value ?? 4, trajectories: trajectories.value ?? 10, seed: seed.value ?? 0 });
    const title = opts.title ?? `${config.algo} on ${config.env} after ${payload.nextIteration} iteration(s)`;
    const svg = await renderRollouts([{ title, rollouts }], { title: 'Pre-update (grey) and post-update (coloured) trajectories', ...(kind.regionRadius !== undefined ? { regionRadius: kind.regionRadius } : {}) });
    writeFileAtomic(opts.out, svg);
    const levels = rollouts.adaptationSteps;
    const mean = (j: number) => rollouts.tasks.reduce((a, task) => a + task.returns[j]!, 0) / rollouts.tasks.length;
    out.log(`wrote ${opts.out}: ${rollouts.tasks.length} task(s) × ${trajectories.value ?? 10} trajectories; average return pre-update ${mean(0).toFixed(3)}, after ${levels} step(s) ${mean(levels).toFixed(3)}`);
    return 0;
  } finally {
    tf.dispose(Object.values(params));
    await trainer.sampler.close();
  }
}
