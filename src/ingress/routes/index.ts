/** The ingress routing table: parse, load (reloadable), resolve. */
export { DEFAULT_TIMEOUT_MS, parseRoutes } from './parse';
export { ROUTES_LOADER, loadRoutes, openRoutesSource, type RoutesSource } from './load';
export { normaliseRequestHost, resolveRoute } from './resolve';
export { applyRewrite, firstDotToService, swapSuffix, type RewriteResult } from './rewrite';
export { normaliseRequestPath, prefixMatches } from './path';
export * from './types';
