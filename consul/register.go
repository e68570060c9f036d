package consul

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/internal/consulx"
)

// Check outputs of a registered instance's TTL check.
const (
	checkOutputHealthy = "ztn: serving"
	checkName          = "ztn instance health"
)

// Register registers r with the Consul agent as a Connect-native instance
// (Connect.Native, ID, address, port, tags, meta) with a TTL check, and
// starts keeping the check passing while r.Healthy returns nil (critical,
// with the error as its output, while it does not). An address with an
// unspecified host ("[::]:8443", "0.0.0.0:8443", ":8443") is registered
// without an address, so that Consul gives the node's. If the agent loses
// the registration (it restarted without its state), the heartbeat
// registers the instance again.
//
// The returned function stops the heartbeat and deregisters the instance.
// Registering needs the ACL permission service:write on r.Service.
func (c *Catalog) Register(ctx context.Context, r discovery.Registration) (func(context.Context) error, error) {
	if r.Service == "" {
		return nil, errors.New("consul: register: empty service name")
	}
	host, portStr, err := net.SplitHostPort(r.Address)
	if err != nil {
		return nil, fmt.Errorf("consul: register %s: address %q: %w", r.Service, r.Address, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("consul: register %s: address %q: invalid port", r.Service, r.Address)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = ""
	}
	if r.ID == "" {
		r.ID = r.Service + "-" + randomSuffix()
	}
	reg := &registration{
		c:       c,
		r:       r,
		host:    host,
		port:    port,
		checkID: "service:" + r.ID,
		done:    make(chan struct{}),
	}
	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.wg.Add(1) // released by the heartbeat, or below
	}
	c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("consul: register %s: %w", r.Service, errClosed)
	}
	status, output := reg.probe()
	if err := reg.register(ctx, status, output); err != nil {
		c.wg.Done()
		return nil, fmt.Errorf("consul: register %s (%s): %w", r.Service, r.ID, err)
	}
	var hctx context.Context
	hctx, reg.stop = context.WithCancel(c.ctx)
	go reg.heartbeat(hctx, status)
	c.log.Debug("registered in Consul", "service", r.Service, "id", r.ID, "address", net.JoinHostPort(host, portStr), "status", status)
	return reg.deregister, nil
}

// registration is one registered instance and its heartbeat.
type registration struct {
	c          *Catalog
	r          discovery.Registration
	host       string
	port       int
	checkID    string
	stop       context.CancelFunc
	done       chan struct{} // closed when the heartbeat returns
	deregOnce  sync.Once
	deregError error
}

// probe asks the instance whether it can serve.
func (g *registration) probe() (status, output string) {
	if g.r.Healthy == nil {
		return api.HealthPassing, checkOutputHealthy
	}
	if err := g.r.Healthy(); err != nil {
		return api.HealthCritical, "ztn: not serving: " + err.Error()
	}
	return api.HealthPassing, checkOutputHealthy
}

func (g *registration) register(ctx context.Context, status, output string) error {
	c := g.c
	svc := &api.AgentServiceRegistration{
		ID:      g.r.ID,
		Name:    g.r.Service,
		Address: g.host,
		Port:    g.port,
		Tags:    g.r.Tags,
		Meta:    g.r.Meta,
		Connect: &api.AgentServiceConnect{Native: true},
		Check: &api.AgentServiceCheck{
			CheckID:                        g.checkID,
			Name:                           checkName,
			TTL:                            c.opts.ttl.String(),
			Status:                         status,
			Notes:                          "kept passing by the ztn process while the instance can serve",
			DeregisterCriticalServiceAfter: c.opts.deregisterAfter.String(),
		},
	}
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true, Token: c.cfg.Query.Token}
	err := c.client.Agent().ServiceRegisterOpts(svc, opts.WithContext(ctx))
	if err != nil {
		return consulx.Explain(err, fmt.Sprintf("service:write on %q", g.r.Service))
	}
	// The registration's initial status has no output: set it.
	return g.update(ctx, status, output)
}

func (g *registration) update(ctx context.Context, status, output string) error {
	q := g.c.cfg.Query
	err := g.c.client.Agent().UpdateTTLOpts(g.checkID, output, status, q.WithContext(ctx))
	return consulx.Explain(err, fmt.Sprintf("service:write on %q", g.r.Service))
}

// heartbeat updates the TTL check every third of the TTL with the
// instance's health, and registers the instance again if the agent no
// longer knows its check.
func (g *registration) heartbeat(ctx context.Context, last string) {
	c := g.c
	defer c.wg.Done()
	defer close(g.done)
	t := time.NewTicker(c.opts.ttl / 3)
	defer t.Stop()
	var failing error
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		status, output := g.probe()
		rctx, cancel := context.WithTimeout(ctx, c.opts.ttl)
		err := g.update(rctx, status, output)
		if err != nil && consulx.StatusCode(err) == 404 && strings.Contains(err.Error(), "Unknown check") {
			c.log.Warn("consul no longer knows the instance (agent restarted?); registering it again", "service", g.r.Service, "id", g.r.ID)
			err = g.register(rctx, status, output)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			if failing == nil || failing.Error() != err.Error() {
				c.log.Warn("consul health check update failed", "service", g.r.Service, "id", g.r.ID, "err", err)
			}
			failing = err
			continue
		case failing != nil:
			c.log.Info("consul health check updates work again", "service", g.r.Service, "id", g.r.ID)
			failing = nil
		}
		if status != last {
			c.log.Info("instance health changed", "service", g.r.Service, "id", g.r.ID, "status", status, "output", output)
			last = status
		}
	}
}

// deregister stops the heartbeat and deregisters the instance; later calls
// return the first call's result.
func (g *registration) deregister(ctx context.Context) error {
	g.deregOnce.Do(func() {
		g.stop()
		<-g.done
		q := g.c.cfg.Query
		err := g.c.client.Agent().ServiceDeregisterOpts(g.r.ID, q.WithContext(ctx))
		if err != nil && consulx.StatusCode(err) != 404 { // 404: already gone
			g.deregError = fmt.Errorf("consul: deregister %s (%s): %w", g.r.Service, g.r.ID,
				consulx.Explain(err, fmt.Sprintf("service:write on %q", g.r.Service)))
			return
		}
		g.c.log.Debug("deregistered from Consul", "service", g.r.Service, "id", g.r.ID)
	})
	return g.deregError
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
