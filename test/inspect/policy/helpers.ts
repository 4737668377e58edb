/**
 * Shared by the policy tests: policies from inline text (domain lists from
 * a table, no files), flows with defaults, and the ERR_POLICY message check.
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { GatehouseError } from '../../../src/errors';
import { evaluate, parsePolicy, type FlowFacts, type Policy } from '../../../src/inspect/policy';

/** The file name inline policies carry in their errors. */
export const FILE = 'policy.yaml';

/** `lists` maps domain_list paths (relative to the policy) to their text. */
export function policyFrom(text: string, lists: Record<string, string> = {}): Policy {
  return parsePolicy(text, FILE, (absolute) => {
    for (const [path, body] of Object.entries(lists)) if (resolve(path) === absolute) return body;
    throw Object.assign(new Error(`no such list ${absolute}`), { code: 'ENOENT' });
  });
}

/** Asserts that the policy is refused with exactly this message (file:line:col: reason). */
export function assertPolicyError(text: string, message: string, lists: Record<string, string> = {}): void {
  assert.throws(
    () => policyFrom(text, lists),
    (err: unknown) => {
      assert.ok(err instanceof GatehouseError, `expected a GatehouseError, got ${String(err)}`);
      assert.equal(err.code, 'ERR_POLICY');
      assert.equal(err.message, message);
      return true;
    },
  );
}

/** A TCP flow 10.0.0.1:40000 -> 203.0.113.10:443 on endpoint 1, first packet, unless overridden. */
export function flow(over: Partial<FlowFacts> = {}): FlowFacts {
  return { endpoint: 1n, src: '10.0.0.1', dst: '203.0.113.10', protocol: 6, srcPort: 40000, dstPort: 443, midstream: false, ...over };
}

/** The final action and deciding rule id ("-" for none), or "pending". */
export function verdict(policy: Policy, facts: FlowFacts): string {
  const d = evaluate(policy, facts);
  return d.final ? `${d.action} ${d.rule?.id ?? '-'} ${d.reason}` : 'pending';
}
