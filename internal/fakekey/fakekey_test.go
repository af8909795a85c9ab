package fakekey

import (
	"strings"
	"testing"
)

func TestPrefectKeysAreFakeAndFresh(t *testing.T) {
	a, b := Prefect("x"), Prefect("x")
	if a == b {
		t.Fatal("two keys are equal")
	}
	if !strings.HasPrefix(a, "pnu_fakex") || len(a) != len("pnu_fakex")+24 {
		t.Fatalf("key %q", a)
	}
}
