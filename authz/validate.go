package authz

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"regexp/syntax"
	"strings"

	"github.com/ztnlabs/ztn"
)

// Limits Consul puts on opaque values (validateConfigEntryMeta and the
// Description check in agent/structs).
const (
	metaMaxKeyPairs    = 64
	metaKeyMaxLength   = 128
	metaValueMaxLength = 512
)

// Validate checks e the way Consul does when the entry is written, plus
// what ztn adds: regexes must compile, and unsupported features are errors
// (see ConfigEntry). It does not modify e. Set and ParseConfigEntries also
// check that no two entries have the same destination.
func (e ConfigEntry) Validate() error {
	if _, _, err := compileEntry(&e); err != nil {
		return fmt.Errorf("authz: %s: %w", entryLabel(&e, 0), err)
	}
	return nil
}

// compileAll validates and compiles entries; a destination may have only one
// entry. Errors name the entry but carry no "authz:" prefix.
func compileAll(entries []ConfigEntry) ([]*rule, error) {
	var rules []*rule
	seen := make(map[Selector]int, len(entries))
	for i := range entries {
		e := &entries[i]
		rs, dst, err := compileEntry(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", entryLabel(e, i), err)
		}
		if j, dup := seen[dst]; dup {
			return nil, fmt.Errorf("%s: entry %d has the same destination; a destination has one entry", entryLabel(e, i), j+1)
		}
		seen[dst] = i
		rules = append(rules, rs...)
	}
	sortRules(rules)
	return rules, nil
}

// entryLabel names an entry in errors: by destination, or by position
// (counting from 1) when it has no name.
func entryLabel(e *ConfigEntry, i int) string {
	if e.Name == "" {
		return fmt.Sprintf("entry %d", i+1)
	}
	return fmt.Sprintf("entry %q", Selector{Partition: e.Partition, Namespace: e.Namespace, Name: e.Name}.String())
}

// compileEntry normalizes, validates and compiles one entry into its rules
// (in source order) and returns its normalized destination.
func compileEntry(e *ConfigEntry) ([]*rule, Selector, error) {
	if e.Kind != "" && e.Kind != KindServiceIntentions {
		return nil, Selector{}, fmt.Errorf("Kind is %q, want %q", e.Kind, KindServiceIntentions)
	}
	if e.Name == "" {
		return nil, Selector{}, errors.New("Name (the destination) is required")
	}
	dst := Selector{
		Partition: orDefault(e.Partition, ztn.DefaultPartition),
		Namespace: orDefault(e.Namespace, ztn.DefaultNamespace),
		Name:      e.Name,
	}
	if err := checkWildcards(dst); err != nil {
		return nil, dst, err
	}
	if err := checkMeta(e.Meta); err != nil {
		return nil, dst, err
	}
	if len(e.Sources) == 0 {
		return nil, dst, errors.New("at least one source is required")
	}
	rules := make([]*rule, 0, len(e.Sources))
	seen := make(map[Selector]int, len(e.Sources))
	for i := range e.Sources {
		s := &e.Sources[i]
		r, err := compileSource(s, dst)
		if err != nil {
			return nil, dst, fmt.Errorf("%s: %w", sourceLabel(s, i), err)
		}
		if j, dup := seen[r.Source]; dup {
			return nil, dst, fmt.Errorf("%s: source %s is already defined by source %d", sourceLabel(s, i), r.Source, j+1)
		}
		seen[r.Source] = i
		rules = append(rules, r)
	}
	return rules, dst, nil
}

