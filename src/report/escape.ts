/** Escapes text for XML/HTML content and double- or single-quoted attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => XML_ENTITIES[c] ?? c);
}

const XML_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** A token safe inside ids, data-testid values and file names: letters, digits, `.`, `_`, `-` (others become `-`). */
export function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]/g, '-');
}
