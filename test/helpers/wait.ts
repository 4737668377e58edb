/**
 * Polls while `pending` holds, for at most `ceilingMs` (a ceiling for a
 * loaded machine, not a timing assertion): the assertions that follow say
 * what was missing if it still holds.
 */
export async function waitWhile(pending: () => boolean, ceilingMs = 10_000, stepMs = 10): Promise<void> {
  for (const deadline = Date.now() + ceilingMs; pending() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, stepMs));
}
