package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadTextCRLF(t *testing.T) {
	p := writeTemp(t, "a.txt", "one\r\ntwo\r\n\r\nthree\rfour\n")
	got, err := ReadText(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := "one\ntwo\n\nthree\rfour\n"; got != want {
		t.Fatalf("ReadText = %q, want %q", got, want)
	}
}

func TestReadTextRejectsNonUTF8(t *testing.T) {
	p := writeTemp(t, "latin1.txt", "caf\xe9 ok\nmore")
	_, err := ReadText(p)
	if err == nil {
		t.Fatal("want an error for non-UTF-8 text")
	}
	for _, want := range []string{"latin1.txt", "not valid UTF-8", "byte offset 3", "0xe9"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// A multi-byte rune before the bad byte: the offset counts bytes.
	p = writeTemp(t, "b.txt", "é\xff")
	if _, err := ReadText(p); err == nil || !strings.Contains(err.Error(), "byte offset 2") {
		t.Errorf("error %v, want byte offset 2", err)
	}
}

func TestReadTextMissing(t *testing.T) {
	_, err := ReadText(filepath.Join(t.TempDir(), "nope.txt"))
	if err == nil || !strings.Contains(err.Error(), "nope.txt") {
		t.Fatalf("error %v, want one naming the missing file", err)
	}
}
