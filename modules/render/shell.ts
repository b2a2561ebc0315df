/**
 * The one shell-quoting helper. Every value that reaches a shell script goes through `shellQuote`,
 * either directly in TypeScript or through the `sh` template helper.
 */

/** Quotes a value for POSIX sh as a single word: 'it'\''s' style, safe for any byte but NUL. */
export function shellQuote(value: string | number | boolean): string {
  const text = String(value);
  if (text.includes("\0")) throw new Error("shellQuote: value contains a NUL byte");
  if (text !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Quotes each value and joins them with spaces, for argument lists. */
export function shellWords(values: readonly (string | number)[]): string {
  return values.map(shellQuote).join(" ");
}
