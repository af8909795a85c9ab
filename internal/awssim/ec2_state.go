package awssim

import (
	"strconv"
	"time"
)

// EC2 state is shared by the EC2 handlers (network simulator) and the ECS
// handlers (which place Fargate task ENIs in subnets). All access holds w.Mu.

// ENI is an elastic network interface, as DescribeNetworkInterfaces shows it.
type ENI struct {
	ID               string
	SubnetID         string
	VPCID            string
	GroupIDs         []string
	Description      string // Fargate: "arn:aws:ecs:<region>:<acct>:attachment/<uuid>"
	RequesterID      string // Fargate: "amazon-ecs" style requester
	InterfaceType    string // "interface"
	Status           string // "in-use" | "available"
	PrivateIP        string
	PublicIP         string // set when the task asked for a public IP
	DeleteAt         time.Time
	ReleasedByTaskAt time.Time // zero while the task runs
}

// EC2 is the simulated EC2 state. The network simulator owns the maps other
// than ENIs' lifecycle; ECS calls TaskENI/ReleaseTaskENI.
type EC2 struct {
	VPCs           map[string]*VPC
	Subnets        map[string]*Subnet
	SecurityGroups map[string]*SecurityGroup
	ENIs           map[string]*ENI
	// Extra holds the rest of the network simulator's state (gateways,
	// route tables, addresses, NAT gateways), typed in its own file.
	Extra any
}

type VPC struct {
	ID, CIDR, State  string
	Tags             map[string]string
	EnableDNSSupport bool
	EnableDNSHosts   bool
	IsDefault        bool
}

type Subnet struct {
	ID, VPCID, CIDR, AZ, State string
	MapPublicIPOnLaunch        bool
	Tags                       map[string]string
}

type SecurityGroup struct {
	ID, Name, Description, VPCID string
	Tags                         map[string]string
	// Egress rules as "proto:from-to:cidr" strings, e.g. "-1:0-0:0.0.0.0/0".
	Egress  []string
	Ingress []string
}

// EC2State returns the EC2 state. Callers hold w.Mu.
func (w *World) EC2State() *EC2 {
	return State(w, "ec2", func() *EC2 {
		return &EC2{VPCs: map[string]*VPC{}, Subnets: map[string]*Subnet{}, SecurityGroups: map[string]*SecurityGroup{}, ENIs: map[string]*ENI{}}
	})
}

// TaskENI creates the ENI of a Fargate task in subnet with the groups; ECS
// calls it when a task is placed. Callers hold w.Mu.
func (w *World) TaskENI(subnetID string, groupIDs []string, attachment string, publicIP bool) *ENI {
	s := w.EC2State()
	e := &ENI{ID: w.NewID("eni"), SubnetID: subnetID, GroupIDs: append([]string(nil), groupIDs...),
		Description: attachment, RequesterID: "578734482556", InterfaceType: "interface", Status: "in-use"}
	if sn, ok := s.Subnets[subnetID]; ok {
		e.VPCID = sn.VPCID
	}
	n := w.NextSeq("ip")
	e.PrivateIP = "10.0." + strconv.Itoa(n/250) + "." + strconv.Itoa(n%250+4)
	if publicIP {
		e.PublicIP = "203.0.113." + strconv.Itoa(n%250+1)
	}
	s.ENIs[e.ID] = e
	return e
}

// ReleaseTaskENI marks a stopped task's ENI for removal after ENILinger.
// Callers hold w.Mu.
func (w *World) ReleaseTaskENI(id string) {
	if e, ok := w.EC2State().ENIs[id]; ok && e.ReleasedByTaskAt.IsZero() {
		now := w.Clock.Now()
		e.ReleasedByTaskAt = now
		e.Status = "available"
		e.DeleteAt = now.Add(w.timings.ENILinger)
	}
}

// ReapENIs removes released ENIs whose linger has passed; every EC2 handler
// calls it first, so state follows the clock. Callers hold w.Mu.
func (w *World) ReapENIs() {
	now := w.Clock.Now()
	s := w.EC2State()
	for id, e := range s.ENIs {
		if !e.ReleasedByTaskAt.IsZero() && !now.Before(e.DeleteAt) {
			delete(s.ENIs, id)
		}
	}
}
