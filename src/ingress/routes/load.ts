/**
 * Routes files from disk, and the reloadable source around them (inspect's
 * PolicySource: a bad file on reload is refused and the running table stays).
 * A routes file imports nothing; CA bundles are read when connecting.
 */
import { PolicySource, singleFileLoader, type PolicyLoader } from '../../inspect/policy/source';
import { parseRoutes } from './parse';
import type { RouteTable } from './types';

export const ROUTES_LOADER: PolicyLoader<RouteTable> = singleFileLoader(parseRoutes);

/** Reads, parses and checks a routes file; throws ERR_POLICY (file:line:col: reason). */
export const loadRoutes = (path: string): Promise<RouteTable> => ROUTES_LOADER.load(path);

export type RoutesSource = PolicySource<RouteTable>;

/** Loads it (throws ERR_POLICY when invalid) and keeps it reloadable: reload(), watch(onChange), close(). */
export function openRoutesSource(path: string): Promise<RoutesSource> {
  return PolicySource.openWith(path, ROUTES_LOADER);
}
