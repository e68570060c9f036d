package consul

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/hashicorp/consul/api"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/internal/consulx"
)

// convert turns the intentions /match returned for the destination into
// service-intentions entries, one per destination they name (the
// destination itself, "*", ...), for Policy.Set. What ztn cannot enforce is
// turned into a deny (see [Intentions]) and described in warnings.
//
// consul/api's Intention has no JWT field, but Consul's answer does (an
// entry's JWT requirement is copied into each of its intentions): to see
// it, the raw service-intentions entries that contribute allow or L7
// intentions are read as well. One that cannot be read (no ACL permission)
// cannot be verified, so its allow and L7 intentions are denied.
func (c *Intentions) convert(ctx context.Context, ixns []*api.Intention) ([]authz.ConfigEntry, []string, error) {
	var (
		entries  []authz.ConfigEntry
		warnings []string
	)
	// Group by destination, in Consul's (precedence) order.
	type group struct {
		ixns     []*api.Intention
		needsJWT bool // has intentions a JWT requirement would restrict
	}
	groups := map[authz.Selector]*group{}
	for _, ixn := range ixns {
		if ixn == nil {
			return nil, nil, errors.New("malformed answer from Consul: a null intention")
		}
		dst := authz.Selector{
			Partition: orDefault(ixn.DestinationPartition, ztn.DefaultPartition),
			Namespace: orDefault(ixn.DestinationNS, ztn.DefaultNamespace),
			Name:      ixn.DestinationName,
		}
		g := groups[dst]
		if g == nil {
			g = &group{}
			groups[dst] = g
			entries = append(entries, authz.ConfigEntry{
				Kind:      authz.KindServiceIntentions,
				Name:      dst.Name,
				Namespace: dst.Namespace,
				Partition: dst.Partition,
			})
		}
		g.ixns = append(g.ixns, ixn)
		if ixn.Action != api.IntentionActionDeny {
			g.needsJWT = true
		}
	}
	for i := range entries {
		dst := authz.Selector{Partition: entries[i].Partition, Namespace: entries[i].Namespace, Name: entries[i].Name}
		g := groups[dst]
		jwt := entryJWT{}
		if g.needsJWT {
			var err error
			if jwt, err = c.readEntryJWT(ctx, dst); err != nil {
				return nil, nil, err
			}
		}
		e := &entries[i]
		for _, ixn := range g.ixns {
			src, warn, err := convertIntention(ixn, dst, jwt)
			if err != nil {
				return nil, nil, fmt.Errorf("intention %s: %w", intentionLabel(ixn), err)
			}
			if warn != "" {
				warnings = append(warnings, "intention "+intentionLabel(ixn)+": "+warn)
			}
			e.Sources = append(e.Sources, src)
		}
	}
	slices.Sort(warnings)
	return entries, warnings, nil
}

func intentionLabel(ixn *api.Intention) string {
	src := ixn.SourceString()
	if ixn.SourcePeer != "" {
		src = "peer " + ixn.SourcePeer + " " + src
	}
	return src + " → " + ixn.DestinationString()
}

// entryJWT is what a service-intentions entry says about JWT requirements.
type entryJWT struct {
	entry      bool                    // the entry requires a JWT for all its sources
	sources    map[authz.Selector]bool // sources with their own requirement
	unverified string                  // why the entry could not be read, if it could not
}

// sourceKey is the normalized name of a source of dst's entry, as
// compileSource normalizes it.
func sourceKey(peer, partition, namespace, name string, dst authz.Selector) authz.Selector {
	if peer != "" {
		return authz.Selector{
			Partition: orDefault(partition, ztn.DefaultPartition),
			Namespace: orDefault(namespace, ztn.DefaultNamespace),
			Name:      name,
			Peer:      peer,
		}
	}
	ns := dst.Namespace
	if ns == authz.Wildcard {
		ns = ztn.DefaultNamespace
	}
	return authz.Selector{
		Partition: orDefault(partition, dst.Partition),
		Namespace: orDefault(namespace, ns),
		Name:      name,
	}
}

// rawEntry is the part of a service-intentions entry consul/api leaves out.
type rawEntry struct {
	JWT     json.RawMessage
	Sources []struct {
		Name, Namespace, Partition, Peer, SamenessGroup string
		JWT                                             json.RawMessage
	}
}

