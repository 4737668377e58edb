/**
 * TUN devices made through the addon, checked with iproute2 (`ip -d -j link
 * show`), not with our own code. They are created in this (root) namespace
 * under a unique name; a non-persistent TUN disappears with its last fd, so
 * even a crashed run leaves nothing behind, and each test closes in finally.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fstatSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createTun, setInterfaceUp, setTunMtu, type Tun } from '../../src/native/tun';
import { GatehouseError } from '../../src/errors';
import { sh, skipUnlessNetAdmin, uniqueSuffix } from '../helpers/system';

interface IpLink {
  ifname: string;
  flags: string[];
  mtu: number;
  linkinfo?: { info_kind: string; info_data?: { type: string; pi: boolean; multi_queue: boolean; numqueues: number; persist: boolean } };
}

function showLink(name: string): IpLink {
  const links = JSON.parse(sh('ip', ['-d', '-j', 'link', 'show', 'dev', name])) as IpLink[];
  assert.equal(links.length, 1);
  return links[0];
}

function linkExists(name: string): boolean {
  return spawnSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' }).status === 0;
}

function fdOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

test('createTun: a multi-queue TUN without packet info, the MTU asked, up; gone after close', (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const name = `ghtun${uniqueSuffix()}`;
  let tun: Tun | undefined;
  try {
    tun = createTun({ name, queues: 2, mtu: 1420 });
    assert.equal(tun.name, name);
    assert.equal(tun.fds.length, 2);
    const link = showLink(name);
    assert.equal(link.linkinfo?.info_kind, 'tun');
    assert.equal(link.linkinfo?.info_data?.type, 'tun');
    assert.equal(link.linkinfo?.info_data?.pi, false);
    assert.equal(link.linkinfo?.info_data?.multi_queue, true);
    assert.equal(link.linkinfo?.info_data?.numqueues, 2);
    assert.equal(link.linkinfo?.info_data?.persist, false);
    assert.equal(link.mtu, 1420);
    assert.ok(link.flags.includes('UP'), `flags ${link.flags.join(',')}`);
    // The plain-text form the brief names shows the same facts.
    const text = sh('ip', ['-d', 'link', 'show', 'dev', name]);
    assert.match(text, /tun type tun pi off .*multi_queue numqueues 2/);

    const fds = [...tun.fds];
    tun.close();
    assert.equal(linkExists(name), false, 'the TUN is gone with its last queue');
    assert.deepEqual(tun.fds, []);
    for (const fd of fds) assert.equal(fdOpen(fd), false, `fd ${fd} closed`);
    tun.close(); // idempotent
  } finally {
    tun?.close();
  }
});

test('TUN: attach more queues, change the MTU, bring it down and up', (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const name = `ghtun${uniqueSuffix()}`;
  const tuns: Tun[] = [];
  try {
    tuns.push(createTun({ name }));
    assert.equal(showLink(name).mtu, 1500, 'default MTU');
    tuns.push(createTun({ name, queues: 3, mtu: 9000 }));
    assert.equal(showLink(name).linkinfo?.info_data?.numqueues, 4);
    assert.equal(showLink(name).mtu, 9000);

    setTunMtu(name, 1280);
    assert.equal(showLink(name).mtu, 1280);
    tuns[0].setMtu(1300);
    assert.equal(showLink(name).mtu, 1300);
    setInterfaceUp(name, false);
    assert.equal(showLink(name).flags.includes('UP'), false);
    tuns[1].setUp(true);
    assert.equal(showLink(name).flags.includes('UP'), true);

    // Closing one handle's queues leaves the interface to the other's.
    tuns[1].close();
    assert.equal(showLink(name).linkinfo?.info_data?.numqueues, 1);
    tuns[0].close();
    assert.equal(linkExists(name), false);
  } finally {
    for (const tun of tuns) tun.close();
  }
});

test('TUN: kernel refusals become ERR_NATIVE_START naming the ioctl and errno', (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const missing = `ghnone${uniqueSuffix()}`;
  assert.throws(() => setTunMtu(missing, 1400), (err: unknown) => {
    assert.ok(err instanceof GatehouseError);
    assert.equal(err.code, 'ERR_NATIVE_START');
    assert.equal(err.message, `setting the MTU of ${missing}: ioctl(SIOCSIFMTU) on ${missing}: No such device (errno 19)`);
    return true;
  });
  assert.throws(() => setInterfaceUp(missing, true), /ioctl\(SIOCGIFFLAGS\) on ghnone\w+: No such device \(errno 19\)/);

  // A name taken by something that is not a TUN (a veth) cannot be attached.
  const suffix = uniqueSuffix();
  const dummy = `ghveth${suffix}`;
  try {
    sh('ip', ['link', 'add', dummy, 'type', 'veth', 'peer', 'name', `ghpeer${suffix}`]);
    assert.throws(() => createTun({ name: dummy }), (err: unknown) => {
      assert.ok(err instanceof GatehouseError);
      assert.equal(err.code, 'ERR_NATIVE_START');
      assert.match(err.message, /ioctl\(TUNSETIFF\) on ghveth\w+: .*\(errno \d+\)/);
      return true;
    });
    assert.equal(showLink(dummy).linkinfo?.info_kind, 'veth', 'the other link is untouched');
  } finally {
    spawnSync('ip', ['link', 'del', dummy], { stdio: 'ignore' });
  }
});

test('TUN: arguments are validated before anything reaches the kernel', () => {
  const cases: Array<[() => unknown, string]> = [
    [() => createTun({ name: 'a-name-that-is-too-long' }), `Expected interface name of 1 to 15 characters without '/', ':' or whitespace for name but received "a-name-that-is-too-long" of type string`],
    [() => createTun({ name: 'a/b' }), `Expected interface name of 1 to 15 characters without '/', ':' or whitespace for name but received "a/b" of type string`],
    [() => createTun({ name: 'a b' }), `Expected interface name of 1 to 15 characters without '/', ':' or whitespace for name but received "a b" of type string`],
    [() => createTun({ name: '' }), `Expected interface name of 1 to 15 characters without '/', ':' or whitespace for name but received "" of type string`],
    [() => createTun({ name: 'gw0', queues: 0 }), 'Expected integer between 1 and 256 for queues but received 0 of type number'],
    [() => createTun({ name: 'gw0', mtu: 67 }), 'Expected integer between 68 and 65535 for mtu but received 67 of type number'],
    [() => setTunMtu('gw0', 1500.5), 'Expected integer between 68 and 65535 for mtu but received 1500.5 of type number'],
  ];
  for (const [call, message] of cases) {
    assert.throws(call, (err: unknown) => {
      assert.ok(err instanceof GatehouseError);
      assert.equal(err.code, 'ERR_INVALID_ARG');
      assert.equal(err.message, message);
      return true;
    });
  }
});
