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
	perm int32  // index of the deciding permission (reasonL7Permission)
	rule *rule  // the matched intention, if any
	peer string // the source's peer, named by a default reason
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
// (permissions are counted from 1). A source of a peer is named with its
// peer ("intention partner.example:web → api allows (precedence 9)"), and
// the default's reason names the peer of such a source:
// `no intention for peer "partner.example" matches (default deny)`.
// The reasons of an intention are formatted the first time one is asked
// for and kept, so Reason allocates nothing after that (except a default
// reason naming a peer): access logs can carry it on every request.
func (d Decision) Reason() string {
	a := b2i(d.Allowed)
	switch d.kind {
	case reasonDefault:
		if d.peer != "" {
			return "no intention for peer " + strconv.Quote(d.peer) + " matches (default " + noun(d.Allowed) + ")"
		}
		return defaultReasons[a]
	case reasonNotSynced:
		return "policy not synced yet (deny)"
	case reasonNone:
		return noDecisionReasons[a]
	case reasonIntention:
		if d.Allowed == (d.rule.Action == ActionAllow) {
			return d.rule.reasonsOf().intention
		}
	case reasonL7AtL4:
		return d.rule.reasonsOf().l7AtL4[a]
	case reasonL7NoMatch:
		return d.rule.reasonsOf().l7NoMatch[a]
	case reasonL7Permission:
		if rs := d.rule.reasonsOf(); int(d.perm) < len(rs.perms) {
			return rs.perms[d.perm][a]
		}
	}
	return formatReason(d.kind, d.Allowed, d.rule, d.perm)
}

var (
	defaultReasons    = [2]string{"no intention matches (default deny)", "no intention matches (default allow)"}
	noDecisionReasons = [2]string{"no decision (deny)", "no decision (allow)"}
)

// ruleReasons are the reasons of the decisions a rule makes: by its Action
// for an L4 intention; by verdict (deny, allow) for the others.
type ruleReasons struct {
	intention         string
	l7AtL4, l7NoMatch [2]string
	perms             [][2]string
}

// reasonsOf returns the reasons of r's decisions, formatting them on first
// use (compiling thousands of intentions formats none).
func (r *rule) reasonsOf() *ruleReasons {
	if rs := r.reasons.Load(); rs != nil {
		return rs
	}
	rs := new(ruleReasons)
	if len(r.perms) == 0 {
		rs.intention = formatReason(reasonIntention, r.Action == ActionAllow, r, 0)
	} else {
		rs.perms = make([][2]string, len(r.perms))
		for a, allowed := range []bool{false, true} {
			rs.l7AtL4[a] = formatReason(reasonL7AtL4, allowed, r, 0)
			rs.l7NoMatch[a] = formatReason(reasonL7NoMatch, allowed, r, 0)
			for i := range r.perms {
				rs.perms[i][a] = formatReason(reasonL7Permission, allowed, r, int32(i))
			}
		}
	}
	r.reasons.CompareAndSwap(nil, rs)
	return r.reasons.Load()
}

func formatReason(kind reasonKind, allowed bool, r *rule, perm int32) string {
	switch kind {
	case reasonIntention:
		return "intention " + r.label + " " + verb(allowed) + " (precedence " + strconv.Itoa(r.Precedence) + ")"
	case reasonDefault:
		return defaultReasons[b2i(allowed)]
	case reasonNotSynced:
		return "policy not synced yet (deny)"
	case reasonL7AtL4:
		if allowed {
			return "intention " + r.label + " has L7 permissions, connection admitted for per-request checks"
		}
		return "intention " + r.label + " has L7 permissions only, connection-level check denies"
	case reasonL7NoMatch:
		return "L7 intention " + r.label + ": no permission matched (default " + noun(allowed) + ")"
	case reasonL7Permission:
		return "L7 intention " + r.label + ": permission " + strconv.Itoa(int(perm)+1) +
			" (" + r.perms[perm].summary + ") " + verb(allowed)
	default:
		return noDecisionReasons[b2i(allowed)]
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
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
