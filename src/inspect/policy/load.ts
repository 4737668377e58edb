/**
 * Policy files from disk. The policy and the domain lists it imports are
 * read asynchronously first (so a reload never blocks the event loop on
 * I/O), then parsed in one synchronous pass.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { GatehouseError } from '../../errors';
import { parsePolicy } from './parse';
import type { Policy } from './types';

/** domain_list paths a policy text names, as absolute paths (best effort: parsePolicy reports mistakes). */
function domainListPaths(text: string, source: string): string[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch {
    return [];
  }
  const rules = (doc as { rules?: unknown } | null)?.rules;
  if (!Array.isArray(rules)) return [];
  const paths: string[] = [];
  for (const rule of rules) {
    const value = (rule as { domain_list?: unknown } | null)?.domain_list;
    for (const p of Array.isArray(value) ? value : [value]) {
      if (typeof p === 'string' && p.trim() !== '') paths.push(resolve(isAbsolute(p) ? p : join(dirname(source), p)));
    }
  }
  return paths;
}

/** A policy file's text; an unreadable file is ERR_POLICY at 1:1 (shared with the proxy's policy). */
export async function readPolicyText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new GatehouseError('ERR_POLICY', `${path}:1:1: Expected a readable policy file for the policy but received ${JSON.stringify(path)} (${code})`);
  }
}

/** Reads, parses and checks a policy file; throws ERR_POLICY (file:line:col: reason). */
export async function loadPolicyFile(path: string): Promise<Policy> {
  const text = await readPolicyText(path);
  const lists = new Map<string, string | Error>();
  await Promise.all(
    domainListPaths(text, path).map(async (p) => {
      lists.set(p, await readFile(p, 'utf8').catch((err: Error) => err));
    }),
  );
  return parsePolicy(text, path, (absolute) => {
    const got = lists.get(absolute);
    if (got instanceof Error) throw got;
    // Only when the best-effort scan missed a path (e.g. behind a YAML alias).
    return got ?? readFileSync(absolute, 'utf8');
  });
}
