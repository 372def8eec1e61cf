/** The verify command's verdict, and config checks that must hold before any file is written. */
import test from 'ava';
import { isLeft } from 'fp-ts/lib/Either.js';
import { allAsPredicted } from '../src/cli/verify.ts';
import { decodeConfigPatch } from '../src/meta/train.ts';
import type { GraphCheck, OrderCheck } from '../src/oracle/verify.ts';

const order = (k: 1 | 2 | 3, unbiased: boolean, predictedMatches?: boolean): OrderCheck => ({
  order: k,
  maxAbsError: unbiased ? 0 : 1,
  relativeError: unbiased ? 0 : 1,
  unbiased,
  ...(predictedMatches === undefined ? {} : { predictedBias: { terms: 'H12 + H12ᵀ', relativeError: 0, matches: predictedMatches } }),
});

const graph = (diceSecond: boolean, lvcPrediction: boolean): GraphCheck => ({
  graph: 'g',
  description: '',
  parameters: 1,
  outcomes: 1,
  horizon: 1,
  decomposition: { relativeError: 0, holds: true },
  estimators: [
    { estimator: 'DiCE', kind: 'dice', orders: [order(1, true), order(2, diceSecond), order(3, true)], perSample: { relativeError: 0, holds: true } },
    { estimator: 'LVC', kind: 'lvc', orders: [order(1, true), order(2, false, lvcPrediction), order(3, false)], perSample: { relativeError: 0, holds: true } },
  ],
  clippedRatio: { clip: 0.3, shift: 1.5, clippedShare: 0.2, valueError: 0, gradientError: 0, holds: true },
});

test('verify passes only when DiCE-family estimators are exact at every order and predicted biases match', (t) => {
  t.true(allAsPredicted([graph(true, true)]));
  t.false(allAsPredicted([graph(false, true)]), 'a biased DiCE Hessian fails verify');
  t.false(allAsPredicted([graph(true, false)]), 'an LVC bias other than predicted fails verify');
});

test('a clip range outside (0, 1) is refused when the config is decoded, naming the field', (t) => {
  for (const clip of [0, 1, 1.5]) {
    const decoded = decodeConfigPatch({ clip });
    t.true(isLeft(decoded));
    if (isLeft(decoded)) t.regex(decoded.left.map((e) => `${e.path}: ${e.message}`).join('\n'), /clip: expected a number strictly between 0 and 1/);
  }
  t.false(isLeft(decodeConfigPatch({ clip: 0.3 })));
});
