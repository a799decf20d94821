/** Label selectors (metav1.LabelSelector) as a pure predicate. */

/** A label selector as PlanBinding.spec.keys.selector holds it. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: {
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }[];
}

/**
 * Whether labels satisfy a selector, with Kubernetes' semantics: every matchLabels pair and every
 * expression must hold; an empty selector matches everything.
 */
export function matchesSelector(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>> = {},
): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[k] !== v) return false;
  }
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    switch (e.operator) {
      case 'In':
        if (!has || value === undefined || !(e.values ?? []).includes(value)) return false;
        break;
      case 'NotIn':
        if (has && value !== undefined && (e.values ?? []).includes(value)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}
