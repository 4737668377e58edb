/**
 * Proxy policy files from disk, and the reloadable source around them
 * (inspect's PolicySource: a bad file on reload is refused and the running
 * policy stays).
 */
import { readPolicyText } from '../../inspect/policy/load';
import { PolicySource, type PolicyLoader } from '../../inspect/policy/source';
import { parseProxyPolicy } from './parse';
import type { ProxyPolicy } from './types';

/** Reads, parses and checks a proxy policy file; throws ERR_POLICY (file:line:col: reason). */
export async function loadProxyPolicy(path: string): Promise<ProxyPolicy> {
  return parseProxyPolicy(await readPolicyText(path), path);
}

/** A proxy policy imports no other files: only the policy itself is watched. */
export const PROXY_POLICY_LOADER: PolicyLoader<ProxyPolicy> = {
  load: loadProxyPolicy,
  dependencies: () => [],
};

export type ProxyPolicySource = PolicySource<ProxyPolicy>;

/** Loads the policy (throws ERR_POLICY when invalid) and keeps it reloadable: reload(), watch(onChange), close(). */
export function openProxyPolicySource(path: string): Promise<ProxyPolicySource> {
  return PolicySource.openWith(path, PROXY_POLICY_LOADER);
}
