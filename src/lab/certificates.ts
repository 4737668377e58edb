/**
 * Self-signed certificates for the internet host's HTTPS vhosts, made with
 * openssl at `lab up`: one per site name (nginx picks by SNI) plus a default
 * for clients that send no SNI or an unknown name. EC P-256 keys, because
 * they are generated in milliseconds.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from './run';

export interface CertificateFiles {
  /** The DNS name in the certificate, or 'default'. */
  name: string;
  cert: string;
  key: string;
}

export const DEFAULT_CERT_NAME = 'default';
const DEFAULT_CERT_SUBJECT = 'gatehouse-lab-default';
const VALIDITY_DAYS = '30';

export function certificateFiles(dir: string, name: string): CertificateFiles {
  return { name, cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

export function opensslArgv(files: CertificateFiles): string[] {
  const subject = files.name === DEFAULT_CERT_NAME ? DEFAULT_CERT_SUBJECT : files.name;
  return [
    'openssl', 'req', '-x509',
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-days', VALIDITY_DAYS,
    '-subj', `/CN=${subject}`,
    '-addext', `subjectAltName=DNS:${subject}`,
    '-keyout', files.key, '-out', files.cert,
  ];
}

/** Makes the default certificate and one per name, in dir; returns them default first. */
export async function makeCertificates(dir: string, names: readonly string[]): Promise<CertificateFiles[]> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const all = [DEFAULT_CERT_NAME, ...names].map((name) => certificateFiles(dir, name));
  await Promise.all(all.map((files) => runCommand(opensslArgv(files))));
  return all;
}
