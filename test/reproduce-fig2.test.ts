/**
 * Fig. 2's runs are configured as the released benchmark (experiments/all_envs_eval/*_run_all.py at
 * fb9ce3a) says, scaled only in size: the numbers below are read from those scripts, not from config.ts.
 */
import test from 'ava';
import { fig2Algorithms, fig2Config, fig2Environments, fig2Sizes } from '../src/reproduce/fig2.ts';

test('fig2: every run has the released hyperparameters; paper scale is the released size', (t) => {
  t.deepEqual(fig2Sizes.paper, { iterations: 1001, tasks: 40, trajectories: 20 });
  t.deepEqual(
    fig2Algorithms.map((a) => a.algo),
    ['promp', 'maml-trpo', 'emaml-trpo', 'lvc-vpg', 'dice-maml'],
  );
  for (const env of fig2Environments) {
    for (const { algo } of fig2Algorithms) {
      const c = fig2Config(env, algo, 2, fig2Sizes.paper);
      t.like(c, {
        algo,
        env,
        seed: 2,
        iterations: 1001,
        tasksPerIteration: 40,
        trajectoriesPerTask: 20,
        horizon: 100,
        adaptationSteps: env === 'point-corners' ? 3 : 1,
        innerStepSize: 0.1,
        discount: 0.99,
        gaeLambda: 1,
        outerLearningRate: 1e-3,
        prompSteps: 5,
        clip: 0.3,
        klPenalty: 5e-4,
        maxKl: 0.01,
        cgIterations: 10,
        backtrackRatio: 0.8,
        maxBacktracks: 15,
        initLogStd: 0,
        actionNormalization: 'normalized',
        prompKlLevels: 'every-level',
        emamlScore: 'released',
      });
      t.deepEqual(c.hidden, [64, 64]);
    }
  }
});
