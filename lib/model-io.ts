/**
 * Model I/O on the local disk, the one implementation every module uses: TensorFlow.js Layers
 * models (`model.json` + one weight shard, what `model.save` and `tensorflowjs_converter` write)
 * and weights-only saves (`weights.json` + one shard).
 *
 * ```ts
 * await modelIO.saveModel(model, 'data/models/mlp', { storage: 'float16', metadata: { task: 'x' } });
 * const back = await modelIO.loadModel('data/models/mlp');   // or an http(s) URL, or file://
 * ```
 *
 * - **Atomic.** The shard is written first under a content-hash name, then the JSON, each to a
 *   temp file that is renamed into place; shards of earlier saves are removed only after. A crash
 *   never leaves a JSON pointing at a missing or half-written shard.
 * - **Storage.** Weights are stored as float32, float16 or 8-bit affine (`storage`) in the
 *   TensorFlow.js weights format (`quantization: {dtype: 'float16' | 'uint8'}`), so
 *   `tf.loadLayersModel` in a browser reads the same files; loading dequantizes to float32 with
 *   tfjs's own decoder.
 * - **Clear errors.** Loading checks every shard holds exactly the bytes the manifest promises;
 *   a missing, unreadable, corrupt or truncated file is named with the problem.
 *
 * Weights stored as float16 or uint8 are encoded by `./float-formats` (shared with `precision`).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { readFileOrThrow, writeFileAtomic } from './fsutil';
import { encodeFloat16, float16BitsToNumber, quantizeUint8 } from './float-formats';

// ---------------------------------------------------------------------------------------------
// Storage: the TensorFlow.js weights format with float32, float16 or 8-bit values
// ---------------------------------------------------------------------------------------------

/** How weights are stored: float32 (4 B/value), float16 (2 B) or 8-bit affine (1 B + min/scale). */
export type WeightStorage = 'float32' | 'float16' | 'uint8';

/** Encoded weights: the tfjs manifest entries and the concatenated bytes. */
export interface EncodedWeights {
  specs: tf.io.WeightsManifestEntry[];
  data: Uint8Array;
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 };

/** Bytes a weightsManifest entry occupies in its shard (quantized entries use the quantized dtype). */
export function weightEntryBytes(entry: tf.io.WeightsManifestEntry): number {
  const n = entry.shape.reduce((a, b) => a * b, 1);
  const dtype = entry.quantization?.dtype ?? entry.dtype;
  const b = BYTES[dtype];
  if (b === undefined) throw new Error(`weight '${entry.name}': unsupported dtype '${dtype}'`);
  return n * b;
}

/**
 * Encode float32 (and int32) tensors in the TensorFlow.js weights format with the requested
 * storage; float32 tensors get a `quantization` entry for float16/uint8, int32 ones are kept
 * as-is. The result decodes with `tf.io.decodeWeights` ({@link decodeWeights}).
 */
export function encodeWeights(tensors: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[], storage: WeightStorage): EncodedWeights {
  if (storage !== 'float32' && storage !== 'float16' && storage !== 'uint8') {
    throw new Error(`encodeWeights: unknown storage '${String(storage)}' (expected float32, float16 or uint8)`);
  }
  const list = Array.isArray(tensors) ? tensors : Object.entries(tensors).map(([name, tensor]) => ({ name, tensor }));
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  for (const { name, tensor } of list) {
    if (tensor.dtype !== 'float32' && tensor.dtype !== 'int32') {
      throw new Error(`encodeWeights: weight '${name}' has dtype ${tensor.dtype}; only float32 and int32 are stored`);
    }
    const values = tensor.dataSync() as Float32Array | Int32Array;
    const spec: tf.io.WeightsManifestEntry = { name, shape: [...tensor.shape], dtype: tensor.dtype };
    if (tensor.dtype === 'int32' || storage === 'float32') {
      parts.push(new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)));
    } else if (storage === 'float16') {
      const bits = encodeFloat16(values);
      for (let i = 0; i < values.length; i++) {
        if (Number.isFinite(values[i]) && !Number.isFinite(float16BitsToNumber(bits[i]))) {
          throw new Error(`encodeWeights: weight '${name}' value ${values[i]} at index ${i} overflows float16 (max 65504)`);
        }
      }
      spec.quantization = { dtype: 'float16' };
      parts.push(new Uint8Array(bits.buffer));
    } else {
      const q = quantizeUint8(values, name);
      spec.quantization = { dtype: 'uint8', min: q.min, scale: q.scale };
      parts.push(q.bytes);
    }
    specs.push(spec);
  }
  const data = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    data.set(p, off);
    off += p.byteLength;
  }
  return { specs, data };
}

