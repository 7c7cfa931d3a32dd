package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/raftlock/raftlock/internal/await"
)

// live is how soon a change must show in the console: the watch brings
// it, the page reads its list again.
const live = time.Second

// lockRow is a lock's row on the console's locks page.
type lockRow struct {
	Found   bool     `json:"found"`
	Holders []string `json:"holders"` // "#<session>"
	Owners  []string `json:"owners"`
	Tokens  []string `json:"tokens"`
	Waiters []string `json:"waiters"` // session IDs, in queue order
	Force   bool     `json:"force"`   // a force-release button
}

func lockRowJS(name string) string {
	return fmt.Sprintf(`(() => {
	const r = document.querySelector('#main tr[data-name="' + CSS.escape(%s) + '"]');
	if (!r) return {found: false};
	const texts = (sel) => [...r.querySelectorAll(sel)].map((e) => e.textContent.trim());
	return {found: true, holders: texts('td.holder .session'), owners: texts('td.owner div'), tokens: texts('td.token div'),
		waiters: [...r.querySelectorAll('ol.waiters li')].map((li) => li.dataset.session),
		force: r.querySelector('.force-release') !== null};
})()`, jsString(name))
}

// waitLock waits until the lock's row satisfies ok, and returns the row.
func (b *browser) waitLock(within time.Duration, what, name string, ok func(r lockRow) bool) (lockRow, time.Duration) {
	b.t.Helper()
	var last lockRow
	d, found := await.Within(within, func() bool {
		r, err := eval[lockRow](b, lockRowJS(name))
		if err != nil {
			return false
		}
		last = r
		return ok(r)
	})
	if !found {
		text, _ := eval[string](b, `document.querySelector('#main').innerText`)
		b.t.Fatalf("console: %s: not within %v; row of %q: %+v; the page shows:\n%s", what, within, name, last, text)
	}
	return last, d
}

// holding reports whether the row shows exactly the holder session with
// token and the waiters in that order.
func holding(session string, token uint64, waiters ...string) func(r lockRow) bool {
	return func(r lockRow) bool {
		return r.Found && slices.Equal(r.Holders, []string{"#" + session}) &&
			slices.Equal(r.Tokens, []string{fmt.Sprint(token)}) && slices.Equal(r.Waiters, waiters)
	}
}

func openSession(c *cluster, m *member, owner string) string {
	c.t.Helper()
	return c.must("POST", m.clientURL+"/v1/sessions", map[string]any{"ttl": "60s", "owner": owner}, 201).body["id"].(string)
}

// waitingAcquires runs acquires that wait in a queue, each on its own
// goroutine; wait returns once each has answered (closing its session
// ends a wait).
type waitingAcquires struct {
	wg  sync.WaitGroup
	mu  sync.Mutex
	got map[string]reply // by session
}

func (w *waitingAcquires) start(url, session string, body map[string]any) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		body["session"] = session
		body["wait"] = "20s"
		r, err := do("POST", url, body)
		if err != nil {
			r = reply{status: -1, body: map[string]any{"error": err.Error()}}
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.got == nil {
			w.got = map[string]reply{}
		}
		w.got[session] = r
	}()
}

func (w *waitingAcquires) answer(session string) (reply, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.got[session]
	return r, ok
}

