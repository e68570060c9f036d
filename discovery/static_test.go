package discovery

import (
	"context"
	"testing"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Changed is closed by each change of its service (Register, deregister,
// Set), and only of its service.
func TestStaticChanged(t *testing.T) {
	ctx := context.Background()
	s := NewStatic(nil)
	api, web := s.Changed("api"), s.Changed("web")
	if closed(api) || s.Changed("api") != api {
		t.Fatal("Changed closed, or a new channel, before any change")
	}
	dereg, err := s.Register(ctx, Registration{Service: "api", Address: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if !closed(api) || closed(web) {
		t.Fatalf("after Register of api: api closed %v, web closed %v", closed(api), closed(web))
	}
	api = s.Changed("api")
	if closed(api) {
		t.Fatal("Changed taken after Register is closed")
	}
	if err := dereg(ctx); err != nil {
		t.Fatal(err)
	}
	if !closed(api) {
		t.Fatal("deregistering did not close Changed")
	}
	api = s.Changed("api")
	s.Set("api", Instance{ID: "a", Address: "127.0.0.1:2"})
	if !closed(api) || closed(web) {
		t.Fatal("Set did not close Changed, or closed another service's")
	}
	if in, _ := s.Resolve(ctx, "api"); len(in) != 1 || in[0].ID != "a" {
		t.Fatalf("Resolve after Set = %v", in)
	}
}