/** Decode weights encoded by {@link encodeWeights} (or any tfjs weights) with tfjs's own decoder. */
export function decodeWeights(encoded: EncodedWeights): tf.NamedTensorMap {
  const buf = encoded.data.buffer.slice(encoded.data.byteOffset, encoded.data.byteOffset + encoded.data.byteLength) as ArrayBuffer;
  return tf.io.decodeWeights(buf, encoded.specs);
}

// ---------------------------------------------------------------------------------------------
// Files: one content-named shard and a JSON, written atomically; read back with checks
// ---------------------------------------------------------------------------------------------

/** The files a save wrote, and their sizes. */
export interface SavedWeights {
  /** The JSON file (`model.json`, or `weights.json` for {@link saveWeights}). */
  jsonFile: string;
  /** The binary weights file (the shard). */
  weightsFile: string;
  /** Bytes of the shard. */
  weightBytes: number;
  /** Bytes of both files together. */
  totalBytes: number;
  storage: WeightStorage;
}

/** The model.json file of a model folder, a model.json path, or a `file://` URL. */
export function modelJsonPath(location: string): string {
  let p = location.startsWith('file://') ? fileURLToPath(location) : location;
  p = path.resolve(p);
  if (p.endsWith('.json')) return p;
  return path.join(p, 'model.json');
}