// TestConsoleLive drives the web console in a real headless Chromium
// against a real three-node cluster: the console loads with no console
// error; a lock taken by a client shows with its holder and token within a
// second, its waiters in queue order, and a release hands the lock to the
// first waiter on screen; semaphores, elections (one opened, following
// observe) and sessions show; a node that goes away is shown in a banner
// and the live updates come back once it is back; and the SIGKILL of the
// leader shows the new leader on the cluster page. It saves a screenshot
// of each page (console.png is the locks page with a holder and waiters).
func TestConsoleLive(t *testing.T) {
	raftlockd(t) // built once for the package: not the console's time
	began := time.Now()
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	node := c.others(lead)[0] // the console's node: a follower, it outlives the leader
	clusterUp := time.Since(began)
	b := newBrowser(t)
	t.Logf("cluster up in %v, browser in %v", clusterUp.Round(time.Millisecond), (time.Since(began) - clusterUp).Round(time.Millisecond))
	defer b.logConsole()

	// The cluster page as the leader serves it: every member's progress.
	b.open(lead.clientURL + "/ui/#/cluster")
	b.waitFor(5*time.Second, "the cluster page shows the leader and the members' progress", fmt.Sprintf(
		`document.querySelector('#cluster-leader')?.textContent === '%d' && document.querySelectorAll('#main tr[data-member] .tag.ok').length === 3`, lead.id))
	b.screenshot("console-cluster.png")

	// The locks page of a follower.
	b.open(node.clientURL + "/ui/#/locks")
	b.page("#/locks")
	b.checkConsole()

	sa := openSession(c, lead, "builder-a")
	sb := openSession(c, node, "builder-b")
	sc := openSession(c, lead, "builder-c")
	sd := openSession(c, lead, "reporter-d")
	se := openSession(c, lead, "reporter-e")
	var waits waitingAcquires

	// A lock taken by a client shows with its holder and token. The name
	// has a '/', which the console encodes in its requests.
	const name = "jobs/nightly"
	tokA := num(c.must("POST", lead.clientURL+"/v1/locks/"+name+"/acquire", map[string]any{"session": sa}, 200).body["token"])
	row, d := b.waitLock(live, "the lock taken shows with its holder and token", name, holding(sa, tokA))
	if !slices.Equal(row.Owners, []string{"builder-a"}) {
		t.Fatalf("owner shown %v, want builder-a", row.Owners)
	}
	t.Logf("holder and token shown %v after the acquire answered", d.Round(time.Millisecond))

	// Its waiters, in queue order: b, then c.
	waits.start(node.clientURL+"/v1/locks/jobs%2Fnightly/acquire", sb, map[string]any{})
	_, d = b.waitLock(live, "the first waiter shows", name, holding(sa, tokA, sb))
	t.Logf("first waiter shown within %v", d.Round(time.Millisecond))
	waits.start(lead.clientURL+"/v1/locks/"+name+"/acquire", sc, map[string]any{})
	b.waitLock(live, "the second waiter shows behind the first", name, holding(sa, tokA, sb, sc))

	// More locks for the picture: one held shared by two sessions, one
	// exclusive with a shared waiter.
	c.must("POST", lead.clientURL+"/v1/locks/reports/daily/acquire", map[string]any{"session": sd, "mode": "shared"}, 200)
	c.must("POST", lead.clientURL+"/v1/locks/reports/daily/acquire", map[string]any{"session": se, "mode": "shared"}, 200)
	c.must("POST", lead.clientURL+"/v1/locks/db/migrate/acquire", map[string]any{"session": sd}, 200)
	waits.start(lead.clientURL+"/v1/locks/db/migrate/acquire", se, map[string]any{"mode": "shared"})
	b.waitLock(live, "the shared lock shows both holders", "reports/daily", func(r lockRow) bool { return r.Found && len(r.Holders) == 2 })
	b.waitLock(live, "the shared waiter shows", "db/migrate", func(r lockRow) bool { return r.Found && slices.Equal(r.Waiters, []string{se}) })
	if !row.Force {
		t.Fatalf("with auth off anyone may force-release, but the row has no button: %+v", row)
	}
	b.screenshot("console.png")

	// A release hands the lock to the first waiter, on screen too.
	c.must("POST", node.clientURL+"/v1/locks/jobs%2Fnightly/release", map[string]any{"session": sa, "token": tokA}, 200)
	var tokB uint64
	await.True(t, 5*time.Second, "b's acquire answers", func() bool {
		r, ok := waits.answer(sb)
		tokB = num(r.body["token"])
		return ok
	})
	if r, _ := waits.answer(sb); r.status != 200 || tokB <= tokA {
		t.Fatalf("b's acquire after the release: %v (a's token %d)", r, tokA)
	}
	_, d = b.waitLock(live, "the release moves the first waiter to holder", name, holding(sb, tokB, sc))
	t.Logf("new holder shown within %v of its grant", d.Round(time.Millisecond))
	b.checkConsole()

	// Semaphores: two permits held, one waiter.
	c.must("POST", lead.clientURL+"/v1/semaphores/pool/gpu/acquire", map[string]any{"session": sa, "limit": 2}, 200)
	c.must("POST", lead.clientURL+"/v1/semaphores/pool/gpu/acquire", map[string]any{"session": sd, "limit": 2}, 200)
	waits.start(lead.clientURL+"/v1/semaphores/pool/gpu/acquire", se, map[string]any{"limit": 2})
	b.page("#/semaphores")
	b.waitFor(live, "the semaphore shows its holders and waiter", fmt.Sprintf(`(() => {
		const r = document.querySelector('#main tr[data-name="pool/gpu"]');
		return !!r && r.querySelectorAll('.holders li').length === 2 && r.querySelector('.waiters li')?.dataset.session === %s;
	})()`, jsString(se)))
	b.screenshot("console-semaphores.png")

	// Elections: d leads, e is a candidate; the opened election follows
	// observe when d resigns.
	camp := c.must("POST", lead.clientURL+"/v1/elections/services/scheduler/campaign", map[string]any{"session": sd, "value": "10.0.0.4:8080"}, 200)
	waits.start(lead.clientURL+"/v1/elections/services/scheduler/campaign", se, map[string]any{"value": "10.0.0.5:8080"})
	b.page("#/elections")
	b.waitFor(live, "the election shows its leader and candidate", fmt.Sprintf(`(() => {
		const r = document.querySelector('#main tr[data-name="services/scheduler"]');
		return !!r && r.querySelector('.leader .session')?.textContent === %s && r.querySelector('ol.people li')?.dataset.session === %s;
	})()`, jsString("#"+sd), jsString(se)))
	b.screenshot("console-elections.png")
	b.do("open the election", chromedp.Evaluate[chromedp.Void](`document.querySelector('#main tr[data-name="services/scheduler"] a.observe').click()`))
	b.waitFor(live, "the opened election shows its leader", fmt.Sprintf(`document.querySelector('#election-leader .session')?.textContent === %s`, jsString("#"+sd)))
	c.must("POST", lead.clientURL+"/v1/elections/services/scheduler/resign", map[string]any{"session": sd, "term": camp.body["term"]}, 200)
	d = b.waitFor(live, "observe shows the candidate elected after the resign", fmt.Sprintf(
		`document.querySelector('#election-leader .session')?.textContent === %s && document.querySelector('#election-value')?.textContent === '10.0.0.5:8080'`, jsString("#"+se)))
	t.Logf("new election leader shown within %v", d.Round(time.Millisecond))
	b.waitFor(live, "the new leader is no longer shown as a candidate", `document.querySelector('#election-candidates')?.textContent === 'none'`)
	b.screenshot("console-election.png")

	// Sessions: all five, with what each holds.
	b.page("#/sessions")
	b.waitFor(live, "the sessions page lists the sessions", fmt.Sprintf(`(() => {
		const ids = [...document.querySelectorAll('#main tr[data-session]')].map((r) => r.dataset.session);
		return %s.every((id) => ids.includes(id)) && document.querySelectorAll('#main .close-session').length >= 5;
	})()`, jsValue([]string{sa, sb, sc, sd, se})))
	b.screenshot("console-sessions.png")

	// Close the sessions: every waiting request answers.
	for _, s := range []string{sa, sb, sc, sd, se} {
		c.must("DELETE", lead.clientURL+"/v1/sessions/"+s, nil, 200)
	}
	waits.wg.Wait()
	b.page("#/locks")
	b.waitFor(live, "the locks are gone once their sessions are closed", `document.querySelector('#main .content .empty') !== null`)
	b.checkConsole()

	// The console's node goes away: the banner says so; once it is back,
	// the live updates resume and a new lock shows without a reload.
	stop := b.allow(networkErrors) // requests to a node that is down fail
	c.kill(node)
	b.waitFor(5*time.Second, "the banner shows the lost connection", `!document.querySelector('#banner').hidden && /Live updates lost/.test(document.querySelector('#banner').textContent)`)
	b.screenshot("console-disconnected.png")
	c.start(node, false)
	d = b.waitFor(20*time.Second, "the banner goes once the node is back", `document.querySelector('#banner').hidden && document.querySelector('#live').textContent === 'live'`)
	t.Logf("reconnected %v after the restart", d.Round(time.Millisecond))
	sf := openSession(c, lead, "after-restart")
	tokF := num(c.must("POST", lead.clientURL+"/v1/locks/jobs/after-restart/acquire", map[string]any{"session": sf}, 200).body["token"])
	b.waitLock(live, "a lock taken after the reconnection shows", "jobs/after-restart", holding(sf, tokF))
	stop()
	c.must("DELETE", lead.clientURL+"/v1/sessions/"+sf, nil, 200)
	b.checkConsole()

	// SIGKILL of the leader: the cluster page shows the new one.
	b.page("#/cluster")
	b.waitFor(5*time.Second, "the cluster page shows the leader", fmt.Sprintf(`document.querySelector('#cluster-leader')?.textContent === '%d'`, lead.id))
	c.kill(lead)
	newLead := c.leader(c.others(lead)...)
	d = b.waitFor(10*time.Second, "the cluster page shows the new leader", fmt.Sprintf(`document.querySelector('#cluster-leader')?.textContent === '%d'`, newLead.id))
	t.Logf("leader %d killed; the console shows leader %d %v after the members agreed on it", lead.id, newLead.id, d.Round(time.Millisecond))
	b.screenshot("console-cluster-failover.png")
	b.checkConsole()
	t.Logf("TestConsoleLive took %v", time.Since(began).Round(time.Millisecond))
}

