/**
 * Field lines (RFC 9112 section 5) read by hand: a token name, a colon, the
 * value with its optional whitespace trimmed. No line folding (a line that
 * starts with whitespace), no bare CR or LF, no control character but HTAB
 * in a value. A loop over char codes instead of a regular expression and a
 * split per line: heads are read once per request on the proxy's hot path.
 */

/** tchar (RFC 9110 5.6.2) by char code. */
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN[c] = 1;

const SP = 0x20;
const HTAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const COLON = 0x3a;

/**
 * Reads the field lines of `text` from `start` (the first character after
 * the start line's CRLF) to its end (the head without its final CRLF CRLF),
 * appending `name, value` pairs to `out`. Returns null, or why the lines
 * are refused ('obs-fold', 'field-line', 'field-value').
 */
export function readFieldLines(text: string, start: number, out: string[]): string | null {
  const end = text.length;
  let at = start;
  while (at < end) {
    let lineEnd = text.indexOf('\r\n', at);
    if (lineEnd < 0) lineEnd = end;
    const first = text.charCodeAt(at);
    if (first === SP || first === HTAB) return 'obs-fold';
    let colon = at;
    while (colon < lineEnd) {
      const c = text.charCodeAt(colon);
      if (c === COLON) break;
      if (c >= 128 || TOKEN[c] === 0) return 'field-line';
      colon++;
    }
    if (colon === at || colon === lineEnd) return 'field-line';
    let from = colon + 1;
    let to = lineEnd;
    for (let i = from; i < to; i++) {
      const c = text.charCodeAt(i);
      // A CR or LF here is a bare line end (the line's CRLF was found first): a broken line, not a value.
      if (c === CR || c === LF) return 'field-line';
      if ((c < SP && c !== HTAB) || c === 0x7f) return 'field-value';
    }
    while (from < to && (text.charCodeAt(from) === SP || text.charCodeAt(from) === HTAB)) from++;
    while (to > from && (text.charCodeAt(to - 1) === SP || text.charCodeAt(to - 1) === HTAB)) to--;
    out.push(text.slice(at, colon), text.slice(from, to));
    at = lineEnd + 2;
  }
  return null;
}
