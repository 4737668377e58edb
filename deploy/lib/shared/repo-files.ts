/**
 * Files of the gatehouse repository that the stacks ship: the systemd units in
 * packaging/ (written verbatim by the instances' user data, so there is one
 * unit, not a copy that drifts) and example policies and routes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The repository root: the nearest folder above this file whose package.json
 * is gatehouse's. Walking up works from deploy/lib (ts) and deploy/dist/lib (js).
 */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && isGatehouseManifest(manifest)) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`Expected the gatehouse repository above ${__dirname} but received none`);
    dir = parent;
  }
}

function isGatehouseManifest(path: string): boolean {
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  return typeof parsed === 'object' && parsed !== null && (parsed as { name?: unknown }).name === 'gatehouse';
}

/** A file under packaging/ (e.g. "gatehouse-tunnel.service"), as text. */
export function packagingFile(name: string): string {
  return readFileSync(join(repoRoot(), 'packaging', name), 'utf8');
}

/** A file of the repository by its path from the root (e.g. "examples/proxy/egress-allowlist.yaml"). */
export function repoFile(relativePath: string): string {
  return readFileSync(join(repoRoot(), relativePath), 'utf8');
}
