/**
 * Shared by the proxy policy tests: policies from inline text, requests
 * with defaults, the ERR_POLICY message check, and a one-word verdict.
 */
import assert from 'node:assert/strict';
import { GatehouseError } from '../../../src/errors';
import { evaluateProxyPolicy, parseProxyPolicy, type ProxyPolicy } from '../../../src/proxy/policy';
import type { ProxyRequestFacts } from '../../../src/proxy/types';

/** The file name inline policies carry in their errors. */
export const FILE = 'proxy.yaml';

export const ENDPOINT_A = 'vpce-0123456789abcdef0';
export const ENDPOINT_B = 'vpce-0fedcba9876543210';
export const ENDPOINT_C = 'vpce-0aaaaaaaaaaaaaaaa';

export function policyFrom(text: string): ProxyPolicy {
  return parseProxyPolicy(text, FILE);
}

/** Asserts that the policy is refused with exactly this message (file:line:col: reason). */
export function assertPolicyError(text: string, message: string): void {
  assert.throws(
    () => policyFrom(text),
    (err: unknown) => {
      assert.ok(err instanceof GatehouseError, `expected a GatehouseError, got ${String(err)}`);
      assert.equal(err.code, 'ERR_POLICY');
      assert.equal(err.message, message);
      return true;
    },
  );
}

/** A CONNECT from 192.0.2.10 through ENDPOINT_A to www.example.com:443, unless overridden. */
export function request(over: Partial<ProxyRequestFacts> = {}): ProxyRequestFacts {
  return { client: '192.0.2.10', endpoint: ENDPOINT_A, host: 'www.example.com', port: 443, method: 'CONNECT', ...over };
}

/** "allow web rule", "deny - default", "deny - port". */
export function verdict(policy: ProxyPolicy, facts: ProxyRequestFacts): string {
  const d = evaluateProxyPolicy(policy, facts);
  return `${d.action} ${d.rule?.id ?? '-'} ${d.reason}`;
}
