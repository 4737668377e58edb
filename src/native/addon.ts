import * as path from 'node:path';
import type { NativeAddon } from './binding';
import { GatehouseError } from '../errors';

let cached: NativeAddon | undefined;

/**
 * Loads the native packet core built by `npm ci` (node-gyp). Loaded on first
 * use, so commands that never touch packets (help, lab status) work even
 * where the addon could not be built.
 */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  // dist/src/native/addon.js -> <package>/build/Release/gatehouse.node
  const file = path.resolve(__dirname, '..', '..', '..', 'build', 'Release', 'gatehouse.node');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    cached = require(file) as NativeAddon;
  } catch (err) {
    throw new GatehouseError(
      'ERR_NATIVE_LOAD',
      `Expected the native packet core at ${file} (built by 'npm ci' / 'npm run build:native') but could not load it: ${(err as Error).message}`,
    );
  }
  return cached;
}
