// The hot loops of the fused MLP kernels (src/ops/mlp/wasm-kernels.ts) in 128-bit SIMD WebAssembly:
// matrix products and tanh. Row-major f32 arrays addressed by byte offsets into this module's memory.
// Built by `npm run build:wasm` twice, into src/ops/mlp/mlp-kernels.wasm (128-bit SIMD) and
// mlp-kernels-fma.wasm (the same with relaxed SIMD's fused multiply-add); both committed, a test rebuilds
// them and compares the bytes. The module imports its memory (`--importMemory`): on the wasm backend the
// host hands it tfjs-wasm's own heap, so that tensors are read and results written in place
// (src/ops/mlp/kernel-memory.ts). It has no data of its own and writes only where it is told to.

/**
 * a·b + c, four at a time: one fused multiply-add where the module is built with relaxed SIMD
 * (`--enable relaxed-simd`: mlp-kernels-fma.wasm; on x86-64 one instruction, and the product is not
 * rounded before the add), else a multiply and an add (mlp-kernels.wasm). Both are exact to float32
 * rounding; which one a process runs is decided at load (src/ops/mlp/wasm-module.ts).
 */
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/**
 * C[m×n] (+)= A[m×k] · B[k×n] (accumulate: 0 writes C, 1 adds to it). Two rows of A at a time, 16
 * columns of C held in registers across the whole k loop.
 */
export function gemmNN(a: usize, b: usize, c: usize, m: i32, k: i32, n: i32, accumulate: i32): void {
  const n16 = n & ~15;
  let i = 0;
  for (; i + 1 < m; i += 2) {
    const a0 = a + <usize>(i * k) * 4;
    const a1 = a0 + <usize>k * 4;
    const c0 = c + <usize>(i * n) * 4;
    const c1 = c0 + <usize>n * 4;
    for (let j = 0; j < n16; j += 16) {
      const jb = <usize>j * 4;
      let x0 = f32x4.splat(0), x1 = f32x4.splat(0), x2 = f32x4.splat(0), x3 = f32x4.splat(0);
      let y0 = f32x4.splat(0), y1 = f32x4.splat(0), y2 = f32x4.splat(0), y3 = f32x4.splat(0);
      for (let p = 0; p < k; p++) {
        const bp = b + <usize>(p * n) * 4 + jb;
        const b0 = v128.load(bp), b1 = v128.load(bp, 16), b2 = v128.load(bp, 32), b3 = v128.load(bp, 48);
        const u = v128.load32_splat(a0 + <usize>p * 4);
        const w = v128.load32_splat(a1 + <usize>p * 4);
        x0 = madd(u, b0, x0); x1 = madd(u, b1, x1);
        x2 = madd(u, b2, x2); x3 = madd(u, b3, x3);
        y0 = madd(w, b0, y0); y1 = madd(w, b1, y1);
        y2 = madd(w, b2, y2); y3 = madd(w, b3, y3);
      }
      if (accumulate) {
        x0 = f32x4.add(x0, v128.load(c0 + jb)); x1 = f32x4.add(x1, v128.load(c0 + jb, 16));
        x2 = f32x4.add(x2, v128.load(c0 + jb, 32)); x3 = f32x4.add(x3, v128.load(c0 + jb, 48));
        y0 = f32x4.add(y0, v128.load(c1 + jb)); y1 = f32x4.add(y1, v128.load(c1 + jb, 16));
        y2 = f32x4.add(y2, v128.load(c1 + jb, 32)); y3 = f32x4.add(y3, v128.load(c1 + jb, 48));
      }
      v128.store(c0 + jb, x0); v128.store(c0 + jb, x1, 16); v128.store(c0 + jb, x2, 32); v128.store(c0 + jb, x3, 48);
      v128.store(c1 + jb, y0); v128.store(c1 + jb, y1, 16); v128.store(c1 + jb, y2, 32); v128.store(c1 + jb, y3, 48);
    }
    for (let j = n16; j < n; j++) {
      let s0: f32 = 0, s1: f32 = 0;
      for (let p = 0; p < k; p++) {
        const bv = load<f32>(b + <usize>(p * n + j) * 4);
        s0 += load<f32>(a0 + <usize>p * 4) * bv;
        s1 += load<f32>(a1 + <usize>p * 4) * bv;
      }
      const o0 = c0 + <usize>j * 4, o1 = c1 + <usize>j * 4;
      store<f32>(o0, accumulate ? load<f32>(o0) + s0 : s0);
      store<f32>(o1, accumulate ? load<f32>(o1) + s1 : s1);
    }
  }
  for (; i < m; i++) {
    const a0 = a + <usize>(i * k) * 4;
    const c0 = c + <usize>(i * n) * 4;
    for (let j = 0; j < n; j++) {
      let s: f32 = 0;
      for (let p = 0; p < k; p++) s += load<f32>(a0 + <usize>p * 4) * load<f32>(b + <usize>(p * n + j) * 4);
      const o = c0 + <usize>j * 4;
      store<f32>(o, accumulate ? load<f32>(o) + s : s);
    }
  }
}

