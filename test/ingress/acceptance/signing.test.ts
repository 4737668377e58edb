/**
 * SigV4 through the running `gatehouse ingress`: the Authorization header an
 * upstream receives verifies under the independent node:crypto SigV4
 * implementation (reference-sigv4.ts), computed for the rewritten host; and
 * credentials from an ECS credentials endpoint emulated on loopback load,
 * refresh (the upstream sees the new key id) and, when they lapse, turn
 * /healthz to 503; credentials from an IMDSv2 emulator (session token
 * first) load and refresh the same way. No real AWS endpoint is ever
 * contacted (harness.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startImdsEmulator } from '../sigv4/imds-emulator';
import { referenceSigV4 } from '../sigv4/reference-sigv4';
import { RecordingUpstream, eventually, health, json, send, startIngress, type ClientResponse } from './harness';

const ACCESS_KEY = 'AKIDEXAMPLE';
const SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const SESSION_TOKEN = 'IQoJb3JpZ2luX2VjEXAMPLE+token/=';
const REGION = 'us-west-2';

function signedRoutes(port: number): string {
  return `routes:
  - host: '*.apps.example.test'
    upstream: { rewrite: first-dot-to-service, port: ${port} }
    tls: false
`;
}

function upstreamHeaders(res: ClientResponse): Record<string, string> {
  return json(res).headers as Record<string, string>;
}

/** What the reference computes for the request the upstream received, from its own headers. */
function expectedAuthorization(res: ClientResponse, secretKey: string): string {
  const seen = json(res);
  const h = seen.headers as Record<string, string>;
  const url = String(seen.url);
  const mark = url.indexOf('?');
  const signed: Record<string, string> = { host: h.host, 'x-amz-content-sha256': h['x-amz-content-sha256'], 'x-amz-date': h['x-amz-date'] };
  if (h['x-amz-security-token'] !== undefined) signed['x-amz-security-token'] = h['x-amz-security-token'];
  const accessKey = /Credential=([^/]+)\//.exec(h.authorization)?.[1] ?? '';
  return referenceSigV4({
    method: String(seen.method),
    path: mark < 0 ? url : url.slice(0, mark),
    query: mark < 0 ? '' : url.slice(mark + 1),
    headers: signed,
    payloadHash: 'UNSIGNED-PAYLOAD',
    region: REGION,
    service: 'vpc-lattice-svcs',
    accessKey,
    secretKey,
    amzDate: h['x-amz-date'],
  }).authorization;
}

test('the upstream receives a signature that verifies for the rewritten host, and only the SigV4 fields are signed', async (t) => {
  const up = await RecordingUpstream.start(t);
  const ingress = await startIngress(t, {
    hosts: ['billing-service.apps.example.test'],
    routes: signedRoutes(up.port),
    env: { AWS_ACCESS_KEY_ID: ACCESS_KEY, AWS_SECRET_ACCESS_KEY: SECRET_KEY, AWS_SESSION_TOKEN: SESSION_TOKEN },
    args: ['--region', REGION],
  });
  const forged = ['Authorization', 'AWS4-HMAC-SHA256 Credential=AKIDFORGED/x', 'X-Amz-Date', '20000101T000000Z', 'X-Amz-Security-Token', 'forged', 'X-Custom', 'unsigned'];
  const get = await send({ port: ingress.port, host: 'billing.apps.example.test', path: '/invoices/a%20b?b=2&a=1&a=0', headers: forged });
  assert.equal(get.status, 200, get.body.toString());
  const post = await send({ port: ingress.port, host: 'billing.apps.example.test', method: 'POST', path: '/invoices', body: Buffer.from('{"amount":5}') });
  assert.equal(post.status, 200, post.body.toString());
  for (const res of [get, post]) {
    const h = upstreamHeaders(res);
    assert.equal(h.host, `billing-service.apps.example.test:${up.port}`);
    assert.equal(h['x-amz-content-sha256'], 'UNSIGNED-PAYLOAD');
    assert.equal(h['x-amz-security-token'], SESSION_TOKEN);
    assert.match(h['x-amz-date'], /^\d{8}T\d{6}Z$/);
    assert.match(h.authorization, new RegExp(`^AWS4-HMAC-SHA256 Credential=${ACCESS_KEY}/\\d{8}/${REGION}/vpc-lattice-svcs/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$`));
    assert.equal(h.authorization, expectedAuthorization(res, SECRET_KEY));
  }
  // The client's own copies are gone (one value each, ours); its other headers travel unsigned.
  const raw = json(get).rawHeaders as string[];
  assert.equal(raw.filter((n, i) => i % 2 === 0 && n.toLowerCase() === 'authorization').length, 1);
  assert.equal(raw.filter((n, i) => i % 2 === 0 && n.toLowerCase() === 'x-amz-date').length, 1);
  assert.equal(upstreamHeaders(get)['x-custom'], 'unsigned');
  // A wrong secret does not verify: the comparison above can fail.
  assert.notEqual(upstreamHeaders(get).authorization, expectedAuthorization(get, 'not-the-secret'));
  const entry = await ingress.waitAccess((e) => e.method === 'POST');
  assert.equal(entry.signed, true);
  assert.equal(entry.upstream, `billing-service.apps.example.test:${up.port}`);
});

