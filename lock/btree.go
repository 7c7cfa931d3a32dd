// This file holds tree, an ordered map from string keys to values of any
// type as an in-memory B-tree with O(1) copy-on-write snapshots. The
// machine keeps its locks and elections in trees: their names in order, for
// prefix listings that cost what they return, and a Clone for snapshots
// that does not stall the loop, whatever the state's size.
//
// The tree is deterministic: it uses no randomness, no maps and no
// goroutines, and iteration is always in ascending key order (Go string
// comparison, i.e. bytewise).

package lock

import "iter"

const (
	// treeMinItems is the minimum number of items in every node except the root.
	treeMinItems = 16
	// treeMaxItems is the maximum number of items in a node. treeMaxItems == 2*treeMinItems
	// makes both rebalancing steps exact: a node that overflows to treeMaxItems+1
	// items splits into two nodes of treeMinItems around a median, and a node that
	// underflows to treeMinItems-1 merges with a sibling of treeMinItems and their
	// separator into one node of treeMaxItems.
	treeMaxItems = 2 * treeMinItems
)

// A token identifies the one tree that may write a node in place. It has a
// field so that distinct tokens have distinct addresses (pointers to distinct
// zero-size values may compare equal).
type treeToken struct{ _ byte }

// A node holds n items in keys[:n] and vals[:n], sorted by key. An internal
// node also has n+1 children in children[:n+1]; children[i] holds the keys
// between keys[i-1] and keys[i]. A leaf has children == nil.
//
// Slots at and beyond n are always zero, so that removed keys and values do
// not stay reachable. The extra slot in keys, vals and children holds the
// temporary overflow item between an insertion and the split that follows.
type treeNode[V any] struct {
	owner    *treeToken
	n        int
	children *[treeMaxItems + 2]*treeNode[V]
	keys     [treeMaxItems + 1]string
	vals     [treeMaxItems + 1]V
}

// tree is an ordered map from string keys to values of type V, ordered by Go
// string comparison. The zero tree is an empty tree ready to use. A tree must
// not be copied by value once used; use Clone.
//
// Values are stored by value inside the tree's nodes: Set stores a copy of v
// and Get returns a copy. The copy is shallow, so anything a V points to
// (a slice's backing array, say) is shared between the caller, the tree and
// its clones, and must be treated as immutable once stored.
//
// Concurrency: a Tree is not safe for concurrent use when any goroutine
// mutates it (Set, Delete, and also Clone, which updates ownership
// bookkeeping). Any number of goroutines may read (Len, Get, Ascend) a tree
// that nobody mutates. Trees related by Clone share nodes but never write
// into a shared node, so a clone may be read on one goroutine while the tree
// it came from (or another clone) is mutated on another, without
// synchronization beyond handing the clone over.
type tree[V any] struct {
	root   *treeNode[V]
	length int
	// owner is the token of the nodes this tree may write in place; nil when
	// it owns none (the zero Tree, and both trees right after Clone). Nodes
	// owned by a tree are reachable only from that tree.
	owner *treeToken
	// mods counts changes of content, so that an iteration can detect that
	// its tree was changed under it.
	mods uint64
}

// Len returns the number of keys in the tree.
func (t *tree[V]) Len() int { return t.length }

// Get returns (a copy of) the value stored under key, and whether the key is
// present. It does not allocate.
func (t *tree[V]) Get(key string) (V, bool) {
	n := t.root
	for n != nil {
		i, found := n.find(key)
		if found {
			return n.vals[i], true
		}
		if n.children == nil {
			break
		}
		n = n.children[i]
	}
	var zero V
	return zero, false
}

// Set stores v under key, inserting the key or replacing its value, and
// reports whether a value was replaced.
//
// Set allocates when it inserts a new root or splits a node, and, after a
// Clone (of this tree or from it), the first time it writes each node still
// shared with the other tree: it then copies that node and every node on
// the path to it from the root that it does not own yet.
func (t *tree[V]) Set(key string, v V) (replaced bool) {
	t.mods++
	if t.root == nil {
		r := t.newNode(false)
		r.keys[0], r.vals[0], r.n = key, v, 1
		t.root, t.length = r, 1
		return false
	}
	root, replaced := t.set(t.root, key, v)
	if root.n > treeMaxItems {
		right, k, val := t.split(root)
		r := t.newNode(true)
		r.keys[0], r.vals[0], r.n = k, val, 1
		r.children[0], r.children[1] = root, right
		root = r
	}
	t.root = root
	if !replaced {
		t.length++
	}
	return replaced
}

