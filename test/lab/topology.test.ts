/**
 * The lab's building blocks on their own, before the gateway and the
 * appliance exist: namespaces, links, addresses and routes; nginx and
 * dnsmasq on the internet host, reached from the internet host itself, from
 * gwlb and from app by plain routing through gwlb (no TUN policy routes yet);
 * and a complete cleanup by labDown.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { labDown } from '../../src/lab/down';
import { startInternetHost } from '../../src/lab/internet-host';
import { interfaceAddresses } from '../../src/lab/netns';
import { siteBody } from '../../src/lab/nginx';
import { labPlan, type LabHost, type LabPlan } from '../../src/lab/plan';
import { tryCommand } from '../../src/lab/run';
import { startInNamespace, type StartedProcess } from '../../src/lab/supervisor';
import { createTopology, writeResolvConfs } from '../../src/lab/topology';
import { skipUnlessNetAdmin } from '../helpers/system';
import { assertLabGone, uniqueLabName } from './lab-helpers';

function inHost(plan: LabPlan, host: LabHost, argv: string[], timeoutMs = 10_000) {
  return tryCommand(['ip', 'netns', 'exec', plan.namespaces[host], ...argv], { timeoutMs });
}

async function stdoutOf(plan: LabPlan, host: LabHost, argv: string[]): Promise<string> {
  const r = await inHost(plan, host, argv);
  assert.equal(r.code, 0, `${host}: ${argv.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Builds what lab up builds before the appliance and gateway, removed by labDown after the test. */
async function buildWithoutGateway(t: TestContext, twoArm: boolean): Promise<{ plan: LabPlan; started: StartedProcess[] }> {
  const plan = labPlan(uniqueLabName(), { twoArm });
  const started: StartedProcess[] = [];
  t.after(async () => {
    await labDown(plan.name);
    assertLabGone(plan.name, started.map((p) => p.record.pid));
  });
  mkdirSync(plan.stateDir, { recursive: true });
  await createTopology(plan, () => undefined);
  writeResolvConfs(plan, () => undefined);
  await startInternetHost(
    plan,
    (role, host, argv) => {
      const proc = startInNamespace(role, plan.namespaces[host], argv, join(plan.stateDir, `${role}.log`));
      started.push(proc);
      return proc;
    },
    () => undefined,
  );
  return { plan, started };
}

test('topology: addresses, routes and sysctls as planned', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const { plan } = await buildWithoutGateway(t, false);
  const app = await interfaceAddresses(plan.namespaces.app);
  assert.deepEqual(app, [{ ifname: 'veth-gwlb', up: true, addresses: ['198.51.100.10/24', '2001:db8:100::10/64'] }]);
  const gwlb = await interfaceAddresses(plan.namespaces.gwlb);
  assert.deepEqual(
    gwlb.map((i) => `${i.ifname} ${i.addresses.join(' ')}`).sort(),
    [
      'veth-app 198.51.100.1/24 2001:db8:100::1/64',
      'veth-appliance 192.0.2.1/24 192.0.2.3/24',
      'veth-internet 203.0.113.1/25 2001:db8:200::1/64',
    ],
  );
  assert.match(await stdoutOf(plan, 'gwlb', ['ip', 'link', 'show', 'dev', 'veth-appliance']), /mtu 9001/);
  assert.match(await stdoutOf(plan, 'appliance', ['ip', 'link', 'show', 'dev', 'veth-gwlb']), /mtu 9001/);
  assert.equal((await stdoutOf(plan, 'app', ['ip', '-4', 'route', 'show', 'default'])).trim(), 'default via 198.51.100.1 dev veth-gwlb');
  assert.match(await stdoutOf(plan, 'app', ['ip', '-6', 'route', 'show', 'default']), /^default via 2001:db8:100::1 dev veth-gwlb/);
  assert.equal((await stdoutOf(plan, 'appliance', ['ip', '-4', 'route', 'show', 'default'])).trim(), 'default via 192.0.2.1 dev veth-gwlb');
  const sysctl = await stdoutOf(plan, 'gwlb', [
    'sysctl', '-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding', 'net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.veth-app.rp_filter',
  ]);
  assert.deepEqual(sysctl.trim().split('\n'), ['1', '1', '0', '0']);
  // The GENEVE link works: gwlb's gateway and load-generator addresses both reach the appliance.
  await stdoutOf(plan, 'gwlb', ['ping', '-c', '1', '-W', '2', '-I', '192.0.2.3', '192.0.2.2']);
  await stdoutOf(plan, 'appliance', ['ping', '-c', '1', '-W', '2', '-s', '8000', '-M', 'do', '192.0.2.1']);
});