/** out[n×m] = transpose of x[m×n]. */
export function transpose(x: usize, out: usize, m: i32, n: i32): void {
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) store<f32>(out + <usize>(j * m + i) * 4, load<f32>(x + <usize>(i * n + j) * 4));
}

// tanh by the rational approximation Eigen and XNNPACK use for float (odd degree-13 numerator, even
// degree-6 denominator, input clamped to ±7.9053111; a few ulp from the true value), four at a time.
const A1: f32 = 4.89352455891786e-3;
const A3: f32 = 6.37261928875436e-4;
const A5: f32 = 1.48572235717979e-5;
const A7: f32 = 5.12229709037114e-8;
const A9: f32 = -8.60467152213735e-11;
const A11: f32 = 2.00018790482477e-13;
const A13: f32 = -2.76076847742355e-16;
const B0: f32 = 4.89352518554385e-3;
const B2: f32 = 2.268434632439e-3;
const B4: f32 = 1.18534705686654e-4;
const B6: f32 = 1.19825839466702e-6;
const CLAMP: f32 = 7.90531110763549805;
// Below this |x|, tanh x rounds to x in float32 and the rational form only adds rounding.
const TINY: f32 = 0.0004;

@inline function tanh4(x: v128): v128 {
  // pmin/pmax are one instruction each (min/max are several: their NaN and ±0 rules); in this order
  // a NaN passes through them, as it did through min/max.
  const c = f32x4.pmax(f32x4.pmin(x, f32x4.splat(CLAMP)), f32x4.splat(-CLAMP));
  const x2 = f32x4.mul(c, c);
  let p = madd(x2, f32x4.splat(A13), f32x4.splat(A11));
  p = madd(x2, p, f32x4.splat(A9));
  p = madd(x2, p, f32x4.splat(A7));
  p = madd(x2, p, f32x4.splat(A5));
  p = madd(x2, p, f32x4.splat(A3));
  p = madd(x2, p, f32x4.splat(A1));
  p = f32x4.mul(c, p);
  let q = madd(x2, f32x4.splat(B6), f32x4.splat(B4));
  q = madd(x2, q, f32x4.splat(B2));
  q = madd(x2, q, f32x4.splat(B0));
  const r = f32x4.div(p, q);
  const tiny = f32x4.lt(f32x4.abs(x), f32x4.splat(TINY));
  return v128.bitselect(x, r, tiny);
}

/** out[i] = tanh(x[i] + bias[i mod n]) for an m×n row-major x (out may be x). */
export function biasTanh(x: usize, bias: usize, out: usize, m: i32, n: i32): void {
  const n4 = n & ~3;
  for (let i = 0; i < m; i++) {
    const row = <usize>(i * n) * 4;
    let j = 0;
    for (; j < n4; j += 4) {
      const o = <usize>j * 4;
      v128.store(out + row + o, tanh4(f32x4.add(v128.load(x + row + o), v128.load(bias + o))));
    }
    for (; j < n; j++) {
      const o = <usize>j * 4;
      const v = f32x4.splat(load<f32>(x + row + o) + load<f32>(bias + o));
      store<f32>(out + row + o, f32x4.extract_lane(tanh4(v), 0));
    }
  }
}

