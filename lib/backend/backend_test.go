package backend

import (
	"strings"
	"testing"
)

func TestDefaultIsGo(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "")
	if Config() != "go" {
		t.Fatalf("Config() = %q, want go", Config())
	}
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.ToLower(b.Name()), "go") {
		t.Fatalf("backend %q is not the Go backend", b.Name())
	}
}

func TestMissingBackendIsAClearError(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "nosuch:gpu")
	_, err := New()
	if err == nil || !strings.Contains(err.Error(), `backend "nosuch" is not in this binary`) {
		t.Fatalf("unexpected error: %v", err)
	}
}
