/**
 * The dense loops of the logistic regression fit as a tiny WebAssembly SIMD module, assembled
 * here byte by byte (no toolchain), with plain JavaScript versions that give the same bits.
 *
 * All data lives in one float64 heap (the module's memory, or a Float64Array when WebAssembly is
 * unavailable or the heap is too large for wasm32). Vectors are runs of consecutive values; every
 * count and offset is a multiple of two values, so one f64x2 lane holds the even rows and the
 * other the odd rows. An accumulator is such a pair of lanes: lane 0 sums the even rows in row
 * order, lane 1 the odd rows, and the reader adds the two lanes at the end. The JavaScript
 * versions keep the same two sums with the same operations in the same order (WebAssembly has no
 * fused multiply-add here, and its float64 arithmetic is IEEE 754 like JavaScript's), so results
 * depend neither on which implementation ran nor on how callers split rows into blocks.
 *
 * Kernels (offsets and counts in float64 elements):
 *   axpy(out, x, a, n)                 out[i] = out[i] + a·x[i]
 *   axpy4(out, x0…x3, a0…a3, n)        the same as four axpys in order, in one pass
 *   dot(acc, x, y, n)                  acc lanes += x[i]·y[i]
 *   dot4(acc, x0…x3, y, n)             four dots into the accumulators at acc, acc + 2, + 4, + 6
 *   weigh(out, x, c, n)                out[i] = c[i]·x[i]
 *   tile(acc, a0, a1, b0, b1, n)       4 accumulators (8 values) at acc, for the column pairs
 *                                      (a0,b0) (a0,b1) (a1,b0) (a1,b1): += a[i]·b[i]
 *   columnSums(x, n, acc)              acc lanes += x[i] if not NaN, acc + 2 lanes += 1 if not NaN
 *   center(x, label, n, mean, acc)     x[i] = x[i] − mean (NaN → 0); lanes at acc += x[i]²,
 *                                      at acc + 2 += x[i], at acc + 4 += x[i]·label[i]
 *   rowTerms(z, label, r, c, n, w0, w1, loss)
 *                                      from logits z and labels (0 or 1): r[i] = s·(p − y),
 *                                      c[i] = s·p·(1 − p) and loss lanes += s·(−log-likelihood)
 *                                      by Kahan summation (compensation lanes at loss + 2),
 *                                      with s = w0 or w1 by label; exp and log1p are fdlibm's
 *                                      algorithms written out (see `rowTermsScalar`)
 */

import type { Code, WasmModule } from '../../wasm/assembler.js';
import { F64, I32, V128, compile, createMemory, increment, instantiate, moduleBytes, op, simd, whileBelow } from '../../wasm/assembler.js';

export interface LogregKernels {
  /** The float64 heap every offset points into. */
  readonly heap: Float64Array;
  /** Which implementation runs (both give the same bits). */
  readonly kind: 'wasm' | 'js';
  axpy(out: number, x: number, a: number, n: number): void;
  axpy4(out: number, x0: number, x1: number, x2: number, x3: number, a0: number, a1: number, a2: number, a3: number, n: number): void;
  dot(acc: number, x: number, y: number, n: number): void;
  dot4(acc: number, x0: number, x1: number, x2: number, x3: number, y: number, n: number): void;
  weigh(out: number, x: number, c: number, n: number): void;
  tile(acc: number, a0: number, a1: number, b0: number, b1: number, n: number): void;
  rowTerms(z: number, label: number, r: number, c: number, n: number, w0: number, w1: number, loss: number): void;
  columnSums(x: number, n: number, acc: number): void;
  center(x: number, label: number, n: number, mean: number, acc: number): void;
}

type WasmExports = Omit<LogregKernels, 'heap' | 'kind'>;

// ---------------------------------------------------------------------------------------------
// Constants of fdlibm's exp (e_exp.c) and log1p (s_log1p.c).

