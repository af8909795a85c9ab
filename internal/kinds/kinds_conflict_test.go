package kinds_test

import "github.com/deploybot/deploybot/internal/stack"

// conflictAddresses are the kinds TestNotOursIsAConflict covers: every kind
// whose ownership is a tag (scaling policies take no tags).
var conflictAddresses = []string{
	stack.AddrLogGroup, stack.AddrExecutionRole, stack.AddrTaskRole, stack.AddrSecret,
	stack.AddrCluster, stack.AddrTaskDefinition, stack.AddrNamespace, stack.AddrDiscoveryService,
	stack.AddrService, stack.AddrScalableTarget,
}

// createRefuses are the kinds whose create call would otherwise succeed on
// an existing resource (CreateCluster is idempotent; the others converge an
// existing resource after a crash), so they check ownership themselves.
var createRefuses = map[string]bool{
	stack.AddrLogGroup: true, stack.AddrExecutionRole: true, stack.AddrTaskRole: true, stack.AddrSecret: true,
	stack.AddrCluster: true, stack.AddrNamespace: true, stack.AddrDiscoveryService: true,
}
