import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GatehouseError } from '../../src/errors';
import {
  LAB_ADDRESSES,
  LAB_HOSTS,
  LAB_NAMESPACE_PATTERN,
  labPlan,
  namespaceName,
  stableLabId,
  stateDirFor,
  validateLabName,
} from '../../src/lab/plan';

/** True for addresses inside the documentation ranges the lab may use. */
function isDocumentationAddress(address: string): boolean {
  return (
    /^192\.0\.2\.\d+$/.test(address) ||
    /^198\.51\.100\.\d+$/.test(address) ||
    /^203\.0\.113\.\d+$/.test(address) ||
    /^2001:db8:/i.test(address)
  );
}

test('lab names: [a-z0-9]{1,8} accepted, anything else rejected with one message shape', () => {
  for (const good of ['lab', 'a', '12345678', 'ci0']) assert.equal(validateLabName(good), good);
  const cases: [unknown, string][] = [
    ['', '""'],
    ['123456789', '"123456789"'],
    ['Lab', '"Lab"'],
    ['a-b', '"a-b"'],
    ['a b', '"a b"'],
    ['../x', '"../x"'],
    [7, '7'],
    [undefined, 'undefined'],
  ];
  for (const [bad, shown] of cases) {
    assert.throws(
      () => validateLabName(bad, '--name'),
      (err: unknown) =>
        err instanceof GatehouseError &&
        err.code === 'ERR_INVALID_ARG' &&
        err.message === `Expected a lab name of 1 to 8 characters from a-z and 0-9 for --name but received ${shown}`,
    );
  }
});

test('namespace names are gh-<name>-<host>, fit Linux limits and match the down --all pattern', () => {
  assert.equal(namespaceName('lab', 'app'), 'gh-lab-app');
  for (const host of LAB_HOSTS) {
    const ns = namespaceName('abcdefgh', host);
    const match = LAB_NAMESPACE_PATTERN.exec(ns);
    assert.equal(match?.[1], 'abcdefgh');
    assert.equal(match?.[2], host);
  }
  assert.equal(LAB_NAMESPACE_PATTERN.test('gh-lab-other'), false);
  assert.equal(LAB_NAMESPACE_PATTERN.test('ghprobe1'), false);
  assert.equal(stateDirFor('lab'), '/run/gatehouse/lab/lab');
});

test('ENI and attachment ids: 17 lowercase hex digits, stable per lab, different per lab and purpose', () => {
  const eni = stableLabId('lab', 'eni');
  assert.match(eni, /^0[0-9a-f]{16}$/);
  assert.equal(stableLabId('lab', 'eni'), eni);
  assert.notEqual(stableLabId('lab2', 'eni'), eni);
  assert.notEqual(stableLabId('lab', 'attachment'), eni);
  const plan = labPlan('lab');
  assert.equal(plan.eni, eni);
  assert.equal(plan.attachment, stableLabId('lab', 'attachment'));
});

test('the address plan matches the documented topology', () => {
  assert.equal(LAB_ADDRESSES.internet.v4, '203.0.113.10');
  assert.equal(LAB_ADDRESSES.app.v4, '198.51.100.10');
  assert.equal(LAB_ADDRESSES.gwlb.applianceSide.v4, '192.0.2.1');
  assert.equal(LAB_ADDRESSES.gwlb.loadGenerator.v4, '192.0.2.3');
  assert.equal(LAB_ADDRESSES.appliance.v4, '192.0.2.2');

  const plan = labPlan('t1');
  const byEnd = new Map(plan.links.flatMap((l) => [l.a, l.b]).map((end) => [`${end.host}/${end.ifname}`, end.addresses]));
  assert.deepEqual(byEnd.get('app/veth-gwlb'), ['198.51.100.10/24', '2001:db8:100::10/64']);
  assert.deepEqual(byEnd.get('gwlb/veth-app'), ['198.51.100.1/24', '2001:db8:100::1/64']);
  assert.deepEqual(byEnd.get('gwlb/veth-internet'), ['203.0.113.1/25', '2001:db8:200::1/64']);
  assert.deepEqual(byEnd.get('internet/veth-gwlb'), ['203.0.113.10/25', '2001:db8:200::10/64']);
  assert.deepEqual(byEnd.get('gwlb/veth-appliance'), ['192.0.2.1/24', '192.0.2.3/24']);
  assert.deepEqual(byEnd.get('appliance/veth-gwlb'), ['192.0.2.2/24']);
  assert.equal(byEnd.has('appliance/veth-internet'), false);
  assert.equal(plan.links.find((l) => l.b.host === 'appliance')?.mtu, 9001);
  assert.deepEqual(
    plan.defaultRoutes.map((r) => `${r.host} -${r.family} ${r.via}`),
    ['app -4 198.51.100.1', 'app -6 2001:db8:100::1', 'internet -4 203.0.113.1', 'internet -6 2001:db8:200::1', 'appliance -4 192.0.2.1'],
  );
  for (const link of plan.links) {
    for (const cidr of [...link.a.addresses, ...link.b.addresses]) {
      assert.ok(isDocumentationAddress(cidr.split('/')[0] ?? ''), `${cidr} is not a documentation address`);
    }
  }
  assert.ok(plan.sysctls.gwlb.includes('net.ipv4.ip_forward=1'));
  assert.ok(plan.sysctls.gwlb.includes('net.ipv6.conf.all.forwarding=1'));
  assert.ok(plan.sysctls.gwlb.includes('net.ipv4.conf.all.rp_filter=0'));
});

test('two-arm: the appliance gets its own internet link and its default routes go that way', () => {
  const plan = labPlan('t2', { twoArm: true });
  const link = plan.links.find((l) => l.a.host === 'appliance' && l.b.host === 'internet');
  assert.deepEqual(link?.a.addresses, ['203.0.113.130/25', '2001:db8:300::2/64']);
  assert.deepEqual(link?.b.addresses, ['203.0.113.129/25', '2001:db8:300::1/64']);
  const applianceRoutes = plan.defaultRoutes.filter((r) => r.host === 'appliance').map((r) => `-${r.family} ${r.via}`);
  assert.deepEqual(applianceRoutes, ['-4 203.0.113.129', '-6 2001:db8:300::1']);
  // The GENEVE link stays where it was.
  const geneve = plan.links.find((l) => l.b.host === 'appliance' && l.a.host === 'gwlb');
  assert.deepEqual(geneve?.b.addresses, ['192.0.2.2/24']);
});
