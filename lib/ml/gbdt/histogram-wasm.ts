/**
 * The histogram loops as a tiny WebAssembly module, assembled here byte by byte (no toolchain):
 * two to three times as fast as the same loops in JavaScript (one SIMD add covers a row's
 * gradient and hessian), and bit-identical to them, since they add the same float64 values in
 * the same order. The module imports one shared memory, so the
 * main thread and the pool's workers run it over the same binned data and gradients.
 *
 * Exports (all pointers are byte offsets into the memory; a histogram bin is 3 float64s:
 * sum of gradients, sum of hessians, count; the 4-suffixed loops do four features per pass):
 *   contiguous1/4(columns…, outs…, gh, count)    rows are consecutive: column[i], gh[2i], gh[2i + 1]
 *   indexed1/4(columns…, outs…, rows, gh, count) row r = rows[i]: column[r], gh[2r], gh[2r + 1]
 *   partition(column, rows, count, bin, missingBin, missingLeft, scratch) → rows going left
 *     stable split of rows[0 … count): left rows stay in front, right rows are written to
 *     scratch; branch-free, since at a good split the direction is a coin toss
 */

import type { SharedMemory, WasmFunction, WasmModule } from '../../wasm/assembler.js';
import { I32, V128, compile, createMemory, increment, instantiate, moduleBytes, op, simd, uleb, whileBelow } from '../../wasm/assembler.js';

export type { SharedMemory as WasmMemory } from '../../wasm/assembler.js';

/** The shared instructions, and those only these loops use. */
const OP = {
  ...op,
  i32Load: (offset = 0) => [0x28, 2, ...uleb(offset)],
  f64Load: (offset = 0) => [0x2b, 3, ...uleb(offset)],
  u8Load: (offset = 0) => [0x2d, 0, ...uleb(offset)],
  f64Store: (offset = 0) => [0x39, 3, ...uleb(offset)],
  i32Store: (offset = 0) => [0x36, 2, ...uleb(offset)],
  // SIMD: 8-byte load into the low half (alignment hint 8 bytes), float32 pair → float64 pair
  v128Load64Zero: (offset = 0) => [...simd(0x5d), 3, ...uleb(offset)],
  f64x2PromoteLow: simd(0x5f),
  f64: (value: number) => [0x44, ...new Uint8Array(Float64Array.of(value).buffer)],
  select: [0x1b],
  i32Eq: [0x46],
  i32LeU: [0x4d],
  i32Sub: [0x6b],
  i32ShrU: [0x76],
  i32Mul: [0x6c],
  f64Add: [0xa0],
};

const i32s = (n: number) => Array<number>(n).fill(I32);

/** out[at + offset] += (value pushed by `value`) */
const accumulate = (at: number, offset: number, value: number[]) => [
  ...OP.get(at),
  ...OP.get(at),
  ...OP.f64Load(offset),
  ...value,
  ...OP.f64Add,
  ...OP.f64Store(offset),
];

/**
 * Histogram loop over `k` features at once (each row's float32 gradient and hessian loaded once
 * per row as one 8-byte pair, widened to float64 and added to a bin's two sums with one
 * f64x2.add). Parameters:
 * k column pointers, k output pointers, then
 * contiguous: (gh, count), rows 0 … count − 1 of the columns and of gh;
 * indexed: (rows, gh, count), row r = rows[i] of the columns and of gh (reading gradients in
 * place beats gathering them first, and leaves less for other threads to fetch).
 */
function histogramLoop(k: number, mode: 'contiguous' | 'indexed'): Pick<WasmFunction, 'params' | 'locals' | 'body'> {
  const indexedRows = mode === 'indexed';
  const col = (j: number) => j;
  const out = (j: number) => k + j;
  const rows = 2 * k;
  const [gh, count] = indexedRows ? [2 * k + 1, 2 * k + 2] : [2 * k, 2 * k + 1];
  const params = indexedRows ? 2 * k + 3 : 2 * k + 2;
  // i32 locals: end, at, row (index into a column); v128 local: (gradient, hessian)
  const [end, at, row, pair] = [params, params + 1, params + 2, params + 3];
  const cursor = indexedRows ? rows : gh;
  const stepEnd = indexedRows ? [...OP.i32(2), ...OP.i32Shl] : [...OP.i32(3), ...OP.i32Shl];
  const body = [
    ...OP.get(cursor), ...OP.get(count), ...stepEnd, ...OP.i32Add, ...OP.set(end),
    ...(indexedRows ? [] : [...OP.i32(0), ...OP.set(row)]),
    ...whileBelow(cursor, end, [
      ...(indexedRows
        ? [...OP.get(rows), ...OP.i32Load(), ...OP.set(row), ...OP.get(gh), ...OP.get(row), ...OP.i32(3), ...OP.i32Shl, ...OP.i32Add]
        : OP.get(gh)),
      ...OP.v128Load64Zero(), ...OP.f64x2PromoteLow, ...OP.set(pair),
      ...Array.from({ length: k }, (_, j) => [
        ...OP.get(out(j)), ...OP.get(col(j)), ...OP.get(row), ...OP.i32Add, ...OP.u8Load(), ...OP.i32(24), ...OP.i32Mul, ...OP.i32Add, ...OP.set(at),
        // bin[0 … 1] += (gradient, hessian); bin[2] += 1
        ...OP.get(at), ...OP.get(at), ...OP.v128Load(), ...OP.get(pair), ...OP.f64x2Add, ...OP.v128Store(),
        ...accumulate(at, 16, OP.f64(1)),
      ]).flat(),
      ...(indexedRows ? increment(rows, 4) : [...increment(row, 1), ...increment(gh, 8)]),
    ]),
  ];
  return { params: i32s(params), locals: [[3, I32], [1, V128]], body };
}

