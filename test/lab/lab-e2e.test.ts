/**
 * The whole lab, end to end: app -> gwlb (emulated GWLB, GENEVE) ->
 * appliance (the reflector) -> back through gwlb -> internet, and back.
 * Judged by independent tools: curl and ping see answers, tshark decodes the
 * GENEVE packets on the appliance's wire (AWS options and the inner packets),
 * and the gateway's own counters show the packets crossed. Then lab down
 * leaves nothing behind, also when an assertion fails (t.after).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import {
  APPLIANCE_GENEVE_INTERFACE,
  LAB_ADDRESSES,
  labDown,
  labExecCapture,
  labStatus,
  labUp,
  siteBody,
  type LabHost,
  type LabInfo,
} from '../../src/lab';
import { runLabCommand } from '../../src/cli/lab-command';
import { CLI_MAIN } from '../../src/lab/programs';
import { tryCommand } from '../../src/lab/run';
import { skipUnlessNetAdmin } from '../helpers/system';
import { assertLabGone, uniqueLabName } from './lab-helpers';

const A = LAB_ADDRESSES;

/** Starts tshark in the appliance namespace and resolves once it says it is capturing. */
async function startCapture(info: LabInfo, file: string): Promise<ChildProcess> {
  const tshark = spawn(
    'ip',
    ['netns', 'exec', info.namespaces.appliance, 'tshark', '-i', APPLIANCE_GENEVE_INTERFACE, '-f', 'udp port 6081', '-w', file],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tshark did not start capturing within 15 s: ${stderr}`)), 15_000);
    tshark.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.includes('Capturing on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    tshark.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tshark exited (${code}) before capturing: ${stderr}`));
    });
  });
  return tshark;
}

