package lock

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// tval is shaped like the values raftlock stores: a few integers and a slice
// treated as immutable.
type tval struct {
	Version, Owner, Expiry int64
	Waiters                []uint64
}

func mktval(x int64) tval {
	v := tval{Version: x, Owner: x * 3, Expiry: -x}
	if x%3 == 0 {
		v.Waiters = []uint64{uint64(x), uint64(x + 1)}
	}
	return v
}

func eqtval(a, b tval) bool {
	return a.Version == b.Version && a.Owner == b.Owner && a.Expiry == b.Expiry && slices.Equal(a.Waiters, b.Waiters)
}

// check verifies the structural invariants of t: every node except the root
// holds treeMinItems..treeMaxItems items (the root 1..treeMaxItems), all leaves are at
// the same depth, keys are strictly increasing within and across nodes,
// unused slots are zero, no node is reachable twice, the length is the item
// count, and the nodes t owns are closed under parent (a node t owns has a
// parent t owns), which is what makes copying a path from the root enough.
func (t *tree[V]) check() error {
	if t.root == nil {
		if t.length != 0 {
			return fmt.Errorf("nil root, length %d", t.length)
		}
		return nil
	}
	seen := make(map[*treeNode[V]]bool)
	leafDepth := -1
	count := 0
	var walk func(n *treeNode[V], depth int, lo, hi *string, parentOwned bool) error
	walk = func(n *treeNode[V], depth int, lo, hi *string, parentOwned bool) error {
		if seen[n] {
			return fmt.Errorf("node %p reachable twice", n)
		}
		seen[n] = true
		if n.owner == nil {
			return fmt.Errorf("node %p has no owner", n)
		}
		owned := t.owner != nil && n.owner == t.owner
		if owned && !parentOwned {
			return fmt.Errorf("node %p owned but its parent is not", n)
		}
		min := treeMinItems
		if depth == 0 {
			min = 1
		}
		if n.n < min || n.n > treeMaxItems {
			return fmt.Errorf("node %p at depth %d has %d items, want %d..%d", n, depth, n.n, min, treeMaxItems)
		}
		for i := 0; i < n.n; i++ {
			k := n.keys[i]
			if i > 0 && !(n.keys[i-1] < k) {
				return fmt.Errorf("node %p keys not increasing at %d: %q, %q", n, i, n.keys[i-1], k)
			}
			if lo != nil && !(*lo < k) {
				return fmt.Errorf("node %p tkey %q not above separator %q", n, k, *lo)
			}
			if hi != nil && !(k < *hi) {
				return fmt.Errorf("node %p tkey %q not below separator %q", n, k, *hi)
			}
		}
		for i := n.n; i < len(n.keys); i++ {
			if n.keys[i] != "" || !reflect.ValueOf(&n.vals[i]).Elem().IsZero() {
				return fmt.Errorf("node %p slot %d beyond %d not zero", n, i, n.n)
			}
		}
		count += n.n
		if n.children == nil {
			if leafDepth == -1 {
				leafDepth = depth
			} else if depth != leafDepth {
				return fmt.Errorf("leaf %p at depth %d, another at %d", n, depth, leafDepth)
			}
			return nil
		}
		for i := n.n + 1; i < len(n.children); i++ {
			if n.children[i] != nil {
				return fmt.Errorf("node %p child slot %d beyond %d not nil", n, i, n.n)
			}
		}
		for i := 0; i <= n.n; i++ {
			c := n.children[i]
			if c == nil {
				return fmt.Errorf("node %p child %d nil", n, i)
			}
			clo, chi := lo, hi
			if i > 0 {
				clo = &n.keys[i-1]
			}
			if i < n.n {
				chi = &n.keys[i]
			}
			if err := walk(c, depth+1, clo, chi, owned); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(t.root, 0, nil, nil, true); err != nil {
		return err
	}
	if count != t.length {
		return fmt.Errorf("%d items, length %d", count, t.length)
	}
	return nil
}

// nodes returns the set of nodes reachable from t.
func (t *tree[V]) nodes() map[*treeNode[V]]bool {
	m := make(map[*treeNode[V]]bool)
	var walk func(n *treeNode[V])
	walk = func(n *treeNode[V]) {
		m[n] = true
		if n.children != nil {
			for _, c := range n.children[:n.n+1] {
				walk(c)
			}
		}
	}
	if t.root != nil {
		walk(t.root)
	}
	return m
}

// checkOwnership verifies the copy-on-write invariant across trees that
// share nodes: no tree can reach a node that another tree may write in place.
func checkOwnership[V any](trees ...*tree[V]) error {
	for j, b := range trees {
		for n := range b.nodes() {
			for i, a := range trees {
				if i != j && a.owner != nil && n.owner == a.owner {
					return fmt.Errorf("tree %d reaches node %p owned by tree %d", j, n, i)
				}
			}
		}
	}
	return nil
}

// tequalModel compares t with the model m: Len, Get of every tkey in m, and
// the full ascending iteration.
func tequalModel(t *tree[tval], m map[string]tval) error {
	if err := t.check(); err != nil {
		return err
	}
	if t.Len() != len(m) {
		return fmt.Errorf("Len %d, model %d", t.Len(), len(m))
	}
	keys := make([]string, 0, len(m))
	for k, want := range m {
		keys = append(keys, k)
		got, ok := t.Get(k)
		if !ok || !eqtval(got, want) {
			return fmt.Errorf("Get(%q) = %v, %v; want %v, true", k, got, ok, want)
		}
	}
	slices.Sort(keys)
	i := 0
	for k, v := range t.Ascend("") {
		if i >= len(keys) {
			return fmt.Errorf("Ascend yields extra tkey %q", k)
		}
		if k != keys[i] || !eqtval(v, m[k]) {
			return fmt.Errorf("Ascend item %d = %q %v; want %q %v", i, k, v, keys[i], m[keys[i]])
		}
		i++
	}
	if i != len(keys) {
		return fmt.Errorf("Ascend yields %d items, want %d", i, len(keys))
	}
	return nil
}

// tkey maps an integer to a key; base 36 makes tkey lengths vary, so that
// bytewise order differs from numeric order.
func tkey(x int) string { return strconv.FormatInt(int64(x), 36) }

func TestTreeZeroTree(t *testing.T) {
	var tr tree[tval]
	if tr.Len() != 0 {
		t.Fatal("zero tree not empty")
	}
	if _, ok := tr.Get("a"); ok {
		t.Fatal("Get found a tkey in the zero tree")
	}
	if _, ok := tr.Delete("a"); ok {
		t.Fatal("Delete found a tkey in the zero tree")
	}
	for range tr.Ascend("") {
		t.Fatal("Ascend yields from the zero tree")
	}
	c := tr.Clone()
	if c.Len() != 0 || c.check() != nil {
		t.Fatal("clone of zero tree not empty")
	}
	if tr.Set("", mktval(1)) {
		t.Fatal("Set into the zero tree replaced")
	}
	if v, ok := tr.Get(""); !ok || !eqtval(v, mktval(1)) {
		t.Fatal("empty tkey not stored")
	}
	if c.Len() != 0 {
		t.Fatal("clone of zero tree changed")
	}
	if v, ok := tr.Delete(""); !ok || !eqtval(v, mktval(1)) || tr.Len() != 0 || tr.root != nil {
		t.Fatal("Delete of the last tkey did not empty the tree")
	}
}

// TestRandomOps runs seeded random operations against a map model, over a
// small tkey space (heavy replacing and deleting, shallow tree) and a large
// one (deep tree), with phases that delete every tkey and refill the tree.
func TestTreeRandomOps(t *testing.T) {
	for _, space := range []int{40, 1000, 1 << 20} {
		for seed := uint64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("space=%d/seed=%d", space, seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, uint64(space)))
				var tr tree[tval]
				m := make(map[string]tval)
				op := int64(0)
				for round := 0; round < 3; round++ {
					// Grow: mostly sets, some deletes and gets.
					for batch := 0; batch < 8; batch++ {
						for range 1000 {
							op++
							k := tkey(r.IntN(space))
							switch x := r.IntN(10); {
							case x < 6:
								v := mktval(op)
								_, had := m[k]
								if rep := tr.Set(k, v); rep != had {
									t.Fatalf("op %d: Set(%q) replaced %v, want %v", op, k, rep, had)
								}
								m[k] = v
							case x < 9:
								want, had := m[k]
								got, ok := tr.Delete(k)
								if ok != had || !eqtval(got, want) {
									t.Fatalf("op %d: Delete(%q) = %v, %v; want %v, %v", op, k, got, ok, want, had)
								}
								delete(m, k)
							default:
								want, had := m[k]
								got, ok := tr.Get(k)
								if ok != had || !eqtval(got, want) {
									t.Fatalf("op %d: Get(%q) = %v, %v; want %v, %v", op, k, got, ok, want, had)
								}
							}
						}
						if err := tequalModel(&tr, m); err != nil {
							t.Fatalf("round %d batch %d: %v", round, batch, err)
						}
					}
					// Drain: delete every tkey in random order, checking
					// along the way, until the tree is empty.
					keys := make([]string, 0, len(m))
					for k := range m {
						keys = append(keys, k)
					}
					slices.Sort(keys) // map order is random; the shuffle is seeded
					r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
					for i, k := range keys {
						want := m[k]
						got, ok := tr.Delete(k)
						if !ok || !eqtval(got, want) {
							t.Fatalf("drain: Delete(%q) = %v, %v; want %v, true", k, got, ok, want)
						}
						delete(m, k)
						if i%500 == 0 {
							if err := tequalModel(&tr, m); err != nil {
								t.Fatalf("drain at %d: %v", i, err)
							}
						}
					}
					if err := tequalModel(&tr, m); err != nil {
						t.Fatal(err)
					}
					if tr.root != nil {
						t.Fatal("drained tree has a root")
					}
				}
			})
		}
	}
}

