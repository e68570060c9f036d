package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/ztnlabs/ztn/discovery"
)

// A Static catalog resolves the instances it was given and those
// registered since; a Watcher's Changed channel closes at each change.
func ExampleStatic() {
	ctx := context.Background()
	catalog := discovery.NewStatic(map[string][]discovery.Instance{
		"fortune": {{ID: "fortune-1", Address: "127.0.0.1:8181"}},
	})

	changed := catalog.Changed("fortune") // take it before resolving
	deregister, err := catalog.Register(ctx, discovery.Registration{
		Service: "fortune", ID: "fortune-2", Address: "127.0.0.1:8182",
	})
	if err != nil {
		log.Fatal(err)
	}
	<-changed

	instances, err := catalog.Resolve(ctx, "fortune")
	if err != nil {
		log.Fatal(err)
	}
	for _, in := range instances {
		fmt.Println(in.ID, in.Address)
	}

	if err := deregister(ctx); err != nil {
		log.Fatal(err)
	}
	instances, _ = catalog.Resolve(ctx, "fortune")
	fmt.Println(len(instances), "instance after deregistering")

	// Output:
	// fortune-1 127.0.0.1:8181
	// fortune-2 127.0.0.1:8182
	// 1 instance after deregistering
}

// A Balancer takes the instances in turn, and puts one that keeps failing
// last until its ejection ends.
func ExampleBalancer() {
	b := discovery.NewBalancer(discovery.WithEjection(2, 10*time.Second, time.Minute))
	instances := []discovery.Instance{
		{ID: "a", Address: "10.0.0.1:8443"},
		{ID: "b", Address: "10.0.0.2:8443"},
		{ID: "c", Address: "10.0.0.3:8443"},
	}
	ids := func(in []discovery.Instance) []string {
		var out []string
		for _, x := range in {
			out = append(out, x.ID)
		}
		return out
	}
	fmt.Println(ids(b.Pick("api", instances)))
	fmt.Println(ids(b.Pick("api", instances)))

	refused := errors.New("connection refused")
	b.Report("api", instances[0], refused)
	b.Report("api", instances[0], refused) // the second failure in a row ejects it
	fmt.Println("ejected:", ids(b.Ejected("api")))
	fmt.Println(ids(b.Pick("api", instances)))

	// Output:
	// [a b c]
	// [b c a]
	// ejected: [a]
	// [c b a]
}
