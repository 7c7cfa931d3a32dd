package fence_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/raftlock/raftlock/client/fence"
)

func ExampleGuard_Check() {
	var g fence.Guard
	fmt.Println(g.Check("docs", 10)) // holder A
	fmt.Println(g.Check("docs", 10)) // A again
	fmt.Println(g.Check("docs", 12)) // B, after A's hold ended

	err := g.Check("docs", 10) // A, back from a pause
	var stale *fence.StaleError
	if errors.As(err, &stale) {
		fmt.Println(errors.Is(err, fence.ErrStale), stale.Token, stale.Highest)
	}
	fmt.Println(g.Check("docs", 0))
	// Output:
	// <nil>
	// <nil>
	// <nil>
	// true 10 12
	// fence: invalid argument: token 0 for lock "docs": fencing tokens start at 1
}

func ExampleGuard_Middleware() {
	var g fence.Guard
	var (
		mu      sync.Mutex
		content string
	)
	store := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only this lock protects the content: refuse any other.
		if r.Method == http.MethodPut && r.Header.Get(fence.HeaderLock) != "docs" {
			http.Error(w, "writes need the lock docs", http.StatusForbidden)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPut {
			b, _ := io.ReadAll(r.Body)
			content = string(b)
		}
		fmt.Fprintln(w, content)
	}))

	do := func(method, body string, token uint64) {
		r := httptest.NewRequest(method, "/doc", strings.NewReader(body))
		if token > 0 {
			fence.SetHeaders(r.Header, "docs", token) // what the holder sends
		}
		w := httptest.NewRecorder()
		store.ServeHTTP(w, r)
		fmt.Print(method, " ", w.Code, " ", w.Body)
	}
	do("PUT", "from A", 10)
	do("PUT", "from B", 12)
	do("PUT", "late A", 10)
	do("PUT", "no token", 0)
	do("GET", "", 0) // reads need no token
	// Output:
	// PUT 200 from A
	// PUT 200 from B
	// PUT 409 {"error":{"code":"stale_token","message":"stale token 10 for lock \"docs\": 12 was accepted","highest":12}}
	// PUT 400 {"error":{"code":"invalid_argument","message":"header Raftlock-Lock is missing"}}
	// GET 200 from B
}

// document is a row of a table that keeps the fence with the data.
type document struct {
	body  string
	fence uint64
}

// update does what this statement does in a database, in one atomic step:
//
//	UPDATE documents SET body = $2, fence = $3 WHERE id = $1 AND fence <= $3
//
// and returns the rows affected.
func update(table map[string]*document, id, body string, token uint64) int {
	d := table[id]
	if d == nil || d.fence > token {
		return 0
	}
	d.body, d.fence = body, token
	return 1
}

// The conditional write: a durable resource keeps the fence in the row it
// protects and writes only if the row's fence is not above the holder's
// token. Here the table is a map; in SQL it is the UPDATE above.
func Example_conditionalWrite() {
	table := map[string]*document{"report": {body: "draft"}}

	fmt.Println(update(table, "report", "from A", 10)) // 1 row: written
	fmt.Println(update(table, "report", "from B", 12)) // 1 row
	if update(table, "report", "late A", 10) == 0 {    // 0 rows: refused
		if d := table["report"]; d != nil {
			fmt.Printf("stale: the row's fence is %d\n", d.fence) // SELECT fence tells stale from missing
		}
	}
	fmt.Println(update(table, "report", "B again", 12)) // the same token: written
	fmt.Printf("%q %d\n", table["report"].body, table["report"].fence)
	// Output:
	// 1
	// 1
	// stale: the row's fence is 12
	// 1
	// "B again" 12
}

func ExampleSetHeaders() {
	req, err := http.NewRequest(http.MethodPut, "http://store.example/files/report", strings.NewReader("..."))
	if err != nil {
		log.Fatal(err)
	}
	fence.SetHeaders(req.Header, "reports", 4127) // the lock's name and client.Mutex.Token()
	fmt.Println(req.Header.Get("Raftlock-Lock"), req.Header.Get("Raftlock-Fencing-Token"))
	// Output:
	// reports 4127
}