// TestSequential inserts and deletes keys in ascending and descending order,
// the usual worst cases for split and merge placement.
func TestTreeSequential(t *testing.T) {
	for _, n := range []int{1, treeMaxItems, treeMaxItems + 1, 5000} {
		for _, desc := range []bool{false, true} {
			var tr tree[tval]
			m := make(map[string]tval)
			k := func(i int) string {
				if desc {
					i = n - 1 - i
				}
				return fmt.Sprintf("%08d", i)
			}
			for i := range n {
				tr.Set(k(i), mktval(int64(i)))
				m[k(i)] = mktval(int64(i))
			}
			if err := tequalModel(&tr, m); err != nil {
				t.Fatalf("n=%d desc=%v after inserts: %v", n, desc, err)
			}
			for i := range n {
				if _, ok := tr.Delete(k(i)); !ok {
					t.Fatalf("n=%d desc=%v: Delete(%q) missed", n, desc, k(i))
				}
				delete(m, k(i))
				if i%97 == 0 {
					if err := tequalModel(&tr, m); err != nil {
						t.Fatalf("n=%d desc=%v after %d deletes: %v", n, desc, i+1, err)
					}
				}
			}
			if err := tequalModel(&tr, m); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestTreeStoredByValue(t *testing.T) {
	var tr tree[tval]
	v := mktval(3)
	tr.Set("a", v)
	v.Version = 99
	got, _ := tr.Get("a")
	if got.Version != 3 {
		t.Fatal("Set did not copy the value")
	}
	got.Version = 100
	if again, _ := tr.Get("a"); again.Version != 3 {
		t.Fatal("Get did not return a copy")
	}
}

func TestTreeAscendFrom(t *testing.T) {
	// Keys k0000, k0002, ..., k9998: 5000 keys, three levels.
	var tr tree[tval]
	var keys []string
	for i := 0; i < 10000; i += 2 {
		k := fmt.Sprintf("k%04d", i)
		keys = append(keys, k)
		tr.Set(k, mktval(int64(i)))
	}
	if err := tr.check(); err != nil {
		t.Fatal(err)
	}
	// expected returns the first limit keys >= from.
	expected := func(from string, limit int) []string {
		i, _ := slices.BinarySearch(keys, from)
		return keys[i:min(len(keys), i+limit)]
	}
	collect := func(from string, limit int) []string {
		var got []string
		for k, v := range tr.Ascend(from) {
			if want := mktval(tmustAtoi(k[1:])); !eqtval(v, want) {
				t.Fatalf("Ascend(%q) yields %q with %v, want %v", from, k, v, want)
			}
			got = append(got, k)
			if len(got) == limit {
				break
			}
		}
		return got
	}
	var froms []string
	froms = append(froms, "", "a", "k", "k0", "l", "k9998", "k9999", "k99980", "\xff")
	for i := 0; i < 10000; i++ { // every tkey and every gap between keys
		froms = append(froms, fmt.Sprintf("k%04d", i), fmt.Sprintf("k%04d0", i))
	}
	for _, from := range froms {
		for _, limit := range []int{1, 3} {
			if got, want := collect(from, limit), expected(from, limit); !slices.Equal(got, want) {
				t.Fatalf("Ascend(%q) first %d = %q, want %q", from, limit, got, want)
			}
		}
	}
	for _, from := range []string{"", "k0000", "k0001", "k5000", "k5001", "k9998", "k9999", "z"} {
		if got, want := collect(from, len(keys)+1), expected(from, len(keys)+1); !slices.Equal(got, want) {
			t.Fatalf("Ascend(%q) yields %d keys, want %d", from, len(got), len(want))
		}
	}
	// A stopped iteration does not go on: changing the tree right before
	// breaking would panic if the iterator emitted (or checked) again.
	for _, from := range []string{"", "k5000", "k5001"} {
		n := 0
		for k := range tr.Ascend(from) {
			n++
			tr.Delete(k)
			tr.Set(k, mktval(tmustAtoi(k[1:])))
			break
		}
		if n != 1 {
			t.Fatalf("break after 1 visited %d", n)
		}
	}
	// An iteration that is stopped and restarted starts over.
	seq := tr.Ascend("k5000")
	for range 2 {
		got := ""
		for k := range seq {
			got = k
			break
		}
		if got != "k5000" {
			t.Fatalf("re-ranged Seq starts at %q", got)
		}
	}
}

func tmustAtoi(s string) int64 {
	x, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return int64(x)
}

func TestTreeAscendPanicsOnChange(t *testing.T) {
	for _, change := range []struct {
		name string
		f    func(tr *tree[tval], k string)
	}{
		{"insert", func(tr *tree[tval], k string) { tr.Set(k+"x", tval{}) }},
		{"replace", func(tr *tree[tval], k string) { tr.Set(k, tval{}) }},
		{"delete", func(tr *tree[tval], k string) { tr.Delete(k) }},
	} {
		t.Run(change.name, func(t *testing.T) {
			var tr tree[tval]
			for i := range 1000 {
				tr.Set(tkey(i), mktval(int64(i)))
			}
			err := func() (err error) {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("%v", r)
					}
				}()
				for k := range tr.Ascend("") {
					change.f(&tr, k)
				}
				return nil
			}()
			if err == nil {
				t.Fatal("changing the tree during Ascend did not panic")
			}
			// Deleting an absent tkey is no change.
			for k := range tr.Ascend("") {
				tr.Delete(k + "absent")
			}
			// Iterating over a clone allows changing the tree.
			want, n := tr.Len(), 0
			for k := range tr.Clone().Ascend("") {
				change.f(&tr, k)
				n++
			}
			if n != want {
				t.Fatalf("iteration over the clone visited %d", n)
			}
			if err := tr.check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func tcopyModel(m map[string]tval) map[string]tval {
	c := make(map[string]tval, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// tmutate applies n random sets (inserts and replaces) and deletes over the
// tkey space to tr and its model m.
func tmutate(t *testing.T, r *rand.Rand, tr *tree[tval], m map[string]tval, space, n int) {
	t.Helper()
	for range n {
		k := tkey(r.IntN(space))
		if r.IntN(3) == 0 {
			want, had := m[k]
			got, ok := tr.Delete(k)
			if ok != had || !eqtval(got, want) {
				t.Fatalf("Delete(%q) = %v, %v; want %v, %v", k, got, ok, want, had)
			}
			delete(m, k)
		} else {
			v := mktval(r.Int64N(1 << 40))
			_, had := m[k]
			if rep := tr.Set(k, v); rep != had {
				t.Fatalf("Set(%q) replaced %v, want %v", k, rep, had)
			}
			m[k] = v
		}
	}
}

func TestTreeCloneIsolation(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		const space = 30000
		var t0 tree[tval]
		m0 := make(map[string]tval)
		tmutate(t, r, &t0, m0, space, 20000)

		// Clone, then change the original heavily and the clone separately.
		t1 := t0.Clone()
		m1 := tcopyModel(m0)
		tmutate(t, r, &t0, m0, space, 20000)
		if err := tequalModel(t1, m1); err != nil {
			t.Fatalf("clone changed by changes to the original: %v", err)
		}
		tmutate(t, r, t1, m1, space, 5000)
		if err := tequalModel(&t0, m0); err != nil {
			t.Fatalf("original changed by changes to the clone: %v", err)
		}

		// Clones of clones, and several clones of one tree, each changed
		// in turn.
		t2 := t1.Clone()
		m2 := tcopyModel(m1)
		t3 := t2.Clone()
		m3 := tcopyModel(m2)
		t4 := t1.Clone()
		m4 := tcopyModel(m1)
		t5 := t4.Clone().Clone() // the middle clone is dropped
		m5 := tcopyModel(m4)
		trees := []*tree[tval]{&t0, t1, t2, t3, t4, t5}
		models := []map[string]tval{m0, m1, m2, m3, m4, m5}
		for round := range 4 {
			for i := range trees {
				tmutate(t, r, trees[i], models[i], space, 2000)
			}
			for i := range trees {
				if err := tequalModel(trees[i], models[i]); err != nil {
					t.Fatalf("seed %d round %d tree %d: %v", seed, round, i, err)
				}
			}
			if err := checkOwnership(trees...); err != nil {
				t.Fatalf("seed %d round %d: %v", seed, round, err)
			}
		}

		// Emptying a clone leaves the others intact.
		for k := range t3.Clone().Ascend("") {
			t3.Delete(k)
			delete(m3, k)
		}
		for i := range trees {
			if err := tequalModel(trees[i], models[i]); err != nil {
				t.Fatalf("after emptying tree 3, tree %d: %v", i, err)
			}
		}
	}
}

// TestCloneReadDuringMutation reads a clone of a 100,000-tkey tree on one
// goroutine, repeatedly, while the other goroutine applies 100,000 sets and
// deletes to the tree it came from (and, the other way around, reads the
// original while the clone is mutated). Run it with -race.
func TestTreeCloneReadDuringMutation(t *testing.T) {
	for _, readOriginal := range []bool{false, true} {
		t.Run(fmt.Sprintf("readOriginal=%v", readOriginal), func(t *testing.T) {
			const size = 100000
			r := rand.New(rand.NewPCG(42, 42))
			var tr tree[tval]
			for i := range size {
				tr.Set(tkey(i*2), mktval(int64(i)))
			}
			// Write every node once, so that the tree owns them all when it
			// is cloned and the mutations below start from owned nodes.
			for i := range size {
				tr.Set(tkey(i*2), mktval(int64(i)))
			}
			var wantKeys []string
			var wantVals []tval
			for k, v := range tr.Ascend("") {
				wantKeys = append(wantKeys, k)
				wantVals = append(wantVals, v)
			}

			read, write := tr.Clone(), &tr
			if readOriginal {
				read, write = write, read
			}
			done := make(chan struct{})
			errc := make(chan error, 1)
			passes := 0
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				errc <- func() error {
					for {
						i := 0
						for k, v := range read.Ascend("") {
							if i >= len(wantKeys) || k != wantKeys[i] || !eqtval(v, wantVals[i]) {
								return fmt.Errorf("pass %d item %d: %q %v", passes, i, k, v)
							}
							i++
							if i%1000 == 0 {
								j := (i * 7919) % len(wantKeys)
								if got, ok := read.Get(wantKeys[j]); !ok || !eqtval(got, wantVals[j]) {
									return fmt.Errorf("pass %d: Get(%q) = %v, %v", passes, wantKeys[j], got, ok)
								}
							}
						}
						if i != len(wantKeys) {
							return fmt.Errorf("pass %d: %d items, want %d", passes, i, len(wantKeys))
						}
						if read.Len() != size {
							return fmt.Errorf("pass %d: Len %d", passes, read.Len())
						}
						passes++
						select {
						case <-done:
							if passes >= 2 {
								return nil
							}
						default:
						}
					}
				}()
			}()
			for i := range 100000 {
				k := tkey(r.IntN(2 * size))
				switch i % 3 {
				case 0:
					write.Delete(k)
				default:
					write.Set(k, mktval(int64(-i)))
				}
			}
			close(done)
			wg.Wait()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			t.Logf("%d passes over the clone during the mutations", passes)
			if err := write.check(); err != nil {
				t.Fatal(err)
			}
			if err := read.check(); err != nil {
				t.Fatal(err)
			}
			if err := checkOwnership(read, write); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTreeAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation changes allocation counts")
	}
	var tr tree[tval]
	for i := range 10000 {
		tr.Set(tkey(i), mktval(int64(i)))
	}
	k3500 := tkey(3500)
	for _, c := range []struct {
		name string
		max  float64
		f    func()
	}{
		{"Get", 0, func() { tr.Get(k3500) }},
		{"Set replace owned", 0, func() { tr.Set(k3500, mktval(1)) }},
		{"Delete absent", 0, func() { tr.Delete("absent") }},
		{"Clone", 1, func() { tr.Clone() }},
		{"Delete absent after Clone", 0, func() { tr.Clone(); tr.Delete("absent") }},
		{"Ascend all", 1, func() {
			for range tr.Ascend("") {
			}
		}},
	} {
		// The Clone case allocates the clone itself, which escapes.
		if c.name == "Delete absent after Clone" {
			c.max = 1
		}
		if got := testing.AllocsPerRun(100, c.f); got > c.max {
			t.Errorf("%s: %v allocs per run, want <= %v", c.name, got, c.max)
		}
	}
}

// FuzzOps interprets its input as operations on a few trees related by
// Clone, with a small tkey space, and compares each tree with its model.
func FuzzTreeOps(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07"))
	f.Add([]byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
	seed := make([]byte, 4096)
	for i := range seed {
		seed[i] = byte(i * 37)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		trees := []*tree[tval]{new(tree[tval])}
		models := []map[string]tval{{}}
		for i := 0; i+1 < len(data); i += 2 {
			op, arg := data[i], data[i+1]
			w := int(op>>4) % len(trees)
			k := tkey(int(arg))
			switch op & 15 {
			case 0, 1, 2, 3, 4, 5:
				trees[w].Set(k, mktval(int64(i)))
				models[w][k] = mktval(int64(i))
			case 6, 7, 8, 9, 10:
				trees[w].Delete(k)
				delete(models[w], k)
			case 11:
				if len(trees) < 4 {
					trees = append(trees, trees[w].Clone())
					models = append(models, tcopyModel(models[w]))
				}
			case 12:
				// Delete a run of keys from k on, via a clone.
				for k2 := range trees[w].Clone().Ascend(k) {
					trees[w].Delete(k2)
					delete(models[w], k2)
					if k2 > k+"z" {
						break
					}
				}
			default:
				for n := range 200 {
					k2 := tkey(int(arg)*200 + n)
					trees[w].Set(k2, mktval(int64(n)))
					models[w][k2] = mktval(int64(n))
				}
			}
		}
		for i := range trees {
			if err := tequalModel(trees[i], models[i]); err != nil {
				t.Fatalf("tree %d: %v", i, err)
			}
		}
		if err := checkOwnership(trees...); err != nil {
			t.Fatal(err)
		}
	})
}

// Benchmarks run on a tree of benchSize random keys shaped like lock names.

const benchSize = 1_000_000

var bench struct {
	once sync.Once
	keys []string // benchSize keys in the tree, in random order
	more []string // benchSize keys not in the tree, in random order
	tree *tree[tval]
}

func treeBenchSetup() {
	bench.once.Do(func() {
		r := rand.New(rand.NewPCG(1, 2))
		seen := make(map[string]bool, 2*benchSize)
		for len(seen) < 2*benchSize {
			k := fmt.Sprintf("lock/%016x", r.Uint64())
			if !seen[k] {
				seen[k] = true
				if len(bench.keys) < benchSize {
					bench.keys = append(bench.keys, k)
				} else {
					bench.more = append(bench.more, k)
				}
			}
		}
		bench.tree = new(tree[tval])
		for i, k := range bench.keys {
			bench.tree.Set(k, mktval(int64(i)))
		}
	})
}

// treeBenchTree returns a private, fully owned copy of the benchmark tree, so
// that benchmarks do not pay for copy-on-write unless they measure it.
func treeBenchTree(b *testing.B) *tree[tval] {
	treeBenchSetup()
	t := bench.tree.Clone()
	// Write every node once: the clone then owns all of its nodes.
	for k, v := range bench.tree.Ascend("") {
		t.Set(k, v)
	}
	b.ResetTimer()
	return t
}

func BenchmarkTreeGet(b *testing.B) {
	t := treeBenchTree(b)
	i := 0
	for b.Loop() {
		if _, ok := t.Get(bench.keys[i]); !ok {
			b.Fatal("missing key")
		}
		i++
		if i == len(bench.keys) {
			i = 0
		}
	}
}

func BenchmarkTreeSetInsert(b *testing.B) {
	t := treeBenchTree(b)
	const chunk = 100_000 // the tree grows from 1,000,000 to 1,100,000 keys, then is reset
	i := 0
	v := mktval(1)
	for b.Loop() {
		if i == chunk {
			b.StopTimer()
			for _, k := range bench.more[:chunk] {
				t.Delete(k)
			}
			i = 0
			b.StartTimer()
		}
		t.Set(bench.more[i], v)
		i++
	}
}

func BenchmarkTreeSetReplace(b *testing.B) {
	t := treeBenchTree(b)
	i := 0
	v := mktval(1)
	for b.Loop() {
		t.Set(bench.keys[i], v)
		i++
		if i == len(bench.keys) {
			i = 0
		}
	}
}

func BenchmarkTreeDelete(b *testing.B) {
	t := treeBenchTree(b)
	const chunk = 100_000 // the tree shrinks from 1,000,000 to 900,000 keys, then is refilled
	i := 0
	v := mktval(1)
	for b.Loop() {
		if i == chunk {
			b.StopTimer()
			for _, k := range bench.keys[:chunk] {
				t.Set(k, v)
			}
			i = 0
			b.StartTimer()
		}
		t.Delete(bench.keys[i])
		i++
	}
}

// BenchmarkCloneThen10kSets measures a snapshot as raftlock takes it: Clone,
// then 10,000 sets (replacing random keys) on the original, which copy the
// nodes they touch the first time. The clone is dropped, as a snapshot is
// once written out. Compare with BenchmarkNoCloneThen10kSets.
func BenchmarkTreeCloneThen10kSets(b *testing.B) {
	benchCloneSets(b, true)
}

func BenchmarkTreeNoCloneThen10kSets(b *testing.B) {
	benchCloneSets(b, false)
}

func benchCloneSets(b *testing.B, clone bool) {
	t := treeBenchTree(b)
	v := mktval(1)
	r := rand.New(rand.NewPCG(3, 4))
	var snap *tree[tval]
	for b.Loop() {
		if clone {
			snap = t.Clone()
		}
		for range 10_000 {
			t.Set(bench.keys[r.IntN(len(bench.keys))], v)
		}
	}
	_ = snap
}

// BenchmarkBuild inserts the benchmark keys, in random order, into an empty
// tree. B/op is (almost exactly) the memory the finished tree's nodes use;
// bytes/item divides it by the number of keys (tkey bytes not included).
func BenchmarkTreeBuild(b *testing.B) {
	treeBenchSetup()
	v := mktval(1)
	b.ResetTimer()
	for b.Loop() {
		var t tree[tval]
		for _, k := range bench.keys {
			t.Set(k, v)
		}
	}
	b.StopTimer()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var t tree[tval]
	for _, k := range bench.keys {
		t.Set(k, v)
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/benchSize, "node-bytes/item")
	b.ReportMetric(float64(benchSize)/float64(len(t.nodes())), "items/node")
}

func BenchmarkTreeAscendAll(b *testing.B) {
	t := treeBenchTree(b)
	for b.Loop() {
		n := 0
		for range t.Ascend("") {
			n++
		}
		if n != benchSize {
			b.Fatal("wrong count")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchSize, "ns/item")
}

// BenchmarkAscendFrom10 iterates over 10 items from a random key: the cost
// of seeking is that of a Get.
func BenchmarkTreeAscendFrom10(b *testing.B) {
	t := treeBenchTree(b)
	i := 0
	for b.Loop() {
		n := 0
		for range t.Ascend(bench.keys[i]) {
			n++
			if n == 10 {
				break
			}
		}
		i++
		if i == len(bench.keys) {
			i = 0
		}
	}
}
