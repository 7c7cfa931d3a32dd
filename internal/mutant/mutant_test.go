package mutant

import "testing"

func TestSetAndRestore(t *testing.T) {
	for _, m := range All() {
		if Enabled(m) {
			t.Fatalf("%v enabled before Set", m)
		}
	}
	restore := Set(ReleaseWithStaleToken)
	if !Enabled(ReleaseWithStaleToken) || Enabled(NoTermExtension) {
		t.Fatal("Set(ReleaseWithStaleToken) did not enable exactly it")
	}
	restore2 := Set(NoTermExtension)
	if !Enabled(ReleaseWithStaleToken) || !Enabled(NoTermExtension) {
		t.Fatal("a second Set dropped the first")
	}
	restore2()
	if !Enabled(ReleaseWithStaleToken) || Enabled(NoTermExtension) {
		t.Fatal("restore did not return to the previous set")
	}
	restore()
	for _, m := range All() {
		if Enabled(m) {
			t.Fatalf("%v enabled after restore", m)
		}
	}
	if len(All()) != 6 || All()[0].String() != "NoLeaseRecheckAfterWait" {
		t.Fatalf("All() = %v", All())
	}
}

func TestSetUnknownPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Set(0) did not panic")
		}
	}()
	Set(0)
}
