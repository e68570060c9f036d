// Package storepb is the generated code of store.proto, the chat store's
// gRPC API.
package storepb

// Regenerate with protoc (Debian: protobuf-compiler), protoc-gen-go and
// protoc-gen-go-grpc on PATH:
//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative store.proto