// partition(column 0, rows 1, count 2, bin 3, missingBin 4, missingLeft 5, scratch 6) → i32
// locals: end 7, left 8, right 9, row 10, bin of row 11, goes left 12
const partition = [
  ...OP.get(1), ...OP.get(2), ...OP.i32(2), ...OP.i32Shl, ...OP.i32Add, ...OP.set(7),
  ...OP.get(1), ...OP.set(8),
  ...OP.get(6), ...OP.set(9),
  ...whileBelow(1, 7, [
    ...OP.get(1), ...OP.i32Load(), ...OP.set(10),
    ...OP.get(0), ...OP.get(10), ...OP.i32Add, ...OP.u8Load(), ...OP.set(11),
    // goes left = bin == missingBin ? missingLeft : bin <= split bin
    ...OP.get(5), ...OP.get(11), ...OP.get(3), ...OP.i32LeU, ...OP.get(11), ...OP.get(4), ...OP.i32Eq, ...OP.select, ...OP.set(12),
    // write to both sides, advance one: left never passes the read position
    ...OP.get(8), ...OP.get(10), ...OP.i32Store(),
    ...OP.get(9), ...OP.get(10), ...OP.i32Store(),
    ...OP.get(8), ...OP.get(12), ...OP.i32(2), ...OP.i32Shl, ...OP.i32Add, ...OP.set(8),
    ...OP.get(9), ...OP.i32(4), ...OP.get(12), ...OP.i32(2), ...OP.i32Shl, ...OP.i32Sub, ...OP.i32Add, ...OP.set(9),
    ...increment(1, 4),
  ]),
  // (left − start) / 4, start = end − count · 4
  ...OP.get(8), ...OP.get(7), ...OP.get(2), ...OP.i32(2), ...OP.i32Shl, ...OP.i32Sub, ...OP.i32Sub, ...OP.i32(2), ...OP.i32ShrU,
];

const FUNCTIONS: Array<WasmFunction<keyof HistogramKernels>> = [
  { name: 'contiguous1', results: [], ...histogramLoop(1, 'contiguous') },
  { name: 'contiguous4', results: [], ...histogramLoop(4, 'contiguous') },
  { name: 'indexed1', results: [], ...histogramLoop(1, 'indexed') },
  { name: 'indexed4', results: [], ...histogramLoop(4, 'indexed') },
  { name: 'partition', params: i32s(7), results: [I32], locals: [[6, I32]], body: partition },
];

export interface HistogramKernels {
  contiguous1(column: number, out: number, gh: number, count: number): void;
  contiguous4(c0: number, c1: number, c2: number, c3: number, o0: number, o1: number, o2: number, o3: number, gh: number, count: number): void;
  indexed1(column: number, out: number, rows: number, gh: number, count: number): void;
  indexed4(c0: number, c1: number, c2: number, c3: number, o0: number, o1: number, o2: number, o3: number, rows: number, gh: number, count: number): void;
  partition(column: number, rows: number, count: number, bin: number, missingBin: number, missingLeft: number, scratch: number): number;
}

/**
 * A shared memory of at least `bytes` bytes, or undefined when wasm32 cannot hold that many
 * (or the platform refuses it): callers then use plain arrays and the JavaScript loops.
 */
export function createSharedMemory(bytes: number): SharedMemory | undefined {
  return createMemory(bytes, true);
}

let compiled: WasmModule | undefined;
const instances = new WeakMap<SharedMemory, HistogramKernels>();

/** The kernels over `memory` (compiled once per thread, instantiated once per memory). */
export function kernelsFor(memory: SharedMemory): HistogramKernels {
  let kernels = instances.get(memory);
  if (!kernels) {
    // The module imports any shared memory of 1 … MAX_WASM_PAGES pages.
    compiled ??= compile(moduleBytes(FUNCTIONS, { shared: true }));
    kernels = instantiate(compiled, memory) as HistogramKernels;
    instances.set(memory, kernels);
  }
  return kernels;
}
