/** The deterministic order of resources (docs/adr/0006-binding-ties.md): older first, then name, then uid. */

interface Ordered {
  metadata: { name: string; uid?: string; creationTimestamp?: string };
}

/**
 * Compares two resources by creation time, then name, then uid. Creation times have one-second
 * resolution, so two resources created in the same second are ordered by name, and two of one name
 * (re-created) by uid.
 */
export function olderFirst(a: Ordered, b: Ordered): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return Date.parse(ta || '1970-01-01T00:00:00Z') - Date.parse(tb || '1970-01-01T00:00:00Z');
  if (a.metadata.name !== b.metadata.name) return a.metadata.name < b.metadata.name ? -1 : 1;
  const ua = a.metadata.uid ?? '';
  const ub = b.metadata.uid ?? '';
  return ua < ub ? -1 : ua > ub ? 1 : 0;
}