// Element-wise steps of the backward pass and its tangent (act′ from the layer's output h:
// tanh: 1 − h², relu: [h > 0]), four at a time; `len` a multiple of 4 is not required.

/** x[i, :] += bias for an m×n row-major x. */
export function addRow(x: usize, bias: usize, m: i32, n: i32): void {
  const n4 = n & ~3;
  for (let i = 0; i < m; i++) {
    const row = x + <usize>(i * n) * 4;
    let j = 0;
    for (; j < n4; j += 4) v128.store(row + <usize>j * 4, f32x4.add(v128.load(row + <usize>j * 4), v128.load(bias + <usize>j * 4)));
    for (; j < n; j++) store<f32>(row + <usize>j * 4, load<f32>(row + <usize>j * 4) + load<f32>(bias + <usize>j * 4));
  }
}

/** out[c] = Σ_i x[i, c] for an m×n row-major x (float32 sums, four columns at a time). */
export function columnSums(x: usize, out: usize, m: i32, n: i32): void {
  memory.fill(out, 0, <usize>n * 4);
  const n4 = n & ~3;
  for (let i = 0; i < m; i++) {
    const row = x + <usize>(i * n) * 4;
    let j = 0;
    for (; j < n4; j += 4) v128.store(out + <usize>j * 4, f32x4.add(v128.load(out + <usize>j * 4), v128.load(row + <usize>j * 4)));
    for (; j < n; j++) store<f32>(out + <usize>j * 4, load<f32>(out + <usize>j * 4) + load<f32>(row + <usize>j * 4));
  }
}

@inline function slope4(h: v128, relu: i32): v128 {
  return relu ? v128.and(f32x4.gt(h, f32x4.splat(0)), f32x4.splat(1)) : f32x4.sub(f32x4.splat(1), f32x4.mul(h, h));
}
@inline function slope1(h: f32, relu: i32): f32 {
  return relu ? (h > 0 ? <f32>1 : <f32>0) : <f32>1 - h * h;
}

/** out[i] = x[i]·act′(h[i]) (out may be x). */
export function mulSlope(x: usize, h: usize, len: i32, relu: i32, out: usize): void {
  // One loop per activation: a flag tested inside the loop costs both slopes' work on every vector.
  if (relu) mulSlopeOf(x, h, len, 1, out);
  else mulSlopeOf(x, h, len, 0, out);
}

@inline function mulSlopeOf(x: usize, h: usize, len: i32, relu: i32, out: usize): void {
  const l4 = len & ~3;
  let i = 0;
  for (; i < l4; i += 4) {
    const o = <usize>i * 4;
    v128.store(out + o, f32x4.mul(v128.load(x + o), slope4(v128.load(h + o), relu)));
  }
  for (; i < len; i++) store<f32>(out + <usize>i * 4, load<f32>(x + <usize>i * 4) * slope1(load<f32>(h + <usize>i * 4), relu));
}

/**
 * The backward step's tangent through the activation: gDot ← gDot·act′(h) + g·act″·ż in place, i.e.
 * for tanh gDot·(1 − h²) − 2·g·h·ḣ (relu: gDot·[h > 0]), and gOut ← g·act′(h) (gOut may be g; g itself
 * is read only, so it may be a tensor's memory).
 */
export function slopeTangent(g: usize, gDot: usize, h: usize, hDot: usize, len: i32, relu: i32, gOut: usize): void {
  if (relu) slopeTangentOf(g, gDot, h, hDot, len, 1, gOut);
  else slopeTangentOf(g, gDot, h, hDot, len, 0, gOut);
}

