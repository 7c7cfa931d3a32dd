package raftnode

import "github.com/raftlock/raftlock/lock"

type subscriber struct {
	c chan lock.Event
}

// Subscribe implements Proposer. See Proposer.Subscribe for the contract.
// The channel is also closed when the node stops.
func (n *Node) Subscribe(buf int) (<-chan lock.Event, func()) {
	if buf < 1 {
		buf = 1
	}
	s := &subscriber{c: make(chan lock.Event, buf)}
	n.subsMu.Lock()
	select {
	case <-n.doneC:
		close(s.c)
		n.subsMu.Unlock()
		return s.c, func() {}
	default:
	}
	n.subs[s] = struct{}{}
	n.subsMu.Unlock()
	return s.c, func() {
		n.subsMu.Lock()
		if _, ok := n.subs[s]; ok {
			delete(n.subs, s)
			close(s.c)
		}
		n.subsMu.Unlock()
	}
}

// publishEvents fans events out without blocking; a subscriber whose buffer
// is full is dropped (its channel closed) so the loop never waits on it.
func (n *Node) publishEvents(evs []lock.Event) {
	if len(evs) == 0 {
		return
	}
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	for s := range n.subs {
		for _, ev := range evs {
			select {
			case s.c <- ev:
				continue
			default:
			}
			delete(n.subs, s)
			close(s.c)
			break
		}
	}
}

func (n *Node) closeSubscribers() {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	for s := range n.subs {
		delete(n.subs, s)
		close(s.c)
	}
}
