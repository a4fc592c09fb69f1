/**
 * Number formats, bit by bit: float32 ↔ float16 (IEEE binary16) and bfloat16 with exact
 * round-to-nearest-even, their properties side by side ({@link FORMATS}), and the 8-bit affine
 * quantization of the TensorFlow.js weights format. Pure functions on numbers and typed arrays.
 *
 * The base that `precision` (the mixed-precision technique, which re-exports all of this) and
 * `modelIO` (weights stored as float16 or uint8) share.
 */

// ---------------------------------------------------------------------------------------------
// Formats

/** A floating-point format this module can emulate or store. */
export type FloatFormat = 'float32' | 'float16' | 'bfloat16';

/** The properties of a floating-point format. */
export interface FormatInfo {
  name: FloatFormat;
  /** Bytes per value. */
  bytes: number;
  /** Stored mantissa (fraction) bits. */
  mantissaBits: number;
  /** Exponent bits. */
  exponentBits: number;
  /** Largest finite value. */
  max: number;
  /** Smallest positive normal value. */
  minNormal: number;
  /** Smallest positive subnormal value (below half of it, values round to zero). */
  minSubnormal: number;
  /** Distance from 1 to the next larger value. */
  epsilon: number;
}

/** float32, float16 (IEEE binary16) and bfloat16 (brain float), side by side. */
export const FORMATS: Readonly<Record<FloatFormat, FormatInfo>> = {
  float32: {
    name: 'float32', bytes: 4, mantissaBits: 23, exponentBits: 8,
    max: 3.4028234663852886e38, minNormal: 2 ** -126, minSubnormal: 2 ** -149, epsilon: 2 ** -23,
  },
  float16: {
    name: 'float16', bytes: 2, mantissaBits: 10, exponentBits: 5,
    max: 65504, minNormal: 2 ** -14, minSubnormal: 2 ** -24, epsilon: 2 ** -10,
  },
  bfloat16: {
    name: 'bfloat16', bytes: 2, mantissaBits: 7, exponentBits: 8,
    max: 3.3895313892515355e38, minNormal: 2 ** -126, minSubnormal: 2 ** -133, epsilon: 2 ** -7,
  },
};

/** The properties of `format`; throws naming it when it is not one of {@link FORMATS}. */
export function formatInfo(format: FloatFormat): FormatInfo {
  const info = FORMATS[format];
  if (!info) throw new Error(`precision: unknown format '${String(format)}' (expected float32, float16 or bfloat16)`);
  return info;
}

// ---------------------------------------------------------------------------------------------
// Host conversion (exact, scalar and arrays)

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round half to even (banker's rounding) for a non-negative double. */
function roundHalfEven(v: number): number {
  const fl = Math.floor(v);
  const d = v - fl;
  if (d > 0.5) return fl + 1;
  if (d < 0.5) return fl;
  return fl % 2 === 0 ? fl : fl + 1;
}

/** floor(log2(a)) for a finite a > 0, exact (corrects Math.log2's rounding near powers of two). */
function exponentOf(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1;
  else if (2 ** (e + 1) <= a) e += 1;
  return e;
}

/**
 * The IEEE binary16 bit pattern (0..0xffff) of `x` after rounding it to float32 and then to
 * float16 with round-to-nearest-even: subnormals are kept (down to 2^-24), values ≥ 65520 become
 * ±Infinity, NaN becomes a quiet NaN (0x7e00, sign kept), and −0 stays −0.
 */
export function float32ToFloat16Bits(x: number): number {
  f32[0] = x;
  const sign = (u32[0] >>> 16) & 0x8000;
  const a = Math.abs(f32[0]);
  if (Number.isNaN(a)) return sign | 0x7e00;
  if (a >= 65520) return sign | 0x7c00; // rounds past 65504: overflow to infinity
  if (a < 2 ** -14) {
    // subnormal (or zero): units of 2^-24; m === 1024 is the smallest normal, which the bit layout gives for free
    return sign | roundHalfEven(a * 2 ** 24);
  }
  let e = exponentOf(a);
  let m = roundHalfEven(a * 2 ** (10 - e)); // 1024..2048
  if (m === 2048) {
    e += 1;
    m = 1024;
  }
  return sign | ((e + 15) << 10) | (m - 1024);
}

/** The value of an IEEE binary16 bit pattern, as a number (exact). */
export function float16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/**
 * The bfloat16 bit pattern (0..0xffff) of `x` rounded to float32 and then to bfloat16 with
 * round-to-nearest-even: the top 16 bits of the float32 after rounding. NaN stays a quiet NaN.
 */
export function float32ToBfloat16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if (Number.isNaN(f32[0])) return ((u >>> 16) & 0x8000) | 0x7fc0;
  const rounded = (u + 0x7fff + ((u >>> 16) & 1)) >>> 0; // carry into the exponent is correct (→ next binade or inf)
  return rounded >>> 16;
}

/** The value of a bfloat16 bit pattern, as a number (exact). */
export function bfloat16BitsToNumber(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** `x` rounded to the nearest value representable in `format` (round-to-nearest-even). */
export function roundToFormat(x: number, format: FloatFormat): number {
  formatInfo(format);
  if (format === 'float16') return float16BitsToNumber(float32ToFloat16Bits(x));
  if (format === 'bfloat16') return bfloat16BitsToNumber(float32ToBfloat16Bits(x));
  return Math.fround(x);
}

/** Pack values as float16 bit patterns (2 bytes each), rounding to nearest even. */
export function encodeFloat16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]);
  return out;
}

/** Pack values as bfloat16 bit patterns (2 bytes each), rounding to nearest even. */
export function encodeBfloat16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToBfloat16Bits(values[i]);
  return out;
}

/** Unpack bfloat16 bit patterns into float32 values (exact). */
export function decodeBfloat16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const ou = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) ou[i] = bits[i] << 16;
  return out;
}

// ---------------------------------------------------------------------------------------------
// 8-bit affine quantization

/** Parameters of an affine 8-bit quantization: value ≈ q × scale + min (the tfjs weights format). */
export interface Uint8Quantization {
  min: number;
  scale: number;
}

/**
 * Quantize values to 8 bits with an affine map over [min, max] (per tensor, as the TensorFlow.js
 * weights format stores it): `q = round((x − min) / scale)`, `scale = (max − min) / 255`.
 * Round trip error is at most `scale / 2` per value (plus float32 rounding). A constant tensor
 * gets `scale = 1`. Throws on NaN or ±Infinity, naming `name`.
 */
export function quantizeUint8(values: ArrayLike<number>, name = 'tensor'): { bytes: Uint8Array } & Uint8Quantization {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) throw new Error(`quantizeUint8: ${name} has a non-finite value (${v}) at index ${i}`);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (values.length === 0) return { bytes: new Uint8Array(0), min: 0, scale: 1 };
  min = Math.fround(min);
  const scale = max > min ? Math.fround((max - min) / 255) : 1;
  const bytes = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    bytes[i] = Math.min(255, Math.max(0, Math.round((values[i] - min) / scale)));
  }
  return { bytes, min, scale };
}

/** The float32 values of 8-bit quantized data: `q × scale + min` (exactly what tfjs's decoder does). */
export function dequantizeUint8(bytes: Uint8Array, q: Uint8Quantization): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i] * q.scale + q.min;
  return out;
}
