// Port mapping: makes this host's peer port (TCP) and DHT port (UDP) reachable from outside
// a home router, through UPnP IGD (libminiupnpc) or NAT-PMP (libnatpmp). See README.md.
