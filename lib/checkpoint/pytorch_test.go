package checkpoint

import (
	"strings"
	"testing"
)

func TestPyTorchFixtures(t *testing.T) {
	expected := loadExpected(t)
	for _, name := range []string{"pt_f32.bin", "pt_f16.bin", "pt_bf16.bin", "pt_views.bin", "pt_shared.bin", "pt_params.bin", "pt_legacy.bin"} {
		t.Run(name, func(t *testing.T) {
			want, ok := expected[name]
			if !ok {
				t.Fatalf("expected.json has no entry for %s", name)
			}
			r, err := Open("testdata/" + name)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			checkAgainst(t, r, want)
		})
	}
}

func TestPyTorchSharded(t *testing.T) {
	want := loadExpected(t)["pt_sharded"]
	for _, p := range []string{"testdata/pt_sharded", "testdata/pt_sharded/pytorch_model.bin.index.json"} {
		r, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		checkAgainst(t, r, want)
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestPyTorchForbiddenGlobal(t *testing.T) {
	_, err := Open("testdata/pt_forbidden.bin")
	if err == nil {
		t.Fatal("a pickle naming os.system was accepted")
	}
	msg := err.Error()
	if !strings.Contains(msg, "pt_forbidden.bin") || !strings.Contains(msg, "system") || !strings.Contains(msg, "not allowed") {
		t.Errorf("error should name the file and the forbidden global: %v", err)
	}
}