@inline function slopeTangentOf(g: usize, gDot: usize, h: usize, hDot: usize, len: i32, relu: i32, gOut: usize): void {
  const l4 = len & ~3;
  let i = 0;
  for (; i < l4; i += 4) {
    const o = <usize>i * 4;
    const hv = v128.load(h + o);
    const gv = v128.load(g + o);
    const s = slope4(hv, relu);
    let d = f32x4.mul(v128.load(gDot + o), s);
    if (!relu) d = f32x4.sub(d, f32x4.mul(f32x4.mul(f32x4.splat(2), gv), f32x4.mul(hv, v128.load(hDot + o))));
    v128.store(gDot + o, d);
    v128.store(gOut + o, f32x4.mul(gv, s));
  }
  for (; i < len; i++) {
    const o = <usize>i * 4;
    const hv = load<f32>(h + o);
    const gv = load<f32>(g + o);
    const s = slope1(hv, relu);
    let d = load<f32>(gDot + o) * s;
    if (!relu) d -= 2 * gv * hv * load<f32>(hDot + o);
    store<f32>(gDot + o, d);
    store<f32>(gOut + o, gv * s);
  }
}

/** out[i, :] = max(x[i, :] + bias, 0). */
export function biasRelu(x: usize, bias: usize, out: usize, m: i32, n: i32): void {
  const n4 = n & ~3;
  for (let i = 0; i < m; i++) {
    const row = <usize>(i * n) * 4;
    let j = 0;
    for (; j < n4; j += 4) {
      const o = <usize>j * 4;
      // pmax: one instruction (max is several, for its NaN and ±0 rules); a NaN passes through it.
      v128.store(out + row + o, f32x4.pmax(f32x4.add(v128.load(x + row + o), v128.load(bias + o)), f32x4.splat(0)));
    }
    for (; j < n; j++) {
      const o = <usize>j * 4;
      const v = load<f32>(x + row + o) + load<f32>(bias + o);
      store<f32>(out + row + o, v > 0 ? v : 0);
    }
  }
}

/**
 * C[m×n] (+)= A[m×k] · Btᵀ for Bt[n×k] (B given transposed): each entry a dot product along k, four
 * at a time — for the narrow products (n < 16: a policy's output layer) that gemmNN would run scalar.
 * Four rows of A at a time, each against every column of B in turn, so that four independent sums are
 * in flight (one alone waits on each multiply-add's latency); every entry is summed in the same order
 * as alone.
 */
export function gemmDot(a: usize, bt: usize, c: usize, m: i32, k: i32, n: i32, accumulate: i32): void {
  const k4 = k & ~3;
  const m4 = m & ~3;
  const rowA = <usize>k * 4;
  let i = 0;
  for (; i < m4; i += 4) {
    const a0 = a + <usize>(i * k) * 4;
    const a1 = a0 + rowA, a2 = a1 + rowA, a3 = a2 + rowA;
    for (let j = 0; j < n; j++) {
      const bj = bt + <usize>(j * k) * 4;
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let p = 0;
      for (; p < k4; p += 4) {
        const o = <usize>p * 4;
        const bv = v128.load(bj + o);
        s0 = madd(v128.load(a0 + o), bv, s0);
        s1 = madd(v128.load(a1 + o), bv, s1);
        s2 = madd(v128.load(a2 + o), bv, s2);
        s3 = madd(v128.load(a3 + o), bv, s3);
      }
      dotOut(a0, bj, c + <usize>(i * n + j) * 4, s0, k4, k, accumulate);
      dotOut(a1, bj, c + <usize>((i + 1) * n + j) * 4, s1, k4, k, accumulate);
      dotOut(a2, bj, c + <usize>((i + 2) * n + j) * 4, s2, k4, k, accumulate);
      dotOut(a3, bj, c + <usize>((i + 3) * n + j) * 4, s3, k4, k, accumulate);
    }
  }
  for (; i < m; i++) {
    const ai = a + <usize>(i * k) * 4;
    for (let j = 0; j < n; j++) {
      const bj = bt + <usize>(j * k) * 4;
      let acc = f32x4.splat(0);
      let p = 0;
      for (; p < k4; p += 4) acc = madd(v128.load(ai + <usize>p * 4), v128.load(bj + <usize>p * 4), acc);
      dotOut(ai, bj, c + <usize>(i * n + j) * 4, acc, k4, k, accumulate);
    }
  }
}

