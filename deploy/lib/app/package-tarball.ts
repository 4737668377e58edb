/**
 * The gatehouse package the instances install: `npm pack` of the repository
 * (what `npm publish` would ship, per package.json "files"), written to
 * deploy/build/. --ignore-scripts: the tarball takes the current dist/ (run
 * `npm run build` at the root first) instead of rebuilding it inside a synth.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../shared/repo-files';

export function packRepository(): string {
  const root = repoRoot();
  if (!existsSync(join(root, 'dist', 'src', 'cli', 'main.js'))) {
    throw new Error(`Expected a built gatehouse (dist/src/cli/main.js) for the package tarball but received none: run "npm run build" in ${root}`);
  }
  const destination = join(root, 'deploy', 'build');
  mkdirSync(destination, { recursive: true });
  const output = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', destination], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const packed: unknown = JSON.parse(output);
  const filename = Array.isArray(packed) ? (packed[0] as { filename?: unknown } | undefined)?.filename : undefined;
  if (typeof filename !== 'string') throw new Error(`Expected npm pack's JSON report for the package tarball but received ${output}`);
  return join(destination, filename);
}