type EcsMode = 'hold' | 'ok' | 'short' | 'fail';

/** An ECS container credentials endpoint on loopback: a new key id on every fetch. */
async function ecsEndpoint(t: import('node:test').TestContext): Promise<{ url: string; setMode: (m: EcsMode) => void; fetches: () => number }> {
  let mode: EcsMode = 'hold';
  let fetches = 0;
  const held: ServerResponse[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== '/v2/credentials/task') {
      res.writeHead(404).end();
      return;
    }
    if (mode === 'hold') {
      held.push(res);
      return;
    }
    if (mode === 'fail') {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"message":"unavailable"}');
      return;
    }
    fetches++;
    // 'ok': valid 5 min + 2 s, so the 5-minute refresh margin starts a refresh after 2 s; 'short': lapses in 2 s.
    const lifetimeMs = mode === 'ok' ? 5 * 60_000 + 2_000 : 2_000;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ AccessKeyId: `ASIAECS${fetches}`, SecretAccessKey: `secret-${fetches}`, Token: `token-${fetches}`, Expiration: new Date(Date.now() + lifetimeMs).toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const r of held) r.destroy();
    server.closeAllConnections();
    server.close();
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/credentials/task`,
    setMode: (m) => {
      mode = m;
      if (m !== 'hold') for (const r of held.splice(0)) r.destroy();
    },
    fetches: () => fetches,
  };
}

test('ECS credentials: /healthz 503 until they load, refreshed through the running server, 503 again when they lapse', async (t) => {
  const up = await RecordingUpstream.start(t);
  const ecs = await ecsEndpoint(t);
  const ingress = await startIngress(t, {
    hosts: ['orders-service.apps.example.test'],
    routes: signedRoutes(up.port),
    env: { AWS_CONTAINER_CREDENTIALS_FULL_URI: ecs.url, AWS_REGION: REGION },
  });
  const before = await health(ingress.healthPort);
  assert.equal(before.status, 503);
  assert.ok((before.body.reasons as string[]).some((r) => r.startsWith('credentials: AWS credentials not loaded')), JSON.stringify(before.body));

  ecs.setMode('ok');
  assert.ok(await eventually(async () => (await health(ingress.healthPort)).status === 200), 'credentials never loaded');
  const first = await send({ port: ingress.port, host: 'orders.apps.example.test', path: '/o' });
  assert.equal(first.status, 200);
  const firstKey = /Credential=([^/]+)\//.exec(upstreamHeaders(first).authorization)?.[1];
  assert.match(firstKey ?? '', /^ASIAECS\d+$/);
  assert.equal(upstreamHeaders(first).authorization, expectedAuthorization(first, `secret-${firstKey?.slice(7)}`));
  assert.equal(upstreamHeaders(first)['x-amz-security-token'], `token-${firstKey?.slice(7)}`);

  // Within the refresh margin, a later request is signed with the next key.
  let laterKey: string | undefined;
  assert.ok(
    await eventually(async () => {
      const res = await send({ port: ingress.port, host: 'orders.apps.example.test', path: '/o' });
      laterKey = /Credential=([^/]+)\//.exec(upstreamHeaders(res).authorization)?.[1];
      if (laterKey !== firstKey) assert.equal(upstreamHeaders(res).authorization, expectedAuthorization(res, `secret-${laterKey?.slice(7)}`));
      return laterKey !== firstKey;
    }),
    'the key id never changed',
  );
  assert.ok(ecs.fetches() >= 2);

  // Credentials that lapse with the endpoint down: 503 on /healthz and on signed requests.
  ecs.setMode('short');
  assert.ok(await eventually(async () => (await send({ port: ingress.port, host: 'orders.apps.example.test', path: '/o' })).status === 200 && ecs.fetches() >= 3));
  ecs.setMode('fail');
  assert.ok(await eventually(async () => (await health(ingress.healthPort)).status === 503), 'health never turned 503');
  const refused = await send({ port: ingress.port, host: 'orders.apps.example.test', path: '/o' });
  assert.equal(refused.status, 503);
  assert.equal(json(refused).error, 'signing-unavailable');
  const metrics = (await send({ port: ingress.healthPort, host: '127.0.0.1', path: '/metrics' })).body.toString();
  assert.match(metrics, /^gatehouse_ingress_credentials_loaded 0$/m);
  assert.match(metrics, /^gatehouse_ingress_signing_failures_total [1-9]\d*$/m);
});

test('IMDSv2 credentials: the token flow through the running server, signatures that verify, refreshed before expiry', async (t) => {
  const up = await RecordingUpstream.start(t);
  // Valid 5 min + 2 s: the 5-minute refresh margin starts a refresh after 2 s.
  const imds = await startImdsEmulator(5 * 60_000 + 2_000);
  t.after(() => imds.close());
  const ingress = await startIngress(t, {
    hosts: ['orders-service.apps.example.test'],
    routes: signedRoutes(up.port),
    env: { AWS_EC2_METADATA_DISABLED: 'false', AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url, AWS_REGION: REGION },
  });
  assert.ok(await eventually(async () => (await health(ingress.healthPort)).status === 200), 'credentials never loaded from IMDS');
  const first = await send({ port: ingress.port, host: 'orders.apps.example.test', path: '/o' });
  assert.equal(first.status, 200);
  const firstKey = /Credential=([^/]+)\//.exec(upstreamHeaders(first).authorization)?.[1];
  assert.match(firstKey ?? '', /^ASIAIMDS\d+$/);
  assert.equal(upstreamHeaders(first).authorization, expectedAuthorization(first, `imds-secret-${firstKey?.slice(8)}`));
  assert.equal(upstreamHeaders(first)['x-amz-security-token'], `imds-token-${firstKey?.slice(8)}`);
  let laterKey: string | undefined;
  assert.ok(
    await eventually(async () => {
      const res = await send({ port: ingress.port, host: 'orders.apps.example.test', path: '/o' });
      laterKey = /Credential=([^/]+)\//.exec(upstreamHeaders(res).authorization)?.[1];
      if (laterKey !== firstKey) assert.equal(upstreamHeaders(res).authorization, expectedAuthorization(res, `imds-secret-${laterKey?.slice(8)}`));
      return laterKey !== firstKey;
    }),
    'the key id never changed',
  );
  assert.ok(imds.fetches() >= 2);
  assert.equal(imds.tokenless(), 0, 'every metadata read carried the session token (no IMDSv1 fallback)');
});
