// @ts-check
/**
 * Mutation testing (StrykerJS, command runner over ava): `npm run mutation [GROUP…]` (scripts/mutation.mjs)
 * runs one Stryker pass per group, each mutating its files and running only the test files that
 * exercise them (the command runner runs the whole command for every mutant, so a fast command is
 * what makes a run finish). Reports go to reports/mutation/GROUP.{html,json}. Not part of CI: slow.
 * Concurrency 1: the machines this runs on are shared.
 */
const groups = {
  ops: {
    mutate: ['src/ops/**/*.ts'],
    tests: ['test/ops.test.ts', 'test/ops-edges.test.ts'],
  },
  surrogates: {
    mutate: ['src/surrogates/**/*.ts', 'src/scg/influence.ts'],
    tests: ['test/compile.test.ts', 'test/per-sample-credit.test.ts', 'test/influence.test.ts', 'test/influence-edges.test.ts'],
  },
  // src/meta, one group per file: each with the tests that pin its numbers (a file's survivors run the
  // whole command, so the commands are kept to the few files that matter).
  advantages: {
    mutate: ['src/meta/advantages.ts'],
    tests: ['test/advantages.test.ts', 'test/level-data.test.ts'],
  },
  optimizers: {
    mutate: ['src/meta/optimizers.ts'],
    tests: ['test/optimizers.test.ts', 'test/trainer-numbers.test.ts'],
  },
  'meta-objective': {
    mutate: ['src/meta/meta-objective.ts'],
    tests: ['test/meta-objective.test.ts', 'test/formulation-ii-pathwise.test.ts', 'test/trainer-numbers.test.ts'],
  },
  iteration: {
    mutate: ['src/meta/iteration.ts'],
    tests: ['test/level-data.test.ts', 'test/promp-kl-penalty.test.ts', 'test/trainer-numbers.test.ts', 'test/formulations-1d.test.ts'],
  },
};

const name = process.env.MUTATION_GROUP ?? 'ops';
const group = groups[/** @type {keyof typeof groups} */ (name)];
if (group === undefined) throw new Error(`unknown MUTATION_GROUP '${name}' (have: ${Object.keys(groups).join(', ')})`);
// MUTATION_FILES (comma-separated globs, or file.ts:FROM-TO line ranges) narrows a group's files, e.g.
// for a time-boxed run, and MUTATION_REPORT names its report (default: the group's name).
const mutate = process.env.MUTATION_FILES ? process.env.MUTATION_FILES.split(',') : group.mutate;
const report = process.env.MUTATION_REPORT ?? name;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'command',
  // --fail-fast: a killed mutant stops at its first failing test.
  commandRunner: { command: `npx ava --fail-fast ${group.tests.join(' ')}` },
  mutate,
  concurrency: 1,
  coverageAnalysis: 'off',
  // Error-message texts are what the CLI and end-to-end suites check, too slow to run per mutant; a
  // surviving string is a wrong message, not a wrong number, and would swamp the report.
  mutator: { excludedMutations: ['StringLiteral'] },
  timeoutFactor: 2,
  timeoutMS: 30000,
  dryRunTimeoutMinutes: 10,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${report}.html` },
  jsonReporter: { fileName: `reports/mutation/${report}.json` },
  tempDirName: '.stryker-tmp',
  ignorePatterns: ['runs', 'docs', 'bench', 'reports', '.stryker-tmp', '*.log'],
  cleanTempDir: true,
};
