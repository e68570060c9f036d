package ztntest_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/ztnet"
	"github.com/ztnlabs/ztn/ztnet/ztntest"
)

// A test of a service and its intentions: web may call fortune, intruder
// may not. (inTest stands for a test function; in yours, t is its
// *testing.T.)
func Example() {
	inTest(func(t testing.TB) {
		mesh := ztntest.NewMesh(t)
		mesh.SetIntentionsJSON(`{"Kind": "service-intentions", "Name": "fortune",
			"Sources": [{"Name": "web", "Action": "allow"}]}`)
		mesh.Serve("fortune", func(c net.Conn) {
			_, _ = io.WriteString(c, "Trust, but verify.\n")
		})

		c, err := mesh.Dial("web", "fortune")
		if err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Print(line)

		_, err = mesh.Dial("intruder", "fortune")
		fmt.Println(err)
	})
	// Output:
	// Trust, but verify.
	// ztnet: dial fortune: spiffe://ztn.dev/ns/default/dc/dc1/svc/intruder denied: no intention matches (default deny)
}

// Intentions written in Go rather than JSON.
func ExampleMesh_SetIntentions() {
	inTest(func(t testing.TB) {
		mesh := ztntest.NewMesh(t)
		mesh.SetIntentions(authz.ConfigEntry{
			Name:    "api",
			Sources: []authz.SourceIntention{{Name: "*", Action: authz.ActionAllow}, {Name: "batch", Action: authz.ActionDeny}},
		})
		mesh.Serve("api", func(c net.Conn) {})
		for _, from := range []string{"web", "batch"} {
			c, err := mesh.Dial(from, "api")
			fmt.Println(from, err == nil)
			if c != nil {
				c.Close()
			}
		}
	})
	// Output:
	// web true
	// batch false
}

// The peer of a connection is a service of the mesh, named by its SPIFFE ID.
func ExampleMesh_Serve() {
	inTest(func(t testing.TB) {
		mesh := ztntest.NewMesh(t)
		mesh.SetIntentionsJSON(`{"Kind": "service-intentions", "Name": "echo",
			"Sources": [{"Name": "web", "Action": "allow"}]}`)
		peers := make(chan string, 1)
		mesh.Serve("echo", func(c net.Conn) {
			peer, _ := ztnet.Peer(c)
			peers <- peer.Name
			_, _ = io.Copy(c, c)
		})
		c, err := mesh.Dial("web", "echo")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(c, "ping")
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Print(line)
		fmt.Println("echo saw", <-peers)
	})
	// Output:
	// ping
	// echo saw web
}

// Services are made on first use and shared by name; give the Service to
// code under test, such as a grpcztn or httpztn server.
func ExampleMesh_Service() {
	inTest(func(t testing.TB) {
		mesh := ztntest.NewMesh(t)
		api := mesh.Service("api")
		fmt.Println(api.ID())
		fmt.Println(mesh.Service("api") == api)
	})
	// Output:
	// spiffe://ztn.dev/ns/default/dc/dc1/svc/api
	// true
}