function readJson(file: string, what: string): Record<string, unknown> {
  const text = readFileOrThrow(file, what, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: corrupt ${what}, not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${file}: corrupt ${what}, expected a JSON object`);
  return json as Record<string, unknown>;
}

/** Shard file names a JSON written earlier lists (none when it is missing or unreadable). */
function listedShards(jsonFile: string): string[] {
  try {
    const j = JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as { weightsManifest?: { paths?: string[] }[] };
    return (j.weightsManifest ?? []).flatMap((g) => g.paths ?? []).filter((p) => !p.includes('/') && !p.includes('\\'));
  } catch {
    return [];
  }
}

/**
 * Write `data` as a content-named shard, then `jsonFile` (built by `json` from the shard's name),
 * both atomically; then remove the shards the previous `jsonFile` listed.
 */
function writeShardAndJson(jsonFile: string, data: Uint8Array, json: (shard: string) => Record<string, unknown>, storage: WeightStorage): SavedWeights {
  const dir = path.dirname(jsonFile);
  const shard = `weights.${crypto.createHash('sha256').update(data).digest('hex').slice(0, 16)}.bin`;
  const weightsFile = path.join(dir, shard);
  const previous = listedShards(jsonFile);
  writeFileAtomic(weightsFile, data);
  writeFileAtomic(jsonFile, JSON.stringify(json(shard)));
  for (const old of previous) if (old !== shard) fs.rmSync(path.join(dir, old), { force: true });
  return { jsonFile, weightsFile, weightBytes: data.byteLength, totalBytes: data.byteLength + fs.statSync(jsonFile).size, storage };
}

/** Read the shards of a weightsManifest and check each group holds exactly the bytes it promises. */
function readShards(jsonFile: string, manifest: unknown): { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  if (!Array.isArray(manifest)) throw new Error(`${jsonFile}: corrupt file, "weightsManifest" is missing or not a list`);
  const dir = path.dirname(jsonFile);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  (manifest as tf.io.WeightsManifestConfig).forEach((group, g) => {
    if (!group || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new Error(`${jsonFile}: corrupt weightsManifest group ${g} (needs "paths" and "weights")`);
    }
    let need = 0;
    for (const w of group.weights) {
      if (!w || typeof w.name !== 'string' || !Array.isArray(w.shape)) throw new Error(`${jsonFile}: corrupt weight entry in group ${g}`);
      need += w.dtype === 'string' ? 0 : weightEntryBytes(w);
    }
    let have = 0;
    const shards = group.paths.map((p) => {
      const file = path.resolve(dir, p);
      const buf = readFileOrThrow(file, `weight shard listed in ${jsonFile}`);
      have += buf.length;
      return { file, buf };
    });
    if (have !== need && !group.weights.some((w) => w.dtype === 'string')) {
      throw new Error(
        `${shards.map((s) => s.file).join(', ')}: weight data is corrupt or truncated: ${jsonFile} needs ${need} bytes for ` +
          `${group.weights.map((w) => w.name).join(', ')}, the shard file(s) hold ${have}`,
      );
    }
    specs.push(...group.weights);
    buffers.push(...shards.map((s) => s.buf));
  });
  const all = Buffer.concat(buffers);
  return { specs, data: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer };
}

// ---------------------------------------------------------------------------------------------
// Layers models
// ---------------------------------------------------------------------------------------------

/** Options of {@link fileIO}. */
export interface FileIOOptions {
  /** How `save()` stores the weights (default float32: the bytes tfjs hands over, unchanged). */
  storage?: WeightStorage;
  /** Called with what `save()` wrote. */
  onSaved?: (saved: SavedWeights) => void;
}

/**
 * A tfjs IOHandler for a model on the local disk (what tfjs-node's `file://` handler does):
 * `load()` reads `model.json` and its weight shards and checks every shard has exactly the
 * bytes the manifest promises; `save()` writes one content-named shard, then model.json, each
 * atomically, with the weights in the requested `storage`.
 *
 * @param location a model folder, a path to its model.json, or a `file://` URL.
 */
export function fileIO(location: string, options: FileIOOptions = {}): tf.io.IOHandler {
  const jsonPath = modelJsonPath(location);
  const storage = options.storage ?? 'float32';
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const json = readJson(jsonPath, 'model file');
      if (!json.modelTopology || typeof json.modelTopology !== 'object') {
        throw new Error(`${jsonPath}: not a TensorFlow.js Layers model (no "modelTopology"); a graph model needs tf.loadGraphModel`);
      }
      const shards = readShards(jsonPath, json.weightsManifest);
      return tf.io.getModelArtifactsForJSON(json as unknown as tf.io.ModelJSON, async () => [shards.specs, shards.data]);
    },

    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) throw new Error(`${jsonPath}: saving a binary (graph) topology is not supported`);
      const raw = new Uint8Array(artifacts.weightData ? tf.io.CompositeArrayBuffer.join(artifacts.weightData) : new ArrayBuffer(0));
      let specs = artifacts.weightSpecs ?? [];
      let data: Uint8Array = raw;
      if (storage !== 'float32') {
        const decoded = tf.io.decodeWeights(raw.buffer as ArrayBuffer, specs);
        try {
          ({ specs, data } = encodeWeights(specs.map((s) => ({ name: s.name, tensor: decoded[s.name] })), storage));
        } finally {
          tf.dispose(Object.values(decoded));
        }
      }
      const saved = writeShardAndJson(jsonPath, data, (shard) => ({
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: storage === 'float32' ? (artifacts.convertedBy ?? null) : `gpulab modelIO (${storage})`,
        weightsManifest: [{ paths: [shard], weights: specs }],
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
      }), storage);
      options.onSaved?.(saved);
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

/** Options of {@link saveModel}. */
export interface SaveModelOptions {
  /** How the weights are stored (default float32). */
  storage?: WeightStorage;
  /** Stored in model.json as `userDefinedMetadata`; read back with {@link readModelMetadata} or `model.getUserDefinedMetadata()`. */
  metadata?: Record<string, unknown>;
}

/**
 * Save a model to a local folder (model.json + one weight shard), atomically, with its weights
 * stored as float32, float16 or 8-bit and optional metadata. `options` may be just the storage:
 * `saveModel(model, dir, 'float16')`. Loadable by {@link loadModel}, or by `tf.loadLayersModel`
 * in a browser from the same files.
 */
export async function saveModel(model: tf.LayersModel, dir: string, options: SaveModelOptions | WeightStorage = {}): Promise<SavedWeights> {
  const o: SaveModelOptions = typeof options === 'string' ? { storage: options } : options;
  if (o.metadata) model.setUserDefinedMetadata(o.metadata as Parameters<tf.LayersModel['setUserDefinedMetadata']>[0]);
  let saved: SavedWeights | undefined;
  await model.save(fileIO(dir, { storage: o.storage, onSaved: (s) => (saved = s) }));
  if (!saved) throw new Error(`saveModel: nothing was saved to ${dir}`);
  return saved;
}

/**
 * Load a Layers model: an `http(s)://` URL goes through tfjs's own HTTP loader (the real path
 * for published models, e.g. a converted MobileNet or VGG16); a local folder, model.json path
 * or `file://` URL goes through {@link fileIO}. Float16 and 8-bit weights come back as float32.
 * Errors name the source and the problem. `timeoutMs` bounds each HTTP request (so an offline
 * machine fails fast).
 */
export async function loadModel(source: string, options: tf.io.LoadOptions & { timeoutMs?: number } = {}): Promise<tf.LayersModel> {
  const { timeoutMs, ...load } = options;
  if (/^https?:\/\//i.test(source)) {
    if (timeoutMs !== undefined && !load.fetchFunc) {
      load.fetchFunc = (input: RequestInfo | URL, init?: RequestInit) => fetch(input, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    }
    try {
      return await tf.loadLayersModel(source, load);
    } catch (err) {
      throw new Error(`Cannot load the Layers model at ${source}: ${(err as Error).message}`, { cause: err });
    }
  }
  const file = modelJsonPath(source);
  try {
    return await tf.loadLayersModel(fileIO(file), load);
  } catch (err) {
    const msg = (err as Error).message;
    throw new Error(msg.startsWith(file) || msg.includes(path.dirname(file)) ? msg : `${file}: cannot build the model (${msg})`, { cause: err });
  }
}

/** The `userDefinedMetadata` of a saved model (without loading its weights); {} when none. */
export function readModelMetadata(location: string): Record<string, unknown> {
  const json = readJson(modelJsonPath(location), 'model file');
  return (json.userDefinedMetadata as Record<string, unknown> | undefined) ?? {};
}

// ---------------------------------------------------------------------------------------------
// Weights only
// ---------------------------------------------------------------------------------------------

/**
 * Save named tensors to `dir` as `weights.json` (a tfjs weights manifest) plus one shard, stored
 * as float32, float16 or 8-bit, atomically like {@link saveModel}.
 */
export function saveWeights(dir: string, tensors: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[], storage: WeightStorage = 'float32'): SavedWeights {
  const enc = encodeWeights(tensors, storage);
  return writeShardAndJson(path.join(dir, 'weights.json'), enc.data, (shard) => ({ format: 'gpulab-weights', storage, weightsManifest: [{ paths: [shard], weights: enc.specs }] }), storage);
}

/** Load tensors saved by {@link saveWeights} (decoded to float32 by tfjs's own decoder). */
export function loadWeights(dir: string): tf.NamedTensorMap {
  const jsonFile = path.join(dir, 'weights.json');
  const { specs, data } = readShards(jsonFile, readJson(jsonFile, 'weights manifest').weightsManifest);
  return tf.io.decodeWeights(data, specs);
}
