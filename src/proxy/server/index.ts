/**
 * `gatehouse proxy`'s server: an HTTP/1.1 forward proxy (absolute-form
 * requests and CONNECT tunnels with a domain-fronting check) whose policy,
 * resolver and PROXY protocol reader are injected by the command.
 */
export { startProxyServer, type ProxyServer, type ProxyServerStats } from './server';
export {
  DEFAULT_MAX_HEADER_BYTES,
  type ListenAddress,
  type ProxyDecision,
  type ProxyServerOptions,
  type ResolveDestination,
} from './options';