/** A dot product's end: its four lanes summed, the tail k4 … k − 1 added, written (or added) at o. */
@inline function dotOut(ai: usize, bj: usize, o: usize, acc: v128, k4: i32, k: i32, accumulate: i32): void {
  let s: f32 = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (let p = k4; p < k; p++) s += load<f32>(ai + <usize>p * 4) * load<f32>(bj + <usize>p * 4);
  store<f32>(o, accumulate ? load<f32>(o) + s : s);
}

// Rows of A and B per panel of gemmTN: the two panels (2 × 16 KiB at width 64) stay in L1/L2 while
// every block of C sweeps them; a whole batch (2,000 rows: 2 × 512 KiB) does not (measured on 2000 × 64
// × 64: 40–45 GFLOP/s in one panel, 48–51 in panels of 64 rows).
const TN_PANEL: i32 = 64;

/**
 * C[m×n] (+)= Aᵀ · B for A[k×m], B[k×n] without transposing A — for the weight gradients Hᵀ·G, where
 * k (the batch) is long and m, n (layer widths) are short: the k rows in panels of TN_PANEL, each panel's
 * product added to C. An even m and n a multiple of 16 (every hidden layer) take gemmNN's register
 * block, two rows by sixteen columns of C with B's rows loaded as vectors (50 GFLOP/s on 2000 × 64 ×
 * 64, against 20 for the column block, whose eight broadcasts per row of B bound it); m a multiple of
 * 16 and n < 8 (an output layer's weight gradient) the narrow block; other shapes the column block.
 */
export function gemmTN(a: usize, b: usize, c: usize, m: i32, k: i32, n: i32, accumulate: i32): void {
  if (k == 0 && !accumulate) memory.fill(c, 0, <usize>(m * n) * 4);
  const rowBlocks = (m & 1) == 0 && (n & 15) == 0;
  for (let p0 = 0; p0 < k; p0 += TN_PANEL) {
    const rows = min(TN_PANEL, k - p0);
    const pa = a + <usize>(p0 * m) * 4, pb = b + <usize>(p0 * n) * 4, add = p0 > 0 || accumulate ? 1 : 0;
    if (rowBlocks) gemmTNRows(pa, pb, c, m, rows, n, add);
    else if ((m & 15) == 0 && n < 8) gemmTNNarrow(pa, pb, c, m, rows, n, add);
    else gemmTNPanel(pa, pb, c, m, rows, n, add);
  }
}

/**
 * C[m×n] (+)= Aᵀ · B for one panel (A[k×m], B[k×n]): four rows of C at a time (one vector of A's row
 * p), eight columns in registers, each B entry broadcast.
 */