const LN2_HI = 6.93147180369123816490e-1;
const LN2_LO = 1.90821492927058770002e-10;
const INV_LN2 = 1.44269504088896338700;
const EXP_P = [1.66666666666666019037e-1, -2.77777777770155933842e-3, 6.61375632143793436117e-5, -1.65339022054652515390e-6, 4.13813679705723846039e-8];
const LOG1P_LP = [
  6.666666666666735130e-1, 3.999999999940941908e-1, 2.857142874366239149e-1, 2.222219843214978396e-1, 1.818357216161805012e-1,
  1.531383769920937332e-1, 1.479819860511658591e-1,
];
/** Below it exp underflows to 0 (and 2^k needs no more than two normal factors). */
const EXP_FLOOR = -746;
/** log1p(e) reduces e ≥ √2 − 1 to (1 + e)/2 ∈ [√2/2, 1]. */
const LOG1P_SPLIT = 0.41421356237309503;
/** 2⁵² + 1023: adding an integer k ≥ −1022 leaves k + 1023 in the low bits of the mantissa. */
const EXPONENT_MAGIC = 4503599627371519;

/** 2^k for integers −600 < k ≤ 0, exactly (halving is exact down to the smallest subnormal). */
const POW2 = (() => {
  const table = new Float64Array(600);
  table[0] = 1;
  for (let k = 1; k < 600; k++) table[k] = table[k - 1]! / 2;
  return table;
})();

/**
 * sum += term by Kahan's compensated summation, the sum at heap[at] and its compensation (the
 * negated rounding error so far) at heap[at + 2]: the loss of a few hundred thousand rows then
 * keeps the precision that the line search's comparisons near the optimum need.
 */
function kahanAdd(heap: Float64Array, at: number, term: number): void {
  const sum = heap[at]!;
  const compensated = term - heap[at + 2]!;
  const next = sum + compensated;
  heap[at + 2] = next - sum - compensated;
  heap[at] = next;
}

/**
 * c0 + c1·x + … by Estrin's scheme (pairs, then pairs of pairs with x², then with x⁴): a shorter
 * chain of dependent operations than Horner's, which is what bounds the row loop's speed.
 */
function estrin5(c: readonly number[], x: number, x2: number, x4: number): number {
  return c[0]! + x * c[1]! + x2 * (c[2]! + x * c[3]!) + x4 * c[4]!;
}

function estrin7(c: readonly number[], x: number, x2: number, x4: number): number {
  return c[0]! + x * c[1]! + x2 * (c[2]! + x * c[3]!) + x4 * (c[4]! + x * c[5]! + x2 * c[6]!);
}

/** Rounds to the nearest integer, ties to even, as f64x2.nearest does (|v| < 2⁵¹). */
function nearest(v: number): number {
  return v + 6755399441055744 - 6755399441055744;
}

/**
 * One row of `rowTerms`, operation for operation what the SIMD code does per lane. Returns the
 * row's weighted loss; writes r and c through `out` (to keep the caller monomorphic and fast).
 */
function rowTermsScalar(t: number, positive: boolean, w0: number, w1: number, out: Float64Array): number {
  // e = exp(−|t|), fdlibm's reduction x = k·ln2 + r, |r| ≤ ln2/2, then 2^k as 2^k1 · 2^k2.
  const minusAbs = -Math.abs(t);
  const x = minusAbs < EXP_FLOOR ? EXP_FLOOR : minusAbs;
  const k = nearest(x * INV_LN2);
  const hi = x - k * LN2_HI;
  const lo = k * LN2_LO;
  const r = hi - lo;
  const rr = r * r;
  const rr2 = rr * rr;
  const poly = r - rr * estrin5(EXP_P, rr, rr2, rr2 * rr2);
  const er = 1 - (lo - (r * poly) / (2 - poly) - hi);
  const k1 = nearest(k * 0.5);
  const k2 = k - k1;
  const e = er * POW2[-k1]! * POW2[-k2]!;
  // p = σ(t), q = 1 − p = σ(−t), each without cancellation.
  const u = 1 + e;
  const big = 1 / u;
  const small = e * big;
  const nonNegative = t >= 0;
  const p = nonNegative ? big : small;
  const q = nonNegative ? small : big;
  // log1p(e), e ∈ [0, 1]: f = e (k = 0), or f = u/2 − 1 with the rounding error of u as c (k = 1).
  const high = e >= LOG1P_SPLIT;
  const f = high ? u * 0.5 - 1 : e;
  const correction = high ? (1 - (u - e)) * big : 0;
  const hfsq = 0.5 * f * f;
  const s = f / (2 + f);
  const z = s * s;
  const z2 = z * z;
  const poly2 = z * estrin7(LOG1P_LP, z, z2, z2 * z2);
  const log1p = (high ? LN2_HI : 0) - (hfsq - (s * (hfsq + poly2) + ((high ? LN2_LO : 0) + correction)) - f);
  const weight = positive ? w1 : w0;
  out[0] = weight * (positive ? -q : p);
  out[1] = weight * p * q;
  // −log σ(t) for y = 1 and −log σ(−t) for y = 0, as softplus.
  const margin = positive ? -t : t;
  return weight * (log1p + (margin < 0 ? 0 : margin));
}

