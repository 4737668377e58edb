/**
 * The credential chain against loopback emulations of the ECS credentials
 * endpoint and of IMDSv2. node --test runs this file in its own process, so
 * the environment below (scrubbed of every AWS_* variable, IMDS disabled
 * unless a test points it at its own loopback server) is ours alone and the
 * SDK can never reach a real AWS endpoint.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { latticeCredentials } from '../../../src/ingress/sigv4/lattice-credentials';
import { GatehouseError } from '../../../src/errors';
import { IMDS_ROLE, startImdsEmulator } from './imds-emulator';

before(() => {
  for (const name of Object.keys(process.env)) if (name.startsWith('AWS_')) delete process.env[name];
  process.env.AWS_CONFIG_FILE = '/nonexistent/gatehouse-test-aws-config';
  process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/gatehouse-test-aws-credentials';
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
});

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; base: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, base: `http://127.0.0.1:${port}` };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Polls `probe` until it returns true: at most 100 tries, 20 ms apart. */
async function eventually(probe: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (await probe()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

test('environment keys are used first, without expiry', async () => {
  process.env.AWS_ACCESS_KEY_ID = 'AKIDENVEXAMPLE';
  process.env.AWS_SECRET_ACCESS_KEY = 'env-secret';
  try {
    const provider = latticeCredentials();
    assert.deepEqual(provider.status(), { loaded: false });
    const creds = await provider();
    assert.equal(creds.accessKeyId, 'AKIDENVEXAMPLE');
    assert.equal(creds.secretAccessKey, 'env-secret');
    const status = provider.status();
    assert.equal(status.loaded, true);
    assert.equal(status.source, 'environment');
    assert.equal(status.expiration, undefined);
  } finally {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
  }
});

test('ECS container credentials: loaded, memoised, refreshed before expiry', async (t) => {
  let fetches = 0;
  const expirations: string[] = [];
  const { server, base } = await listen((req, res) => {
    if (req.method !== 'GET' || req.url !== '/v2/credentials/task') {
      res.writeHead(404).end();
      return;
    }
    fetches++;
    const expiration = new Date(Date.now() + 10 * 60 * 1000).toISOString();
    expirations.push(expiration);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ AccessKeyId: `ASIAECS${fetches}`, SecretAccessKey: `secret-${fetches}`, Token: `token-${fetches}`, Expiration: expiration }));
  });
  t.after(() => close(server));

  let now = Date.now();
  const provider = latticeCredentials({ ecsEndpoint: `${base}/v2/credentials/task`, clock: () => new Date(now) });
  const first = await provider();
  assert.equal(first.accessKeyId, 'ASIAECS1');
  assert.equal(first.sessionToken, 'token-1');
  assert.equal(provider.status().source, 'ecs');
  assert.equal(provider.status().expiration?.toISOString(), expirations[0]);

  // Far from expiry: served from memory.
  assert.equal((await provider()).accessKeyId, 'ASIAECS1');
  assert.equal(fetches, 1);

  // Six minutes later the keys (10-minute life) are within the 5-minute window:
  // still served while a refresh runs, then replaced.
  now += 6 * 60 * 1000;
  assert.equal((await provider()).accessKeyId, 'ASIAECS1');
  assert.ok(await eventually(async () => (await provider()).accessKeyId === 'ASIAECS2'), 'the refresh never landed');
  assert.equal(fetches, 2);
  assert.equal(provider.status().expiration?.toISOString(), expirations[1]);

  // Past expiry, a caller waits for fresh keys instead of getting expired ones.
  now += 20 * 60 * 1000;
  assert.equal((await provider()).accessKeyId, 'ASIAECS3');
  assert.equal(fetches, 3);
});

test('no source answers: ERR_CREDENTIALS naming each step, and status() says not loaded', async () => {
  // A port that was just closed: connections are refused at once.
  const { server, base } = await listen(() => undefined);
  await close(server);
  const provider = latticeCredentials({ ecsEndpoint: `${base}/creds`, timeoutMs: 500 });
  await assert.rejects(provider(), (err: unknown) => {
    assert.ok(err instanceof GatehouseError);
    assert.equal(err.code, 'ERR_CREDENTIALS');
    assert.match(err.message, /^No AWS credentials from the default chain \(environment: AWS_ACCESS_KEY_ID\/AWS_SECRET_ACCESS_KEY not set; ecs: .+; imds: AWS_EC2_METADATA_DISABLED=true\)$/);
    return true;
  });
  const status = provider.status();
  assert.equal(status.loaded, false);
  assert.match(status.lastError ?? '', /ERR_CREDENTIALS|No AWS credentials/);
});

test('IMDSv2: token first, then role, then credentials with the token; refreshed before expiry', async (t) => {
  const imds = await startImdsEmulator(10 * 60 * 1000);
  const base = imds.url;
  delete process.env.AWS_EC2_METADATA_DISABLED;
  t.after(async () => {
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    delete process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
    await imds.close();
  });

  let now = Date.now();
  const provider = latticeCredentials({ imdsEndpoint: base, clock: () => new Date(now) });
  const creds = await provider();
  assert.equal(creds.accessKeyId, 'ASIAIMDS1');
  assert.equal(creds.secretAccessKey, 'imds-secret-1');
  assert.equal(creds.sessionToken, 'imds-token-1');
  assert.equal(provider.status().source, 'imds');
  assert.deepEqual(imds.log, [
    'PUT /latest/api/token',
    'GET /latest/meta-data/iam/security-credentials/',
    `GET /latest/meta-data/iam/security-credentials/${IMDS_ROLE}`,
  ]);
  assert.equal(imds.tokenless(), 0);

  // The emulator really demands the token: a plain GET is refused.
  const status = await new Promise<number>((resolve, reject) => {
    httpRequest(`${base}/latest/meta-data/iam/security-credentials/${IMDS_ROLE}`, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });
  assert.equal(status, 401);
  assert.equal(imds.tokenless(), 1);

  now += 6 * 60 * 1000;
  assert.ok(await eventually(async () => (await provider()).accessKeyId === 'ASIAIMDS2'), 'the refresh never landed');
  assert.equal(imds.fetches(), 2);
  assert.equal(imds.tokenless(), 1);
});