function gemmTNPanel(a: usize, b: usize, c: usize, m: i32, k: i32, n: i32, accumulate: i32): void {
  const m4 = m & ~3;
  const n8 = n & ~7;
  const rowA = <usize>m * 4;
  const rowB = <usize>n * 4;
  for (let i = 0; i < m4; i += 4) {
    const ai = a + <usize>i * 4;
    let j = 0;
    for (; j < n8; j += 8) {
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      let c4 = f32x4.splat(0), c5 = f32x4.splat(0), c6 = f32x4.splat(0), c7 = f32x4.splat(0);
      let pa = ai;
      let pb = b + <usize>j * 4;
      for (let p = 0; p < k; p++) {
        const av = v128.load(pa);
        c0 = madd(av, v128.load32_splat(pb), c0);
        c1 = madd(av, v128.load32_splat(pb, 4), c1);
        c2 = madd(av, v128.load32_splat(pb, 8), c2);
        c3 = madd(av, v128.load32_splat(pb, 12), c3);
        c4 = madd(av, v128.load32_splat(pb, 16), c4);
        c5 = madd(av, v128.load32_splat(pb, 20), c5);
        c6 = madd(av, v128.load32_splat(pb, 24), c6);
        c7 = madd(av, v128.load32_splat(pb, 28), c7);
        pa += rowA;
        pb += rowB;
      }
      storeColumn(c, n, i, j, c0, accumulate);
      storeColumn(c, n, i, j + 1, c1, accumulate);
      storeColumn(c, n, i, j + 2, c2, accumulate);
      storeColumn(c, n, i, j + 3, c3, accumulate);
      storeColumn(c, n, i, j + 4, c4, accumulate);
      storeColumn(c, n, i, j + 5, c5, accumulate);
      storeColumn(c, n, i, j + 6, c6, accumulate);
      storeColumn(c, n, i, j + 7, c7, accumulate);
    }
    for (; j < n; j++) {
      let acc = f32x4.splat(0);
      let pa = ai;
      let pb = b + <usize>j * 4;
      for (let p = 0; p < k; p++) {
        acc = madd(v128.load(pa), v128.load32_splat(pb), acc);
        pa += rowA;
        pb += rowB;
      }
      storeColumn(c, n, i, j, acc, accumulate);
    }
  }
  for (let i = m4; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s: f32 = 0;
      for (let p = 0; p < k; p++) s += load<f32>(a + <usize>(p * m + i) * 4) * load<f32>(b + <usize>(p * n + j) * 4);
      const o = c + <usize>(i * n + j) * 4;
      store<f32>(o, accumulate ? load<f32>(o) + s : s);
    }
  }
}

/**
 * C[m×n] (+)= Aᵀ · B for one panel, m a multiple of 16 and n < 8 (too few columns for the column
 * block's eight): sixteen rows of C (four vectors of A's row p) by two columns, eight sums in flight
 * where the column block had one; each entry summed in the column block's order.
 */
function gemmTNNarrow(a: usize, b: usize, c: usize, m: i32, k: i32, n: i32, accumulate: i32): void {
  const rowA = <usize>m * 4;
  const rowB = <usize>n * 4;
  const n2 = n & ~1;
  for (let i = 0; i < m; i += 16) {
    const ai = a + <usize>i * 4;
    let j = 0;
    for (; j < n2; j += 2) {
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      let d0 = f32x4.splat(0), d1 = f32x4.splat(0), d2 = f32x4.splat(0), d3 = f32x4.splat(0);
      let pa = ai;
      let pb = b + <usize>j * 4;
      for (let p = 0; p < k; p++) {
        const v0 = v128.load(pa), v1 = v128.load(pa, 16), v2 = v128.load(pa, 32), v3 = v128.load(pa, 48);
        const s = v128.load32_splat(pb), t = v128.load32_splat(pb, 4);
        c0 = madd(v0, s, c0); c1 = madd(v1, s, c1); c2 = madd(v2, s, c2); c3 = madd(v3, s, c3);
        d0 = madd(v0, t, d0); d1 = madd(v1, t, d1); d2 = madd(v2, t, d2); d3 = madd(v3, t, d3);
        pa += rowA;
        pb += rowB;
      }
      storeColumn(c, n, i, j, c0, accumulate);
      storeColumn(c, n, i + 4, j, c1, accumulate);
      storeColumn(c, n, i + 8, j, c2, accumulate);
      storeColumn(c, n, i + 12, j, c3, accumulate);
      storeColumn(c, n, i, j + 1, d0, accumulate);
      storeColumn(c, n, i + 4, j + 1, d1, accumulate);
      storeColumn(c, n, i + 8, j + 1, d2, accumulate);
      storeColumn(c, n, i + 12, j + 1, d3, accumulate);
    }
    if (j < n) {
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      let pa = ai;
      let pb = b + <usize>j * 4;
      for (let p = 0; p < k; p++) {
        const s = v128.load32_splat(pb);
        c0 = madd(v128.load(pa), s, c0); c1 = madd(v128.load(pa, 16), s, c1);
        c2 = madd(v128.load(pa, 32), s, c2); c3 = madd(v128.load(pa, 48), s, c3);
        pa += rowA;
        pb += rowB;
      }
      storeColumn(c, n, i, j, c0, accumulate);
      storeColumn(c, n, i + 4, j, c1, accumulate);
      storeColumn(c, n, i + 8, j, c2, accumulate);
      storeColumn(c, n, i + 12, j, c3, accumulate);
    }
  }
}