func sourceLabel(s *SourceIntention, i int) string {
	switch {
	case s.Name == "":
		return fmt.Sprintf("source %d", i+1)
	case s.Peer != "":
		return fmt.Sprintf("source %d (%q of peer %q)", i+1, s.Name, s.Peer)
	default:
		return fmt.Sprintf("source %d (%q)", i+1, s.Name)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkWildcards is Consul's validateIntentionWildcards: a wildcard is a
// whole name or namespace, "*/name" is invalid, partitions are exact.
func checkWildcards(s Selector) error {
	if s.Namespace != Wildcard && strings.Contains(s.Namespace, Wildcard) {
		return fmt.Errorf("Namespace %q: the wildcard %q can only be the whole value", s.Namespace, Wildcard)
	}
	if s.Name != Wildcard {
		if strings.Contains(s.Name, Wildcard) {
			return fmt.Errorf("Name %q: the wildcard %q can only be the whole value", s.Name, Wildcard)
		}
		if s.Namespace == Wildcard {
			return fmt.Errorf("Name %q: an exact name cannot follow a wildcard namespace", s.Name)
		}
	}
	if strings.Contains(s.Partition, Wildcard) {
		return fmt.Errorf("Partition %q: a partition cannot be a wildcard", s.Partition)
	}
	return nil
}

func checkMeta(meta map[string]string) error {
	if len(meta) > metaMaxKeyPairs {
		return fmt.Errorf("Meta has %d keys, more than %d", len(meta), metaMaxKeyPairs)
	}
	for k, v := range meta {
		if len(k) > metaKeyMaxLength {
			return fmt.Errorf("Meta key %q is longer than %d bytes", k, metaKeyMaxLength)
		}
		if len(v) > metaValueMaxLength {
			return fmt.Errorf("Meta value for key %q is longer than %d bytes", k, metaValueMaxLength)
		}
	}
	return nil
}

// compileSource normalizes, validates and compiles one source of the entry
// for dst.
func compileSource(s *SourceIntention, dst Selector) (*rule, error) {
	if s.Name == "" {
		return nil, errors.New("Name is required")
	}
	if s.SamenessGroup != "" {
		return nil, fmt.Errorf("SamenessGroup %q: ztn does not support sameness groups, so it cannot enforce this source (name each peer in a source of its own instead)", s.SamenessGroup)
	}
	src := Selector{Partition: s.Partition, Namespace: s.Namespace, Name: s.Name, Peer: s.Peer}
	if s.Peer != "" {
		// Consul's rules: a peer is never a wildcard and excludes a
		// partition; a peered source inherits nothing from the
		// destination, and matches the peer's default partition.
		if strings.Contains(s.Peer, Wildcard) {
			return nil, fmt.Errorf("Peer %q: a peer cannot be a wildcard", s.Peer)
		}
		if s.Partition != "" {
			return nil, fmt.Errorf("Peer %q: Peer and Partition cannot both be set", s.Peer)
		}
		src.Partition = ztn.DefaultPartition
	} else {
		if src.Partition == "" {
			src.Partition = dst.Partition
		}
		if src.Namespace == "" && dst.Namespace != Wildcard {
			src.Namespace = dst.Namespace
		}
	}
	src.Namespace = orDefault(src.Namespace, ztn.DefaultNamespace)
	if err := checkWildcards(src); err != nil {
		return nil, err
	}
	if len(s.Description) > metaValueMaxLength {
		return nil, fmt.Errorf("Description is longer than %d bytes", metaValueMaxLength)
	}
	if len(s.Permissions) == 0 {
		if s.Action != ActionAllow && s.Action != ActionDeny {
			return nil, fmt.Errorf("Action is %q: it must be %q or %q (or use Permissions)", s.Action, ActionAllow, ActionDeny)
		}
	} else {
		if s.Action != "" {
			return nil, errors.New("Action must be omitted when Permissions are set")
		}
		if exactParts(dst) < 2 {
			return nil, errors.New("Permissions cannot be used when the destination is a wildcard")
		}
	}
	if s.Type != "" && s.Type != "consul" {
		return nil, fmt.Errorf("Type is %q, want \"consul\"", s.Type)
	}
	r := &rule{
		Intention: Intention{
			Source:      src,
			Destination: dst,
			Action:      s.Action,
			Precedence:  precedence(src, dst),
			Description: s.Description,
		},
		label: src.String() + " → " + dst.String(),
	}
	if len(s.Permissions) > 0 {
		r.Permissions = make([]Permission, len(s.Permissions))
		r.perms = make([]permMatcher, len(s.Permissions))
		for j := range s.Permissions {
			var err error
			r.Permissions[j], r.perms[j], err = compilePermission(&s.Permissions[j])
			if err != nil {
				return nil, fmt.Errorf("permission %d: %w", j+1, err)
			}
		}
	}
	return r, nil
}

// compilePermission validates p and returns its normalized copy (methods in
// upper case) and its matcher.
func compilePermission(p *Permission) (Permission, permMatcher, error) {
	var m permMatcher
	switch p.Action {
	case ActionAllow:
		m.allow = true
	case ActionDeny:
	default:
		return Permission{}, m, fmt.Errorf("Action is %q: it must be %q or %q", p.Action, ActionAllow, ActionDeny)
	}
	if p.HTTP == nil {
		return Permission{}, m, errors.New("HTTP is required")
	}
	h := *p.HTTP
	paths := 0
	if h.PathExact != "" {
		paths++
		if !strings.HasPrefix(h.PathExact, "/") {
			return Permission{}, m, fmt.Errorf("HTTP: PathExact %q must start with \"/\"", h.PathExact)
		}
		m.path = pathMatcher{op: pathExact, value: h.PathExact}
	}
	if h.PathPrefix != "" {
		paths++
		if !strings.HasPrefix(h.PathPrefix, "/") {
			return Permission{}, m, fmt.Errorf("HTTP: PathPrefix %q must start with \"/\"", h.PathPrefix)
		}
		m.path = pathMatcher{op: pathPrefix, value: h.PathPrefix}
	}
	if h.PathRegex != "" {
		paths++
		re, err := compileFullMatch(h.PathRegex)
		if err != nil {
			return Permission{}, m, fmt.Errorf("HTTP: PathRegex %q: %w", h.PathRegex, err)
		}
		m.path = pathMatcher{op: pathRegex, value: h.PathRegex, re: re}
	}
	if paths > 1 {
		return Permission{}, m, errors.New("HTTP: at most one of PathExact, PathPrefix and PathRegex may be set")
	}
	if len(h.Header) > 0 {
		h.Header = append([]HeaderMatch(nil), h.Header...)
		m.headers = make([]headerMatcher, len(h.Header))
		for k := range h.Header {
			var err error
			if m.headers[k], err = compileHeader(&h.Header[k]); err != nil {
				if h.Header[k].Name != "" {
					return Permission{}, m, fmt.Errorf("HTTP: header %d (%q): %w", k+1, h.Header[k].Name, err)
				}
				return Permission{}, m, fmt.Errorf("HTTP: header %d: %w", k+1, err)
			}
		}
	}
	if len(h.Methods) > 0 {
		h.Methods = make([]string, len(p.HTTP.Methods))
		for k, method := range p.HTTP.Methods {
			method = strings.ToUpper(method)
			if !validMethod(method) {
				return Permission{}, m, fmt.Errorf("HTTP: Methods: %q is not an HTTP method", method)
			}
			for _, prev := range h.Methods[:k] {
				if prev == method {
					return Permission{}, m, fmt.Errorf("HTTP: Methods: %q is listed more than once", method)
				}
			}
			h.Methods[k] = method
		}
		m.methods = h.Methods
	}
	if paths == 0 && len(h.Header) == 0 && len(h.Methods) == 0 {
		return Permission{}, m, errors.New("HTTP must set at least one condition (a path, a header or methods)")
	}
	m.summary = summarize(&h)
	return Permission{Action: p.Action, HTTP: &h}, m, nil
}

// validMethod is Consul's isValidHTTPMethod.
func validMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

func compileHeader(h *HeaderMatch) (headerMatcher, error) {
	m := headerMatcher{invert: h.Invert, ignoreCase: h.IgnoreCase}
	if h.Name == "" {
		return m, errors.New("Name is required")
	}
	n := 0
	set := func(ok bool, op headerOp, value string) {
		if ok {
			n++
			m.op, m.value = op, value
		}
	}
	set(h.Present, headerPresent, "")
	set(h.Exact != "", headerExact, h.Exact)
	set(h.Prefix != "", headerPrefix, h.Prefix)
	set(h.Suffix != "", headerSuffix, h.Suffix)
	set(h.Contains != "", headerContains, h.Contains)
	set(h.Regex != "", headerRegex, h.Regex)
	if n != 1 {
		return m, errors.New("exactly one of Present, Exact, Prefix, Suffix, Contains and Regex must be set")
	}
	if h.IgnoreCase && (h.Present || h.Regex != "") {
		return m, errors.New("IgnoreCase cannot be used with Present or Regex")
	}
	if m.op == headerRegex {
		re, err := compileFullMatch(h.Regex)
		if err != nil {
			return m, fmt.Errorf("Regex %q: %w", h.Regex, err)
		}
		m.re = re
	}
	if m.ignoreCase {
		m.value = lowerASCII(m.value)
	}
	m.key = http.CanonicalHeaderKey(h.Name)
	m.lowerKey = strings.ToLower(h.Name)
	switch m.lowerKey {
	case ":method":
		m.pseudo = pseudoMethod
	case ":path":
		m.pseudo = pseudoPath
	}
	return m, nil
}

// compileFullMatch compiles an RE2 expression that must match a whole
// string, as Envoy's safe_regex does.
func compileFullMatch(expr string) (*regexp.Regexp, error) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, err
	}
	full, err := regexp.Compile(`\A(?:` + expr + `)\z`)
	if err != nil {
		// Only an unterminated \Q...\E can reach past the group; the
		// parsed form spells it with escapes instead.
		full, err = regexp.Compile(`\A(?:` + re.String() + `)\z`)
	}
	return full, err
}

