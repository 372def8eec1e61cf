/**
 * The core modules' argument checks, each refusing a wrong input with its own message (the mutation
 * runs showed these checks untested: removing one passed every test). Plain calls, no training.
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { normalize } from '../src/meta/advantages.ts';
import { conjugateGradient, flattenParams, OptimizerError, paramLayout, unflattenParams } from '../src/meta/optimizers.ts';
import { estimatorKinds, estimatorName, estimators } from '../src/surrogates/estimators.ts';

test.before(async () => {
  await tf.setBackend('cpu');
});

test('normalize refuses a mask whose length is not the advantages’, naming both lengths', (t) => {
  t.throws(() => normalize(Float32Array.from([1, 2, 3]), Float32Array.from([1, 1])), { instanceOf: RangeError, message: 'mask has 2 entries, advantages 3' });
  // a mask of the right length is accepted
  t.is(normalize(Float32Array.from([1, 3]), Float32Array.from([1, 1])).length, 2);
});

test('the flat-vector layout refuses no parameters, a parameter of the wrong size and a vector of the wrong rank', (t) => {
  t.throws(() => paramLayout({}), { instanceOf: OptimizerError, message: 'paramLayout: no parameters' });
  const layout = paramLayout({ W0: [2, 3], b0: [3] });
  const wrong = { W0: tf.zeros([3, 3]), b0: tf.zeros([3]) };
  t.throws(() => flattenParams(wrong, layout), { instanceOf: OptimizerError, message: "parameter 'W0' has shape [3, 3], layout says [2, 3]" });
  const matrix = tf.zeros([3, 3]);
  t.throws(() => unflattenParams(matrix, layout), { instanceOf: OptimizerError, message: 'flat vector has shape [3, 3], layout needs [9]' });
  [wrong.W0, wrong.b0, matrix].forEach((x) => x.dispose());
});

test('conjugate gradient refuses a Hessian-vector product of the wrong length', (t) => {
  const b = tf.tensor1d([1, 1]);
  t.throws(() => conjugateGradient((v) => tf.concat([v, v]) as tf.Tensor1D, b), {
    instanceOf: OptimizerError,
    message: 'conjugateGradient: hvp returned 4 entries, expected 2',
  });
  b.dispose();
});

test('each estimator has its own name, the clip and λ in it where they are set, a custom one its given name', (t) => {
  const names = [
    estimators.pgt(),
    estimators.dice(),
    estimators.diceBaseline({ a: 'batch' }),
    estimators.lvc(),
    estimators.lvc(undefined, { clip: 0.2 }),
    estimators.loadedDice(0.5),
    estimators.tmaml({ a: 'batch' }),
    estimators.custom('mine', () => []),
  ].map(estimatorName);
  t.deepEqual(names, ['PGT (naive score function)', 'DiCE', 'DiCE + baseline', 'LVC', 'clipped LVC (ε=0.2)', 'Loaded DiCE (λ=0.5)', 'TMAML', 'mine']);
  t.deepEqual([...estimatorKinds].sort(), ['dice', 'dice-baseline', 'loaded-dice', 'lvc', 'pgt', 'tmaml']);
});
