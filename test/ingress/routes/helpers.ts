import assert from 'node:assert/strict';
import { GatehouseError } from '../../../src/errors';
import { parseRoutes, type RouteTable } from '../../../src/ingress/routes';

export const FILE = 'routes.yaml';

export function table(yaml: string): RouteTable {
  return parseRoutes(yaml, FILE);
}

/** Asserts that parsing fails with exactly `message` (file:line:col: reason). */
export function refuses(yaml: string, message: string): void {
  assert.throws(
    () => parseRoutes(yaml, FILE),
    (err: unknown) => {
      assert.ok(err instanceof GatehouseError);
      assert.equal(err.code, 'ERR_POLICY');
      assert.equal(err.message, message);
      return true;
    },
  );
}
