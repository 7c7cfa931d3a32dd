package testserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartServesTheAPI(t *testing.T) {
	s := Start(t, Options{})
	resp, err := http.Post(s.URL+"/v1/sessions", "application/json", strings.NewReader(`{"ttl":"1s"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 201 || body.ID == "" {
		t.Fatalf("open session: %d %+v %v", resp.StatusCode, body, err)
	}
	http.DefaultClient.CloseIdleConnections()
}
