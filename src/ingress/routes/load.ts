/**
 * Routes files from disk, and the reloadable source around them (inspect's
 * PolicySource: a bad file on reload is refused and the running table stays).
 */
import { readPolicyText } from '../../inspect/policy/load';
import { PolicySource, type PolicyLoader } from '../../inspect/policy/source';
import { parseRoutes } from './parse';
import type { RouteTable } from './types';

/** Reads, parses and checks a routes file; throws ERR_POLICY (file:line:col: reason). */
export async function loadRoutes(path: string): Promise<RouteTable> {
  return parseRoutes(await readPolicyText(path), path);
}

/** A routes file imports nothing; CA bundles are read by the proxy when it connects, so only the file is watched. */
export const ROUTES_LOADER: PolicyLoader<RouteTable> = {
  load: loadRoutes,
  dependencies: () => [],
};

export type RoutesSource = PolicySource<RouteTable>;

/** Loads the routes (throws ERR_POLICY when invalid) and keeps them reloadable: reload(), watch(onChange), close(). */
export function openRoutesSource(path: string): Promise<RoutesSource> {
  return PolicySource.openWith(path, ROUTES_LOADER);
}