// Delete removes key and returns the value it had, and whether it was
// present. Deleting an absent key changes nothing and does not allocate;
// deleting a present key allocates only to copy shared nodes after a Clone,
// as Set does.
func (t *tree[V]) Delete(key string) (V, bool) {
	if t.root == nil {
		var zero V
		return zero, false
	}
	root, old, ok := t.delete(t.root, key)
	if !ok {
		return old, false
	}
	t.mods++
	t.length--
	if root.n == 0 {
		if root.children == nil {
			root = nil
		} else {
			root = root.children[0]
		}
	}
	t.root = root
	return old, true
}

// Ascend returns an iterator over the keys >= from and their values, in
// ascending key order. The iteration reads the tree as it is when it starts
// and stops as soon as the consumer stops; it does not allocate per item.
//
// The tree must not be changed (Set, Delete) while an iteration over it is in
// progress: if it is, the iteration panics when the consumer returns to it.
// (Otherwise what the iteration sees would depend on which nodes happen to
// be shared with a clone.) To change a tree while iterating over it, iterate
// over a clone: for k, v := range t.Clone().Ascend(from) { t.Delete(k) }.
func (t *tree[V]) Ascend(from string) iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		if t.root == nil {
			return
		}
		a := treeAscender[V]{t: t, mods: t.mods, yield: yield}
		a.from(t.root, from)
	}
}

// Clone returns a tree with the same content as t, in O(1) time and space:
// the two trees share all nodes. Afterwards, changes to either tree are not
// visible in the other; each tree copies a shared node (and the path to it)
// the first time it changes it, so the cost of the snapshot is paid later,
// spread over the mutations of both trees, at most once per node and tree.
//
// Clone updates ownership bookkeeping in t, so it counts as a mutation of t
// for concurrency purposes. The clone can then be handed to another goroutine
// and read there while t keeps being mutated.
func (t *tree[V]) Clone() *tree[V] {
	// Neither tree owns any node now, so neither writes a node in place
	// until it has copied it under a new token of its own.
	t.owner = nil
	return &tree[V]{root: t.root, length: t.length}
}

// token returns t's ownership token, making one if t has none.
func (t *tree[V]) token() *treeToken {
	if t.owner == nil {
		t.owner = new(treeToken)
	}
	return t.owner
}

func (t *tree[V]) newNode(internal bool) *treeNode[V] {
	n := &treeNode[V]{owner: t.token()}
	if internal {
		n.children = new([treeMaxItems + 2]*treeNode[V])
	}
	return n
}

// mutable returns n if t owns it and otherwise a copy of n owned by t. The
// caller must store the result in place of n in its parent (which must
// itself be mutable) or as the root.
func (t *tree[V]) mutable(n *treeNode[V]) *treeNode[V] {
	if n.owner == t.owner { // never true for a nil t.owner: nodes always have an owner
		return n
	}
	c := &treeNode[V]{owner: t.token(), n: n.n}
	copy(c.keys[:n.n], n.keys[:n.n])
	copy(c.vals[:n.n], n.vals[:n.n])
	if n.children != nil {
		c.children = new([treeMaxItems + 2]*treeNode[V])
		copy(c.children[:n.n+1], n.children[:n.n+1])
	}
	return c
}

// find returns the index of the first key in n that is >= key, and whether
// that key equals key.
func (n *treeNode[V]) find(key string) (int, bool) {
	lo, hi := 0, n.n
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if n.keys[h] < key {
			lo = h + 1
		} else {
			hi = h
		}
	}
	return lo, lo < n.n && n.keys[lo] == key
}

// insertAt inserts an item at index i of the mutable node n, and in an
// internal node the child right after it (at index i+1).
func (n *treeNode[V]) insertAt(i int, key string, v V, right *treeNode[V]) {
	c := n.n
	copy(n.keys[i+1:c+1], n.keys[i:c])
	copy(n.vals[i+1:c+1], n.vals[i:c])
	n.keys[i], n.vals[i] = key, v
	if n.children != nil {
		copy(n.children[i+2:c+2], n.children[i+1:c+1])
		n.children[i+1] = right
	}
	n.n = c + 1
}

