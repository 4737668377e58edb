/**
 * `gatehouse ingress`'s server: a reverse proxy from public host names to
 * VPC Lattice services (or other upstreams), signing with SigV4 per route.
 */
export { startIngressServer, type IngressServer, type IngressServerStats } from './server';
export { INGRESS_ENGINES, INGRESS_SERVER_DEFAULTS, type IngressEngine, type IngressServerOptions, type ListenAddress, type TlsCredentials } from './options';
export { pathWithoutQuery, type IngressAccessEntry, type IngressAccessSink } from './access';
export { INGRESS_ERRORS, type IngressErrorCode } from './replies';
export { routeLabel } from './handle-request';
