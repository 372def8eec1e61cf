/**
 * MagicBox □ (Foerster et al. 2018, DiCE): the operator through which every estimator in the design
 * notes is written; it must be built on the safe exp, since tfjs's exp has no usable second derivative.
 */
import * as tf from '@tensorflow/tfjs';
import { exp } from './elementwise.ts';
import { stopGradient } from './stop-gradient.ts';

/**
 * □(x) = exp(x − ⊥x), elementwise. Evaluates to exactly 1 (x − ⊥x is exactly 0), and
 * ∇□(x) = □(x)·∇x at every order, so ∇ᵏ□(ℓ) reproduces the score-function terms of the k-th
 * derivative of an expectation whose log-probability is ℓ.
 */
export const magicBox = (x: tf.Tensor): tf.Tensor => exp(tf.sub(x, stopGradient(x)));
