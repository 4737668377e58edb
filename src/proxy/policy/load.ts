/**
 * Proxy policy files from disk, and the reloadable source around them
 * (inspect's PolicySource: a bad file on reload is refused and the running
 * policy stays). A proxy policy imports no other files.
 */
import { PolicySource, singleFileLoader, type PolicyLoader } from '../../inspect/policy/source';
import { parseProxyPolicy } from './parse';
import type { ProxyPolicy } from './types';

export const PROXY_POLICY_LOADER: PolicyLoader<ProxyPolicy> = singleFileLoader(parseProxyPolicy);

/** Reads, parses and checks a proxy policy file; throws ERR_POLICY (file:line:col: reason). */
export const loadProxyPolicy = (path: string): Promise<ProxyPolicy> => PROXY_POLICY_LOADER.load(path);

export type ProxyPolicySource = PolicySource<ProxyPolicy>;

/** Loads it (throws ERR_POLICY when invalid) and keeps it reloadable: reload(), watch(onChange), close(). */
export function openProxyPolicySource(path: string): Promise<ProxyPolicySource> {
  return PolicySource.openWith(path, PROXY_POLICY_LOADER);
}
