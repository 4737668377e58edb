/**
 * Construct props are checked at synth time, before CloudFormation sees them,
 * with the project's one message shape: "Expected <what> for <name> but
 * received <value>". deploy/ is its own package (it must not pull the
 * appliance's runtime in), so this is a small copy of that shape, not an
 * import from src/.
 */
export function expected(what: string, name: string, value: unknown): Error {
  return new Error(`Expected ${what} for ${name} but received ${JSON.stringify(value)}`);
}

/** An integer in [min, max], or the error naming the prop. */
export function checkInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw expected(`an integer from ${min} to ${max}`, name, value);
  }
  return value;
}

/** One of a closed set of strings (context parameters arrive as plain strings). */
export function checkChoice<T extends string>(name: string, value: string, choices: readonly T[]): T {
  const found = choices.find((choice) => choice === value);
  if (found === undefined) throw expected(`one of ${choices.join(', ')}`, name, value);
  return found;
}
