/** Reads Prometheus text exposition back into numbers, for the observe tests. */

export interface Exposition {
  /** `name{label="value",...}` (labels as printed) -> value */
  samples: Map<string, number>;
  /** metric name -> TYPE */
  types: Map<string, string>;
  /** metric name -> HELP */
  help: Map<string, string>;
}

export function parseExposition(text: string): Exposition {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta !== null) {
      (meta[1] === 'TYPE' ? types : help).set(meta[2] as string, meta[3] as string);
      continue;
    }
    const sample = /^(\S+?(?:\{.*\})?) (\S+)$/.exec(line);
    if (sample === null) throw new Error(`not an exposition line: ${JSON.stringify(line)}`);
    samples.set(sample[1] as string, Number(sample[2]));
  }
  return { samples, types, help };
}

/** Sample names that start with `prefix`, sorted. */
export function seriesWithPrefix(e: Exposition, prefix: string): string[] {
  return [...e.samples.keys()].filter((k) => k.startsWith(prefix)).sort();
}