// removeAt removes the item at index i of the mutable node n, and in an
// internal node the child right after it (at index i+1).
func (n *treeNode[V]) removeAt(i int) {
	c := n.n
	copy(n.keys[i:c-1], n.keys[i+1:c])
	copy(n.vals[i:c-1], n.vals[i+1:c])
	var zero V
	n.keys[c-1], n.vals[c-1] = "", zero
	if n.children != nil {
		copy(n.children[i+1:c], n.children[i+2:c+1])
		n.children[c] = nil
	}
	n.n = c - 1
}

// set stores v under key in the subtree n and returns the subtree's new
// root, which t owns and which may hold treeMaxItems+1 items (the caller splits
// it).
func (t *tree[V]) set(n *treeNode[V], key string, v V) (*treeNode[V], bool) {
	i, found := n.find(key)
	if found {
		n = t.mutable(n)
		n.vals[i] = v
		return n, true
	}
	if n.children == nil {
		n = t.mutable(n)
		n.insertAt(i, key, v, nil)
		return n, false
	}
	child, replaced := t.set(n.children[i], key, v)
	n = t.mutable(n)
	n.children[i] = child
	if child.n > treeMaxItems {
		right, k, val := t.split(child)
		n.insertAt(i, k, val, right)
	}
	return n, replaced
}

// split splits the mutable node n, which holds treeMaxItems+1 items, into n and a
// new node right, each holding treeMinItems items, and returns right and the
// median item that separates them.
func (t *tree[V]) split(n *treeNode[V]) (right *treeNode[V], key string, v V) {
	const mid = treeMinItems
	c := n.n
	right = t.newNode(n.children != nil)
	key, v = n.keys[mid], n.vals[mid]
	copy(right.keys[:], n.keys[mid+1:c])
	copy(right.vals[:], n.vals[mid+1:c])
	clear(n.keys[mid:c])
	clear(n.vals[mid:c])
	if n.children != nil {
		copy(right.children[:], n.children[mid+1:c+1])
		clear(n.children[mid+1 : c+1])
	}
	right.n = c - mid - 1
	n.n = mid
	return right, key, v
}

// delete removes key from the subtree n. If the key is present it returns
// the subtree's new root, which t owns and which may hold treeMinItems-1 items
// (the caller rebalances it), the removed value and true. Otherwise it
// returns n unchanged, having written or copied nothing.
func (t *tree[V]) delete(n *treeNode[V], key string) (*treeNode[V], V, bool) {
	i, found := n.find(key)
	var old V
	if n.children == nil {
		if !found {
			return n, old, false
		}
		n = t.mutable(n)
		old = n.vals[i]
		n.removeAt(i)
		return n, old, true
	}
	var child *treeNode[V]
	if found {
		// Replace the item by its predecessor, the last item of the subtree
		// to its left.
		var k string
		var v V
		child, k, v = t.removeMax(n.children[i])
		n = t.mutable(n)
		old = n.vals[i]
		n.keys[i], n.vals[i] = k, v
	} else {
		var ok bool
		child, old, ok = t.delete(n.children[i], key)
		if !ok {
			return n, old, false
		}
		n = t.mutable(n)
	}
	n.children[i] = child
	if child.n < treeMinItems {
		t.rebalance(n, i)
	}
	return n, old, true
}

// removeMax removes the last item of the subtree n and returns the subtree's
// new root (owned by t, possibly holding treeMinItems-1 items) and the item.
func (t *tree[V]) removeMax(n *treeNode[V]) (*treeNode[V], string, V) {
	n = t.mutable(n)
	if n.children == nil {
		last := n.n - 1
		k, v := n.keys[last], n.vals[last]
		n.removeAt(last)
		return n, k, v
	}
	i := n.n
	child, k, v := t.removeMax(n.children[i])
	n.children[i] = child
	if child.n < treeMinItems {
		t.rebalance(n, i)
	}
	return n, k, v
}