// ---------------------------------------------------------------------------------------------
// The kernels in WebAssembly, assembled with lib/wasm/assembler.ts; here an expression is the
// bytes that push its value.

const cat = (...parts: Code[]): Code => parts.flat();

const get = op.get;
const set = (local: number, value: Code): Code => [...value, ...op.set(local)];
const i32 = op.i32;
const i32Add = (a: Code, b: Code): Code => [...a, ...b, ...op.i32Add];
const i32Shl = (a: Code, b: Code): Code => [...a, ...b, ...op.i32Shl];
/** 16-byte load/store at address + offset (offsets are multiples of 16 anyway) */
const load = (address: Code, offset = 0): Code => [...address, ...op.v128Load(offset)];
const store = (address: Code, value: Code, offset = 0): Code => [...address, ...value, ...op.v128Store(offset)];
const splat = (value: Code): Code => [...value, ...simd(0x14)];
/** A v128 constant with both lanes `value`. */
const konst = (value: number): Code => [...simd(0x0c), ...new Uint8Array(Float64Array.of(value, value).buffer)];
const add = (a: Code, b: Code): Code => [...a, ...b, ...op.f64x2Add];
const sub = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xf1)];
const mul = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xf2)];
const div = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xf3)];
/** pmax(a, b) = a < b ? b : a (one maxpd; unlike f64x2.max it needs no NaN or ±0 fix-ups) */
const pmax = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xf7)];
const abs = (a: Code): Code => [...a, ...simd(0xec)];
const neg = (a: Code): Code => [...a, ...simd(0xed)];
const nearestV = (a: Code): Code => [...a, ...simd(0x94)];
/** all-ones lanes where a = b (so not NaN when a and b are the same value) */
const eq = (a: Code, b: Code): Code => [...a, ...b, ...simd(0x47)];
const and = (a: Code, b: Code): Code => [...a, ...b, ...simd(0x4e)];
/** all-ones lanes where a ≥ b */
const ge = (a: Code, b: Code): Code => [...a, ...b, ...simd(0x4c)];
/** lanes of `whenSet` where mask is all ones, of `otherwise` where it is zero */
const select = (whenSet: Code, otherwise: Code, mask: Code): Code => [...whenSet, ...otherwise, ...mask, ...simd(0x52)];
/** each lane's 64 bits shifted left by 52 */
const shl52 = (a: Code): Code => [...a, ...i32(52), ...simd(0xcb)];

/** end = start + n·8 (bytes) */
const endOf = (start: number, n: number, end: number): Code => set(end, i32Add(get(start), i32Shl(get(n), i32(3))));
/**
 * Estrin's scheme as estrin5 and estrin7 compute it, for 5 or 7 coefficients from `constant`,
 * x, x² and x⁴ being locals.
 */
const estrin = (c: number[], x: number, x2: number, x4: number, constant: (value: number) => Code): Code => {
  const pair = (i: number) => add(constant(c[i]!), mul(get(x), constant(c[i + 1]!)));
  const low = add(pair(0), mul(get(x2), pair(2)));
  if (c.length === 5) return add(low, mul(get(x4), constant(c[4]!)));
  return add(low, mul(get(x4), add(pair(4), mul(get(x2), constant(c[6]!)))));
};

