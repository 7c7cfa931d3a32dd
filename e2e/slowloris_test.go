package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestClientPortCutsADribbledBody: a body sent one byte at a time is cut
// once the request has taken the server's read timeout (10 s), instead of
// holding a connection and a handler for as long as the client likes (21 s
// and more before). Nothing is created from the cut request.
func TestClientPortCutsADribbledBody(t *testing.T) {
	c := startCluster(t, 1)
	m := c.members[0]
	c.leader(m)
	conn, err := net.Dial("tcp", strings.TrimPrefix(m.clientURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"ttl":"10s","owner":"slow"}`
	fmt.Fprintf(conn, "POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	start := time.Now()
	cut := make(chan time.Duration, 1)
	go func() {
		// The server answers (or closes) when it cuts the request.
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("the dribbled request was served: %d", resp.StatusCode)
			}
		}
		cut <- time.Since(start)
	}()
	// One byte every 500 ms, never the whole body (at most 28 bytes: 14 s).
	for i := 0; i < len(body)-1; i++ {
		select {
		case d := <-cut:
			if d > 12*time.Second {
				t.Fatalf("cut after %v, want about 10 s", d)
			}
			t.Logf("cut after %v and %d bytes of the body", d, i)
			if r := c.must("GET", m.clientURL+"/v1/status", nil, 200); r.status != 200 {
				t.Fatal(r)
			}
			return
		case <-time.After(500 * time.Millisecond):
		}
		if _, err := conn.Write([]byte{body[i]}); err != nil {
			t.Logf("write refused after %v: %v", time.Since(start), err)
			return
		}
	}
	t.Fatalf("the server was still reading the dribbled body after %v", time.Since(start))
}
