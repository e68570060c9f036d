package authz

import "strconv"

// The kinds of reason a Decision can have (see Decision.Kind). The set is
// small and fixed, to label metrics with.
const (
	// KindIntention: an L4 intention decided by its Action.
	KindIntention = "intention"
	// KindDefault: no intention matched; the default decided.
	KindDefault = "default"
	// KindNotSynced: the policy has no intentions yet; everything is denied.
	KindNotSynced = "not_synced"
	// KindL7AtL4: an L7 intention matched a connection-level request; it is
	// denied, or admitted when the request has AdmitL7 set.
	KindL7AtL4 = "l7_at_l4"
	// KindL7NoMatch: an L7 intention matched but none of its permissions
	// did; the default decided.
	KindL7NoMatch = "l7_no_match"
	// KindL7Permission: a permission of an L7 intention decided.
	KindL7Permission = "l7_permission"
	// KindNone: the zero Decision, which denies.
	KindNone = "none"
)

type reasonKind uint8

const (
	reasonNone reasonKind = iota
	reasonIntention
	reasonDefault
	reasonNotSynced
	reasonL7AtL4
	reasonL7NoMatch
	reasonL7Permission
)

var kindNames = [...]string{
	reasonNone:         KindNone,
	reasonIntention:    KindIntention,
	reasonDefault:      KindDefault,
	reasonNotSynced:    KindNotSynced,
	reasonL7AtL4:       KindL7AtL4,
	reasonL7NoMatch:    KindL7NoMatch,
	reasonL7Permission: KindL7Permission,
}

// Decision is the outcome of Authorize: whether the request is allowed, and
// why. It is a small value that points into the policy snapshot it came
// from; making one allocates nothing, and its reason is only formatted when
// asked for. The zero Decision denies.
type Decision struct {
	// Allowed is the verdict.
	Allowed bool

	kind reasonKind
	perm int32 // index of the deciding permission (reasonL7Permission)
	rule *rule // the matched intention, if any
}

// Kind returns the category of the reason, one of the Kind* constants.
func (d Decision) Kind() string { return kindNames[d.kind] }

// Default reports whether the default policy decided (no intention matched,
// or an L7 intention matched but none of its permissions did).
func (d Decision) Default() bool {
	return d.kind == reasonDefault || d.kind == reasonL7NoMatch
}

// Intention returns the intention that decided, if one did. Its slices are
// shared with the policy and must not be modified.
func (d Decision) Intention() (Intention, bool) {
	if d.rule == nil {
		return Intention{}, false
	}
	return d.rule.Intention, true
}

// Reason explains the decision, for example
// "intention web → api allows (precedence 9)",
// "no intention matches (default deny)" or
// "L7 intention web → api: permission 2 (GET /admin) denies"
// (permissions are counted from 1).
func (d Decision) Reason() string {
	switch d.kind {
	case reasonIntention:
		return "intention " + d.rule.label + " " + verb(d.Allowed) + " (precedence " + strconv.Itoa(d.rule.Precedence) + ")"
	case reasonDefault:
		return "no intention matches (default " + noun(d.Allowed) + ")"
	case reasonNotSynced:
		return "policy not synced yet (deny)"
	case reasonL7AtL4:
		if d.Allowed {
			return "intention " + d.rule.label + " has L7 permissions, connection admitted for per-request checks"
		}
		return "intention " + d.rule.label + " has L7 permissions only, connection-level check denies"
	case reasonL7NoMatch:
		return "L7 intention " + d.rule.label + ": no permission matched (default " + noun(d.Allowed) + ")"
	case reasonL7Permission:
		return "L7 intention " + d.rule.label + ": permission " + strconv.Itoa(int(d.perm)+1) +
			" (" + d.rule.perms[d.perm].summary + ") " + verb(d.Allowed)
	default:
		return "no decision (" + noun(d.Allowed) + ")"
	}
}

// String returns "allow: " or "deny: " followed by the reason.
func (d Decision) String() string { return noun(d.Allowed) + ": " + d.Reason() }

func verb(allowed bool) string {
	if allowed {
		return "allows"
	}
	return "denies"
}

func noun(allowed bool) string {
	if allowed {
		return "allow"
	}
	return "deny"
}