/**
 * Constants of `rowTerms`, each as a v128 of two equal lanes at byte 16·i of the memory (the
 * heap starts after them). Loaded into locals before the loop: V8 would otherwise rebuild an
 * inline v128 constant at every use inside it, three instructions each.
 */
const CONSTANTS: number[] = [];
/** float64 values reserved for CONSTANTS at the start of the wasm memory. */
const RESERVED = 64;

interface WasmFunction {
  name: keyof WasmExports;
  params: number[];
  /** Types of the locals after the parameters. */
  locals: number[];
  body: Code;
}

/**
 * axpy over k columns: out = (…((out + a0·x0) + a1·x1) …) + a(k−1)·x(k−1), the same additions
 * in the same order as k single axpys, with one load and store of out.
 * Parameters: out 0, x 1 … k, a k+1 … 2k, n 2k+1; locals: end, a splats, value.
 */
function axpyK(k: number): WasmFunction {
  const [out, n, end] = [0, 2 * k + 1, 2 * k + 2];
  const x = (j: number) => 1 + j;
  const a = (j: number) => 1 + k + j;
  const splatOf = (j: number) => 2 * k + 3 + j;
  const value = 3 * k + 3;
  return {
    name: k === 1 ? 'axpy' : 'axpy4',
    params: [I32, ...Array<number>(k).fill(I32), ...Array<number>(k).fill(F64), I32],
    locals: [I32, ...Array<number>(k + 1).fill(V128)],
    body: cat(
      endOf(out, n, end),
      ...Array.from({ length: k }, (_, j) => set(splatOf(j), splat(get(a(j))))),
      whileBelow(
        out,
        end,
        cat(
          set(value, load(get(out))),
          ...Array.from({ length: k }, (_, j) => set(value, add(get(value), mul(load(get(x(j))), get(splatOf(j)))))),
          store(get(out), get(value)),
          increment(out, 16),
          ...Array.from({ length: k }, (_, j) => increment(x(j), 16)),
        ),
      ),
    ),
  };
}

/**
 * k dot products with one vector y: accumulator j (at acc + 16·j bytes) lanes += xj[i]·y[i].
 * Parameters: acc 0, x 1 … k, y k+1, n k+2; locals: end, y value, k sums.
 */
function dotK(k: number): WasmFunction {
  const [acc, y, n, end, yValue] = [0, k + 1, k + 2, k + 3, k + 4];
  const x = (j: number) => 1 + j;
  const sum = (j: number) => k + 5 + j;
  return {
    name: k === 1 ? 'dot' : 'dot4',
    params: [I32, ...Array<number>(k).fill(I32), I32, I32],
    locals: [I32, V128, ...Array<number>(k).fill(V128)],
    body: cat(
      endOf(y, n, end),
      ...Array.from({ length: k }, (_, j) => set(sum(j), load(get(acc), 16 * j))),
      whileBelow(
        y,
        end,
        cat(
          set(yValue, load(get(y))),
          ...Array.from({ length: k }, (_, j) => set(sum(j), add(get(sum(j)), mul(load(get(x(j))), get(yValue))))),
          increment(y, 16),
          ...Array.from({ length: k }, (_, j) => increment(x(j), 16)),
        ),
      ),
      ...Array.from({ length: k }, (_, j) => store(get(acc), get(sum(j)), 16 * j)),
    ),
  };
}

// weigh(out 0, x 1, c 2, n 3); locals: end 4 — out[i] = c[i]·x[i]
const weigh: WasmFunction = {
  name: 'weigh',
  params: [I32, I32, I32, I32],
  locals: [I32],
  body: cat(
    endOf(0, 3, 4),
    whileBelow(0, 4, cat(store(get(0), mul(load(get(2)), load(get(1)))), increment(0, 16), increment(1, 16), increment(2, 16))),
  ),
};

