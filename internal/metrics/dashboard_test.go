package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDashboardMatchesMetrics checks configs/grafana-dashboard.json against
// the registry: every woodpecker_* series a panel queries exists, and every
// metric registered here is charted somewhere.
func TestDashboardMatchesMetrics(t *testing.T) {
	data, err := os.ReadFile("../../configs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}

	m := New()
	// Give every vector a child so that Gather lists it.
	m.ObserveAppend(1, time.Millisecond, nil)
	m.Fencing(FencePlaced)
	m.ObjectCommitted(time.Millisecond, nil)
	m.SetReaderLag("l", 1)
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, f := range families {
		registered[f.GetName()] = true
	}

	name := regexp.MustCompile(`\b(woodpecker_[a-z_]+|go_[a-z_]+|process_[a-z_]+)`)
	charted := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base := strings.TrimSuffix(n, suffix); base != n && registered[base] {
						n = base
					}
				}
				if !registered[n] {
					t.Errorf("panel %q queries %s, which is not registered", p.Title, n)
				}
				charted[n] = true
			}
		}
	}
	for n := range registered {
		if strings.HasPrefix(n, Namespace+"_") && !charted[n] {
			t.Errorf("metric %s is charted by no panel of the dashboard", n)
		}
	}
}