// summarize describes a permission's conditions for decision reasons, e.g.
// `GET,HEAD /admin` or `prefix /api/, header x-role = "admin"`.
func summarize(h *HTTPMatch) string {
	var b strings.Builder
	sep := func(s string) {
		if b.Len() > 0 {
			b.WriteString(s)
		}
	}
	if len(h.Methods) > 0 {
		b.WriteString(strings.Join(h.Methods, ","))
	}
	switch {
	case h.PathExact != "":
		sep(" ")
		b.WriteString(h.PathExact)
	case h.PathPrefix != "":
		sep(" ")
		b.WriteString("prefix " + h.PathPrefix)
	case h.PathRegex != "":
		sep(" ")
		b.WriteString("regex " + h.PathRegex)
	}
	for _, hm := range h.Header {
		sep(", ")
		b.WriteString("header ")
		if hm.Invert {
			b.WriteString("not ")
		}
		b.WriteString(strings.ToLower(hm.Name))
		switch {
		case hm.Present:
			b.WriteString(" present")
		case hm.Exact != "":
			fmt.Fprintf(&b, " = %q", hm.Exact)
		case hm.Prefix != "":
			fmt.Fprintf(&b, " prefix %q", hm.Prefix)
		case hm.Suffix != "":
			fmt.Fprintf(&b, " suffix %q", hm.Suffix)
		case hm.Contains != "":
			fmt.Fprintf(&b, " contains %q", hm.Contains)
		case hm.Regex != "":
			fmt.Fprintf(&b, " regex %q", hm.Regex)
		}
		if hm.IgnoreCase {
			b.WriteString(" (ignore case)")
		}
	}
	return b.String()
}
