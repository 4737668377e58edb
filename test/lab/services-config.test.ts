import assert from 'node:assert/strict';
import { test } from 'node:test';
import { certificateFiles, opensslArgv } from '../../src/lab/certificates';
import { dnsmasqArgv } from '../../src/lab/dnsmasq';
import { nginxArgv, nginxConfig, nginxPaths, siteBody } from '../../src/lab/nginx';
import { labPlan } from '../../src/lab/plan';
import { CLI_MAIN, applianceArgv, gatewayArgv, validateApplianceCommand } from '../../src/lab/programs';
import { GatehouseError } from '../../src/errors';

test('nginx config: every path inside the state dir, daemon off, one server per name plus a default', () => {
  const paths = nginxPaths('/run/gatehouse/lab/x');
  const sites = ['default', 'www.example.com', 'api.example.com'].map((n) => certificateFiles('/run/gatehouse/lab/x/tls', n));
  const conf = nginxConfig(paths, sites);
  assert.match(conf, /^daemon off;$/m);
  assert.match(conf, /^pid "\/run\/gatehouse\/lab\/x\/nginx\.pid";$/m);
  for (const line of conf.split('\n').filter((l) => /(_path|_log|pid|ssl_certificate\S*) /.test(l))) {
    assert.match(line, /"\/run\/gatehouse\/lab\/x\//, `path outside the state dir: ${line}`);
  }
  assert.equal(conf.match(/server \{/g)?.length, 3);
  assert.equal(conf.match(/listen \[::\]:443 ssl default_server;/g)?.length, 1);
  assert.match(conf, /server_name www\.example\.com;/);
  assert.match(conf, /ssl_certificate "\/run\/gatehouse\/lab\/x\/tls\/api\.example\.com\.crt";/);
  assert.ok(conf.includes('return 200 "gatehouse lab: api.example.com\\n";'));
  assert.equal(siteBody('www.example.com'), 'gatehouse lab: www.example.com\n');
  assert.deepEqual(nginxArgv(paths), [
    'nginx', '-p', '/run/gatehouse/lab/x', '-e', '/run/gatehouse/lab/x/nginx-error.log', '-c', '/run/gatehouse/lab/x/nginx.conf',
  ]);
});

test('dnsmasq listens on the internet host addresses only and reads no system file', () => {
  const argv = dnsmasqArgv('/run/gatehouse/lab/x');
  for (const flag of ['--no-daemon', '--no-resolv', '--no-hosts', '--bind-interfaces', '--conf-file=/dev/null']) {
    assert.ok(argv.includes(flag), flag);
  }
  assert.deepEqual(argv.filter((a) => a.startsWith('--listen-address=')), [
    '--listen-address=203.0.113.10',
    '--listen-address=2001:db8:200::10',
  ]);
  assert.deepEqual(argv.filter((a) => a.startsWith('--host-record=')), [
    '--host-record=www.example.com,203.0.113.10,2001:db8:200::10',
    '--host-record=api.example.com,203.0.113.10,2001:db8:200::10',
    '--host-record=blocked.example.net,203.0.113.10,2001:db8:200::10',
    '--host-record=api.allowed.test,203.0.113.10,2001:db8:200::10',
  ]);
  assert.ok(argv.includes('--pid-file=/run/gatehouse/lab/x/dnsmasq.pid'));
});

test('openssl makes a self-signed certificate per name, with the name as CN and SAN', () => {
  const argv = opensslArgv(certificateFiles('/d', 'api.example.com'));
  assert.deepEqual(argv.slice(0, 3), ['openssl', 'req', '-x509']);
  assert.ok(argv.includes('/CN=api.example.com'));
  assert.ok(argv.includes('subjectAltName=DNS:api.example.com'));
  assert.equal(argv[argv.indexOf('-keyout') + 1], '/d/api.example.com.key');
  assert.equal(argv[argv.indexOf('-out') + 1], '/d/api.example.com.crt');
});

test('gateway argv is exactly the emu gateway command line, with the lab ids and stats file', () => {
  const plan = labPlan('lab');
  assert.deepEqual(gatewayArgv(plan), [
    process.execPath, CLI_MAIN, 'emu', 'gateway',
    '--tun', 'gwlb0', '--bind', '192.0.2.1', '--target', '192.0.2.2',
    '--eni', plan.eni, '--attachment', plan.attachment,
    '--stats-file', '/run/gatehouse/lab/lab/gateway.json',
  ]);
  assert.match(CLI_MAIN, /\/dist\/src\/cli\/main\.js$/);
});

test('appliance argv: the reflector by default, the user command through /bin/sh -c otherwise', () => {
  assert.deepEqual(applianceArgv(undefined), [process.execPath, CLI_MAIN, 'emu', '--echo', '--bind', '192.0.2.2']);
  assert.deepEqual(applianceArgv('./gwlbtun -c hook.sh | tee x'), ['/bin/sh', '-c', './gwlbtun -c hook.sh | tee x']);
  for (const bad of ['', '   ', 'a\0b']) {
    assert.throws(
      () => validateApplianceCommand(bad, '--appliance'),
      (err: unknown) =>
        err instanceof GatehouseError &&
        err.code === 'ERR_INVALID_ARG' &&
        err.message === `Expected a non-empty command line for --appliance but received ${JSON.stringify(bad)}`,
    );
  }
});