// rebalance restores the minimum fill of n.children[i], which t owns and
// which holds treeMinItems-1 items, by moving one item to it from a sibling that
// can spare one or else by merging it with a sibling. n must be mutable; it
// loses an item if children merge.
func (t *tree[V]) rebalance(n *treeNode[V], i int) {
	c := n.children[i]
	if i > 0 && n.children[i-1].n > treeMinItems {
		// Rotate right: the left sibling's last item moves up into n, and
		// the separator moves down to the front of c, along with the left
		// sibling's last child.
		left := t.mutable(n.children[i-1])
		n.children[i-1] = left
		cn, ln := c.n, left.n-1
		copy(c.keys[1:cn+1], c.keys[:cn])
		copy(c.vals[1:cn+1], c.vals[:cn])
		c.keys[0], c.vals[0] = n.keys[i-1], n.vals[i-1]
		if c.children != nil {
			copy(c.children[1:cn+2], c.children[:cn+1])
			c.children[0] = left.children[ln+1]
			left.children[ln+1] = nil
		}
		c.n = cn + 1
		n.keys[i-1], n.vals[i-1] = left.keys[ln], left.vals[ln]
		var zero V
		left.keys[ln], left.vals[ln] = "", zero
		left.n = ln
		return
	}
	if i < n.n && n.children[i+1].n > treeMinItems {
		// Rotate left: the right sibling's first item moves up into n, and
		// the separator moves down to the end of c, along with the right
		// sibling's first child.
		right := t.mutable(n.children[i+1])
		n.children[i+1] = right
		cn, rn := c.n, right.n
		c.keys[cn], c.vals[cn] = n.keys[i], n.vals[i]
		if c.children != nil {
			c.children[cn+1] = right.children[0]
			copy(right.children[:rn], right.children[1:rn+1])
			right.children[rn] = nil
		}
		c.n = cn + 1
		n.keys[i], n.vals[i] = right.keys[0], right.vals[0]
		copy(right.keys[:rn-1], right.keys[1:rn])
		copy(right.vals[:rn-1], right.vals[1:rn])
		var zero V
		right.keys[rn-1], right.vals[rn-1] = "", zero
		right.n = rn - 1
		return
	}
	if i > 0 {
		i--
	}
	t.merge(n, i)
}

// merge merges n.children[i+1] and the separator n.keys[i] into
// n.children[i], and removes them from the mutable node n. The two children
// must hold 2*treeMinItems-1 items together.
func (t *tree[V]) merge(n *treeNode[V], i int) {
	left := t.mutable(n.children[i])
	right := n.children[i+1] // only read: it is dropped
	ln, rn := left.n, right.n
	left.keys[ln], left.vals[ln] = n.keys[i], n.vals[i]
	copy(left.keys[ln+1:], right.keys[:rn])
	copy(left.vals[ln+1:], right.vals[:rn])
	if left.children != nil {
		copy(left.children[ln+1:], right.children[:rn+1])
	}
	left.n = ln + 1 + rn
	n.children[i] = left
	n.removeAt(i)
}

// ascender walks a tree for Ascend.
type treeAscender[V any] struct {
	t     *tree[V]
	mods  uint64
	yield func(string, V) bool
}

// emit yields one item and reports whether to go on.
func (a *treeAscender[V]) emit(k string, v V) bool {
	if !a.yield(k, v) {
		return false
	}
	if a.t.mods != a.mods {
		panic("btree: tree changed during Ascend")
	}
	return true
}

// from yields the items of the subtree n with keys >= from.
func (a *treeAscender[V]) from(n *treeNode[V], from string) bool {
	i, found := n.find(from)
	if n.children == nil {
		for ; i < n.n; i++ {
			if !a.emit(n.keys[i], n.vals[i]) {
				return false
			}
		}
		return true
	}
	// children[i] holds keys < keys[i]; they are >= from unless keys[i]
	// is from itself.
	if !found && !a.from(n.children[i], from) {
		return false
	}
	for ; i < n.n; i++ {
		if !a.emit(n.keys[i], n.vals[i]) || !a.all(n.children[i+1]) {
			return false
		}
	}
	return true
}

// all yields all items of the subtree n.
func (a *treeAscender[V]) all(n *treeNode[V]) bool {
	if n.children == nil {
		for i := 0; i < n.n; i++ {
			if !a.emit(n.keys[i], n.vals[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < n.n; i++ {
		if !a.all(n.children[i]) || !a.emit(n.keys[i], n.vals[i]) {
			return false
		}
	}
	return a.all(n.children[n.n])
}
