package grpcztn

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/resolver"

	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/ztnet"
)

// Scheme is the gRPC target scheme of ztn services: "ztn:///<service>".
const Scheme = "ztn"

// defaultResolveInterval is how often the resolver re-reads the instances.
const defaultResolveInterval = time.Second

// NewResolverBuilder returns a gRPC resolver builder for the "ztn" scheme
// that reads instances of the target service ("ztn:///<service>") from r:
// at once, whenever r tells of a change (if it is a [discovery.Watcher], as
// the dev mesh's catalog and Consul's are), every interval as a fallback (a
// second if zero), and whenever gRPC asks (after a connection fails). So a
// client created before its server starts reaches it as soon as the server
// registers. Discovery resolvers answer from a cache kept fresh in the
// background, so polling costs no network round trip. [NewClient] installs
// one for its ClientConn only; nothing is registered globally.
func NewResolverBuilder(r discovery.Resolver, interval time.Duration) resolver.Builder {
	if interval <= 0 {
		interval = defaultResolveInterval
	}
	return &resolverBuilder{r: r, interval: interval}
}

type resolverBuilder struct {
	r        discovery.Resolver
	interval time.Duration
}

func (b *resolverBuilder) Scheme() string { return Scheme }

func (b *resolverBuilder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	service := strings.TrimPrefix(target.URL.Path, "/")
	if service == "" || strings.Contains(service, "/") {
		return nil, fmt.Errorf("grpcztn: target %q: want ztn:///<service>", target.URL.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	z := &ztnResolver{
		r: b.r, service: service, cc: cc, interval: b.interval,
		now: make(chan struct{}, 1), cancel: cancel,
	}
	z.wg.Add(1)
	go z.run(ctx)
	return z, nil
}

type ztnResolver struct {
	r        discovery.Resolver
	service  string
	cc       resolver.ClientConn
	interval time.Duration
	now      chan struct{}
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func (z *ztnResolver) ResolveNow(resolver.ResolveNowOptions) {
	select {
	case z.now <- struct{}{}:
	default:
	}
}

func (z *ztnResolver) Close() {
	z.cancel()
	z.wg.Wait()
}

func (z *ztnResolver) run(ctx context.Context) {
	defer z.wg.Done()
	w, _ := z.r.(discovery.Watcher)
	var last []string
	t := time.NewTicker(z.interval)
	defer t.Stop()
	for {
		var changed <-chan struct{} // nil without a Watcher: never ready
		if w != nil {
			changed = w.Changed(z.service) // before resolving, not to miss a change
		}
		last = z.resolve(ctx, last)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		case <-z.now:
		}
	}
}

// resolve reads the instances and tells gRPC when they changed (or when the
// last attempt failed). It returns what gRPC now knows.
func (z *ztnResolver) resolve(ctx context.Context, last []string) []string {
	rctx, cancel := context.WithTimeout(ctx, z.interval)
	instances, err := z.r.Resolve(rctx, z.service)
	cancel()
	if ctx.Err() != nil {
		return last
	}
	if err == nil && len(instances) == 0 {
		err = ztnet.ErrNoInstance
	}
	if err != nil {
		z.cc.ReportError(fmt.Errorf("grpcztn: resolve %s: %w", z.service, err))
		return nil
	}
	addrs := make([]string, len(instances))
	for i, in := range instances {
		addrs[i] = in.Address
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	if slices.Equal(addrs, last) {
		return last
	}
	st := resolver.State{
		Addresses: make([]resolver.Address, len(addrs)),
		Endpoints: make([]resolver.Endpoint, len(addrs)),
	}
	for i, a := range addrs {
		st.Addresses[i] = resolver.Address{Addr: a}
		st.Endpoints[i] = resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}}
	}
	if err := z.cc.UpdateState(st); err != nil {
		return nil // try again on the next round
	}
	return addrs
}
