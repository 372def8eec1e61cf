/**
 * How noisy is each estimator's meta-gradient? (ProMP Sec. 7.2, Fig. 4.) At θ = policy.init(1) on
 * nav-2d, draws K = 10 independent batches (10 tasks × 10 trajectories, pre- and post-update) and takes
 * the formulation-I meta-gradient of LVC, DiCE and TMAML on each (their algorithms lvc-vpg, dice-vpg,
 * tmaml), then prints the relative standard deviation of the K gradients three ways and the DiCE/LVC
 * ratio (the paper: DiCE ≈ 60% higher than LVC, on average over its MuJoCo tasks).
 * About a minute on 2 cores. Run: npx tsx examples/metagrad-variance.ts
 */
import { describeBackend, selectBackend } from '../src/backend.ts';
import { metaGradientVariance, studyDefaults, varianceEstimators } from '../src/meta/variance.ts';

const backend = await selectBackend();
console.log(describeBackend(backend));

const result = await metaGradientVariance({
  ...studyDefaults,
  onGradient: ({ estimator, batch }) => process.stderr.write(`\r${estimator} batch ${batch + 1}/${studyDefaults.batches}   `),
});
process.stderr.write('\n');

const c = result.config;
console.log(
  `${c.env}: ${c.tasksPerBatch} tasks × ${c.trajectoriesPerTask} trajectories × horizon ${c.horizon}, ${c.adaptationSteps} inner step(s) of ${c.innerStepSize}; ` +
    `K = ${result.batches} batches; ${result.parameterCount} parameters; ${result.seconds.toFixed(0)} s`,
);
console.log('relative std of the meta-gradient over the K batches (std with 1/K):');
console.log('  mean_i  = mean over coordinates of std(g_i)/|mean(g_i)| (the paper\'s code)');
console.log('  median_i = the median over coordinates of the same;  norm = ‖std(g)‖/‖mean(g)‖');
console.log('');
const pad = (s: string, n: number) => s.padStart(n);
console.log(`${'estimator'.padEnd(10)}${pad('algorithm', 10)}${pad('mean_i', 10)}${pad('median_i', 10)}${pad('norm', 10)}${pad('mean |g|', 12)}`);
for (const name of varianceEstimators) {
  const e = result.estimators[name]!;
  console.log(
    `${name.padEnd(10)}${pad(e.algorithm, 10)}${pad(e.relativeStd.toFixed(3), 10)}${pad(e.medianRelativeStd.toFixed(3), 10)}` +
      `${pad(e.normRatio.toFixed(3), 10)}${pad(e.meanNorm.toExponential(2), 12)}`,
  );
}
const { lvc, dice, tmaml } = result.estimators;
console.log('');
console.log(
  `DiCE / LVC:   ${(dice!.relativeStd / lvc!.relativeStd).toFixed(2)} (mean_i), ${(dice!.medianRelativeStd / lvc!.medianRelativeStd).toFixed(2)} (median_i), ` +
    `${(dice!.normRatio / lvc!.normRatio).toFixed(2)} (norm)   [paper: ≈ 1.6]`,
);
console.log(
  `TMAML / DiCE: ${(tmaml!.relativeStd / dice!.relativeStd).toFixed(2)} (mean_i), ${(tmaml!.medianRelativeStd / dice!.medianRelativeStd).toFixed(2)} (median_i), ` +
    `${(tmaml!.normRatio / dice!.normRatio).toFixed(2)} (norm)`,
);
console.log(`tensors alive: ${result.memory.numTensorsBefore} before, ${result.memory.numTensorsAfter} after`);
