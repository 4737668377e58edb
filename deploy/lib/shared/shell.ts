/**
 * Shell text for user data and container commands. Values that end up in a
 * script (paths, flags, file contents) are quoted here, once, so no caller
 * concatenates unquoted strings into a shell line.
 */

/** One word for sh/bash: single-quoted, with embedded single quotes closed and escaped. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command line from an argument array (as execFile would take it). */
export function shellCommand(args: readonly string[]): string {
  return args.map(shellQuote).join(' ');
}

/**
 * `cat > PATH <<'DELIM' ... DELIM` lines that write `content` byte for byte:
 * the quoted delimiter turns off every expansion inside. The delimiter must
 * not appear as a line of the content, or the file would end early.
 */
export function heredocFile(path: string, content: string, delimiter: string): string[] {
  const lines = content.endsWith('\n') ? content.slice(0, -1).split('\n') : content.split('\n');
  if (lines.includes(delimiter)) {
    throw new Error(`Expected file content without a line "${delimiter}" for ${path} but received one`);
  }
  return [`cat > ${shellQuote(path)} <<'${delimiter}'`, ...lines, delimiter];
}