async function stopCapture(tshark: ChildProcess): Promise<void> {
  if (tshark.exitCode !== null || tshark.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => tshark.once('exit', () => resolve()));
  tshark.kill('SIGINT');
  const timer = setTimeout(() => tshark.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

interface DecodedPacket {
  ipSrc: string[];
  ipDst: string[];
  ipv6Src: string[];
  ipv6Dst: string[];
  optionClasses: string[];
  optionTypes: string[];
  optionData: string[];
}

async function decode(file: string): Promise<DecodedPacket[]> {
  const fields = ['ip.src', 'ip.dst', 'ipv6.src', 'ipv6.dst', 'geneve.option.class', 'geneve.option.type', 'geneve.option.unknown.data'];
  const r = await tryCommand(
    ['tshark', '-r', file, '-T', 'fields', '-E', 'separator=|', '-E', 'occurrence=a', ...fields.flatMap((f) => ['-e', f])],
    { timeoutMs: 20_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  const list = (s: string | undefined): string[] => (s === undefined || s === '' ? [] : s.split(','));
  return r.stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [ipSrc, ipDst, ipv6Src, ipv6Dst, classes, types, data] = line.split('|');
      return {
        ipSrc: list(ipSrc),
        ipDst: list(ipDst),
        ipv6Src: list(ipv6Src),
        ipv6Dst: list(ipv6Dst),
        optionClasses: list(classes),
        optionTypes: list(types),
        optionData: list(data),
      };
    });
}

test('lab e2e: app reaches internet through the GWLB and the appliance; tshark and the gateway agree', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const name = uniqueLabName();
  const captureDir = mkdtempSync(join(tmpdir(), 'gatehouse-lab-e2e-'));
  const pcap = join(captureDir, 'geneve.pcap');
  // Filled in as the test goes, for the cleanup to find whatever was started.
  const started: { tshark?: ChildProcess; info?: LabInfo } = {};
  t.after(async () => {
    if (started.tshark !== undefined) await stopCapture(started.tshark);
    await labDown(name);
    rmSync(captureDir, { recursive: true, force: true });
    assertLabGone(name, started.info === undefined ? [] : Object.values(started.info.pids));
  });

  const info = await labUp({ name });
  started.info = info;
  const run = async (host: LabHost, argv: string[]): Promise<string> => {
    const r = await labExecCapture(name, host, argv, 15_000);
    assert.equal(r.code, 0, `${host}: ${argv.join(' ')} -> exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  };

  const tshark = await startCapture(info, pcap);
  started.tshark = tshark;

  const curl = ['curl', '-sS', '--max-time', '5'];
  assert.equal(await run('app', [...curl, 'http://www.example.com/']), siteBody('www.example.com'));
  assert.equal(await run('app', [...curl, '-k', 'https://www.example.com/']), siteBody('www.example.com'));
  assert.equal(await run('app', [...curl, `http://${A.internet.v4}/`]), siteBody('default'));
  assert.equal(await run('app', [...curl, '-6', `http://[${A.internet.v6}]/`]), siteBody('default'));
  assert.match(await run('app', ['ping', '-c', '2', '-W', '2', A.internet.v4]), / 2 received/);
  assert.match(await run('app', ['ping', '-6', '-c', '2', '-W', '2', A.internet.v6]), / 2 received/);

  // The gateway writes its stats every second: wait (bounded) for a snapshot that includes our traffic.
  const enough = (c: Record<string, number> | undefined): boolean =>
    c !== undefined && ['encap_tx_packets', 'udp_rx_packets', 'tun_tx_packets'].every((k) => (c[k] ?? 0) >= 20);
  let status = await labStatus(name);
  for (const deadline = Date.now() + 20_000; !enough(status.gateway?.counters) && Date.now() < deadline; ) {
    await sleep(100);
    status = await labStatus(name);
  }

  await stopCapture(tshark);
  const packets = await decode(pcap);

  // Every GENEVE packet on the appliance's wire carries the three AWS options, with this lab's ids.
  assert.ok(packets.length >= 20, `only ${packets.length} GENEVE packets captured`);
  for (const p of packets) {
    assert.deepEqual(p.optionClasses, ['0x0108', '0x0108', '0x0108']);
    assert.deepEqual(p.optionTypes, ['0x01', '0x02', '0x03']);
    assert.equal(p.optionData[0], info.eni.slice(1), 'option 1 is the endpoint ENI id');
    assert.equal(p.optionData[1], info.attachment.slice(1), 'option 2 is the attachment id');
    const outer = `${p.ipSrc[0]} > ${p.ipDst[0]}`;
    assert.ok(
      outer === `${A.gwlb.applianceSide.v4} > ${A.appliance.v4}` || outer === `${A.appliance.v4} > ${A.gwlb.applianceSide.v4}`,
      `outer ${outer}`,
    );
  }
  // The inner packets are the app's and the internet host's, both ways, IPv4 and IPv6.
  const inner = new Set(
    packets.map((p) => (p.ipSrc.length > 1 ? `${p.ipSrc[1]} > ${p.ipDst[1]}` : `${p.ipv6Src[0]} > ${p.ipv6Dst[0]}`)),
  );
  for (const pair of [
    `${A.app.v4} > ${A.internet.v4}`,
    `${A.internet.v4} > ${A.app.v4}`,
    `${A.app.v6} > ${A.internet.v6}`,
    `${A.internet.v6} > ${A.app.v6}`,
  ]) {
    assert.ok(inner.has(pair), `no inner packet ${pair} among ${[...inner].join(', ')}`);
  }

  // The gateway counted them too: read from its TUN, sent as GENEVE, got back, delivered.
  assert.ok(status.gateway !== null, 'gateway.json was never written');
  const c = status.gateway.counters;
  assert.ok(enough(c), `gateway counters too low: ${JSON.stringify(c)}`);
  assert.equal(status.gateway.eni, info.eni);
  assert.ok(
    status.gateway.flows.some((f) => f.src === A.app.v4 && f.dst === A.internet.v4 && f.protocol === 6 && f.dstPort === 80),
    `no TCP flow app -> internet:80 in ${JSON.stringify(status.gateway.flows)}`,
  );
  assert.ok(status.complete);
  assert.deepEqual(
    status.processes.map((p) => `${p.role} ${p.alive}`),
    ['nginx true', 'dnsmasq true', 'appliance true', 'gateway true'],
  );

  await labDown(name);
  assertLabGone(name, Object.values(info.pids));
});

test('lab e2e: --two-arm with a user --appliance command line (run by /bin/sh -c); lab exec passes exit codes', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const name = uniqueLabName();
  const pids: number[] = [];
  t.after(async () => {
    await labDown(name);
    assertLabGone(name, pids);
  });
  // The user's own appliance: here the reflector again, but started from a shell command line.
  const appliance = `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI_MAIN)} emu --echo --bind ${A.appliance.v4}`;
  const info = await labUp({ name, twoArm: true, appliance });
  pids.push(...Object.values(info.pids));
  assert.equal(info.twoArm, true);

  const r = await labExecCapture(name, 'app', ['curl', '-sS', '--max-time', '5', 'http://api.example.com/'], 15_000);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, siteBody('api.example.com'));
  // The appliance's own leg: its default route leads to the internet host directly.
  const route = await labExecCapture(name, 'appliance', ['ip', 'route', 'get', A.internet.v4], 5000);
  assert.match(route.stdout, /via 203\.0\.113\.129 dev veth-internet/);

  const status = await labStatus(name);
  assert.equal(status.twoArm, true);
  const applianceProc = status.processes.find((p) => p.role === 'appliance');
  assert.deepEqual(applianceProc?.command, ['/bin/sh', '-c', appliance]);
  assert.equal(applianceProc?.alive, true);

  assert.equal(await runLabCommand(['exec', '--name', name, 'app', '--', 'sh', '-c', 'exit 7']), 7);
  assert.equal(await runLabCommand(['exec', '--name', name, 'internet', '--', 'true']), 0);
});
