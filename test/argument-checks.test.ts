/**
 * The core modules' argument checks, each refusing a wrong input with its own message (the mutation
 * runs showed these checks untested: removing one passed every test). Plain calls, no training.
 */
import test from 'ava';
import { normalize } from '../src/meta/advantages.ts';

test('normalize refuses a mask whose length is not the advantages’, naming both lengths', (t) => {
  t.throws(() => normalize(Float32Array.from([1, 2, 3]), Float32Array.from([1, 1])), { instanceOf: RangeError, message: 'mask has 2 entries, advantages 3' });
  // a mask of the right length is accepted
  t.is(normalize(Float32Array.from([1, 3]), Float32Array.from([1, 1])).length, 2);
});
