import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadProxyPolicy } from '../../../src/proxy/policy';
import { request, verdict } from './helpers';

// dist/test/proxy/policy -> the repository root.
const EXAMPLES = join(__dirname, '..', '..', '..', '..', 'examples', 'proxy');

test('examples/proxy/egress-allowlist.yaml loads and decides as its comments say', async () => {
  const policy = await loadProxyPolicy(join(EXAMPLES, 'egress-allowlist.yaml'));
  assert.equal(verdict(policy, request({ host: 'files.pythonhosted.org' })), 'allow package-mirrors rule');
  assert.equal(verdict(policy, request({ host: 'sts.us-east-1.amazonaws.com' })), 'allow aws-apis rule');
  assert.equal(verdict(policy, request({ host: 'www.example.com', method: 'POST', port: 443 })), 'deny no-uploads rule');
  assert.equal(verdict(policy, request({ host: 'www.example.org', method: 'GET', port: 80 })), 'allow docs rule');
  assert.equal(verdict(policy, request({ host: 'www.example.org', port: 8443 })), 'deny - port');
  assert.equal(verdict(policy, request({ host: 'elsewhere.test' })), 'deny - default');
});

test('examples/proxy/per-endpoint.yaml: each endpoint gets its rule set', async () => {
  const policy = await loadProxyPolicy(join(EXAMPLES, 'per-endpoint.yaml'));
  const teamA = 'vpce-0123456789abcdef0';
  const teamB = 'vpce-0fedcba9876543210';
  assert.equal(verdict(policy, request({ endpoint: teamA, host: 'api.example.net' })), 'allow team-a-saas rule');
  assert.equal(verdict(policy, request({ endpoint: teamA, host: 'deb.debian.org' })), 'deny team-a-rest rule');
  assert.equal(verdict(policy, request({ endpoint: teamB, host: 'partner.example.org', port: 8443 })), 'allow team-b-partner rule');
  assert.equal(verdict(policy, request({ endpoint: teamB, host: 'wiki.internal.example', client: '10.20.1.1', method: 'GET', port: 80 })), 'allow team-b-internal rule');
  assert.equal(verdict(policy, request({ endpoint: teamB, host: 'wiki.internal.example', client: '10.21.1.1', method: 'GET', port: 80 })), 'deny team-b-rest rule');
  assert.equal(verdict(policy, request({ endpoint: null, host: 'deb.debian.org' })), 'allow os-updates rule');
  assert.equal(verdict(policy, request({ endpoint: null, host: 'api.example.net' })), 'deny - default');
});
