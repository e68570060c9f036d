package ztnet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/ztnet"
)

// A whole mesh in one process: "web" may call "fortune", "intruder" may not.
func Example() {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	mesh, err := ztnet.NewDev(ztnet.WithLogger(quiet))
	if err != nil {
		panic(err)
	}
	entries, err := authz.ParseConfigEntries([]byte(`{
		"Kind": "service-intentions", "Name": "fortune",
		"Sources": [{"Name": "web", "Action": "allow"}]}`))
	if err != nil {
		panic(err)
	}
	if err := mesh.Policy().Set(entries...); err != nil {
		panic(err)
	}

	fortune, _ := mesh.Service(ctx, "fortune")
	defer fortune.Close()
	l, _ := fortune.Listen(ctx, "tcp", "127.0.0.1:0")
	go func() {
		for {
			c, err := l.Accept() // only authorized peers get here
			if err != nil {
				return
			}
			peer, _ := ztnet.Peer(c)
			fmt.Fprintf(c, "Trust, but verify, %s.\n", peer)
			c.Close()
		}
	}()

	web, _ := mesh.Service(ctx, "web")
	defer web.Close()
	c, err := web.Dial(ctx, "fortune")
	if err != nil {
		panic(err)
	}
	msg, _ := io.ReadAll(c)
	c.Close()
	fmt.Print(string(msg))

	intruder, _ := mesh.Service(ctx, "intruder")
	defer intruder.Close()
	_, err = intruder.Dial(ctx, "fortune")
	var denied *ztnet.DeniedError
	fmt.Println(errors.As(err, &denied), err)
	// Output:
	// Trust, but verify, spiffe://ztn.dev/ns/default/dc/dc1/svc/web.
	// true ztnet: dial fortune: spiffe://ztn.dev/ns/default/dc/dc1/svc/intruder denied: no intention matches (default deny)
}