// tile(acc 0, a0 1, a1 2, b0 3, b1 4, n 5); locals: end 6, v128: s00 7, s01 8, s10 9, s11 10,
// u0 11, u1 12, v0 13, v1 14 — the a columns are already weighted (weigh)
const tile: WasmFunction = (() => {
  const [acc, a0, a1, b0, b1, n, end] = [0, 1, 2, 3, 4, 5, 6];
  const sums = [7, 8, 9, 10];
  const [u0, u1, v0, v1] = [11, 12, 13, 14];
  const accumulate = (s: number, u: number, v: number) => set(s, add(get(s), mul(get(u), get(v))));
  return {
    name: 'tile',
    params: [I32, I32, I32, I32, I32, I32],
    locals: [I32, ...Array<number>(8).fill(V128)],
    body: cat(
      endOf(a0, n, end),
      ...sums.map((s, k) => set(s, load(get(acc), 16 * k))),
      whileBelow(
        a0,
        end,
        cat(
          set(u0, load(get(a0))),
          set(u1, load(get(a1))),
          set(v0, load(get(b0))),
          set(v1, load(get(b1))),
          accumulate(sums[0]!, u0, v0),
          accumulate(sums[1]!, u0, v1),
          accumulate(sums[2]!, u1, v0),
          accumulate(sums[3]!, u1, v1),
          ...[a0, a1, b0, b1].map((pointer) => increment(pointer, 16)),
        ),
      ),
      ...sums.map((s, k) => store(get(acc), get(s), 16 * k)),
    ),
  };
})();

// columnSums(x 0, n 1, acc 2); locals: end 3, v128: value 4, present 5, sum 6, count 7
// acc holds (sum lanes, count lanes); a NaN adds +0 to the sum (the sum of present values is
// never −0, so that changes nothing) and 0 to the count.
const columnSums: WasmFunction = {
  name: 'columnSums',
  params: [I32, I32, I32],
  locals: [I32, V128, V128, V128, V128],
  body: cat(
    endOf(0, 1, 3),
    set(6, load(get(2))),
    set(7, load(get(2), 16)),
    whileBelow(
      0,
      3,
      cat(
        set(4, load(get(0))),
        set(5, eq(get(4), get(4))),
        set(6, add(get(6), and(get(4), get(5)))),
        set(7, add(get(7), and(konst(1), get(5)))),
        increment(0, 16),
      ),
    ),
    store(get(2), get(6)),
    store(get(2), get(7), 16),
  ),
};

// center(x 0, label 1, n 2, mean 3, acc 4); locals: end 5, v128: value 6, deviation 7, squares 8,
// sum 9, labelled 10, mean 11
const center: WasmFunction = {
  name: 'center',
  params: [I32, I32, I32, F64, I32],
  locals: [I32, V128, V128, V128, V128, V128, V128],
  body: cat(
    endOf(0, 2, 5),
    set(11, splat(get(3))),
    set(8, load(get(4))),
    set(9, load(get(4), 16)),
    set(10, load(get(4), 32)),
    whileBelow(
      0,
      5,
      cat(
        set(6, load(get(0))),
        set(7, and(sub(get(6), get(11)), eq(get(6), get(6)))),
        store(get(0), get(7)),
        set(8, add(get(8), mul(get(7), get(7)))),
        set(9, add(get(9), get(7))),
        set(10, add(get(10), mul(get(7), load(get(1))))),
        increment(0, 16),
        increment(1, 16),
      ),
    ),
    store(get(4), get(8)),
    store(get(4), get(9), 16),
    store(get(4), get(10), 32),
  ),
};

