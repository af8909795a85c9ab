package awssim

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// What a task's network reaches. A Fargate task (awsvpc) talks to three
// kinds of destination, and each has its own path:
//
//   - hosts on the internet (Docker Hub, Prefect Cloud, any public
//     registry): through an internet gateway with a public IP, or a NAT
//     gateway (InternetReach; docs/research/aws-ecs.md §7);
//   - AWS service endpoints of the region (ECR's api and dkr endpoints and
//     S3 for its layers, Secrets Manager, CloudWatch Logs, STS, SQS, ECS):
//     the same internet path, or a VPC endpoint of the service in the task's
//     VPC (https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html:
//     a task pulling from ECR without internet access needs the ecr.api and
//     ecr.dkr interface endpoints and the S3 gateway endpoint);
//   - private hosts, such as a self-hosted Prefect server inside a VPC:
//     reachable from the VPCs they are placed in (PlaceHost), with or
//     without internet access.
//
// So "the registry is reachable through ECR endpoints while Prefect is not"
// is a VPC without a route to the internet, with the three ECR endpoints
// (SeedVPCEndpoint), an ECR image, and Prefect Cloud's API.

// Destination is one place a task's connection goes to: a host, or the
// regional endpoint of an AWS service ("ecr.api", "secretsmanager", ...).
type Destination struct {
	Host    string
	Service string
}

// HostPlacement is where a host that is not an AWS endpoint lives.
type HostPlacement struct {
	// Internet: reachable over the internet (the default for hosts nobody
	// placed, e.g. registry-1.docker.io or api.prefect.cloud).
	Internet bool
	// VPCs it is reachable from without the internet (a private server, a
	// peered network).
	VPCs []string
}

type reachState struct {
	hosts     map[string]HostPlacement // by host[:port]
	endpoints map[string]map[string]bool
}

func (w *World) reachState() *reachState {
	return State(w, "reach", func() *reachState {
		return &reachState{hosts: map[string]HostPlacement{}, endpoints: map[string]map[string]bool{}}
	})
}

// PlaceHost says where host (as in a URL: "10.0.3.7:4200",
// "127.0.0.1:39121") is. The Prefect simulator places its own server's host.
func (w *World) PlaceHost(host string, p HostPlacement) {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	w.reachState().hosts[host] = p
}

// SeedVPCEndpoint creates, outside any API call, a VPC endpoint of service
// ("ecr.api", "ecr.dkr", "s3", "secretsmanager", "logs", ...; the part after
// com.amazonaws.REGION.) in vpcID, with private DNS: every subnet of the VPC
// reaches the service through it.
func (w *World) SeedVPCEndpoint(vpcID, service string) {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	st := w.reachState()
	if st.endpoints[vpcID] == nil {
		st.endpoints[vpcID] = map[string]bool{}
	}
	st.endpoints[vpcID][service] = true
}

// Reach says whether a task in subnetID, with or without a public IP,
// reaches d, and if not why. Callers hold w.Mu.
func (w *World) Reach(subnetID string, publicIP bool, d Destination) (bool, string) {
	sn, ok := w.EC2State().Subnets[subnetID]
	if !ok {
		return false, "subnet " + subnetID + " does not exist"
	}
	st := w.reachState()
	if d.Service != "" {
		if st.endpoints[sn.VPCID][d.Service] {
			return true, ""
		}
		if ok, why := w.InternetReach(subnetID, publicIP); !ok {
			return false, why + fmt.Sprintf("; %s has no VPC endpoint for com.amazonaws.%s.%s", sn.VPCID, w.Region, d.Service)
		}
		return true, ""
	}
	p, placed := st.hosts[d.Host]
	if !placed {
		p = HostPlacement{Internet: true}
	}
	for _, v := range p.VPCs {
		if v == sn.VPCID {
			return true, ""
		}
	}
	if !p.Internet {
		return false, "host " + d.Host + " is not reachable from " + sn.VPCID
	}
	return w.InternetReach(subnetID, publicIP)
}

// URLDestination is where a URL's connections go (its host and port).
func URLDestination(rawURL string) Destination {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return Destination{Host: rawURL}
	}
	return Destination{Host: u.Host}
}

var ecrHostRe = regexp.MustCompile(`^\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com$`)

// registryOf is the registry host of an image reference (Docker Hub's
// registry-1.docker.io when the reference names none), and for a private
// ECR repository its region.
func registryOf(ref string) (host, ecrRegion string) {
	name := ref
	if i := strings.Index(name, "@"); i >= 0 {
		name = name[:i]
	}
	first, _, hasSlash := strings.Cut(name, "/")
	if !hasSlash || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return "registry-1.docker.io", ""
	}
	if m := ecrHostRe.FindStringSubmatch(first); m != nil {
		return first, m[1]
	}
	if first == "docker.io" {
		return "registry-1.docker.io", ""
	}
	return first, ""
}

// TaskReach says whether a task's network reaches d now, and if not why:
// for simulated processes acting from outside the world's lock (the Prefect
// simulator's worker, before it calls an AWS endpoint).
func (w *World) TaskReach(taskARN string, d Destination) (bool, string) {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	t := w.ecs().Tasks[taskARN]
	if t == nil {
		return false, "task " + taskARN + " does not exist"
	}
	return w.Reach(t.SubnetID, t.PublicIP, d)
}
