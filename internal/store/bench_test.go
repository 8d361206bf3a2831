package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkPut is one durable (fsynced) write.
func BenchmarkPut(b *testing.B) {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "state.db"), BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	value := []byte(`{"name":"laptop","public_key":"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=","addresses":["10.100.0.2/32"]}`)
	i := 0
	for b.Loop() {
		if _, err := s.Put(ctx, fmt.Sprintf("peers/p%d", i%1000), value); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkGet reads one key of a thousand.
func BenchmarkGet(b *testing.B) {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "state.db"), BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	ops := make([]Op, 1000)
	for i := range ops {
		ops[i] = PutOp(fmt.Sprintf("records/r%d", i), []byte("192.0.2.1"))
	}
	if _, err := s.Apply(ctx, ops...); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		if _, err := s.Get(ctx, fmt.Sprintf("records/r%d", i%1000)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
