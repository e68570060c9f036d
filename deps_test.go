package ztn

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// consulAPI is Consul's client library, which only package consul links.
const consulAPI = "github.com/hashicorp/consul/api"

// deps returns every package pkgs link, as go list -deps lists them.
func deps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", strings.Join(pkgs, " "), err)
	}
	return strings.Fields(string(out))
}

// A program that authorizes with authz and finds services with discovery
// (the dev mesh, or its own backends) does not link Consul's client: the
// Consul backends live in package consul.
func TestAuthzDiscoveryLinkNoConsul(t *testing.T) {
	if got := deps(t, "./authz", "./discovery"); slices.Contains(got, consulAPI) {
		t.Errorf("authz or discovery links %s", consulAPI)
	}
	// The check can fail: package consul does link it.
	if got := deps(t, "./consul"); !slices.Contains(got, consulAPI) {
		t.Errorf("consul does not link %s: is the import path right?", consulAPI)
	}
}