// TestConsoleAuth: with auth on, the console asks for a token; an admin
// sees and can use force-release (behind a confirmation) and close-session;
// a user who may read only "jobs/" sees no admin action, and "not
// permitted" where it may not read.
func TestConsoleAuth(t *testing.T) {
	raftlockd(t)
	began := time.Now()
	const root = "e2e-console-root-token-0123456789abcdefghij"
	tokenFile := filepath.Join(t.TempDir(), "root.token")
	if err := os.WriteFile(tokenFile, []byte(root+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startClusterWith(t, 1, clusterOptions{env: func(*member) []string {
		return append(os.Environ(), "RAFTLOCK_AUTH_BOOTSTRAP_TOKEN_FILE="+tokenFile)
	}})
	m := c.members[0]
	u := m.clientURL
	await.True(t, 10*time.Second, "the auth bootstrap is applied", func() bool {
		r, err := authTry("GET", u+"/v1/auth/whoami", root, nil)
		return err == nil && r.status == 200 && r.body["principal"] == "root"
	})
	awaitReady(t, c)
	authMust(t, "POST", u+"/v1/auth/roles", root, map[string]any{"name": "jobs-reader", "permissions": []any{
		map[string]any{"prefix": "jobs/", "actions": []string{"read", "lock"}}}}, 201)
	authMust(t, "POST", u+"/v1/auth/users", root, map[string]any{"name": "alice", "roles": []string{"jobs-reader"}}, 201)
	alice := authMust(t, "POST", u+"/v1/auth/tokens", root, map[string]any{"user": "alice"}, 201).body["token"].(string)
	rs := authMust(t, "POST", u+"/v1/sessions", root, map[string]any{"ttl": "60s", "owner": "ops"}, 201).body["id"].(string)
	tok := num(authMust(t, "POST", u+"/v1/locks/jobs/x/acquire", root, map[string]any{"session": rs}, 200).body["token"])

	b := newBrowser(t)
	defer b.logConsole()
	signIn := func(token string) {
		t.Helper()
		b.waitFor(5*time.Second, "the sign-in form", `!document.querySelector('#login').hidden`)
		b.do("sign in",
			chromedp.SendKeys(chromedp.ID("token-input"), token),
			chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)),
		)
	}

	// A wrong token is refused (401) and said so.
	stop := b.allow(func(m chromedp.ConsoleMessage) bool { return networkErrors(m) && strings.Contains(m.Text, "401") })
	b.open(u + "/ui/#/locks")
	signIn("not-a-token")
	b.waitFor(5*time.Second, "a refused token is said so", `!document.querySelector('#login-error').hidden && /401/.test(document.querySelector('#login-error').textContent)`)
	stop()

	// root: an admin.
	signIn(root)
	b.waitFor(5*time.Second, "signed in as an admin", `/root/.test(document.querySelector('#who').textContent) && /admin/.test(document.querySelector('#who').textContent)`)
	b.page("#/locks")
	row, _ := b.waitLock(live, "the admin sees the lock with a force-release button", "jobs/x", holding(rs, tok))
	if !row.Force {
		t.Fatalf("the admin has no force-release button: %+v", row)
	}
	b.screenshot("console-admin.png")
	b.page("#/sessions")
	b.waitFor(live, "the admin may close sessions", fmt.Sprintf(`document.querySelector('#main tr[data-session="%s"] .close-session') !== null`, rs))
	b.checkConsole()

	// Force-release, behind a confirmation: cancel keeps the lock.
	b.page("#/locks")
	clickForce := chromedp.Evaluate[chromedp.Void](`document.querySelector('#main tr[data-name="jobs/x"] .force-release').click()`)
	b.do("click force-release", clickForce)
	b.waitFor(5*time.Second, "a confirmation is asked", `document.querySelector('#confirm').open && /jobs\/x/.test(document.querySelector('#confirm-text').textContent)`)
	b.do("cancel", chromedp.Click(chromedp.ID("confirm-cancel")))
	b.waitFor(5*time.Second, "the dialog closes", `!document.querySelector('#confirm').open`)
	if r := authMust(t, "GET", u+"/v1/locks/jobs/x", root, nil, 200); r.body["holder"] == nil {
		t.Fatalf("the lock was released although the confirmation was cancelled: %v", r)
	}
	b.do("click force-release", clickForce)
	b.waitFor(5*time.Second, "a confirmation is asked", `document.querySelector('#confirm').open`)
	b.do("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	b.waitLock(live, "the force-released lock goes", "jobs/x", func(r lockRow) bool { return !r.Found })
	if r := authMust(t, "GET", u+"/v1/locks/jobs/x", root, nil, 200); r.body["holder"] != nil {
		t.Fatalf("the lock is still held after the force-release: %v", r)
	}
	tok = num(authMust(t, "POST", u+"/v1/locks/jobs/x/acquire", root, map[string]any{"session": rs}, 200).body["token"])
	b.waitLock(live, "the lock taken again shows", "jobs/x", holding(rs, tok))
	b.checkConsole()

	// Pages: 12 locks under "page/", 10 a page; Next and Previous follow
	// the API's cursor.
	for i := range 12 {
		authMust(t, "POST", fmt.Sprintf("%s/v1/locks/page/%02d/acquire", u, i), root, map[string]any{"session": rs}, 200)
	}
	names := `[...document.querySelectorAll('#main tr[data-name]')].map((r) => r.dataset.name).join(' ')`
	want := func(from, to int) string {
		var ns []string
		for i := from; i < to; i++ {
			ns = append(ns, fmt.Sprintf("page/%02d", i))
		}
		return jsString(strings.Join(ns, " "))
	}
	b.page("#/locks?prefix=page%2F&limit=10")
	b.waitFor(live, "the first page: 10 locks", names+" === "+want(0, 10))
	b.click("next page", `#main .pager button.next`)
	b.waitFor(live, "the second page: the last 2 locks", names+" === "+want(10, 12)+` && document.querySelector('#main .pager button.next').disabled`)
	b.click("previous page", `#main .pager button.prev`)
	b.waitFor(live, "back on the first page", names+" === "+want(0, 10))
	b.checkConsole()

	// alice may read "jobs/" only: no admin action anywhere, "not
	// permitted" for every name; the auth/users probe and the reads she
	// may not do answer 403.
	b.do("sign out", chromedp.Click(chromedp.ID("signout")))
	// (Until the end: the page she signed in to keeps asking.)
	b.allow(func(m chromedp.ConsoleMessage) bool { return networkErrors(m) && strings.Contains(m.Text, "403") })
	signIn(alice)
	b.waitFor(5*time.Second, "signed in as alice, not an admin", `/alice/.test(document.querySelector('#who').textContent) && !/admin/.test(document.querySelector('#who').textContent)`)
	b.page("#/locks")
	b.waitFor(5*time.Second, "every name: not permitted", `/Not permitted/.test(document.querySelector('#main [data-forbidden]')?.textContent || '')`)
	b.page("#/locks?prefix=jobs/")
	row, _ = b.waitLock(live, "alice sees the lock under jobs/", "jobs/x", holding(rs, tok))
	if row.Force || mustEval[int](b, `document.querySelectorAll('.force-release').length`) != 0 {
		t.Fatalf("a non-admin is offered force-release: %+v", row)
	}
	b.screenshot("console-non-admin.png")
	// The watch of jobs/ is hers to read: a change shows live.
	authMust(t, "POST", u+"/v1/locks/jobs/x/release", root, map[string]any{"session": rs, "token": tok}, 200)
	b.waitLock(live, "alice sees the release live", "jobs/x", func(r lockRow) bool { return !r.Found })
	b.page("#/sessions")
	b.waitFor(5*time.Second, "alice's sessions page: none of hers, no close button", `document.querySelector('#main .content .empty') !== null && document.querySelectorAll('.close-session').length === 0`)
	b.checkConsole()
	t.Logf("TestConsoleAuth took %v", time.Since(began).Round(time.Millisecond))
}
