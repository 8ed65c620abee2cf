package models

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// fakeHub imitates the two Hugging Face Hub endpoints go-huggingface uses: the repo info
// (/api/models/<id>/revision/<rev>) and file resolution (/<id>/resolve/<sha>/<file>, HEAD and GET,
// with an ETag). It serves the files of dir as repo id.
func fakeHub(t *testing.T, id, dir string) *httptest.Server {
	t.Helper()
	const sha = "0123456789abcdef0123456789abcdef01234567"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var siblings []map[string]any
	for _, e := range entries {
		siblings = append(siblings, map[string]any{"rfilename": e.Name()})
	}
	info, _ := json.Marshal(map[string]any{"id": id, "sha": sha, "siblings": siblings})
	mux := http.NewServeMux()
	mux.HandleFunc("/api/models/"+id+"/revision/main", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(info)
	})
	mux.HandleFunc("/"+id+"/resolve/"+sha+"/", func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/"+id+"/resolve/"+sha+"/")
		data, err := os.ReadFile(filepath.Join(dir, filepath.Base(name)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		sum := sha256.Sum256(data)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		w.Header().Set("X-Repo-Commit", sha)
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", "0")
			return
		}
		_, _ = w.Write(data)
	})
	return httptest.NewServer(mux)
}

// closedEndpoint returns an http URL on loopback where nothing listens.
func closedEndpoint(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

// TestLoadFromHub downloads golden/tiny-llama-mha from a loopback imitation of the Hub into a
// fresh HF cache, checks it against the PyTorch golden values, then loads it again with the hub
// unreachable (from the cache).
func TestLoadFromHub(t *testing.T) {
	src := testdata.GoldenPath(t, "tiny-llama-mha")
	srv := fakeHub(t, "tester/tiny-llama-mha", src)
	cache := t.TempDir()
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_TOKEN", "")
	m := mustLoad(t, "tester/tiny-llama-mha", LoadOptions{CacheDir: cache, Quiet: true})
	if !strings.HasPrefix(m.Store.GetVariable(VarPath("model.norm.weight")).Path(), "/model") {
		t.Fatal("store paths are not HF names")
	}
	checkForwardGolden(t, m, 1e-4, 1e-5)
	if _, err := os.Stat(filepath.Join(cache, "models--tester--tiny-llama-mha", "snapshots")); err != nil {
		t.Errorf("not in the standard HF cache layout: %v", err)
	}
	srv.Close()
	t.Setenv("HF_ENDPOINT", closedEndpoint(t))
	m2 := mustLoad(t, "tester/tiny-llama-mha", LoadOptions{CacheDir: cache, Quiet: true})
	checkForwardGolden(t, m2, 1e-4, 1e-5)
}

// TestLoadHubOffline: a repo id that is not cached, with the hub unreachable, fails with a
// message saying what to do.
func TestLoadHubOffline(t *testing.T) {
	t.Setenv("HF_ENDPOINT", closedEndpoint(t))
	_, err := Load(backend(t), "nobody/no-such-model", LoadOptions{CacheDir: t.TempDir(), Quiet: true})
	if err == nil {
		t.Fatal("expected an error")
	}
	for _, want := range []string{"nobody/no-such-model", "could not be downloaded", "LLMPRUNER_DATA", "Download the model"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestLooksLikeRepoID(t *testing.T) {
	for s, want := range map[string]bool{"meta-llama/Llama-2-7b-hf": true, "a/b": true, "a": false, "a/b/c": false,
		"/abs/path": false, "./x/y": false, "../x": false, "x/..": false} {
		if got := LooksLikeRepoID(s); got != want {
			t.Errorf("LooksLikeRepoID(%q) = %v", s, got)
		}
	}
}