/** C[i..i+3, j] ← v (or += v). */
@inline function storeColumn(c: usize, n: i32, i: i32, j: i32, v: v128, accumulate: i32): void {
  const o0 = c + <usize>(i * n + j) * 4;
  const stride = <usize>n * 4;
  const o1 = o0 + stride, o2 = o1 + stride, o3 = o2 + stride;
  if (accumulate) {
    store<f32>(o0, load<f32>(o0) + f32x4.extract_lane(v, 0));
    store<f32>(o1, load<f32>(o1) + f32x4.extract_lane(v, 1));
    store<f32>(o2, load<f32>(o2) + f32x4.extract_lane(v, 2));
    store<f32>(o3, load<f32>(o3) + f32x4.extract_lane(v, 3));
  } else {
    store<f32>(o0, f32x4.extract_lane(v, 0));
    store<f32>(o1, f32x4.extract_lane(v, 1));
    store<f32>(o2, f32x4.extract_lane(v, 2));
    store<f32>(o3, f32x4.extract_lane(v, 3));
  }
}

/**
 * C[m×n] (+)= Aᵀ · B for one panel, m even and n a multiple of 16: gemmNN's register block (two rows
 * of C, sixteen columns) with A read down its columns, C[i, j..j+15] += A[p, i] · B[p, j..j+15].
 */
@inline function gemmTNRows(a: usize, b: usize, c: usize, m: i32, k: i32, n: i32, accumulate: i32): void {
  const n16 = n & ~15;
  const rowA = <usize>m * 4;
  let i = 0;
  for (; i + 1 < m; i += 2) {
    const c0 = c + <usize>(i * n) * 4;
    const c1 = c0 + <usize>n * 4;
    for (let j = 0; j < n16; j += 16) {
      const jb = <usize>j * 4;
      let x0 = f32x4.splat(0), x1 = f32x4.splat(0), x2 = f32x4.splat(0), x3 = f32x4.splat(0);
      let y0 = f32x4.splat(0), y1 = f32x4.splat(0), y2 = f32x4.splat(0), y3 = f32x4.splat(0);
      let pa = a + <usize>i * 4;
      let pb = b + jb;
      for (let p = 0; p < k; p++) {
        const b0 = v128.load(pb), b1 = v128.load(pb, 16), b2 = v128.load(pb, 32), b3 = v128.load(pb, 48);
        const u = v128.load32_splat(pa);
        const w = v128.load32_splat(pa, 4);
        x0 = madd(u, b0, x0); x1 = madd(u, b1, x1);
        x2 = madd(u, b2, x2); x3 = madd(u, b3, x3);
        y0 = madd(w, b0, y0); y1 = madd(w, b1, y1);
        y2 = madd(w, b2, y2); y3 = madd(w, b3, y3);
        pa += rowA;
        pb += <usize>n * 4;
      }
      if (accumulate) {
        x0 = f32x4.add(x0, v128.load(c0 + jb)); x1 = f32x4.add(x1, v128.load(c0 + jb, 16));
        x2 = f32x4.add(x2, v128.load(c0 + jb, 32)); x3 = f32x4.add(x3, v128.load(c0 + jb, 48));
        y0 = f32x4.add(y0, v128.load(c1 + jb)); y1 = f32x4.add(y1, v128.load(c1 + jb, 16));
        y2 = f32x4.add(y2, v128.load(c1 + jb, 32)); y3 = f32x4.add(y3, v128.load(c1 + jb, 48));
      }
      v128.store(c0 + jb, x0); v128.store(c0 + jb, x1, 16); v128.store(c0 + jb, x2, 32); v128.store(c0 + jb, x3, 48);
      v128.store(c1 + jb, y0); v128.store(c1 + jb, y1, 16); v128.store(c1 + jb, y2, 32); v128.store(c1 + jb, y3, 48);
    }
  }
}

