/**
 * Which build of the fused MLP kernels (assembly/gemm.ts) a process runs. Two are committed:
 * mlp-kernels.wasm (128-bit SIMD: every multiply-accumulate a multiply and an add) and
 * mlp-kernels-fma.wasm (the same source with WebAssembly relaxed SIMD, whose `f32x4.relaxed_madd` is
 * one fused multiply-add on x86-64 with FMA3 and on arm64). The products are compute-bound, so the fused
 * form is the faster one where it runs (measured on [2000, 64]·[64, 64], the two builds alternated in
 * one process on the project's 2-core machine under load: 19–20 → 29 GFLOP/s for A·W, 23–25 → 30–34
 * for Aᵀ·G; one task's ProMP outer-step term 15–20% less CPU).
 *
 * Relaxed SIMD is on by default from V8 11.4 (Node 22); Node 20's V8 (11.3) implements it behind
 * `--experimental-wasm-relaxed-simd`, a flag V8 reads when it compiles a module, so it is set here
 * before the first compile if the engine does not accept the module as it is. Where it still does not
 * validate (another engine, a V8 without it), the plain build runs. `MAGICBOX_WASM_FMA=0` forces the
 * plain build (to compare the two, or to rule the fused form out when chasing a difference in the last
 * bits: the fused product is not rounded before the add, so the two builds' results differ by float32
 * rounding).
 */
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';

/** The WebAssembly API's member used here (the project's TypeScript libraries do not declare it). */
const wasmValidate = (bytes: Uint8Array): boolean =>
  (globalThis as unknown as { readonly WebAssembly: { validate: (b: Uint8Array) => boolean } }).WebAssembly.validate(bytes);

export type MlpKernelBuild = 'fma' | 'plain';

/** The bytes of one build, read where the package keeps them. */
export const mlpKernelBytes = (build: MlpKernelBuild): Uint8Array =>
  readFileSync(new URL(build === 'fma' ? './mlp-kernels-fma.wasm' : './mlp-kernels.wasm', import.meta.url));

/** Whether this engine compiles the fused multiply-add build, switching relaxed SIMD on if it has to. */
export const fmaAvailable = (): boolean => {
  const bytes = mlpKernelBytes('fma');
  if (wasmValidate(bytes)) return true;
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    return false;
  }
  return wasmValidate(bytes);
};

/** The build this process runs: the fused one where it compiles, unless MAGICBOX_WASM_FMA=0. */
export const chosenMlpKernelBuild = (env: NodeJS.ProcessEnv = process.env): MlpKernelBuild =>
  env.MAGICBOX_WASM_FMA?.trim() === '0' ? 'plain' : fmaAvailable() ? 'fma' : 'plain';
