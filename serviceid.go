package ztn

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// DefaultPartition and DefaultNamespace are what an ID without them means.
const (
	DefaultPartition = "default"
	DefaultNamespace = "default"
)

// ServiceID is a service's identity: the parts of the SPIFFE ID that names
// it, in Consul's service form
//
//	spiffe://<trust-domain>[/ap/<partition>]/ns/<namespace>/dc/<datacenter>/svc/<name>
//
// Every other form (agents, servers, gateways, signing IDs, arbitrary paths)
// is refused by the parsers. A ServiceID is comparable; its String is the
// SPIFFE ID.
type ServiceID struct {
	TrustDomain spiffeid.TrustDomain
	Partition   string // "default" when the ID has no /ap/ segment
	Namespace   string
	Datacenter  string
	Name        string
}

// ErrNotService is wrapped by every error the parsers return for an ID that is a
// valid SPIFFE ID but does not name a service.
var ErrNotService = errors.New("not a service SPIFFE ID")

// ServiceIDFromSPIFFEID extracts the service identity from a SPIFFE ID.
func ServiceIDFromSPIFFEID(id spiffeid.ID) (ServiceID, error) {
	if id.IsZero() {
		return ServiceID{}, fmt.Errorf("ztn: empty SPIFFE ID: %w", ErrNotService)
	}
	segs, ok := split(id.Path())
	if !ok {
		return ServiceID{}, fmt.Errorf("ztn: %s: %w", id, ErrNotService)
	}
	s := ServiceID{TrustDomain: id.TrustDomain(), Partition: DefaultPartition}
	if len(segs) == 8 {
		if segs[0] != "ap" {
			return ServiceID{}, fmt.Errorf("ztn: %s: %w", id, ErrNotService)
		}
		s.Partition = segs[1]
		segs = segs[2:]
	}
	if len(segs) != 6 || segs[0] != "ns" || segs[2] != "dc" || segs[4] != "svc" {
		return ServiceID{}, fmt.Errorf("ztn: %s: %w", id, ErrNotService)
	}
	s.Namespace, s.Datacenter, s.Name = segs[1], segs[3], segs[5]
	for _, v := range []string{s.Partition, s.Namespace, s.Datacenter, s.Name} {
		if err := validName(v); err != nil {
			return ServiceID{}, fmt.Errorf("ztn: %s: %w: %v", id, ErrNotService, err)
		}
	}
	return s, nil
}

// ParseServiceID parses a SPIFFE ID string, such as
// "spiffe://example.org/ns/default/dc/dc1/svc/web", into a service identity.
func ParseServiceID(s string) (ServiceID, error) {
	id, err := spiffeid.FromString(s)
	if err != nil {
		return ServiceID{}, fmt.Errorf("ztn: %q: %w", s, err)
	}
	return ServiceIDFromSPIFFEID(id)
}

// ServiceIDFromURI extracts the service identity from a certificate's URI
// SAN.
func ServiceIDFromURI(u *url.URL) (ServiceID, error) {
	if u == nil {
		return ServiceID{}, fmt.Errorf("ztn: nil URI: %w", ErrNotService)
	}
	id, err := spiffeid.FromURI(u)
	if err != nil {
		return ServiceID{}, fmt.Errorf("ztn: %q: %w", u.String(), err)
	}
	return ServiceIDFromSPIFFEID(id)
}

// NewServiceID returns the identity of service name in the default partition
// and namespace. Validate reports whether the parts are valid.
func NewServiceID(td spiffeid.TrustDomain, datacenter, name string) ServiceID {
	return ServiceID{TrustDomain: td, Partition: DefaultPartition, Namespace: DefaultNamespace, Datacenter: datacenter, Name: name}
}

// Validate reports whether s can be turned into a SPIFFE ID.
func (s ServiceID) Validate() error {
	if s.TrustDomain.IsZero() {
		return errors.New("ztn: empty trust domain")
	}
	for _, f := range []struct{ what, v string }{
		{"partition", s.Partition}, {"namespace", s.Namespace}, {"datacenter", s.Datacenter}, {"service name", s.Name},
	} {
		if f.what == "partition" && f.v == "" {
			continue
		}
		if err := validName(f.v); err != nil {
			return fmt.Errorf("ztn: invalid %s %q: %v", f.what, f.v, err)
		}
	}
	return nil
}

// SPIFFEID returns the SPIFFE ID of s.
func (s ServiceID) SPIFFEID() (spiffeid.ID, error) {
	if err := s.Validate(); err != nil {
		return spiffeid.ID{}, err
	}
	if s.Partition == "" || s.Partition == DefaultPartition {
		return spiffeid.FromSegments(s.TrustDomain, "ns", s.Namespace, "dc", s.Datacenter, "svc", s.Name)
	}
	return spiffeid.FromSegments(s.TrustDomain, "ap", s.Partition, "ns", s.Namespace, "dc", s.Datacenter, "svc", s.Name)
}

// IsZero reports whether s is the zero ServiceID.
func (s ServiceID) IsZero() bool { return s == ServiceID{} }

// String returns the SPIFFE ID of s, or a description of why it has none.
func (s ServiceID) String() string {
	id, err := s.SPIFFEID()
	if err != nil {
		return fmt.Sprintf("invalid service ID (%v)", err)
	}
	return id.String()
}

func split(path string) ([]string, bool) {
	if !strings.HasPrefix(path, "/") {
		return nil, false
	}
	segs := strings.Split(path[1:], "/")
	if len(segs) != 6 && len(segs) != 8 {
		return nil, false
	}
	return segs, true
}

// validName accepts what Consul accepts in service names, namespaces,
// partitions and datacenters: letters, digits, '-', '_' and '.', starting
// with a letter or digit, at most 253 bytes.
func validName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 253 {
		return errors.New("longer than 253 bytes")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return fmt.Errorf("character %q not allowed", c)
		}
	}
	return nil
}
