/** Replaces known secrets in a text with `***`. */
export type Redactor = (text: string) => string;

/** Shorter values are not redacted: replacing every "1" or "yes" in a log would hide everything and protect nothing. */
const shortest = 4;

/**
 * A redactor for these secrets (and their URL-encoded forms), longest first so that a secret
 * containing another is replaced whole.
 */
export function createRedactor(secrets: Iterable<string>): Redactor {
  const values = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < shortest) continue;
    values.add(secret);
    values.add(encodeURIComponent(secret));
    values.add(JSON.stringify(secret).slice(1, -1));
  }
  const ordered = [...values].filter((value) => value.length >= shortest).sort((a, b) => b.length - a.length);
  if (ordered.length === 0) return (text) => text;
  return (text) => {
    let result = text;
    for (const value of ordered) result = result.split(value).join("***");
    return result;
  };
}