func hasJWT(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// readEntryJWT reads the raw service-intentions entry of dst.
func (c *Intentions) readEntryJWT(ctx context.Context, dst authz.Selector) (entryJWT, error) {
	q := c.cfg.Query
	q.WaitIndex, q.WaitTime = 0, 0
	if dst.Namespace != ztn.DefaultNamespace {
		q.Namespace = dst.Namespace
	}
	if dst.Partition != ztn.DefaultPartition {
		q.Partition = dst.Partition
	}
	var raw rawEntry
	_, err := c.client.Raw().Query("/v1/config/"+api.ServiceIntentions+"/"+dst.Name, &raw, q.WithContext(ctx))
	perm := fmt.Sprintf("intentions:read on %q", dst.Name)
	switch consulx.StatusCode(err) {
	case 0:
		if err != nil {
			return entryJWT{}, fmt.Errorf("reading service-intentions entry %q for JWT requirements: %w", dst, consulx.Explain(err, perm))
		}
	case 404: // deleted since /match answered; the next answer will say so
		return entryJWT{}, nil
	case 403:
		return entryJWT{unverified: fmt.Sprintf("cannot read service-intentions entry %q to check for JWT requirements: %v", dst, consulx.Explain(err, perm))}, nil
	default:
		return entryJWT{}, fmt.Errorf("reading service-intentions entry %q for JWT requirements: %w", dst, consulx.Explain(err, perm))
	}
	out := entryJWT{entry: hasJWT(raw.JWT)}
	for _, s := range raw.Sources {
		if hasJWT(s.JWT) {
			if out.sources == nil {
				out.sources = map[authz.Selector]bool{}
			}
			out.sources[sourceKey(s.Peer, s.Partition, s.Namespace, s.Name, dst)] = true
		}
	}
	return out, nil
}

// convertIntention converts one intention to a source of dst's entry. An
// intention ztn cannot enforce becomes a deny, with a warning.
//
// A source of a peer (SourcePeer) keeps its peer: it matches only callers
// of that peer (for ztnet, a federated trust domain it names so). Consul
// returns such a source's partition empty or "default"; it is left out, as
// an entry writes it.
func convertIntention(ixn *api.Intention, dst authz.Selector, jwt entryJWT) (src authz.SourceIntention, warn string, err error) {
	if ixn.SourceSamenessGroup != "" {
		return src, "", errors.New("sameness-group sources are not supported by ztn")
	}
	src = authz.SourceIntention{
		Name:        ixn.SourceName,
		Namespace:   ixn.SourceNS,
		Partition:   ixn.SourcePartition,
		Peer:        ixn.SourcePeer,
		Action:      authz.Action(ixn.Action),
		Type:        string(ixn.SourceType),
		Description: ixn.Description,
	}
	if src.Peer != "" && src.Partition == ztn.DefaultPartition {
		src.Partition = ""
	}
	denyAll := func(why string) (authz.SourceIntention, string, error) {
		deny := authz.SourceIntention{
			Name:        src.Name,
			Namespace:   src.Namespace,
			Partition:   src.Partition,
			Peer:        src.Peer,
			Action:      authz.ActionDeny,
			Description: truncate("ztn: treated as deny: "+why, metaValueMaxLength),
		}
		if err := (authz.ConfigEntry{Name: dst.Name, Namespace: dst.Namespace, Partition: dst.Partition, Sources: []authz.SourceIntention{deny}}).Validate(); err != nil {
			return deny, "", fmt.Errorf("cannot be represented, even as a deny: %w", err)
		}
		return deny, why + ": treated as deny", nil
	}
	if src.Action != authz.ActionDeny || len(ixn.Permissions) > 0 { // a deny stays a deny whatever else it carries
		key := sourceKey(src.Peer, src.Partition, src.Namespace, src.Name, dst)
		switch {
		case jwt.unverified != "":
			return denyAll(jwt.unverified)
		case jwt.entry:
			return denyAll("the entry requires a JWT, which ztn cannot check")
		case jwt.sources[key]:
			return denyAll("the source requires a JWT, which ztn cannot check")
		}
	}
	var jwtPerms []int
	for i, p := range ixn.Permissions {
		if p == nil {
			return denyAll(fmt.Sprintf("permission %d is null", i+1))
		}
		perm := authz.Permission{Action: authz.Action(p.Action)}
		if p.HTTP != nil {
			perm.HTTP = &authz.HTTPMatch{
				PathExact:  p.HTTP.PathExact,
				PathPrefix: p.HTTP.PathPrefix,
				PathRegex:  p.HTTP.PathRegex,
				Methods:    slices.Clone(p.HTTP.Methods),
			}
			for _, h := range p.HTTP.Header {
				perm.HTTP.Header = append(perm.HTTP.Header, authz.HeaderMatch{
					Name:       h.Name,
					Present:    h.Present,
					Exact:      h.Exact,
					Prefix:     h.Prefix,
					Suffix:     h.Suffix,
					Contains:   h.Contains,
					Regex:      h.Regex,
					Invert:     h.Invert,
					IgnoreCase: h.IgnoreCase,
				})
			}
		}
		if p.JWT != nil {
			// Matching it needs a valid JWT: deny what it matches instead,
			// which never allows more.
			perm.Action = authz.ActionDeny
			jwtPerms = append(jwtPerms, i+1)
		}
		src.Permissions = append(src.Permissions, perm)
	}
	if err := (authz.ConfigEntry{Name: dst.Name, Namespace: dst.Namespace, Partition: dst.Partition, Sources: []authz.SourceIntention{src}}).Validate(); err != nil {
		return denyAll(fmt.Sprintf("rejected by ztn (%v)", err))
	}
	if len(jwtPerms) > 0 {
		warn = fmt.Sprintf("permissions %v require a JWT, which ztn cannot check: they deny instead", jwtPerms)
		src.Description = truncate("ztn: "+warn, metaValueMaxLength)
	}
	return src, warn, nil
}

// truncate cuts s to at most n bytes, on a UTF-8 boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// metaValueMaxLength is Consul's limit on a Description, as authz
// validates it.
const metaValueMaxLength = 512

func noun(allowed bool) string {
	if allowed {
		return "allow"
	}
	return "deny"
}