// rowTerms(z 0, label 1, r 2, c 3, n 4, w0 5, w1 6, loss 7); locals: end 8, then one v128 per
// name below, each holding what the line of rowTermsScalar with that name holds.
const rowTerms: WasmFunction = (() => {
  const [z, label, r, c, n, w0, w1, loss, end] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const names = ['t', 'positive', 'x', 'k', 'hi', 'lo', 'r', 'rr', 'poly', 'e', 'k1', 'u', 'big', 'small', 'p', 'q', 'high', 'f', 'hfsq', 's', 'zz', 'log1p', 'weight', 'lossSum', 'w0', 'w1', 'term', 'lossCompensation', 'compensated', 'newSum', 'rr2', 'rr4', 'z2', 'z4'] as const;
  const v = Object.fromEntries(names.map((name, i) => [name, 9 + i])) as Record<(typeof names)[number], number>;
  const at = (name: (typeof names)[number]) => get(v[name]);
  const firstConstantLocal = 9 + names.length;
  const constant = (value: number): Code => {
    let index = CONSTANTS.indexOf(value);
    if (index < 0) index = CONSTANTS.push(value) - 1;
    return get(firstConstantLocal + index);
  };
  const zero = konst(0);
  const power = (j: Code) => shl52(add(j, constant(EXPONENT_MAGIC)));
  const loop = cat(
    set(v.w0, splat(get(w0))),
    set(v.w1, splat(get(w1))),
    set(v.lossSum, load(get(loss))),
    set(v.lossCompensation, load(get(loss), 16)),
    whileBelow(
      z,
      end,
      cat(
        set(v.t, load(get(z))),
        // label 1.0 → all-ones lanes, 0.0 → zero lanes
        set(v.positive, ge(load(get(label)), constant(0.5))),
        set(v.x, pmax(neg(abs(at('t'))), constant(EXP_FLOOR))),
        set(v.k, nearestV(mul(at('x'), constant(INV_LN2)))),
        set(v.hi, sub(at('x'), mul(at('k'), constant(LN2_HI)))),
        set(v.lo, mul(at('k'), constant(LN2_LO))),
        set(v.r, sub(at('hi'), at('lo'))),
        set(v.rr, mul(at('r'), at('r'))),
        set(v.rr2, mul(at('rr'), at('rr'))),
        set(v.rr4, mul(at('rr2'), at('rr2'))),
        set(v.poly, sub(at('r'), mul(at('rr'), estrin(EXP_P, v.rr, v.rr2, v.rr4, constant)))),
        // e = 1 − ((lo − r·poly/(2 − poly)) − hi), then times 2^k1 · 2^(k − k1)
        set(v.e, sub(constant(1), sub(sub(at('lo'), div(mul(at('r'), at('poly')), sub(constant(2), at('poly')))), at('hi')))),
        set(v.k1, nearestV(mul(at('k'), constant(0.5)))),
        set(v.e, mul(mul(at('e'), power(at('k1'))), power(sub(at('k'), at('k1'))))),
        set(v.u, add(constant(1), at('e'))),
        set(v.big, div(constant(1), at('u'))),
        set(v.small, mul(at('e'), at('big'))),
        set(v.p, select(at('big'), at('small'), ge(at('t'), zero))),
        set(v.q, select(at('small'), at('big'), ge(at('t'), zero))),
        set(v.high, ge(at('e'), constant(LOG1P_SPLIT))),
        set(v.f, select(sub(mul(at('u'), constant(0.5)), constant(1)), at('e'), at('high'))),
        set(v.hfsq, mul(mul(constant(0.5), at('f')), at('f'))),
        set(v.s, div(at('f'), add(constant(2), at('f')))),
        set(v.zz, mul(at('s'), at('s'))),
        set(v.z2, mul(at('zz'), at('zz'))),
        set(v.z4, mul(at('z2'), at('z2'))),
        // log1p = kHi − ((hfsq − (s·(hfsq + zz·P(zz)) + (kLo + correction))) − f)
        set(
          v.log1p,
          sub(
            select(constant(LN2_HI), zero, at('high')),
            sub(
              sub(
                at('hfsq'),
                add(
                  mul(at('s'), add(at('hfsq'), mul(at('zz'), estrin(LOG1P_LP, v.zz, v.z2, v.z4, constant)))),
                  add(select(constant(LN2_LO), zero, at('high')), select(mul(sub(constant(1), sub(at('u'), at('e'))), at('big')), zero, at('high'))),
                ),
              ),
              at('f'),
            ),
          ),
        ),
        set(v.weight, select(at('w1'), at('w0'), at('positive'))),
        store(get(r), mul(at('weight'), select(neg(at('q')), at('p'), at('positive')))),
        store(get(c), mul(mul(at('weight'), at('p')), at('q'))),
        set(v.term, mul(at('weight'), add(at('log1p'), pmax(select(neg(at('t')), at('t'), at('positive')), zero)))),
        // Kahan summation (see kahanAdd)
        set(v.compensated, sub(at('term'), at('lossCompensation'))),
        set(v.newSum, add(at('lossSum'), at('compensated'))),
        set(v.lossCompensation, sub(sub(at('newSum'), at('lossSum')), at('compensated'))),
        set(v.lossSum, at('newSum')),
        ...[z, label, r, c].map((pointer) => increment(pointer, 16)),
      ),
    ),
    store(get(loss), at('lossSum')),
    store(get(loss), at('lossCompensation'), 16),
  );
  const preamble = cat(endOf(z, n, end), ...CONSTANTS.map((_, i) => set(firstConstantLocal + i, load(i32(0), 16 * i))));
  return {
    name: 'rowTerms',
    params: [I32, I32, I32, I32, I32, F64, F64, I32],
    locals: [I32, ...names.map(() => V128), ...CONSTANTS.map(() => V128)],
    body: cat(preamble, loop),
  };
})();

