package ztnet

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/test/poll"
)

// Every error the docs promise is reachable with errors.As / errors.Is from
// Dial and dialAddress, whether one instance or several were tried; each
// reads "ztnet: dial <service>..." once, without a second "ztnet:", and
// counts instances only when there were several.
func TestDialErrorTypes(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api", "web->billing")
	api := m.service(t, "api")
	web := m.service(t, "web")
	intruder := m.service(t, "intruder")
	l := listen(t, api)
	serve(t, l, echo)
	apiAddr := l.Addr().String()

	// A stalled server: accepts TCP and never answers the handshake.
	stalled, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()

	// "billing" is served by api's instance: a server with the wrong identity.
	m.Catalog().Set("billing", instanceAt("b1", apiAddr))
	m.Catalog().Set("billing2", instanceAt("b1", apiAddr), instanceAt("b2", apiAddr))
	m.Catalog().Set("stalled", instanceAt("s1", stalled.Addr().String()))

	// "noCert" has no usable certificate: its source is closed.
	src, err := m.CA().Source(context.Background(), "dc1", "nocert", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	noCert := m.service(t, "nocert", WithSource(src))
	_ = src.Close()

	var rejected *RejectedError
	var denied *DeniedError
	for _, tc := range []struct {
		name string
		err  func() error
		ok   func(error) bool
	}{
		{"Dial wrong identity (one instance)", func() error { _, err := web.Dial(poll.Context(t, 5*time.Second), "billing"); return err },
			func(err error) bool {
				return errors.As(err, &rejected) && !strings.Contains(err.Error(), "instances failed")
			}},
		{"Dial wrong identity (two instances)", func() error { _, err := web.Dial(poll.Context(t, 5*time.Second), "billing2"); return err },
			func(err error) bool {
				return errors.As(err, &rejected) && strings.HasPrefix(err.Error(), "ztnet: dial billing2: 2 instances failed: ")
			}},
		{"Dial without a usable certificate", func() error { _, err := noCert.Dial(poll.Context(t, 5*time.Second), "api"); return err },
			func(err error) bool {
				return strings.HasPrefix(err.Error(), "ztnet: dial api: no usable certificate: ")
			}},
		{"DialAddress wrong identity", func() error {
			_, err := web.dialAddress(poll.Context(t, 5*time.Second), "billing", apiAddr)
			return err
		}, func(err error) bool { return errors.As(err, &rejected) }},
		{"Dial denied", func() error { _, err := intruder.Dial(poll.Context(t, 5*time.Second), "api"); return err },
			func(err error) bool { return errors.As(err, &denied) }},
		{"DialAddress denied", func() error {
			_, err := intruder.dialAddress(poll.Context(t, 5*time.Second), "api", apiAddr)
			return err
		},
			func(err error) bool { return errors.As(err, &denied) }},
		{"Dial no instance", func() error { _, err := web.Dial(poll.Context(t, 5*time.Second), "nothing"); return err },
			func(err error) bool { return errors.Is(err, ErrNoInstance) }},
		{"Dial deadline", func() error { _, err := web.Dial(poll.Context(t, 200*time.Millisecond), "stalled"); return err },
			func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{"DialAddress canceled", func() error {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			_, err := web.dialAddress(ctx, "stalled", stalled.Addr().String())
			return err
		}, func(err error) bool { return errors.Is(err, context.Canceled) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil || !tc.ok(err) {
				t.Fatalf("error %v (%T) does not unwrap to the promised type", err, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "ztnet: dial ") || strings.Count(msg, "ztnet:") != 1 {
				t.Errorf("error %q does not read \"ztnet: dial <service>: ...\" once", msg)
			}
		})
	}
}
