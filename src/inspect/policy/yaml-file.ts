/**
 * A parsed YAML (or JSON) file that can point at its own nodes: every
 * error names file, line and column, in the one message shape
 * "Expected <what> for <name> but received <value>".
 */
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node, type Pair } from 'yaml';
import { GatehouseError } from '../../errors';

export type YamlNode = Node;

export interface Located {
  readonly line: number;
  readonly column: number;
}

export class YamlFile {
  private constructor(
    readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** Parses `text`; a syntax error becomes ERR_POLICY at its line and column. */
  static parse(text: string, file: string): YamlFile {
    const lines = new LineCounter();
    // uniqueKeys (the default) makes a repeated key a syntax error at the repeat.
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
    const first = doc.errors[0];
    if (first !== undefined) {
      const at = lines.linePos(first.pos[0]);
      const reason = first.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      throw policyError(file, at.line, at.col, `Expected valid YAML but received a syntax error: ${reason}`);
    }
    return new YamlFile(file, doc, lines);
  }

  /** The top node, or null for an empty file. */
  get root(): YamlNode | null {
    return this.resolve(this.doc.contents);
  }

  /** Follows aliases (`*name`); null for a missing value. */
  resolve(node: unknown): YamlNode | null {
    if (node === null || node === undefined) return null;
    if (isAlias(node)) return this.resolve(node.resolve(this.doc));
    if (isScalar(node) || isMap(node) || isSeq(node)) return node;
    return null;
  }

  where(node: YamlNode | null, fallback?: YamlNode | null): Located {
    const offset = node?.range?.[0] ?? fallback?.range?.[0] ?? 0;
    const pos = this.lines.linePos(offset);
    return { line: pos.line, column: pos.col };
  }

  /** ERR_POLICY at `node`: "Expected <what> for <name> but received <received>". */
  fail(node: YamlNode | null, what: string, name: string, received: string, fallback?: YamlNode | null): never {
    const at = this.where(node, fallback);
    throw policyError(this.file, at.line, at.column, `Expected ${what} for ${name} but received ${received}`);
  }

  /** The pairs of a mapping node with their key text; non-string keys are errors. */
  entries(map: YamlNode, name: string): Array<{ key: string; keyNode: YamlNode; value: YamlNode | null; pair: Pair }> {
    if (!isMap(map)) this.fail(map, 'a mapping', name, describe(map));
    return map.items.map((pair) => {
      const keyNode = this.resolve(pair.key);
      if (keyNode === null || !isScalar(keyNode) || typeof keyNode.value !== 'string') {
        this.fail(keyNode, 'a key name', name, describe(keyNode), map);
      }
      return { key: keyNode.value as string, keyNode, value: this.resolve(pair.value), pair };
    });
  }

  /** A scalar or a list of scalars, as nodes; an empty list or a missing value is an error. */
  scalars(node: YamlNode | null, name: string, keyNode: YamlNode): YamlNode[] {
    // A missing value has no place of its own: point at its key.
    if (node === null || (isScalar(node) && node.value === null)) this.fail(keyNode, 'a value', name, 'nothing');
    if (isSeq(node)) {
      if (node.items.length === 0) this.fail(node, 'at least one value', name, 'an empty list');
      return node.items.map((item) => {
        const resolved = this.resolve(item);
        if (resolved === null || !isScalar(resolved) || resolved.value === null) {
          this.fail(resolved, 'a single value in the list', name, describe(resolved), node);
        }
        return resolved;
      });
    }
    if (!isScalar(node)) this.fail(node, 'a value or a list of values', name, describe(node));
    return [node];
  }
}

export function policyError(file: string, line: number, column: number, reason: string): GatehouseError {
  return new GatehouseError('ERR_POLICY', `${file}:${line}:${column}: ${reason}`);
}

/** How a node reads in an error message: the value for scalars, its shape otherwise. */
export function describe(node: YamlNode | null): string {
  if (node === null) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    if (node.value === null) return 'nothing';
    if (typeof node.value === 'string') return JSON.stringify(node.value);
    return typeof node.source === 'string' && node.source !== '' ? node.source : String(node.value);
  }
  return 'an alias';
}

/** A scalar's value as written: numbers keep their source text (007 stays 007). */
export function scalarText(node: YamlNode): string | null {
  if (!isScalar(node)) return null;
  if (typeof node.value === 'string') return node.value;
  if (typeof node.value === 'number' || typeof node.value === 'bigint') {
    return typeof node.source === 'string' && node.source !== '' ? node.source : String(node.value);
  }
  return null;
}

export { isMap, isScalar, isSeq };
