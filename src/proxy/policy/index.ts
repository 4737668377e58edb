/**
 * The policy of `gatehouse proxy`: ordered rules from a YAML file (the
 * inspect policy's conventions and error shape), first match wins, deny by
 * default. evaluateProxyPolicy() is pure; the source owns the file and its
 * reloads; explain* are the words of `gatehouse proxy check`.
 */
export { evaluateProxyPolicy } from './evaluate';
export { describeProxyMatch, describeProxyRule, explainConnectPorts, explainProxyDecision, explainProxyPolicy, ssrfNotes } from './explain';
export { loadProxyPolicy, openProxyPolicySource, PROXY_POLICY_LOADER, type ProxyPolicySource } from './load';
export { DEFAULT_CONNECT_PORTS, parseProxyPolicy, PROXY_SCHEMA_VERSION } from './parse';
export type { ReloadResult } from '../../inspect/policy/source';
export * from './types';
