// @ts-check
/**
 * Mutation testing (StrykerJS, command runner over ava): `npm run mutation [GROUP…]` (scripts/mutation.mjs)
 * runs one Stryker pass per group, each mutating its files and running only the test files that
 * exercise them (the command runner runs the whole command for every mutant, so a fast command is
 * what makes a run finish). Reports go to reports/mutation/GROUP.{html,json}. Not part of CI: slow.
 * Concurrency 1: the machines this runs on are shared.
 */
import { fileURLToPath } from 'node:url';

const groups = {
  // The fused MLP op (src/ops/mlp) is checked against the general tfjs path by the fused-mlp suites.
  ops: {
    mutate: ['src/ops/**/*.ts'],
    tests: ['test/ops.test.ts', 'test/ops-edges.test.ts', 'test/fused-mlp.test.ts', 'test/fused-mlp-packed.test.ts', 'test/fused-mlp-blocks.test.ts'],
  },
  // src/surrogates and the influence query, in two groups: the time operators are the influence
  // query's lag sets made tensors, and their tests are the influence tests.
  surrogates: {
    mutate: ['src/surrogates/**/*.ts', '!src/surrogates/time-operator.ts'],
    tests: ['test/compile.test.ts', 'test/per-sample-credit.test.ts', 'test/compile-ingredients.test.ts', 'test/estimator-kit.test.ts', 'test/evaluate.test.ts', 'test/batch.test.ts'],
  },
  influence: {
    mutate: ['src/scg/influence.ts', 'src/surrogates/time-operator.ts'],
    tests: ['test/influence.test.ts', 'test/influence-edges.test.ts', 'test/per-sample-credit.test.ts'],
  },
  // src/meta, one group per file: each with the tests that pin its numbers (a file's survivors run the
  // whole command, so the commands are kept to the few files that matter).
  advantages: {
    mutate: ['src/meta/advantages.ts'],
    tests: ['test/advantages.test.ts', 'test/level-data.test.ts', 'test/argument-checks.test.ts'],
  },
  optimizers: {
    mutate: ['src/meta/optimizers.ts'],
    tests: ['test/optimizers.test.ts', 'test/optimizer-edges.test.ts', 'test/argument-checks.test.ts', 'test/trainer-numbers.test.ts'],
  },
  'meta-objective': {
    mutate: ['src/meta/meta-objective.ts'],
    tests: ['test/meta-objective.test.ts', 'test/meta-objective-edges.test.ts', 'test/formulation-ii-pathwise.test.ts', 'test/credit.test.ts', 'test/trainer-numbers.test.ts'],
  },
  // Stacked tasks: the stacking itself; what each stacked computation gives is pinned against the task alone.
  'task-stack': {
    mutate: ['src/meta/task-stack.ts'],
    tests: ['test/task-stack.test.ts'],
  },
  iteration: {
    mutate: ['src/meta/iteration.ts'],
    tests: ['test/level-data.test.ts', 'test/promp-kl-penalty.test.ts', 'test/trainer-numbers.test.ts', 'test/formulations-1d.test.ts', 'test/iteration-edges.test.ts'],
  },
};

const name = process.env.MUTATION_GROUP ?? 'ops';
const group = groups[/** @type {keyof typeof groups} */ (name)];
if (group === undefined) throw new Error(`unknown MUTATION_GROUP '${name}' (have: ${Object.keys(groups).join(', ')})`);
// MUTATION_FILES (comma-separated globs, or file.ts:FROM-TO line ranges) narrows a group's files, e.g.
// for a time-boxed run, and MUTATION_REPORT names its report (default: the group's name).
const mutate = process.env.MUTATION_FILES ? process.env.MUTATION_FILES.split(',') : group.mutate;
const report = process.env.MUTATION_REPORT ?? name;
// The project's ava (an absolute path: the sandbox Stryker runs in has no node_modules/.bin of its own).
const ava = fileURLToPath(new URL('node_modules/.bin/ava', import.meta.url));

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'command',
  // --fail-fast: a killed mutant stops at its first failing test. ava's binary directly, not through
  // npx: npx costs about 2 s a start on a loaded machine, paid once per mutant. MUTATION_COMMAND
  // replaces the command (`MUTATION_COMMAND=true` lists a group's mutants in seconds, all surviving).
  commandRunner: { command: process.env.MUTATION_COMMAND ?? `${ava} --fail-fast ${group.tests.join(' ')}` },
  mutate,
  concurrency: 1,
  coverageAnalysis: 'off',
  // Error-message texts are what the CLI and end-to-end suites check, too slow to run per mutant; a
  // surviving string is a wrong message, not a wrong number, and would swamp the report.
  mutator: { excludedMutations: ['StringLiteral'] },
  // A mutant's run is cut off at 1.5 × the unmutated run + 8 s (an off-by-one loop bound can make a
  // loop endless): the unmutated commands take 4–10 s, so a cut-off run is 2–3 × over time.
  timeoutFactor: 1.5,
  timeoutMS: 8000,
  dryRunTimeoutMinutes: 10,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${report}.html` },
  jsonReporter: { fileName: `reports/mutation/${report}.json` },
  tempDirName: '.stryker-tmp',
  ignorePatterns: ['runs', 'docs', 'bench', 'reports', '.stryker-tmp', '*.log'],
  cleanTempDir: true,
};
