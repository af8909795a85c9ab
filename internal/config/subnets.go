package config

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// SubnetCIDRs carves a managed network: the VPC CIDR is split into subnets
// SubnetBits longer than its prefix (a /16 gives /20s), the first azs of them
// public and the next azs private, one of each per availability zone in
// order. The managed-network code and validation both use it, so a CIDR that
// validates is one the network can be built from.
func SubnetCIDRs(cidr string, azs int) (public, private []string, err error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return nil, nil, fmt.Errorf("%q is not an IPv4 CIDR like 10.0.0.0/16", cidr)
	}
	if p != p.Masked() {
		return nil, nil, fmt.Errorf("%s has host bits set; the network is %s", cidr, p.Masked())
	}
	if azs < 1 {
		return nil, nil, fmt.Errorf("need at least one availability zone, got %d", azs)
	}
	bits := p.Bits() + SubnetBits
	if bits > 28 {
		return nil, nil, fmt.Errorf("%s is too small: its subnets would be /%d and the smallest AWS subnet is /28", cidr, bits)
	}
	if 2*azs > 1<<SubnetBits {
		return nil, nil, fmt.Errorf("%s is too small for %d availability zones: it holds %d subnets of /%d and needs %d (a public and a private one per zone)", cidr, azs, 1<<SubnetBits, bits, 2*azs)
	}
	a4 := p.Addr().As4()
	base := binary.BigEndian.Uint32(a4[:])
	size := uint32(1) << (32 - bits)
	subnet := func(i int) string {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], base+uint32(i)*size)
		return netip.PrefixFrom(netip.AddrFrom4(b), bits).String()
	}
	for i := 0; i < azs; i++ {
		public = append(public, subnet(i))
		private = append(private, subnet(azs+i))
	}
	return public, private, nil
}

// usableSubnetAddresses is how many addresses AWS leaves for ENIs in a subnet
// of the given prefix: it reserves the first four and the last one (VPC user
// guide, "Subnet CIDR blocks").
func usableSubnetAddresses(prefix int) int {
	return 1<<(32-prefix) - 5
}
