/**
 * An IMDSv2 emulator on loopback for the credential tests: a session token
 * first (PUT /latest/api/token with a TTL header), then the role name and
 * its credentials, only with that token (401 without: no IMDSv1).
 * Credentials are numbered per fetch (ASIAIMDS1, imds-secret-1, ...).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const IMDS_ROLE = 'gatehouse-ingress-role';
const TOKEN = 'imds-session-token-abc';

export interface ImdsEmulator {
  /** Base URL, for AWS_EC2_METADATA_SERVICE_ENDPOINT. */
  url: string;
  /** "METHOD path" of every request, in order. */
  log: string[];
  fetches(): number;
  /** Requests refused for lacking the session token. */
  tokenless(): number;
  close(): Promise<void>;
}

/** `lifetimeMs`: how long each set of credentials is valid. */
export async function startImdsEmulator(lifetimeMs: number): Promise<ImdsEmulator> {
  const log: string[] = [];
  let fetches = 0;
  let tokenless = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    log.push(`${req.method} ${req.url}`);
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      if (req.headers['x-aws-ec2-metadata-token-ttl-seconds'] === undefined) res.writeHead(400).end();
      else res.writeHead(200, { 'content-type': 'text/plain' }).end(TOKEN);
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (req.headers['x-aws-ec2-metadata-token'] !== TOKEN) {
      tokenless++;
      res.writeHead(401).end();
      return;
    }
    if (req.url === '/latest/meta-data/iam/security-credentials/') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(IMDS_ROLE);
      return;
    }
    if (req.url === `/latest/meta-data/iam/security-credentials/${IMDS_ROLE}`) {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          Code: 'Success',
          LastUpdated: new Date().toISOString(),
          Type: 'AWS-HMAC',
          AccessKeyId: `ASIAIMDS${fetches}`,
          SecretAccessKey: `imds-secret-${fetches}`,
          Token: `imds-token-${fetches}`,
          Expiration: new Date(Date.now() + lifetimeMs).toISOString(),
        }),
      );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    fetches: () => fetches,
    tokenless: () => tokenless,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