const FUNCTIONS: WasmFunction[] = [axpyK(1), axpyK(4), dotK(1), dotK(4), weigh, tile, rowTerms, columnSums, center];
if (2 * CONSTANTS.length > RESERVED) throw new Error('logreg kernels: too many constants for the reserved memory');

let compiled: WasmModule | null | undefined;

function wasmModule(): WasmModule | null {
  if (compiled === undefined) {
    try {
      // Each local as a run of one; the module imports a (non-shared) memory of at least one page.
      const functions = FUNCTIONS.map((f) => ({ ...f, results: [], locals: f.locals.map((type): [number, number] => [1, type]) }));
      compiled = compile(moduleBytes(functions, { shared: false }));
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

let forceJs = false;

/** Run the JavaScript loops even where WebAssembly works (to check that both give the same bits). */
export function useJavaScriptKernels(on: boolean): void {
  forceJs = on;
}

/**
 * Kernels over a fresh zero-filled heap of `elements` float64 values: WebAssembly where it can
 * hold them, plain JavaScript otherwise.
 */
export function createKernels(elements: number): LogregKernels {
  const module = forceJs ? null : wasmModule();
  const memory = module ? createMemory((RESERVED + elements) * 8) : undefined;
  if (module && memory) {
    try {
      const exports = instantiate(module, memory) as WasmExports;
      const constants = new Float64Array(memory.buffer, 0, RESERVED);
      CONSTANTS.forEach((value, i) => constants.fill(value, 2 * i, 2 * i + 2));
      return wasmKernels(new Float64Array(memory.buffer, RESERVED * 8, elements), exports);
    } catch {
      // The platform refused the instance: the JavaScript loops still work.
    }
  }
  return jsKernels(new Float64Array(elements));
}

/** The heap's offset o (in float64 values) as a byte address of the wasm memory. */
const address = (o: number) => (RESERVED + o) * 8;

function wasmKernels(heap: Float64Array, exports: WasmExports): LogregKernels {
  const { axpy, axpy4, dot, dot4, weigh, tile, rowTerms, columnSums, center } = exports;
  return {
    heap,
    kind: 'wasm',
    axpy4: (out, x0, x1, x2, x3, a0, a1, a2, a3, n) =>
      axpy4(address(out), address(x0), address(x1), address(x2), address(x3), a0, a1, a2, a3, n),
    dot4: (acc, x0, x1, x2, x3, y, n) => dot4(address(acc), address(x0), address(x1), address(x2), address(x3), address(y), n),
    weigh: (out, x, c, n) => weigh(address(out), address(x), address(c), n),
    columnSums: (x, n, acc) => columnSums(address(x), n, address(acc)),
    center: (x, label, n, mean, acc) => center(address(x), address(label), n, mean, address(acc)),
    axpy: (out, x, a, n) => axpy(address(out), address(x), a, n),
    dot: (acc, x, y, n) => dot(address(acc), address(x), address(y), n),
    tile: (acc, a0, a1, b0, b1, n) => tile(address(acc), address(a0), address(a1), address(b0), address(b1), n),
    rowTerms: (z, label, r, c, n, w0, w1, loss) => rowTerms(address(z), address(label), address(r), address(c), n, w0, w1, address(loss)),
  };
}

function jsKernels(heap: Float64Array): LogregKernels {
  const pair = new Float64Array(2);
  return {
    heap,
    kind: 'js',
    columnSums(x, n, acc) {
      for (let i = 0; i < n; i++) {
        const v = heap[x + i]!;
        const present = v === v;
        const lane = acc + (i & 1);
        heap[lane] = heap[lane]! + (present ? v : 0);
        heap[lane + 2] = heap[lane + 2]! + (present ? 1 : 0);
      }
    },
    center(x, label, n, mean, acc) {
      for (let i = 0; i < n; i++) {
        const v = heap[x + i]!;
        const deviation = v === v ? v - mean : 0;
        heap[x + i] = deviation;
        const lane = acc + (i & 1);
        heap[lane] = heap[lane]! + deviation * deviation;
        heap[lane + 2] = heap[lane + 2]! + deviation;
        heap[lane + 4] = heap[lane + 4]! + deviation * heap[label + i]!;
      }
    },
    axpy(out, x, a, n) {
      for (let i = 0; i < n; i++) heap[out + i] = heap[out + i]! + a * heap[x + i]!;
    },
    dot(acc, x, y, n) {
      let even = heap[acc]!;
      let odd = heap[acc + 1]!;
      for (let i = 0; i < n; i += 2) {
        even += heap[x + i]! * heap[y + i]!;
        odd += heap[x + i + 1]! * heap[y + i + 1]!;
      }
      heap[acc] = even;
      heap[acc + 1] = odd;
    },
    axpy4(out, x0, x1, x2, x3, a0, a1, a2, a3, n) {
      for (let i = 0; i < n; i++) {
        heap[out + i] = heap[out + i]! + heap[x0 + i]! * a0 + heap[x1 + i]! * a1 + heap[x2 + i]! * a2 + heap[x3 + i]! * a3;
      }
    },
    dot4(acc, x0, x1, x2, x3, y, n) {
      const sums = heap.slice(acc, acc + 8);
      for (let i = 0; i < n; i++) {
        const lane = i & 1;
        const v = heap[y + i]!;
        sums[lane] = sums[lane]! + heap[x0 + i]! * v;
        sums[2 + lane] = sums[2 + lane]! + heap[x1 + i]! * v;
        sums[4 + lane] = sums[4 + lane]! + heap[x2 + i]! * v;
        sums[6 + lane] = sums[6 + lane]! + heap[x3 + i]! * v;
      }
      heap.set(sums, acc);
    },
    weigh(out, x, c, n) {
      for (let i = 0; i < n; i++) heap[out + i] = heap[c + i]! * heap[x + i]!;
    },
    tile(acc, a0, a1, b0, b1, n) {
      const sums = heap.slice(acc, acc + 8);
      for (let i = 0; i < n; i++) {
        const lane = i & 1;
        const u0 = heap[a0 + i]!;
        const u1 = heap[a1 + i]!;
        const v0 = heap[b0 + i]!;
        const v1 = heap[b1 + i]!;
        sums[lane] = sums[lane]! + u0 * v0;
        sums[2 + lane] = sums[2 + lane]! + u0 * v1;
        sums[4 + lane] = sums[4 + lane]! + u1 * v0;
        sums[6 + lane] = sums[6 + lane]! + u1 * v1;
      }
      heap.set(sums, acc);
    },
    rowTerms(z, label, r, c, n, w0, w1, loss) {
      for (let i = 0; i < n; i++) {
        const term = rowTermsScalar(heap[z + i]!, heap[label + i]! >= 0.5, w0, w1, pair);
        heap[r + i] = pair[0]!;
        heap[c + i] = pair[1]!;
        kahanAdd(heap, loss + (i & 1), term);
      }
    },
  };
}
