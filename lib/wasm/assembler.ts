/**
 * The WebAssembly binary encoding that the hand-assembled kernels share (lib/ml/gbdt/
 * histogram-wasm.ts, lib/ml/logreg/kernels.ts), so that each of them holds only its loops:
 * LEB128, the instructions both use, the module layout, and compiling and instantiating it
 * synchronously. Instructions are byte arrays in stack order (operands are pushed first); a
 * function body is their concatenation.
 */

export type Code = number[];

/** Value types. */
export const I32 = 0x7f;
export const F64 = 0x7c;
export const V128 = 0x7b;

/** Unsigned LEB128: sizes, counts, indices, memory offsets. */
export function uleb(value: number): Code {
  const out: Code = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return out;
}

/** Signed LEB128: the operand of i32.const. */
export function sleb(value: number): Code {
  const out: Code = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && !(byte & 0x40)) || (value === -1 && byte & 0x40)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

/** A SIMD instruction: the 0xfd prefix, then its opcode. */
export function simd(opcode: number): Code {
  return [0xfd, ...uleb(opcode)];
}

export const op = {
  /** block and loop with no result */
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number): Code => [0x0c, ...uleb(depth)],
  brIf: (depth: number): Code => [0x0d, ...uleb(depth)],
  get: (local: number): Code => [0x20, ...uleb(local)],
  set: (local: number): Code => [0x21, ...uleb(local)],
  /** i32.const */
  i32: (value: number): Code => [0x41, ...sleb(value)],
  i32Add: [0x6a],
  i32Shl: [0x74],
  i32GeU: [0x4f],
  /** 16-byte load and store at address + offset (alignment hint 8 bytes) */
  v128Load: (offset = 0): Code => [...simd(0x00), 3, ...uleb(offset)],
  v128Store: (offset = 0): Code => [...simd(0x0b), 3, ...uleb(offset)],
  f64x2Add: simd(0xf0),
};

/** local += by (an i32 local) */
export const increment = (local: number, by: number): Code => [...op.get(local), ...op.i32(by), ...op.i32Add, ...op.set(local)];

/** while (pointer < end) { body }, unsigned: byte addresses may pass 2³¹ */
export const whileBelow = (pointer: number, end: number, body: Code): Code => [
  ...op.block,
  ...op.loop,
  ...op.get(pointer),
  ...op.get(end),
  ...op.i32GeU,
  ...op.brIf(1), // out of the block
  ...body,
  ...op.br(0), // to the loop
  ...op.end,
  ...op.end,
];

export interface WasmFunction<Name extends string = string> {
  /** The name it is exported under. */
  name: Name;
  /** Value types of the parameters and of the results. */
  params: number[];
  results: number[];
  /** The locals after the parameters, as (count, type) runs. */
  locals: Array<[number, number]>;
  body: Code;
}

/** Largest wasm32 memory, in 64 KiB pages. */
export const MAX_WASM_PAGES = 65536;

const vector = (items: Code[]): Code => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: Code): Code => [id, ...uleb(body.length), ...body];
const name = (s: string): Code => [...uleb(s.length), ...new TextEncoder().encode(s)];
const functionBody = (f: WasmFunction): Code => {
  const bytes = [...vector(f.locals.map(([count, type]) => [...uleb(count), type])), ...f.body, ...op.end];
  return [...uleb(bytes.length), ...bytes];
};

/**
 * Bytes of a module that imports one memory as env.memory and exports `functions` under their
 * names. The memory has at least one page; a shared one at most MAX_WASM_PAGES (a shared memory
 * must declare a maximum), so any shared memory the caller makes fits.
 */
export function moduleBytes(functions: readonly WasmFunction[], memory: { shared: boolean }): Uint8Array {
  const limits = memory.shared ? [0x03, ...uleb(1), ...uleb(MAX_WASM_PAGES)] : [0x00, ...uleb(1)];
  const types = (list: number[]) => vector(list.map((type) => [type]));
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vector(functions.map((f) => [0x60, ...types(f.params), ...types(f.results)]))),
    ...section(2, vector([[...name('env'), ...name('memory'), 0x02, ...limits]])),
    ...section(3, vector(functions.map((_, i) => uleb(i)))),
    ...section(7, vector(functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vector(functions.map(functionBody))),
  ]);
}

// ---------------------------------------------------------------------------------------------
// Running it. The fallback contract: createMemory answers undefined where no memory can be had
// (no WebAssembly, more than wasm32 can address, or the platform refuses), which is where
// callers switch to their JavaScript loops; compile and instantiate throw, as WebAssembly does,
// and a caller with a fallback catches.

export interface WasmMemory<Buffer extends ArrayBufferLike = ArrayBuffer> {
  readonly buffer: Buffer;
}
export type SharedMemory = WasmMemory<SharedArrayBuffer>;
/** A compiled module (opaque). */
export type WasmModule = object;

/** The part of the WebAssembly API used here (the project's type libraries do not declare it). */
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory<ArrayBufferLike>;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: unknown };
}

function webAssembly(): WasmApi {
  const api = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  if (!api) throw new Error('WebAssembly is not available');
  return api;
}

/**
 * A memory of at least `bytes` bytes, or undefined (see above). A shared one is fixed at that
 * size, to be used by several threads at once; another one may grow.
 */
export function createMemory(bytes: number, shared: true): SharedMemory | undefined;
export function createMemory(bytes: number, shared?: false): WasmMemory | undefined;
export function createMemory(bytes: number, shared = false): WasmMemory<ArrayBufferLike> | undefined {
  const pages = Math.max(1, Math.ceil(bytes / 65536));
  if (pages > MAX_WASM_PAGES) return undefined;
  try {
    return new (webAssembly().Memory)(shared ? { initial: pages, maximum: pages, shared: true } : { initial: pages });
  } catch {
    return undefined;
  }
}

/** Compiles module bytes; throws where there is no WebAssembly or it rejects them. */
export function compile(bytes: Uint8Array): WasmModule {
  return new (webAssembly().Module)(bytes);
}

/** The exports of an instance of `module` over `memory` (imported as env.memory). */
export function instantiate(module: WasmModule, memory: WasmMemory<ArrayBufferLike>): unknown {
  return new (webAssembly().Instance)(module, { env: { memory } }).exports;
}
