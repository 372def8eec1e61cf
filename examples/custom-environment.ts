/**
 * A task distribution of your own, meta-trained through `train` (docs/extending.md, "A new
 * environment"): implement the TaskDistribution interface (sample tasks from a seeded generator, make
 * a vector of environments stepped together) and pass the object as `distribution`, with `config.env`
 * set to its name. The command line keeps to the built-in catalogue; the library takes any distribution.
 *
 * The example: a point on the plane that must reach a goal on the unit circle it is not told (the task
 * is the goal's angle), reward −‖x − g‖, actions clipped to [−0.1, 0.1]², horizon 20, one inner step.
 * Run: npx tsx examples/custom-environment.ts [RUN_DIR]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, train, type TaskDistribution } from '../src/index.ts';

interface RingTask {
  readonly goal: readonly [number, number];
}

const maxAction = 0.1;

export const pointRing: TaskDistribution<RingTask> = {
  name: 'point-ring',
  description: '2D point from the origin to an unseen goal on the unit circle; reward −distance',
  observationDim: 2,
  action: { kind: 'continuous', dim: 2, low: -maxAction, high: maxAction },
  horizon: 20,
  adaptationSteps: 1,
  sampleTasks: (uniform, count) =>
    Array.from({ length: count }, () => {
      const angle = 2 * Math.PI * uniform();
      return { goal: [Math.cos(angle), Math.sin(angle)] as const };
    }),
  describeTask: (task) => ({ goal: [...task.goal] }),
  make: (tasks) => {
    const size = tasks.length;
    const position = new Float32Array(2 * size);
    return {
      size,
      reset: () => {
        position.fill(0);
        return position.slice();
      },
      step: (actions) => {
        const rewards = new Float32Array(size);
        for (let i = 0; i < size; i++) {
          const a = [actions[2 * i]!, actions[2 * i + 1]!];
          if (!a.every(Number.isFinite)) throw new Error(`point-ring: row ${i} got action ${a.join(', ')}`);
          for (let k = 0; k < 2; k++) position[2 * i + k] = position[2 * i + k]! + Math.min(maxAction, Math.max(-maxAction, a[k]!));
          const [gx, gy] = tasks[i]!.goal;
          rewards[i] = -Math.hypot(position[2 * i]! - gx, position[2 * i + 1]! - gy);
        }
        return { observations: position.slice(), rewards, dones: new Uint8Array(size) };
      },
    };
  },
};

const runDir = process.argv[2] ?? join(mkdtempSync(join(tmpdir(), 'magicbox-ring-')), 'run');
const result = await train({
  config: resolveConfig({ algo: 'promp', env: pointRing.name, iterations: 2, tasksPerIteration: 4, trajectoriesPerTask: 4, hidden: [16] }),
  distribution: pointRing,
  runDir,
  log: (line) => console.log(line),
  progress: 'lines',
});
console.log(`point-ring: training ${result.outcome}, ${result.iterationsDone} iterations, returns per level ${result.lastRow?.averageReturn.map((r) => r.toFixed(2)).join(' → ')}`);
