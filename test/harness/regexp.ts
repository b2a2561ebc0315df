/** Matching text literally inside a larger regular expression. */

/** `text` with every character a regular expression gives a meaning escaped: `1.36.3` matches only itself. */
export function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
