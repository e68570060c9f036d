package authz

import (
	"cmp"
	"slices"
)

// exactParts counts the exact (non-wildcard) parts of a normalized service
// name: 2 for "ns/name", 1 for "ns/*", 0 for "*/*" (Consul's
// intentionCountExact; "*/name" is invalid).
func exactParts(s Selector) int {
	switch {
	case s.Namespace == Wildcard:
		return 0
	case s.Name == Wildcard:
		return 1
	default:
		return 2
	}
}

// precedence is Consul's computeIntentionPrecedence: 9, 6 or 3 for a
// destination with 2, 1 or 0 exact parts, minus one for each wildcard part
// of the source.
func precedence(src, dst Selector) int {
	return [...]int{3, 6, 9}[exactParts(dst)] - (2 - exactParts(src))
}

// comparePrecedence orders intentions as Consul's IntentionPrecedenceSorter
// does: precedence descending, then lexicographically on the source
// (peer, partition, namespace, name) and destination (partition,
// namespace, name). Sameness groups, which Consul compares first, are
// always empty here.
func comparePrecedence(a, b *Intention) int {
	if c := cmp.Compare(b.Precedence, a.Precedence); c != 0 {
		return c
	}
	return cmp.Or(
		cmp.Compare(a.Source.Peer, b.Source.Peer),
		cmp.Compare(a.Source.Partition, b.Source.Partition),
		cmp.Compare(a.Source.Namespace, b.Source.Namespace),
		cmp.Compare(a.Source.Name, b.Source.Name),
		cmp.Compare(a.Destination.Partition, b.Destination.Partition),
		cmp.Compare(a.Destination.Namespace, b.Destination.Namespace),
		cmp.Compare(a.Destination.Name, b.Destination.Name),
	)
}

// sortRules sorts rules into evaluation order.
func sortRules(rules []*rule) {
	slices.SortFunc(rules, func(a, b *rule) int { return comparePrecedence(&a.Intention, &b.Intention) })
}
