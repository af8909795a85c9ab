package config

import "testing"

func TestAPIURLCloudPathOnLoopback(t *testing.T) {
	const cloudPath = "/api/accounts/6a1f3c2e-8d4b-4e7a-9c10-2b5d7e9f0a11/workspaces/0c9e8d7b-6a5f-4e3d-8c2b-1a0f9e8d7c62"
	tests := []struct {
		url    string
		wantOK bool
	}{
		{"http://127.0.0.1:41234" + cloudPath, true},
		{"http://localhost:4200" + cloudPath, true},
		{"https://api.prefect.cloud" + cloudPath, true},
		{"https://prefect.example.com" + cloudPath, false},
		{"http://127.0.0.1:41234/api/accounts/x/workspaces/y", false},
	}
	for _, tc := range tests {
		if got := apiURLProblem(tc.url); (got == "") != tc.wantOK {
			t.Errorf("apiURLProblem(%q) = %q, want ok=%v", tc.url, got, tc.wantOK)
		}
	}
}