test('internet host: nginx by name and SNI, on v4 and v6, from internet, gwlb and app; DNS from app', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const { plan } = await buildWithoutGateway(t, false);
  const curl = ['curl', '-sS', '--max-time', '5'];

  // From the internet host itself.
  assert.equal(await stdoutOf(plan, 'internet', [...curl, 'http://203.0.113.10/']), siteBody('default'));
  assert.equal(
    await stdoutOf(plan, 'internet', [...curl, '-H', 'Host: api.example.com', 'http://203.0.113.10/']),
    siteBody('api.example.com'),
  );
  // From gwlb, directly attached, v4 and v6, HTTPS picks the certificate by SNI.
  assert.equal(await stdoutOf(plan, 'gwlb', [...curl, '-6', 'http://[2001:db8:200::10]/']), siteBody('default'));
  const tls = await inHost(plan, 'gwlb', [
    ...curl, '-v', '-k', '--resolve', 'blocked.example.net:443:203.0.113.10', 'https://blocked.example.net/',
  ]);
  assert.equal(tls.code, 0, tls.stderr);
  assert.equal(tls.stdout, siteBody('blocked.example.net'));
  assert.match(tls.stderr, /subject: CN=blocked\.example\.net/);

  // From app, routed by gwlb's main table (the TUN policy routes are not there yet), names via the lab's DNS.
  const a = await stdoutOf(plan, 'app', ['dig', '+short', '+time=2', '+tries=2', 'www.example.com', 'A']);
  assert.equal(a.trim(), '203.0.113.10');
  const aaaa = await stdoutOf(plan, 'app', ['dig', '+short', '+time=2', '+tries=2', 'api.example.com', 'AAAA']);
  assert.equal(aaaa.trim(), '2001:db8:200::10');
  const nx = await stdoutOf(plan, 'app', ['dig', '+time=2', '+tries=2', 'nothere.example.com', 'A']);
  assert.match(nx, /status: NXDOMAIN/);
  assert.equal(await stdoutOf(plan, 'app', [...curl, 'http://www.example.com/']), siteBody('www.example.com'));
  assert.equal(await stdoutOf(plan, 'app', [...curl, '-6', '-k', 'https://api.example.com/']), siteBody('api.example.com'));

  // dnsmasq answers on the lab addresses only, not on the internet host's loopback.
  const loopback = await inHost(plan, 'internet', ['dig', '+time=1', '+tries=1', '@127.0.0.1', 'www.example.com']);
  assert.notEqual(loopback.code, 0);
});

test('two-arm topology: the appliance reaches the internet host on its own link', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const { plan } = await buildWithoutGateway(t, true);
  assert.equal(
    (await stdoutOf(plan, 'appliance', ['ip', '-4', 'route', 'show', 'default'])).trim(),
    'default via 203.0.113.129 dev veth-internet',
  );
  // The internet host answers from its two-arm address, without crossing gwlb.
  assert.equal(
    await stdoutOf(plan, 'appliance', ['curl', '-sS', '--max-time', '5', 'http://203.0.113.129/']),
    siteBody('default'),
  );
  assert.equal(
    await stdoutOf(plan, 'appliance', ['curl', '-sS', '--max-time', '5', '-6', 'http://[2001:db8:300::1]/']),
    siteBody('default'),
  );
  const route = await stdoutOf(plan, 'appliance', ['ip', 'route', 'get', '203.0.113.10']);
  assert.match(route, /via 203\.0\.113\.129 dev veth-internet/);
});
