/**
 * Running one test on several backends: wasm always, and native TensorFlow and WebGPU (lavapipe
 * on a machine without a GPU) where they load. Under CI=true a backend that cannot load FAILS
 * the test (the CI image builds them all); elsewhere the test is skipped with the reason.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import * as device from '../../lib/backends';
import * as webgpu from '../../lib/backends/webgpu';
import { inCi } from '../../scripts/setup/test-deps';

const IN_CI = inCi();

/**
 * Make `name` the current backend, or skip the test (fail under CI) when it is not available
 * here. On webgpu, small ops really run on the GPU (`WEBGPU_CPU_FORWARD=false`).
 */
export async function onBackendOrSkip(t: { skip: (msg: string) => void }, name: device.BackendName): Promise<boolean> {
  const probe = (await device.listBackends()).find((p) => p.name === name);
  if (!probe?.available) {
    const why = probe?.reason ?? 'no provider registered';
    if (IN_CI) assert.fail(`CI=true but the ${name} backend is not available: ${why}`);
    t.skip(`no ${name} backend: ${why}`);
    return false;
  }
  await device.activateBackend(name);
  if (name === 'webgpu') tf.env().set('WEBGPU_CPU_FORWARD', false);
  return true;
}

/** Dispose the WebGPU device (if one was created) so that the test process can exit. */
export async function releaseBackends(): Promise<void> {
  await webgpu.shutdown();
}
