/**
 * Ops whose derivatives are right at every order, for everything magicbox differentiates more than
 * once. Use these instead of tfjs's exp, tanh, sigmoid, softmax, logSoftmax and logSumExp.
 */
export * from './custom-gradient.ts';
export * from './stop-gradient.ts';
export * from './magic-box.ts';
export * from './elementwise.ts';
export * from './linear.ts';
export * from './reductions.ts';
export * from './distributions.ts';
